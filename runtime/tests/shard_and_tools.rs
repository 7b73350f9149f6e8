//! Sharded runs and `merge`, the scheduler environment variables, `bench`,
//! the classifier formats, and the binary's dynamic dependencies.
mod common;

use std::path::{Path, PathBuf};

use common::*;
use tcanet_models::ModelConfig;
use tcanet_runtime::classifier::{detections_for_video, ClassScores, ClassifierFormat};
use tcanet_runtime::output::{merge_partials, Leaderboard, Shard};
use tcanet_runtime::postprocess::ScoredSegment;

#[test]
fn shard_slices_are_deterministic_disjoint_and_complete() {
    for total in [0usize, 1, 7, 100, 4701] {
        for count in [1usize, 2, 3, 8] {
            let mut seen = vec![0u8; total];
            for k in 0..count {
                let s = Shard::new(k, count).unwrap();
                let a: Vec<usize> = s.indices(total).collect();
                let b: Vec<usize> = s.indices(total).collect();
                assert_eq!(a, b);
                for i in a {
                    seen[i] += 1;
                }
            }
            assert!(seen.iter().all(|&c| c == 1), "total {total}, count {count}");
        }
    }
    assert_eq!(Shard::parse("2/5").unwrap(), Shard { index: 2, count: 5 });
    for bad in ["5/5", "1/0", "x/2", "3"] {
        assert!(Shard::parse(bad).is_err(), "{bad}");
    }
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    };
    let slurm = Shard::from_env(
        env(&[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]),
        None,
    );
    assert_eq!(slurm.unwrap().unwrap().0, Shard { index: 3, count: 4 });
    let slurm_min = Shard::from_env(
        env(&[
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_MIN", "2"),
        ]),
        None,
    );
    assert_eq!(slurm_min.unwrap().unwrap().0, Shard { index: 3, count: 4 });
    let k8s = Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "1")]), Some(3));
    assert_eq!(
        k8s.unwrap().unwrap(),
        (Shard { index: 1, count: 3 }, "JOB_COMPLETION_INDEX")
    );
    let err = Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "1")]), None).unwrap_err();
    assert!(err.to_string().contains("--shard-count"), "{err}");
    assert!(Shard::from_env(env(&[]), Some(3)).unwrap().is_none());
    assert_eq!(
        Shard { index: 1, count: 3 }.partial_path(Path::new("/x/refined.json")),
        PathBuf::from("/x/refined.shard-1-of-3.json")
    );
}

