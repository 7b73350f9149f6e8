//! Every numeric flag of every subcommand of `tcanet-train`, given 0, -1,
//! NaN, inf and huge values: no panic, no signal; either a usage error
//! (exit 2) naming the flag and its range, or, for a value in the range,
//! the command's documented behaviour (here: the base command's own exit 2
//! for its missing input, or a finished bench).
mod common;

use common::{bin, run, tmp};

/// The values every flag is given.
const VALUES: [&str; 6] = ["0", "-1", "NaN", "inf", "1e300", "99999999999999999999999"];

/// A subcommand's base command line (which fails fast on its own when the
/// flag's value is accepted) and its numeric flags with the values of
/// [`VALUES`] they accept.
struct Case {
    base: Vec<String>,
    flags: Vec<(&'static str, &'static [&'static str])>,
}

fn cases(dir: &std::path::Path) -> Vec<Case> {
    let missing = dir.join("missing");
    let m = missing.display().to_string();
    let out = dir.join("out").display().to_string();
    let file = dir.join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let under_file = file.join("sub").display().to_string();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let none: &[&str] = &[];
    let zero: &[&str] = &["0"];
    vec![
        Case {
            base: s(&[
                "train", "--data", &m, "--out", &out, "--preset", "tiny", "--device", "cpu",
            ]),
            flags: vec![
                ("--epochs", none),
                ("--batch-size", none),
                ("--lr", none),
                ("--weight-decay", zero),
                ("--warmup-iters", zero),
                ("--lr-decay-epoch", none),
                ("--lr-decay", none),
                ("--seed", zero),
                ("--max-steps", none),
                ("--save-every", none),
                ("--workers", none),
                ("--threads", none),
                ("--max-proposals", none),
                ("--min-instance-seconds", zero),
                ("--calibration-fraction", zero),
                ("--decode-scale", none),
                ("--decode-grid", none),
            ],
        },
        Case {
            base: s(&["calibrate", &m, "--data", &m, "-o", &out, "--device", "cpu"]),
            flags: vec![
                ("--decode-grid", none),
                ("--workers", none),
                ("--threads", none),
            ],
        },
        Case {
            base: s(&[
                "predict",
                "--data",
                &m,
                "--checkpoint",
                &m,
                "--out",
                &out,
                "--device",
                "cpu",
            ]),
            flags: vec![("--max-proposals", none), ("--threads", none)],
        },
        Case {
            base: s(&["synth", "--out", &under_file]),
            flags: vec![
                ("--train-videos", none),
                ("--val-videos", none),
                ("--classes", none),
                ("--channels", none),
                ("--steps", none),
                ("--interval", none),
                ("--noise", zero),
                ("--boundary-error", zero),
                ("--proposals-per-video", none),
                ("--min-duration", none),
                ("--max-duration", none),
                ("--seed", zero),
            ],
        },
        Case {
            base: s(&[
                "bench",
                "--preset",
                "tiny",
                "--device",
                "cpu",
                "--threads",
                "1",
                "--steps",
                "1",
                "--warmup",
                "0",
                "--batch-size",
                "1",
                "--proposals",
                "2",
            ]),
            flags: vec![
                ("--steps", none),
                ("--warmup", zero),
                ("--batch-size", none),
                ("--proposals", none),
                ("--threads", none),
            ],
        },
    ]
}

#[test]
fn every_numeric_flag_is_range_checked() {
    let dir = tmp();
    let mut jobs = Vec::new();
    for case in cases(dir.path()) {
        for &(flag, accepted) in &case.flags {
            for value in VALUES {
                // The flag replaces the base's value of it, or is added.
                let mut args = case.base.clone();
                match args.iter().position(|a| a == flag) {
                    Some(i) => args[i + 1] = value.to_string(),
                    None => args.extend([flag.to_string(), value.to_string()]),
                }
                jobs.push((args, flag, value, accepted.contains(&value)));
            }
        }
    }
    assert!(jobs.len() >= 39 * VALUES.len(), "{} cases", jobs.len());
    let failures = std::sync::Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some((args, flag, value, accepted)) = jobs.get(i) else {
                    break;
                };
                if let Err(e) = check(args, flag, value, *accepted) {
                    failures.lock().unwrap().push(e);
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(!dir.path().join("out").exists(), "nothing was written");
}

fn check(args: &[String], flag: &str, value: &str, accepted: bool) -> Result<(), String> {
    let o = run(bin().args(args).env("NO_COLOR", "1"));
    let err = String::from_utf8_lossy(&o.stderr);
    let shown = format!("{flag} {value} (tcanet-train {}):\n{err}", args[0]);
    let Some(code) = o.status.code() else {
        return Err(format!("killed by a signal: {shown}"));
    };
    if err.contains("panicked") {
        return Err(format!("panic: {shown}"));
    }
    let parse_error = err.contains(&format!("for '{flag}")) && err.contains("must be");
    match (accepted, code) {
        (false, 2) if parse_error => Ok(()),
        (false, _) => Err(format!(
            "expected a usage error naming {flag} and its range: {shown}"
        )),
        (true, 0 | 2) if !parse_error => Ok(()),
        (true, _) => Err(format!(
            "an accepted value failed otherwise (exit {code}): {shown}"
        )),
    }
}
