//! Reading ground-truth and submission files into the crate's types.
//!
//! Submissions are pre-scanned once (bracket matching) to cut `results`
//! into per-video byte ranges, which are then parsed on all cores.

use crate::json::FastMap as HashMap;
use std::borrow::Cow;

use rayon::prelude::*;

use crate::json::{line_column, JResult, JsonError, Parser};
use crate::{
    Detection, DetectionSet, Error, GroundTruth, GtInstance, GtVideo, Proposal, ProposalSet,
    VideoResults,
};

fn syntax(bytes: &[u8], file: &str, e: JsonError) -> Error {
    let (line, column) = line_column(bytes, e.offset);
    Error::Syntax {
        file: file.to_string(),
        line,
        column,
        message: e.message,
    }
}

/// Prefixes an error's message with where it is (`results["v"][3].score`).
fn within(path: impl FnOnce() -> String) -> impl FnOnce(JsonError) -> JsonError {
    move |e| JsonError {
        offset: e.offset,
        message: format!("{}: {}", path(), e.message),
    }
}

/// Reads `[start, end]`: two finite numbers.
fn segment(p: &mut Parser, path: &dyn Fn() -> String) -> JResult<[f64; 2]> {
    let start_at = p.pos;
    p.begin_array("an array [start, end]")
        .map_err(within(|| format!("{}.segment", path())))?;
    let mut first = true;
    let mut out = [0.0; 2];
    for (i, slot) in out.iter_mut().enumerate() {
        if !p.next_element(&mut first)? {
            return Err(p.error_at(
                start_at,
                format!(
                    "{}.segment has {i} number(s); it must be two finite numbers [start, end]",
                    path()
                ),
            ));
        }
        let at = p.pos;
        let v = p
            .number("a number")
            .map_err(within(|| format!("{}.segment[{i}]", path())))?;
        if !v.is_finite() {
            return Err(p.error_at(
                at,
                format!("{}.segment[{i}] is not a finite number", path()),
            ));
        }
        *slot = v;
    }
    if p.next_element(&mut first)? {
        return Err(p.error_at(
            start_at,
            format!(
                "{}.segment has more than two values; it must be two finite numbers [start, end]",
                path()
            ),
        ));
    }
    Ok(out)
}

struct RawGtVideo<'a> {
    id: Cow<'a, str>,
    key_at: usize,
    subset: Option<Cow<'a, str>>,
    annotations_at: Option<usize>,
    duration: Option<f64>,
}

