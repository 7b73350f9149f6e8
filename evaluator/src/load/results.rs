//! Submission files: `{"results": {VIDEO: [{"segment": [s, e], "score": x,
//! "label": NAME}, ...]}}` (no label for proposals), parsed on all cores.

use std::borrow::Cow;
use std::collections::hash_map::Entry as MapEntry;

use rayon::prelude::*;

use super::{repeated_top_level_key, segment, syntax, within};
use crate::json::FastMap as HashMap;
use crate::json::{line_column, FxHasher, JResult, JsonError, Parser};
use crate::{Detection, DetectionSet, Error, Proposal, ProposalSet, VideoResults};

/// What a submission's entries are read into: proposals (labels skipped)
/// or detections (labels numbered).
trait Entry: Send + Sized {
    /// Whether the entries carry a label.
    const LABELLED: bool;
    /// An entry; `label` is a local label number (0 for proposals).
    fn new(segment: [f64; 2], score: f64, label: usize) -> Self;
    /// Renumbers the label through `map` (local → file-wide).
    fn relabel(&mut self, map: &[usize]);
    /// The segment.
    fn segment(&self) -> [f64; 2];
}

impl Entry for Proposal {
    const LABELLED: bool = false;
    #[inline]
    fn new(segment: [f64; 2], score: f64, _: usize) -> Self {
        Proposal { segment, score }
    }
    fn relabel(&mut self, _: &[usize]) {}
    #[inline]
    fn segment(&self) -> [f64; 2] {
        self.segment
    }
}

impl Entry for Detection {
    const LABELLED: bool = true;
    #[inline]
    fn new(segment: [f64; 2], score: f64, label: usize) -> Self {
        Detection {
            segment,
            score,
            label,
        }
    }
    fn relabel(&mut self, map: &[usize]) {
        self.label = map[self.label];
    }
    #[inline]
    fn segment(&self) -> [f64; 2] {
        self.segment
    }
}

/// One parsed video of a submission, labels numbered locally.
struct RawResults<T> {
    /// The video id, owned while its bytes are in cache.
    id: String,
    /// [`id_hash`] of `id`.
    hash: u64,
    key_at: usize,
    entries: Vec<T>,
    reversed: usize,
    first_reversed: Option<usize>,
}

/// Labels of one piece of `results`, numbered in order of appearance.
#[derive(Default)]
struct PieceLabels<'a> {
    names: Vec<Cow<'a, str>>,
    ids: HashMap<Cow<'a, str>, u32>,
}

impl<'a> PieceLabels<'a> {
    fn id(&mut self, name: Cow<'a, str>) -> usize {
        if let Some(&i) = self.ids.get(&name) {
            return i as usize;
        }
        let i = self.names.len() as u32;
        self.names.push(name.clone());
        self.ids.insert(name, i);
        i as usize
    }
}

/// The videos of one piece of `results` and their labels.
type Piece<'a, T> = (Vec<RawResults<T>>, PieceLabels<'a>);

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
fn results_chunk<'a, T: Entry>(
    bytes: &'a [u8],
    start: usize,
    at_open: bool,
    stop: Option<usize>,
) -> JResult<(Piece<'a, T>, ChunkEnd)> {
    let mut p = Parser::new(bytes, start);
    let mut out = Vec::new();
    let mut labels = PieceLabels::default();
    // Videos tend to have similar numbers of entries: the last one's count
    // sizes the next one's vector (fewer reallocations).
    let mut hint = 16;
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
        let (r, end) = video_results(bytes, id, key_at, p.pos, hint, &mut labels)?;
        p.pos = end;
        hint = r.entries.len().clamp(4, 4096);
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
fn results_body<'a, T: Entry>(
    bytes: &'a [u8],
    start: usize,
) -> JResult<(Vec<Piece<'a, T>>, usize)> {
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
            if starts.last().is_some_and(|&last| c > last) {
                starts.push(c);
            }
        }
    }
    let parts: Vec<_> = (0..starts.len())
        .into_par_iter()
        .map(|i| results_chunk::<T>(bytes, starts[i], i == 0, starts.get(i + 1).copied()))
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
    match results_chunk::<T>(bytes, start, true, None)? {
        (piece, ChunkEnd::Closed(at)) => Ok((vec![piece], at)),
        (_, ChunkEnd::Landed | ChunkEnd::Overshot) => {
            unreachable!("a piece without a stop ends at the closing brace or fails")
        }
    }
}

