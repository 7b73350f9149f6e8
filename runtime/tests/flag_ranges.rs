//! Every numeric flag of every subcommand with 0, -1, NaN, inf and a huge
//! value: no panic and no signal; either exit 2 with a message naming the
//! flag and its range, or (where the value is in the documented range) a
//! normal run.
mod common;

use std::path::Path;

use common::*;
use tcanet_models::ModelConfig;

/// The values every flag is tried with.
const VALUES: [&str; 5] = ["0", "-1", "nan", "inf", "99999999999999999999999"];
/// The huge value of a float flag (finite, so in range where there is no
/// upper bound).
const HUGE_FLOAT: &str = "1e308";

/// A flag, the values it accepts among those tried, and what the range
/// message says.
struct Flag {
    name: &'static str,
    float: bool,
    accepts: &'static [&'static str],
    range: &'static str,
}

const fn count(name: &'static str) -> Flag {
    Flag {
        name,
        float: false,
        accepts: &[],
        range: "must be an integer from 1 to 1000000000",
    }
}

const fn int(name: &'static str, range: &'static str, accepts: &'static [&'static str]) -> Flag {
    Flag {
        name,
        float: false,
        accepts,
        range,
    }
}

const ALPHA: Flag = Flag {
    name: "--soft-nms-alpha",
    float: true,
    accepts: &[HUGE_FLOAT],
    range: "must be a finite number > 0",
};

const fn unit(name: &'static str) -> Flag {
    Flag {
        name,
        float: true,
        accepts: &["0"],
        range: "must be a finite number in [0, 1]",
    }
}

const THREADS: &str = "must be an integer from 1 to 1024";

fn flags_of(command: &str) -> Vec<Flag> {
    let post = [
        ALPHA,
        unit("--soft-nms-t1"),
        unit("--soft-nms-t2"),
        count("--top-k"),
    ];
    match command {
        "run" => {
            let mut v = vec![
                count("--top-classes"),
                count("--max-detections"),
                count("--max-batch"),
                count("--max-proposals"),
                int("--workers", "must be an integer from 1 to 256", &[]),
                int("--shard-count", "must be an integer from 1 to 1000000", &[]),
                int("--threads", THREADS, &[]),
                int("--inter-threads", THREADS, &[]),
            ];
            v.extend(post);
            v
        }
        "postprocess" => {
            let mut v = vec![count("--max-proposals")];
            v.extend(post);
            v
        }
        "bench" => vec![
            int("--proposals", "must be an integer from 1 to 10000", &[]),
            int("--videos", "must be an integer from 1 to 1000000", &[]),
            int("--repeat", "must be an integer from 1 to 100000", &[]),
            int("--warmup", "must be an integer from 0 to 100000", &["0"]),
            int(
                "--seed",
                "must be an integer from 0 to 18446744073709551615",
                &["0"],
            ),
            int("--threads", THREADS, &[]),
            int("--inter-threads", THREADS, &[]),
        ],
        "bench-post" => vec![
            int("--videos", "must be an integer from 1 to 1000000", &[]),
            int(
                "--min-proposals",
                "must be an integer from 1 to 1000000",
                &[],
            ),
            int(
                "--max-proposals",
                "must be an integer from 1 to 1000000",
                &[],
            ),
            int("--threads", THREADS, &[]),
            int("--repeat", "must be an integer from 1 to 1000", &[]),
        ],
        _ => unreachable!(),
    }
}

/// A command that succeeds as it is (small and fast), before the flag.
fn base_args(command: &str, model: &Path, data: &Path, out: &Path) -> Vec<String> {
    let s = |p: &Path| p.display().to_string();
    let v: Vec<String> = match command {
        "run" => vec![
            "run".into(),
            "--model".into(),
            s(model),
            "--data".into(),
            s(data),
            "-o".into(),
            s(out),
        ],
        "postprocess" => vec![
            "postprocess".into(),
            "--data".into(),
            s(data),
            "-o".into(),
            s(out),
        ],
        "bench" => vec![
            "bench".into(),
            s(model),
            "--videos".into(),
            "1".into(),
            "--proposals".into(),
            "4".into(),
            "--warmup".into(),
            "1".into(),
        ],
        "bench-post" => vec![
            "bench-post".into(),
            "--videos".into(),
            "20".into(),
            "--min-proposals".into(),
            "1".into(),
            "--max-proposals".into(),
            "30".into(),
            "--repeat".into(),
            "1".into(),
        ],
        _ => unreachable!(),
    };
    v
}

#[test]
fn every_numeric_flag_has_a_checked_range() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ModelConfig::tiny();
    let (model, _) = export_model(dir.path(), "tiny", &cfg, 81);
    let videos = synth_videos(&cfg, 2, 82);
    let data = dir.path().join("data");
    write_dataset(&data, &videos, cfg.feat_dim);
    let out = dir.path().join("out.json");
    let mut tried = 0;
    let mut refused = 0;
    let mut accepted = 0;
    for command in ["run", "postprocess", "bench", "bench-post"] {
        for flag in flags_of(command) {
            let values: Vec<&str> = VALUES
                .iter()
                .map(|v| {
                    if flag.float && v.starts_with("999") {
                        HUGE_FLOAT
                    } else {
                        v
                    }
                })
                .collect();
            for value in values {
                tried += 1;
                let mut args = base_args(command, &model, &data, &out);
                // A flag already in the base command is replaced.
                if let Some(i) = args.iter().position(|a| a == flag.name) {
                    args.drain(i..i + 2);
                }
                args.push(flag.name.into());
                args.push(value.into());
                let refs: Vec<&dyn AsRef<std::ffi::OsStr>> = args
                    .iter()
                    .map(|a| a as &dyn AsRef<std::ffi::OsStr>)
                    .collect();
                let o = infer(&refs);
                let err = stderr(&o);
                let what = format!("{command} {} {value}", flag.name);
                let code = o.status.code();
                assert!(code.is_some(), "{what}: killed by a signal: {err}");
                assert!(!err.contains("panicked"), "{what}: {err}");
                if flag.accepts.contains(&value) {
                    accepted += 1;
                    assert_eq!(code, Some(0), "{what} is in range: {err}");
                } else {
                    refused += 1;
                    assert_eq!(code, Some(2), "{what}: {err}");
                    assert!(
                        err.contains(flag.name) && err.contains(flag.range),
                        "{what}: the message names the flag and `{}`: {err}",
                        flag.range
                    );
                    assert!(
                        err.contains(&format!("'{value}'")),
                        "{what}: the message shows the value: {err}"
                    );
                }
            }
        }
    }
    eprintln!("numeric flags: {tried} tried, {refused} refused with exit 2, {accepted} in range");
    assert_eq!(tried, refused + accepted);
}

#[test]
fn shard_values_are_checked_at_parse_time() {
    for bad in [
        "0/0",
        "-1/2",
        "nan/2",
        "1/inf",
        "2/2",
        "0/99999999999999999999999",
        "1",
    ] {
        let o = infer(&[
            &"run", &"--model", &"m.onnx", &"--data", &"d", &"-o", &"o.json", &"--shard", &bad,
        ]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{bad}: {err}");
        assert!(
            err.contains("--shard") && err.contains("invalid shard"),
            "{bad}: {err}"
        );
    }
}
