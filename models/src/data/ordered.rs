//! Deserialises a JSON object into a `Vec<(key, value)>` in file order
//! (serde_json's own map would sort the keys, and keep one of a repeated
//! key silently).
use serde::de::{Deserialize, Deserializer, Error as _, MapAccess, Visitor};
use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;
use std::path::Path;

use super::DataError;

/// A JSON object's entries in file order, every one kept: a key the object
/// repeats appears twice (find it with [`Ordered::repeated_key`]). An error
/// inside a value names its key (`in 'KEY': ...`; serde_json then places it
/// at the last character read, one before the one it could not read).
#[derive(Debug, Clone)]
pub struct Ordered<T>(pub Vec<(String, T)>);

impl<T> Ordered<T> {
    /// The first key given a second time, if any.
    pub fn repeated_key(&self) -> Option<&str> {
        let mut seen = HashSet::with_capacity(self.0.len());
        self.0
            .iter()
            .map(|(k, _)| k.as_str())
            .find(|k| !seen.insert(*k))
    }

    /// The entries of `object` (a map of videos in the file `path`), or an
    /// error naming the first video it gives twice: which of the two was
    /// meant is not ours to guess.
    pub(crate) fn into_unique_videos(
        self,
        path: &Path,
        object: &str,
    ) -> Result<Vec<(String, T)>, DataError> {
        match self.repeated_key() {
            Some(video) => {
                Err(DataError::invalid(path, repeated_video_reason(object)).video(video))
            }
            None => Ok(self.0),
        }
    }
}

/// Why a video given twice in `object` (`results`, `database`) is refused;
/// the message it goes into names the file and the video.
pub fn repeated_video_reason(object: &str) -> String {
    format!("appears twice in '{object}'; keep one entry per video")
}

/// serde_json's error `e` reading `text`, as the message to show. An
/// error inside an [`Ordered`] value keeps its own position (the character
/// it could not read), not the ones serde_json adds when passing it out
/// (the character before); a non-finite literal there (`NaN`, which Python
/// writes) is named as such.
pub fn json_error_message(text: &str, e: &serde_json::Error) -> String {
    let full = e.to_string();
    // The innermost position is the last one left when every trailing
    // ` at line L column C` is taken off.
    let (mut head, mut position) = (full.as_str(), None);
    while let (inner, Some(p)) = split_position(head) {
        (head, position) = (inner, Some(p));
    }
    let Some((line, column)) = position else {
        return full;
    };
    let at = byte_offset(text, line, column);
    let bytes = text.as_bytes();
    // serde_json stops at the `I` of `-Infinity` ("invalid number").
    let start = match at.checked_sub(1) {
        Some(minus) if bytes.get(minus) == Some(&b'-') && column > 1 => minus,
        _ => at,
    };
    let literal = bytes.get(start..).and_then(tcanet_cli::non_finite_literal);
    let plain = ["expected value", "invalid number"]
        .iter()
        .find_map(|m| head.strip_suffix(m));
    match (literal, plain) {
        (Some(literal), Some(context)) => {
            let column = column - (at - start);
            let found = tcanet_cli::found_non_finite(literal);
            format!("{context}expected a number, {found} at line {line} column {column}")
        }
        _ => format!("{head} at line {line} column {column}"),
    }
}

/// `message` without its trailing ` at line L column C`, and that position.
fn split_position(message: &str) -> (&str, Option<(usize, usize)>) {
    let Some((head, tail)) = message.rsplit_once(" at line ") else {
        return (message, None);
    };
    let numbers = tail
        .split_once(" column ")
        .and_then(|(l, c)| Some((l.parse().ok()?, c.parse().ok()?)));
    match numbers {
        Some(position) => (head, Some(position)),
        None => (message, None),
    }
}