/// A submission's videos, its label names and the warnings.
type ReadResults<'a, T> = (Vec<RawResults<T>>, Vec<String>, Vec<String>);

/// Reads the top-level object: the pieces of `results`, failing with a
/// hint when there is none. A repeated `results` keeps the last one (with
/// a warning), as Python's `json` does.
fn top_level<'a, T: Entry>(
    bytes: &'a [u8],
    file: &str,
    warnings: &mut Vec<String>,
) -> Result<Vec<Piece<'a, T>>, Error> {
    let err = |e: JsonError| syntax(bytes, file, e);
    let mut p = Parser::new(bytes, 0);
    p.begin_object("a JSON object at the top level")
        .map_err(err)?;
    let mut first = true;
    let mut parsed = None;
    let mut has_database = false;
    while let Some(key) = p.next_key(&mut first).map_err(err)? {
        if key != "results" {
            has_database |= key == "database";
            p.skip_value().map_err(err)?;
            continue;
        }
        if parsed.is_some() {
            warnings.push(repeated_top_level_key(bytes, file, "results", p.key_at));
        }
        p.begin_object("an object {VIDEO: [...]} as the value of \"results\"")
            .map_err(err)?;
        let (videos, end) = results_body::<T>(bytes, p.pos).map_err(err)?;
        p.pos = end;
        parsed = Some(videos);
    }
    p.end().map_err(err)?;
    if let Some(parsed) = parsed {
        return Ok(parsed);
    }
    let hint = if has_database {
        " It has \"database\": this looks like a ground-truth file; the ground truth comes first (GT PRED)."
    } else {
        ""
    };
    Err(Error::Content {
        file: file.into(),
        message: format!(
            "no \"results\" key at the top level, so this is not a submission file \
             ({{\"results\": {{VIDEO: [{{\"segment\": [s, e], \"score\": x}}, ...]}}}}).{hint}"
        ),
    })
}

/// Joins the pieces: labels numbered over the whole file in order of
/// appearance; returns the videos in file order and the label names.
fn join_pieces<'a, T: Entry>(parsed: Vec<Piece<'a, T>>) -> (Vec<RawResults<T>>, Vec<String>) {
    let mut labels: Vec<String> = Vec::new();
    let mut label_ids: HashMap<Cow<'a, str>, usize> = HashMap::default();
    let mut videos: Vec<RawResults<T>> = Vec::with_capacity(parsed.iter().map(|p| p.0.len()).sum());
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
            if T::LABELLED {
                v.entries.iter_mut().for_each(|d| d.relabel(&map));
            }
            videos.push(v);
        }
    }
    (videos, labels)
}

/// The hash of a video id that [`resolve_duplicates`] compares first,
/// computed where the id is parsed (on all cores).
fn id_hash(id: &str) -> u64 {
    use std::hash::BuildHasher;
    std::hash::BuildHasherDefault::<FxHasher>::default().hash_one(id)
}

/// Resolves repeated video keys: the first place and the last value are
/// kept (with a warning), as Python's `json` does. Videos are told apart
/// by their ids' hashes (from the parse), their ids compared only when
/// the hashes are equal.
fn resolve_duplicates<T>(
    videos: Vec<RawResults<T>>,
    bytes: &[u8],
    file: &str,
    warnings: &mut Vec<String>,
) -> Vec<RawResults<T>> {
    // Per hash, the place in `out` of the first id with it; the places of
    // other ids with a hash already taken (a collision: rare) in `others`.
    let mut index: HashMap<u64, usize> =
        HashMap::with_capacity_and_hasher(videos.len(), Default::default());
    let mut others: Vec<usize> = Vec::new();
    let mut out: Vec<RawResults<T>> = Vec::with_capacity(videos.len());
    for r in videos {
        let same = |&i: &usize| out[i].hash == r.hash && out[i].id == r.id;
        let found = match index.get(&r.hash) {
            None => None,
            Some(i) if same(i) => Some(*i),
            Some(_) => others.iter().copied().find(same),
        };
        match found {
            Some(i) => {
                let (line, _) = line_column(bytes, r.key_at);
                warnings.push(format!(
                    "{file}:{line}: video \"{}\" appears twice in \"results\"; the last one \
                     is used, as Python's json does",
                    r.id
                ));
                out[i] = r;
            }
            None => {
                match index.entry(r.hash) {
                    MapEntry::Vacant(e) => {
                        e.insert(out.len());
                    }
                    MapEntry::Occupied(_) => others.push(out.len()),
                }
                out.push(r);
            }
        }
    }
    out
}