/// Parses a ground-truth file and keeps the videos of `subset`.
pub(crate) fn ground_truth(bytes: &[u8], file: &str, subset: &str) -> Result<GroundTruth, Error> {
    let err = |e: JsonError| syntax(bytes, file, e);
    let mut p = Parser::new(bytes, 0);
    p.begin_object("a JSON object at the top level")
        .map_err(err)?;
    let mut first = true;
    let mut raw: Vec<RawGtVideo> = Vec::new();
    let mut found_database = false;
    let mut has_results = false;
    let mut warnings = Vec::new();
    while let Some(key) = p.next_key(&mut first).map_err(err)? {
        if key == "database" {
            found_database = true;
            database(&mut p, &mut raw, &mut warnings, bytes, file)?;
        } else {
            has_results |= key == "results";
            p.skip_value().map_err(err)?;
        }
    }
    p.end().map_err(err)?;
    if !found_database {
        let hint = if has_results {
            " It has \"results\": this looks like a submission; the ground truth comes first (GT PRED)."
        } else {
            ""
        };
        return Err(Error::Content {
            file: file.into(),
            message: format!(
                "no \"database\" key at the top level, so this is not a ground-truth file in the \
                 ActivityNet format ({{\"database\": {{VIDEO: {{\"subset\": ..., \"annotations\": [...]}}}}}}).{hint}"
            ),
        });
    }

    let mut subsets: Vec<(String, usize)> = Vec::new();
    let mut videos = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    let mut label_ids: HashMap<String, usize> = HashMap::default();
    let mut reversed = 0usize;
    let mut first_reversed = String::new();
    for v in &raw {
        let Some(s) = &v.subset else {
            return Err(err(JsonError {
                offset: v.key_at,
                message: format!("database[\"{}\"] has no \"subset\" field", v.id),
            }));
        };
        match subsets.iter_mut().find(|(name, _)| name == s) {
            Some((_, n)) => *n += 1,
            None => subsets.push((s.to_string(), 1)),
        }
        if s != subset {
            continue;
        }
        let Some(at) = v.annotations_at else {
            return Err(err(JsonError {
                offset: v.key_at,
                message: format!(
                    "database[\"{}\"] (subset {subset}) has no \"annotations\" field",
                    v.id
                ),
            }));
        };
        let mut q = Parser::new(bytes, at);
        let mut instances = Vec::new();
        let vpath = || format!("database[\"{}\"].annotations", v.id);
        q.begin_array("an array of annotations")
            .map_err(within(vpath))
            .map_err(err)?;
        let mut firste = true;
        let mut n = 0usize;
        while q.next_element(&mut firste).map_err(err)? {
            let path = || format!("database[\"{}\"].annotations[{n}]", v.id);
            let obj_at = q.pos;
            q.begin_object("an object {\"segment\": [s, e], \"label\": NAME}")
                .map_err(within(path))
                .map_err(err)?;
            let mut firstk = true;
            let mut seg = None;
            let mut label: Option<Cow<str>> = None;
            while let Some(k) = q
                .next_key_among(&mut firstk, &["segment", "label"])
                .map_err(err)?
            {
                match k.as_ref() {
                    "segment" => seg = Some(segment(&mut q, &path).map_err(err)?),
                    "label" => {
                        label = Some(
                            q.string()
                                .map_err(within(|| format!("{}.label", path())))
                                .map_err(err)?,
                        )
                    }
                    _ => q.skip_value().map_err(err)?,
                }
            }
            let missing = |field: &str| {
                err(JsonError {
                    offset: obj_at,
                    message: format!("{} has no \"{field}\"", path()),
                })
            };
            let seg = seg.ok_or_else(|| missing("segment"))?;
            let label = label.ok_or_else(|| missing("label"))?;
            if seg[0] > seg[1] {
                reversed += 1;
                if first_reversed.is_empty() {
                    first_reversed = path();
                }
            }
            let id = match label_ids.get(label.as_ref()) {
                Some(&i) => i,
                None => {
                    labels.push(label.to_string());
                    label_ids.insert(label.to_string(), labels.len() - 1);
                    labels.len() - 1
                }
            };
            instances.push(GtInstance {
                segment: seg,
                label: id,
            });
            n += 1;
        }
        videos.push(GtVideo {
            id: v.id.to_string(),
            duration: v.duration,
            instances,
        });
    }
    if videos.is_empty() {
        let present: Vec<String> = subsets
            .iter()
            .map(|(s, n)| format!("{s} ({n} video{})", if *n == 1 { "" } else { "s" }))
            .collect();
        return Err(Error::Content {
            file: file.into(),
            message: format!(
                "no video of subset \"{subset}\"; the file has: {}. Choose one with --subset.",
                if present.is_empty() {
                    "no videos at all".to_string()
                } else {
                    present.join(", ")
                }
            ),
        });
    }
    if reversed > 0 {
        warnings.push(format!(
            "{file}: {reversed} ground-truth segment(s) are reversed (start > end), first at \
             {first_reversed}; they are used as written, as the official code does"
        ));
    }
    Ok(GroundTruth::new(
        file.to_string(),
        subset.to_string(),
        labels,
        videos,
        warnings,
    ))
}

