//! Joining the partial files of a sharded run, trusting none of them: they
//! must come from one run (same identity, same N, each shard once), their
//! assigned videos must make up that run's video list, and every video must
//! be in its own shard's results once.
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::{
    check_generation, videos_digest, Leaderboard, LeaderboardEntry, LeaderboardError, RunStamp,
    Shard, ShardInfo,
};

/// What [`merge_partials`] produced.
#[derive(Debug, Clone)]
pub struct Merged {
    /// The merged file: videos in the run's order, the run's identity
    /// (`generation` and `outputs` are set by whoever writes it).
    pub board: Leaderboard,
    /// Assigned videos without results (left out; only with `allow_missing`),
    /// each with the partial it belonged to.
    pub missing: Vec<(String, PathBuf)>,
    /// Videos in a partial's results that were not assigned to it (dropped;
    /// only with `allow_missing`), each with that partial.
    pub extra: Vec<(String, PathBuf)>,
}

/// One partial file, checked to be one.
struct Part {
    path: PathBuf,
    results: Vec<(String, Vec<LeaderboardEntry>)>,
    details: String,
    run: RunStamp,
    shard: ShardInfo,
}

/// Reads the partial files, checks each against the other files of its own
/// write ([`check_generation`]), and merges them ([`merge_boards`]).
pub fn merge_partials(paths: &[PathBuf], allow_missing: bool) -> Result<Merged, LeaderboardError> {
    let mut parts = Vec::with_capacity(paths.len());
    for p in paths {
        let board = Leaderboard::read(p)?;
        check_generation(p, &board)?;
        parts.push((p.clone(), board));
    }
    merge_boards(parts, allow_missing)
}

/// Joins partials already read (`(name for messages, file)`) into one
/// leaderboard.
///
/// Refuses partials of different runs (naming the first field that differs),
/// of different shard counts, a shard given twice or missing, assigned
/// video lists that do not make up the run's video list (count and digest),
/// and a video twice in one partial. An assigned video without results, or
/// a result for a video not assigned to that partial, is an error unless
/// `allow_missing`, which leaves them out and lists them in [`Merged`].
/// The merged results follow the run's order.
pub fn merge_boards(
    parts: Vec<(PathBuf, Leaderboard)>,
    allow_missing: bool,
) -> Result<Merged, LeaderboardError> {
    if parts.is_empty() {
        return Err(merge_err("no partial files given".into()));
    }
    let parts = parts
        .into_iter()
        .map(|(path, board)| as_part(path, board))
        .collect::<Result<Vec<_>, _>>()?;
    check_same_run(&parts)?;
    let by_index = shards_in_order(&parts)?;
    let videos = whole_video_list(&parts, &by_index)?;
    let (results, missing, extra) = collect_results(&parts, &by_index, &videos)?;
    if !allow_missing {
        refuse_missing_and_extra(&missing, &extra)?;
    }
    let first = &parts[0];
    Ok(Merged {
        board: Leaderboard {
            results,
            details: first.details.clone(),
            run: Some(RunStamp {
                identity: first.run.identity.clone(),
                generation: String::new(),
                outputs: Vec::new(),
            }),
            shard: None,
        },
        missing: missing.into_iter().map(|(v, p, _)| (v, p)).collect(),
        extra,
    })
}

fn merge_err(message: String) -> LeaderboardError {
    LeaderboardError::Merge(message)
}

/// A partial must carry `tcanet_shard` and `tcanet_run`.
fn as_part(path: PathBuf, board: Leaderboard) -> Result<Part, LeaderboardError> {
    let format = |message: &str| LeaderboardError::Format {
        path: path.clone(),
        message: message.into(),
    };
    let shard = board.shard.ok_or_else(|| {
        format("not a shard partial (no \"tcanet_shard\"); write partials with tcanet-infer run --shard K/N")
    })?;
    super::check_shard(&shard).map_err(|m| format(&m))?;
    let run = board.run.ok_or_else(|| {
        format("the partial has no \"tcanet_run\" (the run's identity): it was written by an older tcanet-infer; run that shard again")
    })?;
    Ok(Part {
        path,
        results: board.results,
        details: board.details,
        run,
        shard,
    })
}

/// Every partial has the first one's identity and shard count.
fn check_same_run(parts: &[Part]) -> Result<(), LeaderboardError> {
    let first = &parts[0];
    let count = first.shard.count;
    for p in &parts[1..] {
        if let Some((field, in_first, in_p)) = first.run.identity.first_difference(&p.run.identity)
        {
            return Err(merge_err(format!(
                "{p_path} and {first_path} come from different runs: tcanet_run.{field} is {in_p} in {p_path} but {in_first} in {first_path}; merge the partials of one run (rerun the odd shard with the same model, data and settings)",
                p_path = p.path.display(),
                first_path = first.path.display(),
            )));
        }
        if p.shard.count != count {
            return Err(merge_err(format!(
                "{} is shard {}/{} but {} is of {count} shards",
                p.path.display(),
                p.shard.index,
                p.shard.count,
                first.path.display()
            )));
        }
    }
    Ok(())
}