/// Reads a submission's `results` into videos (duplicates resolved).
fn results<'a, T: Entry>(bytes: &'a [u8], file: &str) -> Result<ReadResults<'a, T>, Error> {
    let mut warnings = Vec::new();
    let (videos, labels) = join_pieces(top_level::<T>(bytes, file, &mut warnings)?);
    let out = resolve_duplicates(videos, bytes, file, &mut warnings);
    let reversed: usize = out.iter().map(|r| r.reversed).sum();
    if reversed > 0 {
        let first = out
            .iter()
            .find_map(|r| {
                r.first_reversed
                    .map(|i| format!("results[\"{}\"][{i}]", r.id))
            })
            .unwrap_or_default();
        warnings.push(format!(
            "{file}: {reversed} predicted segment(s) are reversed (start > end), first at {first}; \
             they are evaluated as written (tIoU as the official code computes it)"
        ));
    }
    Ok((out, labels, warnings))
}

/// Reads an entry written in the usual layout, `{"segment": [s, e],
/// "score": x}` or `{"segment": [s, e], "score": x, "label": "NAME"}`
/// with Python's default separators, without matching keys; `None` (the
/// parser where it was) for anything else, which the general reader then
/// reads or reports (so both accept and refuse the same entries).
#[inline(always)]
fn usual_entry<'a, T: Entry>(p: &mut Parser<'a>, labels: &mut PieceLabels<'a>) -> Option<T> {
    const HEAD: &[u8] = b"{\"segment\": [";
    const MID: &[u8] = b"], \"score\": ";
    const LABEL: &[u8] = b", \"label\": ";
    let b = p.bytes;
    if !b.get(p.pos..)?.starts_with(HEAD) {
        return None;
    }
    let mut q = Parser::new(b, p.pos + HEAD.len());
    let s = q.number("").ok()?;
    if b.get(q.pos..q.pos + 2)? != b", " {
        return None;
    }
    q.pos += 2;
    let e = q.number("").ok()?;
    if !b.get(q.pos..)?.starts_with(MID) {
        return None;
    }
    q.pos += MID.len();
    let score = q.number("").ok()?;
    if !(s.is_finite() && e.is_finite() && score.is_finite()) {
        return None;
    }
    let mut label = None;
    let has_label = b.get(q.pos..)?.starts_with(LABEL);
    if T::LABELLED && !has_label {
        return None;
    }
    if has_label {
        // Read (and checked) for proposals too, which ignore it.
        q.pos += LABEL.len();
        let name = q.string().ok()?;
        if T::LABELLED {
            label = Some(name);
        }
    }
    if b.get(q.pos) != Some(&b'}') {
        return None;
    }
    p.pos = q.pos + 1;
    let label = label.map_or(0, |name| labels.id(name));
    Some(T::new([s, e], score, label))
}