fn database<'a>(
    p: &mut Parser<'a>,
    raw: &mut Vec<RawGtVideo<'a>>,
    warnings: &mut Vec<String>,
    bytes: &[u8],
    file: &str,
) -> Result<(), Error> {
    let err = |e: JsonError| syntax(bytes, file, e);
    p.begin_object("an object of videos as the value of \"database\"")
        .map_err(err)?;
    let mut index: HashMap<Cow<'a, str>, usize> =
        HashMap::with_capacity_and_hasher(bytes.len() / 128, Default::default());
    let mut first = true;
    while let Some(id) = p.next_key(&mut first).map_err(err)? {
        let key_at = p.key_at;
        let path = || format!("database[\"{id}\"]");
        p.begin_object("an object {\"subset\": ..., \"annotations\": [...]}")
            .map_err(within(path))
            .map_err(err)?;
        let mut v = RawGtVideo {
            id: id.clone(),
            key_at,
            subset: None,
            annotations_at: None,
            duration: None,
        };
        let mut firstk = true;
        while let Some(k) = p
            .next_key_among(&mut firstk, &["subset", "annotations", "duration"])
            .map_err(err)?
        {
            match k.as_ref() {
                "subset" => {
                    v.subset = Some(
                        p.string()
                            .map_err(within(|| format!("{}.subset", path())))
                            .map_err(err)?,
                    )
                }
                "annotations" => {
                    p.peek();
                    v.annotations_at = Some(p.pos);
                    p.skip_value().map_err(err)?;
                }
                "duration" if matches!(p.peek(), Some(c) if c == b'-' || c.is_ascii_digit()) => {
                    v.duration = Some(p.number("a number").map_err(err)?);
                }
                _ => p.skip_value().map_err(err)?,
            }
        }
        match index.get(&id) {
            Some(&i) => {
                let (line, _) = line_column(bytes, key_at);
                warnings.push(format!(
                    "{file}:{line}: video \"{id}\" appears twice in \"database\"; the last one \
                     is used (in the place of the first), as Python's json does"
                ));
                v.key_at = raw[i].key_at;
                raw[i] = v;
            }
            None => {
                index.insert(id, raw.len());
                raw.push(v);
            }
        }
    }
    Ok(())
}

/// One parsed video of a submission, labels numbered locally.
struct RawResults<'a> {
    id: Cow<'a, str>,
    key_at: usize,
    entries: Vec<Detection>,
    reversed: usize,
    first_reversed: Option<usize>,
}

/// Labels of one piece of `results`, numbered in order of appearance.
#[derive(Default)]
struct PieceLabels<'a> {
    names: Vec<Cow<'a, str>>,
    ids: HashMap<Cow<'a, str>, u32>,
}

/// The videos of one piece of `results` and their labels.
type Piece<'a> = (Vec<RawResults<'a>>, PieceLabels<'a>);

/// How a chunk of the `results` object ended.
enum ChunkEnd {
    /// At the start of the next chunk: that chunk's start is a real video.
    Landed,
    /// Past the next chunk's guessed start: the guess was wrong.
    Overshot,
    /// At the closing brace of `results`; the offset after it.
    Closed(usize),
}

/// Parses videos of `results` from `start` (a key, or just after `{` when
/// `at_open`) until `stop` or the closing brace.
fn results_chunk<'a>(
    bytes: &'a [u8],
    start: usize,
    at_open: bool,
    stop: Option<usize>,
    want_labels: bool,
) -> JResult<(Piece<'a>, ChunkEnd)> {
    let mut p = Parser::new(bytes, start);
    let mut out = Vec::new();
    let mut labels = PieceLabels::default();
    if at_open && p.peek() == Some(b'}') {
        return Ok(((out, labels), ChunkEnd::Closed(p.pos + 1)));
    }
    loop {
        if p.peek() != Some(b'"') {
            return p.expected("a video id (a string)");
        }
        if let Some(stop) = stop {
            if p.pos == stop {
                return Ok(((out, labels), ChunkEnd::Landed));
            }
            if p.pos > stop {
                return Ok(((out, labels), ChunkEnd::Overshot));
            }
        }
        let key_at = p.pos;
        let id = p.string()?;
        p.expect_byte(b':', "':' after the key")?;
        if p.peek() != Some(b'[') {
            let e = p.expected::<()>("an array of results").unwrap_err();
            return Err(within(|| format!("results[\"{id}\"]"))(e));
        }
        let (r, end) = video_results(bytes, id, key_at, p.pos, want_labels, &mut labels)?;
        p.pos = end;
        out.push(r);
        match p.peek() {
            Some(b',') => p.pos += 1,
            Some(b'}') => return Ok(((out, labels), ChunkEnd::Closed(p.pos + 1))),
            _ => return p.expected("',' or '}' after a video's results"),
        }
    }
}

