//! `tcanet-eval` under faults: bad numeric flags, closed or full outputs,
//! missing files, directories given as files, outputs onto inputs; each
//! with its exit status, a message that names the file or flag (and no
//! debug formatting), and nothing destroyed.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_tcanet-eval");

const GT: &str = r#"{"database": {
  "v_a": {"subset": "validation", "duration": 30.0, "annotations": [{"segment": [0, 10], "label": "Run"}]},
  "v_b": {"subset": "validation", "duration": 40.0, "annotations": [{"segment": [5, 20], "label": "Jump"}]}}}"#;

const PRED: &str = r#"{"results": {
  "v_a": [{"segment": [0, 10], "score": 0.9, "label": "Run"}, {"segment": [2, 9], "score": 0.4, "label": "Jump"}],
  "v_b": [{"segment": [5, 19], "score": 0.8, "label": "Jump"}]}}"#;

/// A fresh directory with gt.json and pred.json, removed at the end.
struct TestDir(PathBuf);

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl std::ops::Deref for TestDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

fn dir(name: &str) -> TestDir {
    let d = std::env::temp_dir().join(format!("tcanet-eval-faults-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("gt.json"), GT).unwrap();
    std::fs::write(d.join("pred.json"), PRED).unwrap();
    TestDir(d)
}

fn run(d: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(d)
        .args(args)
        .env_remove("NO_COLOR")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// No debug formatting and no panic in a message.
fn clean(msg: &str) {
    for bad in ["Some(", "None", "{ ", "Os {", "panicked", "kind:", "\x1b["] {
        assert!(!msg.contains(bad), "{bad:?} in: {msg}");
    }
}

/// Expects exit status `code` and every needle in stderr.
fn expect(o: &Output, code: i32, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "{err}");
    clean(&err);
    for n in needles {
        assert!(err.contains(n), "{n:?} not in: {err}");
    }
}

#[test]
fn every_numeric_flag_is_range_checked() {
    let d = dir("flags");
    let huge = "99999999999999999999999999";
    // (subcommand and files, flag, bad values, what the message says)
    let cases: Vec<(&[&str], &str, Vec<&str>, &str)> = vec![
        (
            &["proposals", "gt.json", "pred.json"],
            "--max-proposals",
            vec!["0", "-1", "nan", "inf", huge, "1.5"],
            "from 1 to 1000000",
        ),
        (
            &["proposals", "gt.json", "pred.json"],
            "--tiou",
            vec!["0", "-1", "nan", "inf", huge, "1.5", "0.5:0.4:0.1", ""],
            "use a list",
        ),
        (
            &["detections", "gt.json", "pred.json"],
            "--tiou",
            vec!["0,0.5", "-0.5", "NaN", "0.1:0.9:0"],
            "use a list",
        ),
        (
            &["detections", "gt.json", "pred.json"],
            "--recall-topk",
            vec!["0", "-1", "nan", "inf", huge, "1,0", "1.5"],
            "from 1 to 1000",
        ),
        (
            &["diagnose", "gt.json", "pred.json"],
            "--max-k",
            vec!["0", "-1", "nan", "inf", huge, "101"],
            "from 1 to 100",
        ),
        (
            &["diagnose", "gt.json", "pred.json"],
            "--min-tiou",
            vec!["-1", "nan", "inf", huge, "1.5"],
            "in [0, 1]",
        ),
        (
            &["diagnose", "gt.json", "pred.json"],
            "--fn-min-precision",
            vec!["-1", "nan", "inf", huge, "1"],
            "in [0, 1)",
        ),
        (
            &["bench", "proposals", "gt.json", "pred.json"],
            "--runs",
            vec!["0", "-1", "nan", "inf", huge],
            "from 1 to 100000",
        ),
    ];
    for (cmd, flag, values, range) in cases {
        for v in values {
            let mut args: Vec<&str> = cmd.to_vec();
            args.extend([flag, v]);
            let o = run(&d, &args);
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
            clean(&err);
            assert!(err.contains(flag), "{args:?}: {err}");
            if !v.is_empty() {
                assert!(err.contains(range), "{args:?}: {err}");
            }
        }
    }
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let d = dir("pipe");
    let gt = common::gt_path();
    let dets = common::detections_path();
    // The reader goes away before the program starts (closing it after the
    // spawn would leave a window in which a process forked meanwhile by
    // another test thread holds it and takes the write).
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = Command::new(BIN)
        .current_dir(&*d)
        .args([
            "detections",
            gt.to_str().unwrap(),
            dets.to_str().unwrap(),
            "--json",
            "-q",
        ])
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(!err.contains("error"), "{err}");
    clean(&err);
    // `| head -c1` in a shell: the first byte arrives, the run ends quietly.
    let script = format!(
        "'{BIN}' proposals gt.json pred.json --json | head -c1; echo \" ${{PIPESTATUS[0]}}\""
    );
    let o = Command::new("bash")
        .current_dir(&*d)
        .args(["-c", &script])
        .output()
        .unwrap();
    // Whether the small result was written before `head` closed the
    // pipe (0) or not (1, quietly), the reader got its byte.
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(["{ 0", "{ 1"].contains(&out.trim_end()), "{out}");
    clean(&stderr(&o));
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_is_one_line_and_status_1() {
    let d = dir("full");
    let o = run(
        &d,
        &["proposals", "gt.json", "pred.json", "-o", "/dev/full"],
    );
    expect(&o, 1, &["cannot write /dev/full: No space left on device"]);
    assert_eq!(stderr(&o).trim_end().lines().count(), 1, "{}", stderr(&o));
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = Command::new(BIN)
        .current_dir(&*d)
        .args(["detections", "gt.json", "pred.json", "--json"])
        .stdout(full)
        .output()
        .unwrap();
    expect(
        &o,
        1,
        &["cannot write standard output: No space left on device"],
    );
    // /dev/null takes results in place.
    let o = run(
        &d,
        &["proposals", "gt.json", "pred.json", "-o", "/dev/null"],
    );
    expect(&o, 0, &[]);
}

#[test]
fn missing_files_and_directories_name_the_path() {
    let d = dir("missing");
    std::fs::create_dir(d.join("adir")).unwrap();
    for cmd in ["proposals", "detections", "diagnose"] {
        let o = run(&d, &[cmd, "gt.json", "nothere.json"]);
        expect(&o, 2, &["cannot read nothere.json", "No such file"]);
        let o = run(&d, &[cmd, "adir", "pred.json"]);
        expect(&o, 2, &["cannot read adir", "directory"]);
    }
    let o = run(
        &d,
        &[
            "detections",
            "gt.json",
            "pred.json",
            "--exclude",
            "none.txt",
        ],
    );
    expect(&o, 2, &["cannot read none.txt"]);
    let o = run(
        &d,
        &[
            "diagnose",
            "gt.json",
            "pred.json",
            "--characteristics",
            "adir",
        ],
    );
    expect(&o, 2, &["adir"]);
}

#[test]
fn outputs_never_land_on_inputs() {
    let d = dir("onto");
    for cmd in ["proposals", "detections", "diagnose"] {
        for target in ["gt.json", "./pred.json"] {
            let o = run(&d, &[cmd, "gt.json", "pred.json", "--json", "-o", target]);
            expect(&o, 2, &["refusing to write", "same file as the input"]);
        }
    }
    assert_eq!(std::fs::read_to_string(d.join("gt.json")).unwrap(), GT);
    assert_eq!(std::fs::read_to_string(d.join("pred.json")).unwrap(), PRED);
    // -o and --plot on one file, a missing directory, a directory.
    let o = run(
        &d,
        &[
            "detections",
            "gt.json",
            "pred.json",
            "-o",
            "x.svg",
            "--plot",
            "x.svg",
        ],
    );
    expect(&o, 2, &["-o and --plot name the same file"]);
    let o = run(
        &d,
        &["detections", "gt.json", "pred.json", "-o", "no/such/r.json"],
    );
    expect(&o, 2, &["cannot write no/such/r.json", "no directory"]);
    let o = run(
        &d,
        &[
            "proposals",
            "gt.json",
            "pred.json",
            "--plot",
            "no/such/p.png",
        ],
    );
    expect(&o, 2, &["no directory"]);
    let o = run(&d, &["detections", "gt.json", "pred.json", "-o", "."]);
    expect(&o, 2, &["is a directory"]);
    let o = run(
        &d,
        &["diagnose", "gt.json", "pred.json", "--plot", "gt.json"],
    );
    expect(&o, 2, &["not a directory"]);
    let names: Vec<String> = std::fs::read_dir(&*d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp-")), "{names:?}");
}

#[test]
fn results_go_to_o_atomically_and_stdin_is_read_for_dash() {
    let d = dir("output");
    let o = run(
        &d,
        &[
            "detections",
            "gt.json",
            "pred.json",
            "--json",
            "-o",
            "r.json",
            "-q",
        ],
    );
    expect(&o, 0, &[]);
    assert!(o.stdout.is_empty());
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("r.json")).unwrap()).unwrap();
    // Run: one true positive first: AP 1. Jump: v_b's [5, 19] has tIoU
    // 14/15 with [5, 20]: a hit up to 0.9, a miss at 0.95 (v_a's Jump is a
    // false positive after it). Average mAP (9 + 0.5) / 10.
    assert_eq!(v["average_mAP"].as_f64(), Some(0.95));
    // PRED from standard input.
    let mut child = Command::new(BIN)
        .current_dir(&*d)
        .args(["detections", "gt.json", "-", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(PRED.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    expect(&o, 0, &[]);
    let w: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(w["ap"], v["ap"]);
    // Both from standard input: refused.
    let o = run(&d, &["detections", "-", "-"]);
    expect(&o, 2, &["GT and PRED", "only once"]);
    // A message about standard input names it.
    let mut child = Command::new(BIN)
        .current_dir(&*d)
        .args(["proposals", "gt.json", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"results\": [")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    expect(&o, 2, &["<stdin>:1:"]);
}

/// `-o /dev/stdout` (and `/dev/fd/1`) with standard output appended to a
/// file (`>> log`): the results are appended, the file is neither replaced
/// nor truncated.
#[cfg(target_os = "linux")]
#[test]
fn dev_stdout_appends_to_the_file_behind_it() {
    use std::os::unix::fs::MetadataExt;
    let d = dir("dev-stdout");
    let log = d.join("log.txt");
    std::fs::write(&log, "KEEP\n").unwrap();
    let inode = std::fs::metadata(&log).unwrap().ino();
    for name in ["/dev/stdout", "/dev/fd/1"] {
        let appending = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        let o = Command::new(BIN)
            .current_dir(&*d)
            .args([
                "detections",
                "gt.json",
                "pred.json",
                "--json",
                "-q",
                "-o",
                name,
            ])
            .stdout(appending)
            .output()
            .unwrap();
        expect(&o, 0, &[]);
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.starts_with("KEEP\n{"), "{text}");
    let reports: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&text[5..])
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(reports.len(), 2, "{text}");
    assert_eq!(reports[0]["average_mAP"].as_f64(), Some(0.95));
    assert_eq!(reports[0], reports[1]);
    assert_eq!(
        std::fs::metadata(&log).unwrap().ino(),
        inode,
        "not replaced"
    );
}

#[test]
fn quiet_keeps_warnings_and_drops_progress() {
    let d = dir("quiet");
    std::fs::write(d.join("blocked.txt"), "# blocked\nv_b\n").unwrap();
    let o = run(
        &d,
        &[
            "detections",
            "gt.json",
            "pred.json",
            "--exclude",
            "blocked.txt",
            "--json",
            "--ignore-unknown-labels",
        ],
    );
    expect(
        &o,
        0,
        &[
            "excluded 1 video id(s), 1 of them in the ground truth's subset",
            "warning: ",
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // Without v_b, Jump is no class; v_a's Jump detection is dropped.
    assert_eq!(v["n_instances"].as_u64(), Some(1));
    assert_eq!(v["n_dropped"].as_u64(), Some(1));
    let o = run(
        &d,
        &[
            "detections",
            "gt.json",
            "pred.json",
            "--exclude",
            "blocked.txt",
            "-q",
        ],
    );
    // The unknown label is an error (exit 2), as in the official code.
    expect(&o, 2, &["\"Jump\" (1)"]);
    let o = run(
        &d,
        &[
            "proposals",
            "gt.json",
            "pred.json",
            "--plot",
            "p.svg",
            "-q",
            "-o",
            "/dev/null",
        ],
    );
    expect(&o, 0, &[]);
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    let o = run(
        &d,
        &[
            "proposals",
            "gt.json",
            "pred.json",
            "--plot",
            "p.svg",
            "-o",
            "/dev/null",
        ],
    );
    expect(&o, 0, &["wrote p.svg"]);
}

/// GT with DETAD's extra fields in each annotation; `a` replaces v_a's.
fn characteristics(a: &str) -> String {
    let b = r#""context-size": 2, "context-distance": 1, "agreement": 0.8"#;
    GT.replace(r#""label": "Run"}"#, &format!(r#""label": "Run", {a}}}"#))
        .replace(r#""label": "Jump"}"#, &format!(r#""label": "Jump", {b}}}"#))
}

#[test]
fn characteristics_out_of_range_or_miscounted_are_refused() {
    let d = dir("characteristics");
    let diagnose = |name: &str, text: &str| {
        std::fs::write(d.join(name), text).unwrap();
        run(
            &d,
            &[
                "diagnose",
                "gt.json",
                "pred.json",
                "--json",
                "--characteristics",
                name,
            ],
        )
    };
    let ok = r#""context-size": 2, "context-distance": 1, "agreement": 0.8"#;
    let o = diagnose("ok.json", &characteristics(ok));
    expect(&o, 0, &[]);
    for (a, field, value) in [
        (
            r#""context-size": 7, "context-distance": 1"#,
            "context-size",
            "is 7",
        ),
        (r#""context-size": 1.5"#, "context-size", "is 1.5"),
        (r#""context-distance": -1"#, "context-distance", "is -1"),
        (r#""agreement": 2"#, "agreement", "is 2"),
    ] {
        let o = diagnose("c.json", &characteristics(a));
        let at = format!("c.json: database[\"v_a\"].annotations[0].{field} {value}");
        expect(&o, 2, &[&at, "or null"]);
    }
    // More annotations than the ground truth, as fewer, is refused.
    let more = characteristics(ok).replace(
        r#""label": "Jump", "#,
        r#""label": "Jump"}, {"segment": [30, 35], "label": "Jump", "#,
    );
    let o = diagnose("more.json", &more);
    expect(
        &o,
        2,
        &["more.json: database[\"v_b\"] has 2 annotation(s) where the ground truth has 1"],
    );
    let mut fewer: serde_json::Value = serde_json::from_str(&characteristics(ok)).unwrap();
    fewer["database"]["v_b"]["annotations"] = serde_json::json!([]);
    let fewer = fewer.to_string();
    let o = diagnose("fewer.json", &fewer);
    expect(
        &o,
        2,
        &["fewer.json: database[\"v_b\"] has 0 annotation(s) where the ground truth has 1"],
    );
    // NaN: the position, the video and the field.
    let o = diagnose("nan.json", &characteristics(r#""agreement": NaN"#));
    expect(
        &o,
        2,
        &[
            "nan.json:2:",
            "database[\"v_a\"].annotations[0].agreement: ",
            "NaN",
        ],
    );
}

#[test]
fn an_exclude_file_is_a_list_of_strings_or_lines_of_ids() {
    let d = dir("exclude");
    let detections = |text: &str| {
        std::fs::write(d.join("ex.txt"), text).unwrap();
        run(
            &d,
            &[
                "detections",
                "gt.json",
                "pred.json",
                "--json",
                "--exclude",
                "ex.txt",
            ],
        )
    };
    for (text, found) in [
        (r#"{"v_a": 1}"#, "found a JSON object"),
        ("5", "found the JSON number 5"),
        (r#""v_a""#, "found the JSON string \"v_a\""),
        ("null", "found JSON null"),
    ] {
        expect(
            &detections(text),
            2,
            &["ex.txt: expected a JSON array of video ids", found],
        );
    }
    let o = detections("v_a\n\"v_b\"\n");
    expect(&o, 2, &["ex.txt: line 2 is in quotes"]);
    // Ids one per line, also ids that look like numbers, still work.
    for text in [
        "v_a\n",
        "# blocked\n123\n456\n",
        "123\nv_a\n",
        r#"["v_a", "7"]"#,
    ] {
        let o = detections(text);
        expect(&o, 0, &[]);
        let excluded_a = text.contains("v_a");
        let videos = if excluded_a { 1 } else { 2 };
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains(&format!("\"n_videos\":{videos}")),
            "{text:?}: {out}"
        );
    }
}

#[test]
fn a_bad_duration_is_an_error_for_diagnose_only() {
    let d = dir("duration");
    for bad in [r#""30""#, "0", "-5", "1e999", "[30]"] {
        let gt = GT.replacen("\"duration\": 30.0", &format!("\"duration\": {bad}"), 1);
        std::fs::write(d.join("bad.json"), gt).unwrap();
        let o = run(&d, &["diagnose", "bad.json", "pred.json", "--json"]);
        let at = format!("bad.json:2:47: database[\"v_a\"].duration is {bad}; it must be");
        expect(&o, 2, &[&at]);
        // The official evaluation ignores durations: so do these.
        for cmd in ["proposals", "detections"] {
            expect(&run(&d, &[cmd, "bad.json", "pred.json", "--json"]), 0, &[]);
        }
    }
    // No duration at all, or null: coverage is not analysed, with a warning.
    let gt = GT
        .replace("\"duration\": 30.0, ", "")
        .replace("\"duration\": 40.0, ", "");
    std::fs::write(d.join("none.json"), gt).unwrap();
    let o = run(&d, &["diagnose", "none.json", "pred.json", "--json"]);
    expect(&o, 0, &["none.json: no video has a \"duration\""]);
    let gt = GT.replace("30.0", "null").replace("40.0", "null");
    std::fs::write(d.join("null.json"), gt).unwrap();
    let o = run(&d, &["diagnose", "null.json", "pred.json", "--json"]);
    expect(&o, 0, &["null.json: no video has a \"duration\""]);
}

#[test]
fn a_tiou_range_whose_step_would_drop_the_stop_is_refused() {
    let d = dir("tiou-step");
    let o = run(
        &d,
        &[
            "detections",
            "gt.json",
            "pred.json",
            "--tiou",
            "0.5:0.6:0.3",
        ],
    );
    expect(&o, 2, &["'0.5:0.6:0.3' for '--tiou", "leave out its stop"]);
    // A step up to twice stop - start ends on the stop, as linspace does.
    let o = run(
        &d,
        &[
            "detections",
            "gt.json",
            "pred.json",
            "--json",
            "--tiou",
            "0.5:0.6:0.15",
        ],
    );
    expect(&o, 0, &[]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("\"tiou_thresholds\":[0.5,0.6]"), "{out}");
}