/// Positions of the partials of shards 0..N; each shard exactly once.
fn shards_in_order(parts: &[Part]) -> Result<Vec<usize>, LeaderboardError> {
    let count = parts[0].shard.count;
    let mut by_index: HashMap<usize, usize> = HashMap::with_capacity(parts.len());
    for (i, p) in parts.iter().enumerate() {
        if let Some(&j) = by_index.get(&p.shard.index) {
            return Err(merge_err(format!(
                "shard {}/{count} given twice: {} and {}",
                p.shard.index,
                parts[j].path.display(),
                p.path.display()
            )));
        }
        by_index.insert(p.shard.index, i);
    }
    if parts.len() < count {
        // At most parts.len() are present, so the first 5 missing are found
        // within parts.len() + 5 steps, however large N is.
        let missing: Vec<String> = (0..count)
            .filter(|k| !by_index.contains_key(k))
            .take(5)
            .map(|k| format!("{k}/{count}"))
            .collect();
        let more = count - parts.len() - missing.len();
        return Err(merge_err(format!(
            "missing shard partial(s): {}{}",
            missing.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        )));
    }
    Ok((0..count).map(|k| by_index[&k]).collect())
}

/// The run's whole video list, rebuilt from the shards' assigned lists
/// (round-robin), checked against the identity's count and digest.
fn whole_video_list(parts: &[Part], by_index: &[usize]) -> Result<Vec<String>, LeaderboardError> {
    let count = by_index.len();
    let total: usize = parts.iter().map(|p| p.shard.assigned.len()).sum();
    for (k, &i) in by_index.iter().enumerate() {
        let want = Shard { index: k, count }.len_of(total);
        let got = parts[i].shard.assigned.len();
        if got != want {
            return Err(merge_err(format!(
                "{}: shard {k}/{count} lists {got} assigned videos, but a round-robin split of the run's {total} videos gives it {want}",
                parts[i].path.display()
            )));
        }
    }
    let videos: Vec<String> = (0..total)
        .map(|row| parts[by_index[row % count]].shard.assigned[row / count].clone())
        .collect();
    let identity = &parts[0].run.identity;
    if total != identity.videos || videos_digest(&videos) != identity.videos_sha256 {
        return Err(merge_err(format!(
            "the partials' assigned videos ({total}) do not make up the run's video list ({} videos, sha256 {}): a partial was edited or comes from another dataset",
            identity.videos, identity.videos_sha256
        )));
    }
    let mut seen = HashSet::with_capacity(videos.len());
    if let Some(v) = videos.iter().find(|v| !seen.insert(v.as_str())) {
        return Err(merge_err(format!("video '{v}' is assigned to two shards")));
    }
    Ok(videos)
}

/// A missing video: id, its partial, whether that shard reported it failed.
type Missing = (String, PathBuf, bool);
/// Merged results, missing videos, extra videos.
type Collected = (
    Vec<(String, Vec<LeaderboardEntry>)>,
    Vec<Missing>,
    Vec<(String, PathBuf)>,
);

/// The results of every video in the run's order; assigned videos without
/// results and results of videos not assigned to their partial.
fn collect_results(
    parts: &[Part],
    by_index: &[usize],
    videos: &[String],
) -> Result<Collected, LeaderboardError> {
    let count = by_index.len();
    let mut maps: Vec<HashMap<&str, &Vec<LeaderboardEntry>>> = Vec::with_capacity(count);
    let mut extra = Vec::new();
    for &i in by_index {
        let p = &parts[i];
        let assigned: HashSet<&str> = p.shard.assigned.iter().map(String::as_str).collect();
        let mut map = HashMap::with_capacity(p.results.len());
        for (video, entries) in &p.results {
            if map.insert(video.as_str(), entries).is_some() {
                return Err(merge_err(format!(
                    "{}: video '{video}' appears twice",
                    p.path.display()
                )));
            }
            if !assigned.contains(video.as_str()) {
                extra.push((video.clone(), p.path.clone()));
            }
        }
        maps.push(map);
    }
    let mut results = Vec::with_capacity(videos.len());
    let mut missing = Vec::new();
    for (row, video) in videos.iter().enumerate() {
        let part = &parts[by_index[row % count]];
        match maps[row % count].get(video.as_str()) {
            Some(entries) => results.push((video.clone(), (*entries).clone())),
            None => missing.push((
                video.clone(),
                part.path.clone(),
                part.shard.failed.contains(video),
            )),
        }
    }
    Ok((results, missing, extra))
}