/// Parses the body of `results` (from just after its `{`) on all cores:
/// the text is cut at guessed video boundaries, the pieces are parsed in
/// parallel, and each guess is confirmed by the piece before it ending
/// exactly there (otherwise the whole body is parsed again in one piece).
fn results_body<'a>(
    bytes: &'a [u8],
    start: usize,
    want_labels: bool,
) -> JResult<(Vec<Piece<'a>>, usize)> {
    let threads = rayon::current_num_threads();
    let len = bytes.len() - start;
    let pieces = if threads > 1 {
        (len / (128 * 1024)).clamp(1, threads * 4)
    } else {
        1
    };
    let mut starts = vec![start];
    for k in 1..pieces {
        if let Some(c) = crate::json::next_video_key(bytes, start + k * len / pieces) {
            if c > *starts.last().unwrap() {
                starts.push(c);
            }
        }
    }
    let parts: Vec<_> = (0..starts.len())
        .into_par_iter()
        .map(|i| {
            results_chunk(
                bytes,
                starts[i],
                i == 0,
                starts.get(i + 1).copied(),
                want_labels,
            )
        })
        .collect();
    let mut out = Vec::new();
    for part in parts {
        // Reached only when this piece's start is confirmed: its error is real.
        let (piece, end) = part?;
        out.push(piece);
        match end {
            ChunkEnd::Landed => continue,
            ChunkEnd::Closed(at) => return Ok((out, at)),
            ChunkEnd::Overshot => break,
        }
    }
    match results_chunk(bytes, start, true, None, want_labels)? {
        (piece, ChunkEnd::Closed(at)) => Ok((vec![piece], at)),
        _ => unreachable!("a piece without a stop ends at the closing brace or fails"),
    }
}

/// A submission's videos, its label names and the warnings.
type ReadResults<'a> = (Vec<RawResults<'a>>, Vec<String>, Vec<String>);

/// Reads a submission's `results` into videos (duplicates resolved).
fn results<'a>(bytes: &'a [u8], file: &str, want_labels: bool) -> Result<ReadResults<'a>, Error> {
    let err = |e: JsonError| syntax(bytes, file, e);
    let mut p = Parser::new(bytes, 0);
    p.begin_object("a JSON object at the top level")
        .map_err(err)?;
    let mut first = true;
    let mut parsed: Option<Vec<Piece<'a>>> = None;
    let mut has_database = false;
    let mut warnings = Vec::new();
    while let Some(key) = p.next_key(&mut first).map_err(err)? {
        if key != "results" {
            has_database |= key == "database";
            p.skip_value().map_err(err)?;
            continue;
        }
        p.begin_object("an object {VIDEO: [...]} as the value of \"results\"")
            .map_err(err)?;
        let (videos, end) = results_body(bytes, p.pos, want_labels).map_err(err)?;
        p.pos = end;
        parsed = Some(videos);
    }
    p.end().map_err(err)?;
    let Some(parsed) = parsed else {
        let hint = if has_database {
            " It has \"database\": this looks like a ground-truth file; the ground truth comes first (GT PRED)."
        } else {
            ""
        };
        return Err(Error::Content {
            file: file.into(),
            message: format!(
                "no \"results\" key at the top level, so this is not a submission file \
                 ({{\"results\": {{VIDEO: [{{\"segment\": [s, e], \"score\": x}}, ...]}}}}).{hint}"
            ),
        });
    };
    // Labels: number them over the whole file, in order of appearance.
    let mut labels: Vec<String> = Vec::new();
    let mut label_ids: HashMap<Cow<'a, str>, usize> = HashMap::default();
    let mut videos: Vec<RawResults<'a>> = Vec::new();
    for (piece, piece_labels) in parsed {
        let map: Vec<usize> = piece_labels
            .names
            .into_iter()
            .map(|name| {
                *label_ids.entry(name).or_insert_with_key(|name| {
                    labels.push(name.to_string());
                    labels.len() - 1
                })
            })
            .collect();
        for mut v in piece {
            if !map.is_empty() {
                for d in &mut v.entries {
                    d.label = map[d.label];
                }
            }
            videos.push(v);
        }
    }
    // A duplicate key keeps its first place and its last value.
    let mut index: HashMap<Cow<'a, str>, usize> =
        HashMap::with_capacity_and_hasher(videos.len(), Default::default());
    let mut out: Vec<RawResults<'a>> = Vec::with_capacity(videos.len());
    for r in videos {
        match index.get(&r.id) {
            Some(&i) => {
                let (line, _) = line_column(bytes, r.key_at);
                warnings.push(format!(
                    "{file}:{line}: video \"{}\" appears twice in \"results\"; the last one \
                     is used, as Python's json does",
                    r.id
                ));
                out[i] = r;
            }
            None => {
                index.insert(r.id.clone(), out.len());
                out.push(r);
            }
        }
    }
    let reversed: usize = out.iter().map(|r| r.reversed).sum();
    let first_reversed = out.iter().find_map(|r| {
        r.first_reversed
            .map(|i| format!("results[\"{}\"][{i}]", r.id))
    });
    if reversed > 0 {
        warnings.push(format!(
            "{file}: {reversed} predicted segment(s) are reversed (start > end), first at {}; \
             they are evaluated as written (tIoU as the official code computes it)",
            first_reversed.unwrap_or_default()
        ));
    }
    Ok((out, labels, warnings))
}

