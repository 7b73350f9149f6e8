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

/// `message` without serde_json's trailing ` at line L column C` (the
/// deserializer adds the position again to the error that wraps it).
fn without_position(message: &str) -> &str {
    let Some((head, tail)) = message.rsplit_once(" at line ") else {
        return message;
    };
    let is_position = tail
        .split_once(" column ")
        .is_some_and(|(l, c)| [l, c].iter().all(|n| n.bytes().all(|b| b.is_ascii_digit())));
    if is_position {
        head
    } else {
        message
    }
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
                    let v = map.next_value::<T>().map_err(|e| {
                        A::Error::custom(format!("in '{k}': {}", without_position(&e.to_string())))
                    })?;
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

    #[test]
    fn an_error_in_a_value_names_its_key_and_its_place_in_the_file() {
        let text = "{\"a\": 1,\n \"bad\": [1, NaN]}";
        let e = serde_json::from_str::<Ordered<serde_json::Value>>(text)
            .unwrap_err()
            .to_string();
        // serde_json places the wrapped error at the last character read
        // (the space before `NaN`); its own error, at the one it peeked.
        assert_eq!(e, "in 'bad': expected value at line 2 column 12");
        assert_eq!(without_position("x at line 1 column 2"), "x");
        assert_eq!(without_position("x at line one"), "x at line one");
    }
}