/// Without `--allow-missing`, any missing or extra video is an error that
/// lists them (the first ten).
fn refuse_missing_and_extra(
    missing: &[Missing],
    extra: &[(String, PathBuf)],
) -> Result<(), LeaderboardError> {
    if !missing.is_empty() {
        let items: Vec<String> = missing
            .iter()
            .map(|(v, p, failed)| {
                format!(
                    "video '{v}' ({}{})",
                    p.display(),
                    if *failed {
                        ", failed in that shard"
                    } else {
                        ""
                    }
                )
            })
            .collect();
        return Err(merge_err(format!(
            "{} missing from the results: {}; rerun those shards, or pass --allow-missing to merge without them",
            count_of(missing.len(), "video is", "videos are"),
            list(&items)
        )));
    }
    if !extra.is_empty() {
        let items: Vec<String> = extra
            .iter()
            .map(|(v, p)| format!("video '{v}' in {}", display(p)))
            .collect();
        return Err(merge_err(format!(
            "{} not assigned to the partial that holds it: {}; pass --allow-missing to drop them",
            count_of(extra.len(), "video is", "videos are"),
            list(&items)
        )));
    }
    Ok(())
}

fn display(p: &Path) -> String {
    p.display().to_string()
}

/// `1 video is` / `3 videos are`.
fn count_of(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The first ten items, then how many more.
pub(crate) fn list(items: &[String]) -> String {
    let shown = items
        .iter()
        .take(10)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > 10 {
        format!("{shown} and {} more", items.len() - 10)
    } else {
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{OutputKind, ResultSettings, RunIdentity};

    fn board(index: usize, count: usize, assigned: &[&str], results: &[&str]) -> Leaderboard {
        let all: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        Leaderboard {
            results: results
                .iter()
                .map(|v| {
                    let e = LeaderboardEntry {
                        segment: [0.0, 1.0],
                        score: 0.5,
                        label: None,
                    };
                    (v.to_string(), vec![e])
                })
                .collect(),
            details: String::new(),
            run: Some(RunStamp {
                identity: RunIdentity {
                    kind: OutputKind::Proposals,
                    command: "run".into(),
                    model_sha256: None,
                    subset: None,
                    videos: all.len(),
                    videos_sha256: videos_digest(&all),
                    inputs_sha256: String::new(),
                    classifier_sha256: None,
                    settings: ResultSettings {
                        soft_nms_alpha: 0.4,
                        soft_nms_t1: 0.0,
                        soft_nms_t2: 0.0,
                        top_k: 100,
                        max_proposals: None,
                        layout: None,
                        resample: None,
                        top_classes: None,
                        max_detections: None,
                    },
                },
                generation: String::new(),
                outputs: Vec::new(),
            }),
            shard: Some(ShardInfo {
                index,
                count,
                assigned: assigned.iter().map(|s| s.to_string()).collect(),
                failed: Vec::new(),
            }),
        }
    }

    fn merge(boards: Vec<Leaderboard>, allow: bool) -> Result<Merged, String> {
        let named = boards
            .into_iter()
            .enumerate()
            .map(|(i, b)| (PathBuf::from(format!("p{i}.json")), b))
            .collect();
        merge_boards(named, allow).map_err(|e| e.to_string())
    }

    #[test]
    fn two_shards_rebuild_the_run_in_its_order() {
        let m = merge(
            vec![
                board(1, 2, &["b"], &["b"]),
                board(0, 2, &["a", "c"], &["a", "c"]),
            ],
            false,
        )
        .unwrap();
        let videos: Vec<&str> = m.board.results.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(videos, ["a", "b", "c"]);
        assert!(m.board.shard.is_none() && m.board.run.is_some());
    }

    #[test]
    fn impossible_or_unfitting_shards_are_errors_not_panics() {
        assert!(merge(vec![], false).unwrap_err().contains("no partial"));
        let e = merge(
            vec![board(5, 2, &["a"], &["a"]), board(0, 2, &["b"], &["b"])],
            false,
        )
        .unwrap_err();
        assert!(e.contains("impossible"), "{e}");
        // Assigned lists of the wrong sizes for a round-robin split.
        let e = merge(
            vec![
                board(0, 2, &["a"], &["a"]),
                board(1, 2, &["b", "c"], &["b", "c"]),
            ],
            false,
        )
        .unwrap_err();
        assert!(e.contains("round-robin split"), "{e}");
        // The right sizes, the wrong order: the digest differs.
        let e = merge(
            vec![
                board(0, 2, &["c", "a"], &["c", "a"]),
                board(1, 2, &["b"], &["b"]),
            ],
            false,
        )
        .unwrap_err();
        assert!(e.contains("do not make up the run's video list"), "{e}");
    }

    #[test]
    fn missing_and_extra_videos_need_allow_missing() {
        let parts = || {
            vec![
                board(0, 2, &["a", "c"], &["a", "b"]),
                board(1, 2, &["b"], &[]),
            ]
        };
        let e = merge(parts(), false).unwrap_err();
        assert!(e.contains("video 'c'") && e.contains("video 'b'"), "{e}");
        let m = merge(parts(), true).unwrap();
        let missing: Vec<&str> = m.missing.iter().map(|(v, _)| v.as_str()).collect();
        assert_eq!(missing, ["b", "c"]);
        assert_eq!(m.extra, [("b".to_string(), PathBuf::from("p0.json"))]);
        let videos: Vec<&str> = m.board.results.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(videos, ["a"]);
    }
}