fn video_results<'a>(
    bytes: &'a [u8],
    id: Cow<'a, str>,
    key_at: usize,
    start: usize,
    want_labels: bool,
    piece_labels: &mut PieceLabels<'a>,
) -> JResult<(RawResults<'a>, usize)> {
    let mut p = Parser::new(bytes, start);
    p.begin_array("an array of results")?;
    let mut first = true;
    let mut entries = Vec::new();
    let mut reversed = 0;
    let mut first_reversed = None;
    let mut n = 0usize;
    while p.next_element(&mut first)? {
        let path = || format!("results[\"{id}\"][{n}]");
        let obj_at = p.pos;
        p.begin_object("an object {\"segment\": [s, e], \"score\": x}")
            .map_err(within(path))?;
        let mut firstk = true;
        let mut seg = None;
        let mut score = None;
        let mut label = None;
        while let Some(k) = p.next_key_among(&mut firstk, &["segment", "score", "label"])? {
            match k.as_ref() {
                "segment" => seg = Some(segment(&mut p, &path)?),
                "score" => {
                    let at = p.pos;
                    let s = p
                        .number("a number")
                        .map_err(within(|| format!("{}.score", path())))?;
                    if !s.is_finite() {
                        return Err(p.error_at(at, format!("{}.score is not finite", path())));
                    }
                    score = Some(s);
                }
                "label" if want_labels => {
                    let name = p.string().map_err(within(|| format!("{}.label", path())))?;
                    let i = match piece_labels.ids.get(&name) {
                        Some(&i) => i,
                        None => {
                            let i = piece_labels.names.len() as u32;
                            piece_labels.names.push(name.clone());
                            piece_labels.ids.insert(name, i);
                            i
                        }
                    };
                    label = Some(i as usize);
                }
                _ => p.skip_value()?,
            }
        }
        let missing = |field: &str, hint: &str| JsonError {
            offset: obj_at,
            message: format!("{} has no \"{field}\"{hint}", path()),
        };
        let segment = seg.ok_or_else(|| missing("segment", ""))?;
        let score = score.ok_or_else(|| missing("score", ""))?;
        let label = if want_labels {
            label.ok_or_else(|| {
                missing(
                    "label",
                    " (every detection needs one; for class-agnostic proposals use `tcanet-eval proposals`)",
                )
            })?
        } else {
            0
        };
        if segment[0] > segment[1] {
            reversed += 1;
            first_reversed.get_or_insert(n);
        }
        entries.push(Detection {
            segment,
            score,
            label,
        });
        n += 1;
    }
    Ok((
        RawResults {
            id,
            key_at,
            entries,
            reversed,
            first_reversed,
        },
        p.pos,
    ))
}

/// Parses a proposal submission.
pub(crate) fn proposals(bytes: &[u8], file: &str) -> Result<ProposalSet, Error> {
    let (raw, _, warnings) = results(bytes, file, false)?;
    let videos = raw
        .into_par_iter()
        .map(|r| VideoResults {
            video: r.id.into_owned(),
            entries: r
                .entries
                .iter()
                .map(|d| Proposal {
                    segment: d.segment,
                    score: d.score,
                })
                .collect(),
        })
        .collect();
    Ok(ProposalSet {
        source: file.to_string(),
        videos,
        warnings,
    })
}