/// Reads one entry `{"segment": [s, e], "score": x, "label": NAME}` at the
/// parser's position; `path` names it in messages.
#[inline]
fn entry<'a, T: Entry>(
    p: &mut Parser<'a>,
    path: &dyn Fn() -> String,
    labels: &mut PieceLabels<'a>,
) -> JResult<T> {
    if let Some(e) = usual_entry(p, labels) {
        return Ok(e);
    }
    let obj_at = p.pos;
    p.begin_object("an object {\"segment\": [s, e], \"score\": x}")
        .map_err(within(path))?;
    let mut firstk = true;
    let (mut seg, mut score, mut label) = (None, None, None);
    while let Some(k) = p.next_key_among(&mut firstk, &["segment", "score", "label"])? {
        match k.as_ref() {
            "segment" => seg = Some(segment(p, path)?),
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
            "label" if T::LABELLED => {
                let name = p.string().map_err(within(|| format!("{}.label", path())))?;
                label = Some(labels.id(name));
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
    let label = match label {
        Some(l) => l,
        None if !T::LABELLED => 0,
        None => {
            return Err(missing(
                "label",
                " (every detection needs one; for class-agnostic proposals use `tcanet-eval proposals`)",
            ))
        }
    };
    Ok(T::new(segment, score, label))
}

/// Reads one video's array of entries, from `start` (its `[`); returns the
/// video and the offset after the array.
fn video_results<'a, T: Entry>(
    bytes: &'a [u8],
    id: Cow<'a, str>,
    key_at: usize,
    start: usize,
    capacity: usize,
    labels: &mut PieceLabels<'a>,
) -> JResult<(RawResults<T>, usize)> {
    let mut p = Parser::new(bytes, start);
    p.begin_array("an array of results")?;
    let mut first = true;
    let mut entries: Vec<T> = Vec::with_capacity(capacity);
    let mut reversed = 0;
    let mut first_reversed = None;
    let mut n = 0usize;
    let mut record = |e: T, n: usize| {
        let [s, end] = e.segment();
        if s > end {
            reversed += 1;
            first_reversed.get_or_insert(n);
        }
        entries.push(e);
    };
    // Entries in the usual layout, separated by ", ", read straight on;
    // from the first that is not, the general loop takes over.
    let mut resume = p.pos;
    while let Some(e) = usual_entry::<T>(&mut p, labels) {
        record(e, n);
        (n, first, resume) = (n + 1, false, p.pos);
        if bytes.get(p.pos..p.pos + 3) != Some(b", {") {
            break;
        }
        p.pos += 2;
    }
    p.pos = resume;
    while p.next_element(&mut first)? {
        let path = || format!("results[\"{id}\"][{n}]");
        let e: T = entry(&mut p, &path, labels)?;
        record(e, n);
        n += 1;
    }
    Ok((
        RawResults {
            hash: id_hash(&id),
            id: id.into_owned(),
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
    let (raw, _, warnings) = results::<Proposal>(bytes, file)?;
    Ok(ProposalSet {
        source: file.to_string(),
        videos: raw
            .into_iter()
            .map(|r| VideoResults {
                video: r.id,
                entries: r.entries,
            })
            .collect(),
        warnings,
    })
}

/// Parses a detection submission.
pub(crate) fn detections(bytes: &[u8], file: &str) -> Result<DetectionSet, Error> {
    let (raw, labels, warnings) = results::<Detection>(bytes, file)?;
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
            video: r.id,
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
    fn duplicates_are_found_among_colliding_hashes() {
        // Every id given the same hash: ids are told apart by comparison.
        let raw = |id: &str, score: f64, key_at: usize| RawResults {
            id: id.to_string(),
            hash: 7,
            key_at,
            entries: vec![Proposal {
                segment: [0.0, 1.0],
                score,
            }],
            reversed: 0,
            first_reversed: None,
        };
        let videos = vec![
            raw("a", 1.0, 0),
            raw("b", 2.0, 2),
            raw("a", 3.0, 4),
            raw("c", 4.0, 6),
            raw("b", 5.0, 8),
        ];
        let text = b"a\nb\na\nc\nb\n";
        let mut warnings = Vec::new();
        let out = resolve_duplicates(videos, text, "t.json", &mut warnings);
        let got: Vec<(&str, f64)> = out
            .iter()
            .map(|r| (r.id.as_str(), r.entries[0].score))
            .collect();
        assert_eq!(got, [("a", 3.0), ("b", 5.0), ("c", 4.0)]);
        assert_eq!(warnings.len(), 2);
        assert!(
            warnings[0].starts_with("t.json:3: video \"a\" appears twice"),
            "{warnings:?}"
        );
        assert!(
            warnings[1].starts_with("t.json:5: video \"b\" appears twice"),
            "{warnings:?}"
        );
        assert_eq!(id_hash("a"), id_hash("a"));
        assert_ne!(id_hash("a"), id_hash("b"));
    }

    /// A ground truth of two videos and a submission for them, `shift`
    /// moving both (the decoy keys differ from the last ones).
    fn gt_and_submission(shift: f64) -> (String, String) {
        let gt = format!(
            r#"{{"a": {{"subset": "validation", "annotations": [{{"segment": [{}, 9], "label": "x"}}]}},
                "b": {{"subset": "validation", "annotations": [{{"segment": [2, 6], "label": "y"}},
                      {{"segment": [{}, 20], "label": "x"}}]}}}}"#,
            1.0 + shift,
            10.0 + shift
        );
        let results = format!(
            r#"{{"a": [{{"segment": [{}, 8], "score": 0.9, "label": "x"}}, {{"segment": [3, 9], "score": 0.4, "label": "y"}}],
                "b": [{{"segment": [2, 7], "score": 0.8, "label": "y"}}, {{"segment": [12, 20], "score": 0.7, "label": "x"}}]}}"#,
            1.0 + shift
        );
        (gt, results)
    }

    #[test]
    fn a_repeated_top_level_key_keeps_the_last_with_a_warning() {
        use crate::{evaluate_detections, evaluate_proposals, GroundTruth};
        let (gt, results) = gt_and_submission(0.0);
        let (decoy_gt, decoy_results) = gt_and_submission(2.5);
        let gt_twice =
            format!("{{\"database\": {decoy_gt},\n\"version\": \"1.3\",\n\"database\": {gt}}}");
        let results_twice = format!("{{\"results\": {decoy_results},\n\"results\": {results}}}");
        let gt_once = format!("{{\"version\": \"1.3\", \"database\": {gt}}}");
        let results_once = format!("{{\"results\": {results}}}");
        let read_gt =
            |text: &str| GroundTruth::from_slice(text.as_bytes(), "gt.json", "validation").unwrap();
        let (g2, g1) = (read_gt(&gt_twice), read_gt(&gt_once));
        let line =
            |text: &str, key: &str| text[..text.rfind(key).unwrap()].matches('\n').count() + 1;
        let warned = |warnings: &[String], file: &str, key: &str, line: usize| {
            let want = format!("{file}:{line}: \"{key}\" appears twice at the top level");
            assert!(
                warnings.iter().any(|w| w.starts_with(&want)),
                "{warnings:?}"
            );
        };
        warned(
            &g2.warnings,
            "gt.json",
            "database",
            line(&gt_twice, "\"database\""),
        );
        assert!(g1.warnings.is_empty(), "{:?}", g1.warnings);

        let p2 = proposals(results_twice.as_bytes(), "p.json").unwrap();
        let p1 = proposals(results_once.as_bytes(), "p.json").unwrap();
        warned(
            &p2.warnings,
            "p.json",
            "results",
            line(&results_twice, "\"results\""),
        );
        let opts = Default::default();
        let (r2, r1) = (
            evaluate_proposals(&g2, &p2, &opts).unwrap(),
            evaluate_proposals(&g1, &p1, &opts).unwrap(),
        );
        assert_eq!((r2.auc, &r2.average_recall), (r1.auc, &r1.average_recall));

        let d2 = detections(results_twice.as_bytes(), "d.json").unwrap();
        let d1 = detections(results_once.as_bytes(), "d.json").unwrap();
        let opts = Default::default();
        let (m2, m1) = (
            evaluate_detections(&g2, &d2, &opts).unwrap(),
            evaluate_detections(&g1, &d1, &opts).unwrap(),
        );
        assert_eq!((m2.average_map, &m2.map), (m1.average_map, &m1.map));
        // The decoys score differently: the test tells the keys apart.
        let decoy = evaluate_proposals(
            &g1,
            &proposals(
                format!("{{\"results\": {decoy_results}}}").as_bytes(),
                "p.json",
            )
            .unwrap(),
            &Default::default(),
        )
        .unwrap();
        assert_ne!(decoy.auc, r1.auc);
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
}