#[test]
fn sharded_runs_merge_into_the_unsharded_output() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ModelConfig::tiny();
    let (model, _) = export_model(dir.path(), "tiny", &cfg, 31);
    let videos = synth_videos(&cfg, 7, 41);
    let data = dir.path().join("data");
    write_dataset(&data, &videos, cfg.feat_dim);
    // An ActivityNet-format classifier, so that detections are sharded too.
    let cls = dir.path().join("classifier.json");
    let results: serde_json::Map<String, serde_json::Value> = videos
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let entries: Vec<serde_json::Value> = LABELS
                .iter()
                .enumerate()
                .map(|(j, l)| serde_json::json!({"label": l, "score": ((i + 2 * j) % 5) as f64 / 5.0}))
                .collect();
            (v.id.clone(), serde_json::Value::Array(entries))
        })
        .collect();
    std::fs::write(&cls, serde_json::json!({ "results": results }).to_string()).unwrap();
    let whole = dir.path().join("whole.json");
    let o = infer(&[
        &"run",
        &"--model",
        &model,
        &"--data",
        &data,
        &"-o",
        &whole,
        &"--threads",
        &"1",
        &"--classifier",
        &cls,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    let out = dir.path().join("refined.json");
    // Shard 0 explicitly, shard 1 from Slurm's variables, shard 2 from a Kubernetes index.
    let o = infer(&[
        &"run",
        &"--model",
        &model,
        &"--data",
        &data,
        &"-o",
        &out,
        &"--shard",
        &"0/3",
        &"--threads",
        &"1",
        &"--classifier",
        &cls,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = infer_env(
        &[
            &"run",
            &"--model",
            &model,
            &"--data",
            &data,
            &"-o",
            &out,
            &"--threads",
            &"1",
            &"--classifier",
            &cls,
        ],
        &[
            ("SLURM_ARRAY_TASK_ID", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("shard 1/3 (from SLURM_ARRAY_TASK_ID)"),
        "{}",
        stderr(&o)
    );
    let o = infer_env(
        &[
            &"run",
            &"--model",
            &model,
            &"--data",
            &data,
            &"-o",
            &out,
            &"--threads",
            &"1",
            &"--shard-count",
            &"3",
            &"--classifier",
            &cls,
        ],
        &[("JOB_COMPLETION_INDEX", "2")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let parts: Vec<PathBuf> = (0..3)
        .map(|k| dir.path().join(format!("refined.shard-{k}-of-3.json")))
        .collect();
    for p in &parts {
        assert!(p.exists(), "{}", p.display());
    }
    assert!(!out.exists());
    let part1 = read_results(&parts[1]);
    assert_eq!(
        part1.iter().map(|(v, _)| v.as_str()).collect::<Vec<_>>(),
        ["v_001", "v_004"],
        "round-robin slice"
    );

    let merged = dir.path().join("merged.json");
    // Given in any order.
    let o = infer(&[&"merge", &parts[2], &parts[0], &parts[1], &"-o", &merged]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read_results(&merged), read_results(&whole));
    // The same file but for this write's generation and file list.
    assert_eq!(
        without_generation(&merged),
        without_generation(&whole),
        "the same results and run identity"
    );
    // Detections: STEM.shard-K-of-N.detections.json, merged the same way.
    let det_parts: Vec<PathBuf> = (0..3)
        .map(|k| {
            dir.path()
                .join(format!("refined.shard-{k}-of-3.detections.json"))
        })
        .collect();
    let merged_dets = dir.path().join("merged.detections.json");
    let o = infer(&[
        &"merge",
        &det_parts[0],
        &det_parts[1],
        &det_parts[2],
        &"-o",
        &merged_dets,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let whole_dets = read_results(&dir.path().join("whole.detections.json"));
    assert_eq!(whole_dets.len(), videos.len());
    assert!(whole_dets
        .iter()
        .all(|(_, d)| !d.is_empty() && d.iter().all(|e| e.3.is_some())));
    assert_eq!(read_results(&merged_dets), whole_dets);

    // A missing shard, a shard given twice.
    let o = infer(&[&"merge", &parts[0], &parts[1], &"-o", &merged]);
    assert!(
        stderr(&o).contains("missing shard partial(s): 2/3"),
        "{}",
        stderr(&o)
    );
    let o = infer(&[
        &"merge", &parts[0], &parts[1], &parts[1], &parts[2], &"-o", &merged,
    ]);
    assert!(
        stderr(&o).contains("shard 1/3 given twice"),
        "{}",
        stderr(&o)
    );
    assert_eq!(o.status.code(), Some(2));

    // A video of another shard in a partial, and a video missing from its partial.
    let mut lb = Leaderboard::read(&parts[1]).unwrap();
    let stolen = Leaderboard::read(&parts[0]).unwrap().results[0].clone();
    lb.results.push(stolen.clone());
    let dup = dir.path().join("dup.json");
    lb.write(&dup).unwrap();
    let three = |p: &PathBuf| vec![parts[0].clone(), p.clone(), parts[2].clone()];
    let err = merge_partials(&three(&dup), false).unwrap_err().to_string();
    assert!(
        err.contains(&format!("video '{}'", stolen.0)) && err.contains("not assigned"),
        "{err}"
    );
    let m = merge_partials(&three(&dup), true).unwrap();
    assert_eq!(m.extra, [(stolen.0.clone(), dup.clone())]);
    assert_eq!(m.board.results, Leaderboard::read(&merged).unwrap().results);
    let mut lb = Leaderboard::read(&parts[1]).unwrap();
    let dropped = lb.results.remove(0).0;
    lb.write(&dup).unwrap();
    let err = merge_partials(&three(&dup), false).unwrap_err().to_string();
    assert!(
        err.contains(&format!("video '{dropped}'")) && err.contains("missing"),
        "{err}"
    );
    let m = merge_partials(&three(&dup), true).unwrap();
    assert_eq!(m.missing, [(dropped.clone(), dup.clone())]);
    assert_eq!(m.board.results.len(), videos.len() - 1);
    // A plain leaderboard file is not a partial.
    let err = merge_partials(std::slice::from_ref(&whole), false).unwrap_err();
    assert!(err.to_string().contains("not a shard partial"), "{err}");
}

/// A written file's JSON without `tcanet_run.generation` and
/// `tcanet_run.outputs` (which differ between writes).
fn without_generation(path: &Path) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let run = v["tcanet_run"].as_object_mut().expect("tcanet_run");
    assert!(run.remove("generation").is_some());
    assert!(run.remove("outputs").is_some());
    v
}

#[test]
fn bench_prints_the_documented_json_keys() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ModelConfig::tiny();
    let (model, _) = export_model(dir.path(), "tiny", &cfg, 51);
    let o = infer(&[
        &"bench",
        &model,
        &"--proposals",
        &"30",
        &"--videos",
        &"3",
        &"--warmup",
        &"1",
        &"--threads",
        &"1",
        &"--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for key in [
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "videos_per_s",
        "proposals_per_s",
        "peak_rss_mb",
    ] {
        let x = v[key].as_f64().unwrap_or_else(|| panic!("{key} in {v}"));
        assert!(x > 0.0 && x.is_finite(), "{key} = {x}");
    }
    assert!(
        v["p50_ms"].as_f64() <= v["p90_ms"].as_f64()
            && v["p90_ms"].as_f64() <= v["p99_ms"].as_f64()
    );
    assert_eq!(v["timed_calls"], 3);
    assert_eq!(v["proposals_per_video"], 30.0);
    assert_eq!(v["device"], "cpu");
    // The arithmetic: the config's count for one video of 30 proposals, a
    // positive rate, and its share of one thread's nominal peak.
    let gflop = tcanet_models::flops::multiply_adds(&cfg, 1, 30).flops() / 1e9;
    let f = |key: &str| v[key].as_f64().unwrap_or(f64::NAN);
    assert!((f("gflop_per_call") - gflop).abs() <= 1e-12 * gflop, "{v}");
    assert!(f("gflops") > 0.0 && f("gflops").is_finite(), "{v}");
    let peak = tcanet_models::cpu::NominalPeak::of_host(
        &tcanet_models::cpu::CpuInfo::read(),
        Some(1),
        None,
        None,
    );
    if peak.gflops().is_finite() {
        assert!(
            (f("nominal_peak_gflops") - peak.gflops()).abs() < 1e-9,
            "{v}"
        );
        assert!((f("fraction_of_peak") - f("gflops") / peak.gflops()).abs() < 1e-9);
    }
    assert_eq!(v["isa"], peak.isa.as_str());
}

#[test]
fn classifier_files_in_every_format() {
    let release =
        r#"{"class_names": ["a", "b", "c", "d"], "results": {"v1": [0.1, 2.0, -1.0, 2.0]}}"#;
    let c = ClassScores::parse(release, Path::new("cls.json")).unwrap();
    assert_eq!(c.format, ClassifierFormat::Release);
    // softmax(2x), computed plainly.
    let e: Vec<f64> = [0.1f64, 2.0, -1.0, 2.0]
        .iter()
        .map(|s| (2.0 * s).exp())
        .collect();
    let sum: f64 = e.iter().sum();
    let top = c.top_classes("v1", 3).unwrap();
    // Tie between b and d: file order.
    assert_eq!(
        top.iter().map(|t| t.0.as_str()).collect::<Vec<_>>(),
        ["b", "d", "a"]
    );
    for (label, p) in &top {
        let i = ["a", "b", "c", "d"]
            .iter()
            .position(|l| l == label)
            .unwrap();
        assert!((p - e[i] / sum).abs() < 1e-15);
    }
    assert!(c.top_classes("v2", 3).is_none());

    // The authors' own file: names under `class`, scores one level deeper
    // (the first list is used); the same probabilities.
    let authors = r#"{"class": ["a", "b", "c", "d"], "results": {"v1": [[0.1, 2.0, -1.0, 2.0]]}}"#;
    let n = ClassScores::parse(authors, Path::new("cls.json")).unwrap();
    assert_eq!(n.format, ClassifierFormat::ReleaseNested);
    assert_eq!(n.top_classes("v1", 3), c.top_classes("v1", 3));
    assert_eq!(n.videos, c.videos);

    let anet =
        r#"{"results": {"v1": [{"label": "x", "score": 0.2}, {"label": "y", "score": 0.7}]}}"#;
    let c = ClassScores::parse(anet, Path::new("cls.json")).unwrap();
    assert_eq!(c.format, ClassifierFormat::ActivityNet);
    assert_eq!(
        c.top_classes("v1", 3).unwrap(),
        vec![("y".to_string(), 0.7), ("x".to_string(), 0.2)]
    );

    // Detections: every proposal × class, prob × score, the best `max` kept.
    let props = [
        ScoredSegment {
            start: 0.0,
            end: 1.0,
            score: 0.9,
        },
        ScoredSegment {
            start: 2.0,
            end: 3.0,
            score: 0.5,
        },
    ];
    let d = detections_for_video(&props, &c.top_classes("v1", 3).unwrap(), 3);
    let got: Vec<(f64, &str)> = d.iter().map(|x| (x.score, x.label.as_str())).collect();
    assert_eq!(
        got,
        vec![(0.7 * 0.9, "y"), (0.7 * 0.5, "y"), (0.2 * 0.9, "x")]
    );

    for (bad, needle) in [
        (
            r#"{"class_names": ["a"], "results": {"v1": [0.1, 0.2]}}"#,
            "results.v1: 2 scores for 1 class names",
        ),
        (
            r#"{"class": ["a", "b"], "results": {"v1": [[0.1]]}}"#,
            "results.v1[0]: 1 scores for 2 class names",
        ),
        (
            r#"{"class": ["a", "b"], "results": {"v1": [[0.1, "x"]]}}"#,
            "results.v1[0][1]: not a finite number",
        ),
        (
            r#"{"class": ["a"], "class_names": ["a"], "results": {}}"#,
            "both \"class_names\" and \"class\"",
        ),
        (
            r#"{"class_names": [], "results": {}}"#,
            "field \"class_names\" is empty",
        ),
        (
            r#"{"class_names": ["a", "a"], "results": {}}"#,
            "class_names[1]: class 'a' is listed twice",
        ),
        (
            r#"{"results": {"v1": []}}"#,
            "results.v1: the list of classes is empty",
        ),
        (
            r#"{"results": {"v1": [{"label": "x", "score": 0.1}, {"label": "x", "score": 0.2}]}}"#,
            "results.v1[1].label: class 'x' is listed twice",
        ),
        (
            r#"{"results": {"v1": [{"label": "x"}]}}"#,
            "results.v1[0].score",
        ),
        (
            r#"{"results": {"v1": [{"label": "x", "score": "high"}]}}"#,
            "results.v1[0].score",
        ),
        (r#"{"nothing": 1}"#, "missing object field \"results\""),
        ("not json", "invalid JSON"),
    ] {
        let err = ClassScores::parse(bad, Path::new("cls.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle) && err.contains("cls.json"), "{err}");
    }
}

#[test]
fn the_binary_never_links_libtorch() {
    let exe = env!("CARGO_BIN_EXE_tcanet-infer");
    let o = std::process::Command::new("readelf")
        .args(["-d", exe])
        .output()
        .expect("readelf runs");
    assert!(o.status.success());
    let dynamic = String::from_utf8_lossy(&o.stdout);
    let needed: Vec<&str> = dynamic.lines().filter(|l| l.contains("(NEEDED)")).collect();
    assert!(
        !needed.is_empty(),
        "readelf shows the NEEDED entries: {dynamic}"
    );
    for l in &needed {
        for bad in ["torch", "c10", "onnxruntime"] {
            assert!(!l.contains(bad), "tcanet-infer must not need {bad}: {l}");
        }
    }
    // ldd resolves the whole closure: no libtorch there either.
    let o = std::process::Command::new("ldd")
        .arg(exe)
        .output()
        .expect("ldd runs");
    let closure = String::from_utf8_lossy(&o.stdout);
    assert!(
        !closure.contains("libtorch") && !closure.contains("libc10"),
        "{closure}"
    );
}

/// `bench --proposals` is a count for random inputs and the proposals file
/// for real videos; one flag, not two of one name (clap takes the first).
#[test]
fn bench_proposals_is_a_count_or_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ModelConfig::tiny();
    let (model, _) = export_model(dir.path(), "tiny", &cfg, 53);
    let videos = synth_videos(&cfg, 2, 54);
    let data = dir.path().join("data");
    write_dataset(&data, &videos, cfg.feat_dim);
    let bench = |extra: &[&dyn AsRef<std::ffi::OsStr>]| {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
            &"bench",
            &model,
            &"--warmup",
            &"0",
            &"--threads",
            &"1",
            &"--json",
        ];
        args.extend_from_slice(extra);
        infer(&args)
    };
    // Real videos from explicit files, the proposals file among them.
    let proposals = data.join("proposals.json");
    let o = bench(&[
        &"--annotations",
        &data.join("annotations.json"),
        &"--features",
        &data.join("features"),
        &"--proposals",
        &proposals,
        &"--videos",
        &"2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mean = videos.iter().map(|v| v.proposals.len()).sum::<usize>() as f64 / 2.0;
    assert_eq!(v["proposals_per_video"].as_f64(), Some(mean), "{v}");
    // A count with real videos, a file with random inputs: refused, saying why.
    let o = bench(&[&"--data", &data, &"--proposals", &"10"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("a count applies to random inputs only"),
        "{}",
        stderr(&o)
    );
    let o = bench(&[&"--proposals", &proposals]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("a proposals file needs real videos"),
        "{}",
        stderr(&o)
    );
}

/// A partial whose shard lists a video as failed and also holds its
/// results contradicts itself: refused when read, naming the video.
#[test]
fn a_failed_video_with_results_is_refused() {
    let text = r#"{"results": {"a": [{"segment": [0, 1], "score": 0.5}]},
        "tcanet_shard": {"index": 0, "count": 1, "assigned": ["a"], "failed": ["a"]}}"#;
    let e = Leaderboard::parse(text, Path::new("p.json"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("p.json") && e.contains("video 'a' is listed as failed but has results"),
        "{e}"
    );
    let fine = text.replace(r#""failed": ["a"]"#, r#""failed": []"#);
    Leaderboard::parse(&fine, Path::new("p.json")).unwrap();
}