/// Parses a detection submission.
pub(crate) fn detections(bytes: &[u8], file: &str) -> Result<DetectionSet, Error> {
    let (raw, labels, warnings) = results(bytes, file, true)?;
    let mut set = DetectionSet {
        source: file.to_string(),
        warnings,
        ..Default::default()
    };
    for l in &labels {
        set.label_id(l);
    }
    set.videos = raw
        .into_iter()
        .map(|r| VideoResults {
            video: r.id.into_owned(),
            entries: r.entries,
        })
        .collect();
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A submission of `videos` videos with `per_video` proposals each;
    /// `extra` adds array-valued fields and tricky ids that look like video
    /// boundaries to the splitter.
    fn submission(
        videos: usize,
        per_video: usize,
        extra: bool,
    ) -> (String, Vec<(String, Vec<f64>)>) {
        let mut text = String::from("{\"version\": \"x\", \"results\": {");
        let mut want = Vec::new();
        for v in 0..videos {
            let id = if extra && v % 7 == 3 {
                format!("v{v}], \\\"k\\\": [")
            } else {
                format!("v{v}")
            };
            if v > 0 {
                text.push_str(",\n ");
            }
            text.push_str(&format!("\"{id}\": ["));
            let mut scores = Vec::new();
            for k in 0..per_video {
                if k > 0 {
                    text.push_str(", ");
                }
                let score = (v * 1000 + k) as f64 / 7.0;
                scores.push(score);
                if extra {
                    text.push_str(&format!(
                        "{{\"segment\": [{k}, {}], \"extra\": [1, [2]], \"score\": {score:?}}}",
                        k + 1
                    ));
                } else {
                    text.push_str(&format!(
                        "{{\"segment\": [{k}, {}], \"score\": {score:?}}}",
                        k + 1
                    ));
                }
            }
            text.push(']');
            want.push((id.replace("\\\"", "\""), scores));
        }
        text.push_str("}, \"external_data\": {}}");
        (text, want)
    }

    fn check(extra: bool) {
        let (text, want) = submission(2000, 12, extra);
        assert!(text.len() > 1 << 20, "big enough to be cut into pieces");
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap();
        let set = pool
            .install(|| proposals(text.as_bytes(), "t.json"))
            .unwrap();
        assert_eq!(set.videos.len(), want.len());
        for (got, (id, scores)) in set.videos.iter().zip(&want) {
            assert_eq!(&got.video, id);
            let s: Vec<f64> = got.entries.iter().map(|p| p.score).collect();
            assert_eq!(&s, scores);
        }
    }

    #[test]
    fn pieces_parsed_in_parallel_equal_one_pass() {
        check(false);
    }

    #[test]
    fn wrong_boundary_guesses_fall_back_to_one_pass() {
        check(true);
    }

    #[test]
    fn errors_in_later_pieces_are_reported_with_their_position() {
        let (mut text, _) = submission(2000, 12, false);
        let at = text.rfind("\"score\": ").unwrap() + 9;
        text.replace_range(at..at + 1, "x");
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap();
        let err = pool
            .install(|| proposals(text.as_bytes(), "t.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("results[\"v1999\"][11].score"), "{err}");
        let line = text[..at].matches('\n').count() + 1;
        assert!(err.starts_with(&format!("t.json:{line}:")), "{err}");
    }

    #[test]
    fn ground_truth_duplicates_and_reversed_segments_warn() {
        let gt = ground_truth(
            br#"{"database": {
                "a": {"subset": "validation", "annotations": [{"segment": [5, 1], "label": "x"}]},
                "b": {"annotations": [{"segment": [0, 1], "label": "y"}], "subset": "validation"},
                "a": {"subset": "validation", "annotations": [{"segment": [0, 2], "label": "z"}]}}}"#,
            "gt.json",
            "validation",
        )
        .unwrap();
        let ids: Vec<&str> = gt.videos.iter().map(|v| v.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(gt.labels, ["z", "y"]);
        assert!(gt
            .warnings
            .iter()
            .any(|w| w.contains("gt.json:4: video \"a\" appears twice")));
        // The reversed segment was in the replaced value.
        assert!(!gt.warnings.iter().any(|w| w.contains("reversed")));
        let err = ground_truth(
            br#"{"database": {"a": {"subset": "validation", "annotations": [{"segment": [0, 1]}]}}}"#,
            "gt.json",
            "validation",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("database[\"a\"].annotations[0] has no \"label\""),
            "{err}"
        );
    }
}