/// The byte offset of 1-based `line` and byte `column` in `text` (its end
/// when beyond it).
fn byte_offset(text: &str, line: usize, column: usize) -> usize {
    let line_start = if line <= 1 {
        0
    } else {
        text.match_indices('\n')
            .nth(line - 2)
            .map_or(text.len(), |(i, _)| i + 1)
    };
    (line_start + column.saturating_sub(1)).min(text.len())
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Ordered<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Ordered<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(k) = map.next_key::<String>()? {
                    let v = map
                        .next_value::<T>()
                        .map_err(|e| A::Error::custom(format!("in '{k}': {e}")))?;
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_are_kept_and_found() {
        let o: Ordered<u8> = serde_json::from_str(r#"{"b": 1, "a": 2, "b": 3}"#).unwrap();
        assert_eq!(o.0.len(), 3);
        assert_eq!(o.repeated_key(), Some("b"));
        let e = o
            .into_unique_videos(Path::new("p.json"), "results")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "p.json: video 'b': appears twice in 'results'; keep one entry per video"
        );
        let o: Ordered<u8> = serde_json::from_str(r#"{"b": 1, "a": 2}"#).unwrap();
        assert_eq!(o.repeated_key(), None);
    }

    /// The message of reading `text` as an `Ordered` map of JSON values.
    fn message(text: &str) -> String {
        let e = serde_json::from_str::<Ordered<serde_json::Value>>(text).unwrap_err();
        json_error_message(text, &e)
    }

    #[test]
    fn an_error_in_a_value_names_its_key_and_the_character_it_could_not_read() {
        let e = message("{\"a\": 1,\n \"bad\": [1, \"x\" 2]}");
        assert_eq!(e, "in 'bad': expected `,` or `]` at line 2 column 17");
        let e = message("{\"a\": 1,\n \"bad\": [1, NaN]}");
        assert!(
            e.starts_with("in 'bad': expected a number, found NaN, which is not valid JSON"),
            "{e}"
        );
        assert!(e.ends_with(" at line 2 column 13"), "{e}");
        let e = message("{\"x\": [-Infinity]}");
        assert!(
            e.contains("found -Infinity") && e.ends_with("line 1 column 8"),
            "{e}"
        );
        let e = message("{\"x\": Infinity}");
        assert!(
            e.contains("found Infinity") && e.ends_with("line 1 column 7"),
            "{e}"
        );
        // An error inside a value of a value: the innermost position.
        let text = "{\"a\": {\"b\": [1, NaN]}}";
        let e = serde_json::from_str::<Ordered<Ordered<serde_json::Value>>>(text).unwrap_err();
        let m = json_error_message(text, &e);
        assert!(
            m.starts_with("in 'a': in 'b': expected a number, found NaN"),
            "{m}"
        );
        assert!(m.ends_with(" at line 1 column 17"), "{m}");
        // serde_json's own errors (outside a value) keep their position.
        let text = "{\"x\": 1,, }";
        let e = serde_json::from_str::<Ordered<u8>>(text).unwrap_err();
        assert_eq!(
            json_error_message(text, &e),
            "key must be a string at line 1 column 9"
        );
        // A message without a position is kept as it is.
        let e = serde_json::from_value::<u8>(serde_json::json!("x")).unwrap_err();
        assert_eq!(json_error_message("", &e), e.to_string());
    }

    proptest::proptest! {
        #![proptest_config(tcanet_testkit::proptest_config())]

        /// Whatever the text (a valid file cut or spliced anywhere, any
        /// characters), the message is made without a panic and places the
        /// error on a line and column of the text.
        #[test]
        fn any_text_gives_a_message(
            cut in 0usize..80,
            splice in "[ -~\n\u{e9}\u{1F600}]{0,12}",
        ) {
            let valid = "{\"v1\": [{\"segment\": [1.5, -2e3]}],\n \"v\u{e9}\": [NaN, -Infinity]}";
            let mut text: String = valid.chars().take(cut).collect();
            text.push_str(&splice);
            text.extend(valid.chars().skip(cut));
            if let Err(e) = serde_json::from_str::<Ordered<serde_json::Value>>(&text) {
                let m = json_error_message(&text, &e);
                let (_, position) = split_position(&m);
                let (line, column) = position.expect("a position");
                let lines: Vec<&str> = text.split('\n').collect();
                proptest::prop_assert!(line >= 1 && line <= lines.len(), "{m}");
                proptest::prop_assert!(column <= lines[line - 1].len() + 1, "{m}");
            }
        }
    }
}
