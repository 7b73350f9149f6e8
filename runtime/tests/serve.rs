//! `tcanet-infer serve` driven by Triton's own HTTP client (tritonclient.http
//! from the project venv, `serve_client.py`): health, metadata, both models
//! with binary and JSON tensors against `tcanet-infer run` and onnxruntime,
//! bad requests, SIGTERM under load, a short load test, and the flags; and
//! requests Triton's client would not send (shared memory on an output,
//! ragged nested data, odd paths) as raw HTTP/1.1.
mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use tcanet_models::ModelConfig;

/// A tiny model, a synthetic dataset and `tcanet-infer run`'s output on it.
struct Fixture {
    _dir: tempfile::TempDir,
    model: PathBuf,
    data: PathBuf,
    refined: PathBuf,
}

fn fixture(videos: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ModelConfig::tiny();
    let (model, _) = export_model(dir.path(), "tiny", &cfg, 11);
    let data = dir.path().join("data");
    write_dataset(&data, &synth_videos(&cfg, videos, 5), cfg.feat_dim);
    let refined = dir.path().join("refined.json");
    let out = infer(&[
        &"run",
        &"--model",
        &model,
        &"--data",
        &data,
        &"--subset",
        &"validation",
        &"--threads",
        &"1",
        &"-o",
        &refined,
    ]);
    assert!(out.status.success(), "run failed: {}", stderr(&out));
    Fixture {
        _dir: dir,
        model,
        data,
        refined,
    }
}

/// A running server; its stderr is collected.
struct Server {
    child: Child,
    url: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    fn start(model: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tcanet-infer"))
            .args(["serve", "--model"])
            .arg(model)
            .args(["--listen", "127.0.0.1:0", "--threads", "1"])
            .args(extra)
            .env_remove("ORT_DYLIB_PATH")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = Arc::new(Mutex::new(String::new()));
        let mut url = None;
        for line in lines.by_ref() {
            let line = line.unwrap();
            log.lock().unwrap().push_str(&format!("{line}\n"));
            if let Some(rest) = line.split("listening on http://").nth(1) {
                url = rest.split_whitespace().next().map(str::to_string);
                break;
            }
        }
        let url = url.unwrap_or_else(|| panic!("no address: {}", log.lock().unwrap()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        Server { child, url, log }
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGTERM, then the exit status (within 60 s).
    fn terminate(self) -> (std::process::ExitStatus, String) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.wait()
    }

    fn wait(mut self) -> (std::process::ExitStatus, String) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                return (status, self.log());
            }
            if start.elapsed() > Duration::from_secs(60) {
                let _ = self.child.kill();
                panic!("the server did not stop: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `serve_client.py COMMAND` with the venv's python; its JSON output.
fn client(command: &str, server: &Server, f: &Fixture, extra: &[&str]) -> serde_json::Value {
    let python = venv().join("bin/python");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/serve_client.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(command)
        .args(["--url", &server.url, "--data"])
        .arg(&f.data)
        .arg("--refined")
        .arg(&f.refined)
        .arg("--model")
        .arg(&f.model)
        .args(["--pid", &server.pid()])
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run `make setup`)", python.display()));
    assert!(
        out.status.success(),
        "serve_client.py {command} failed:\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The value of the Prometheus sample `name` (with labels as written).
fn sample(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
}

#[test]
fn tritonclient_gets_runs_numbers_and_clear_errors() {
    let f = fixture(24);
    let server = Server::start(
        &f.model,
        &["--max-queue-delay-us", "20000", "--max-request-mib", "1"],
    );
    let report = client("check", &server, &f, &[]);
    assert!(report["refine_worst_abs_diff"].as_f64().unwrap() <= 1e-6);
    assert!(report["raw_worst_abs_diff"].as_f64().unwrap() <= 1e-6);
    assert!(report["refine_batch_worst_abs_diff"].as_f64().unwrap() <= 1e-6);
    let raw = &report["raw_metadata"];
    assert_eq!(raw["inputs"][0]["shape"], serde_json::json!([-1, 32, 64]));
    assert_eq!(raw["outputs"][0]["name"], "proposals_1");
    assert_eq!(report["refine_metadata"]["inputs"][1]["datatype"], "FP64");
    assert_eq!(report["config"]["max_batch_size"], 8);
    // 18 validation videos twice (binary, JSON) from 8 threads: batched.
    let metrics = report["metrics"].as_str().unwrap();
    let calls = sample(metrics, "tcanet_batch_videos_count");
    let videos = sample(metrics, "tcanet_batch_videos_sum");
    assert!(
        videos >= 36.0 && calls < videos,
        "{calls} calls for {videos} videos"
    );
    assert_eq!(
        sample(
            metrics,
            "tcanet_infer_requests_total{model=\"tcanet_refine\"}"
        ),
        36.0
    );

    let bad = client("bad", &server, &f, &["--max-request-mib", "1"]);
    for key in [
        "shape",
        "datatype",
        "nan_binary",
        "missing",
        "unknown_model",
        "oversize",
    ] {
        assert!(bad[key].is_string(), "{key}: {bad}");
    }
    let metrics = ureq_metrics(&server.url);
    assert!(
        sample(
            &metrics,
            "tcanet_infer_failures_total{model=\"tcanet_refine\",code=\"400\"}"
        ) >= 5.0
    );
    assert_eq!(
        sample(
            &metrics,
            "tcanet_infer_failures_total{model=\"tcanet_refine\",code=\"413\"}"
        ),
        1.0
    );
    let (status, log) = server.terminate();
    assert!(status.success(), "exit {status:?}\n{log}");
    // One line per request: peer, method, path, status, size, time.
    assert!(
        log.lines()
            .any(|l| l.contains("POST /v2/models/tcanet_refine/infer 400 ")),
        "{log}"
    );
    assert!(log.contains("SIGTERM: shutting down"), "{log}");
}

/// `/metrics` through the venv's python (no HTTP client in the tests' deps).
fn ureq_metrics(url: &str) -> String {
    let out = Command::new(venv().join("bin/python"))
        .args([
            "-c",
            "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())",
            &format!("http://{url}/metrics"),
        ])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn sigterm_lets_queued_requests_finish_and_exits_0() {
    let f = fixture(16);
    // A long queue delay and room for 16: the 8 requests wait together
    // (SIGTERM runs them at once).
    let server = Server::start(
        &f.model,
        &["--max-queue-delay-us", "8000000", "--max-batch-size", "16"],
    );
    let pid = server.pid();
    let report = client("shutdown", &server, &f, &[]);
    assert_eq!(report["queued_at_sigterm"], 8, "{report}");
    assert_eq!(report["answered"], 8);
    assert_eq!(report["refused_after"], true);
    let (status, log) = server.wait();
    assert!(status.success(), "pid {pid}: exit {status:?}\n{log}");
    assert_eq!(
        log.matches("/v2/models/tcanet_refine/infer 200").count(),
        8,
        "{log}"
    );
    assert!(log.contains("stopped"), "{log}");
}

#[test]
fn full_queue_answers_503_and_slow_requests_504() {
    let f = fixture(8);
    let server = Server::start(
        &f.model,
        &[
            "--max-queue-size",
            "1",
            "--max-queue-delay-us",
            "3000000",
            "--max-batch-size",
            "16",
            "--request-timeout-s",
            "1",
        ],
    );
    let report = client("limits", &server, &f, &[]);
    assert!(report["queue_full"]
        .as_str()
        .unwrap()
        .contains("1 requests waiting"));
    let (status, log) = server.terminate();
    assert!(status.success(), "{log}");
    assert!(log.contains("/v2/models/tcanet_refine/infer 503"), "{log}");
    assert!(log.contains("/v2/models/tcanet_refine/infer 504"), "{log}");
}

#[test]
fn eight_clients_for_three_seconds_without_errors_or_growth() {
    let f = fixture(24);
    let server = Server::start(&f.model, &["--quiet"]);
    let report = client(
        "load",
        &server,
        &f,
        &[
            "--warmup",
            "1.5",
            "--seconds",
            "3",
            "--clients",
            "8",
            "--min-requests",
            "3",
        ],
    );
    assert_eq!(report["errors"], 0, "{report}");
    // Each client's three requests at least, however slow the machine.
    assert!(report["requests"].as_u64().unwrap() >= 24, "{report}");
    // RSS after the warm-up against the end.
    let rss: Vec<f64> = report["rss_kib"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_f64().unwrap())
        .collect();
    let (warm, last) = (rss[0], *rss.last().unwrap());
    assert!(
        last - warm < 32.0 * 1024.0,
        "RSS grew from {warm} to {last} KiB: {report}"
    );
    let (status, _) = server.terminate();
    assert!(status.success());
}

#[test]
fn serve_flags_are_checked_before_loading() {
    for (flag, value) in [
        ("--max-batch-size", "0"),
        ("--max-queue-delay-us", "10000001"),
        ("--instances", "65"),
        ("--request-timeout-s", "nan"),
        ("--max-request-mib", "0"),
        ("--max-request-proposals", "0"),
        ("--max-request-steps", "1048577"),
        ("--listen", "localhost"),
        ("--trt-profile-batch", "4:2:8"),
    ] {
        let out = infer(&[&"serve", &"--model", &"missing.onnx", &flag, &value]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{flag} {value}: {}",
            stderr(&out)
        );
        assert!(stderr(&out).contains(flag), "{flag}: {}", stderr(&out));
    }
    let out = infer(&[&"serve", &"--model", &"missing.onnx"]);
    assert!(!out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("missing.onnx"), "{}", stderr(&out));
}

/// Optional: with `TCANET_PYTRITON_PYTHON` set to a python that has PyPI's
/// `nvidia-pytriton` (and a shared libpython), Triton Inference Server
/// serves the same ONNX file through onnxruntime, and `triton_compare.py`
/// sends both servers the same requests: the same statuses (except the two
/// documented differences), metadata, response layout, and outputs.
#[test]
fn answers_as_triton_does_when_pytriton_is_available() {
    let Some(pytriton) = std::env::var_os("TCANET_PYTRITON_PYTHON") else {
        eprintln!("skipped: set TCANET_PYTRITON_PYTHON to a python with nvidia-pytriton");
        return;
    };
    let f = fixture(8);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/triton_compare.py");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut triton = Command::new(&pytriton)
        .arg(&script)
        .arg("--serve-triton")
        .arg(&f.model)
        .arg(port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = BufReader::new(triton.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .any(|l| l == "READY");
    let ours = Server::start(&f.model, &[]);
    let out = Command::new(venv().join("bin/python"))
        .arg(&script)
        .args([
            "--ours",
            &ours.url,
            "--triton",
            &format!("127.0.0.1:{port}"),
        ])
        .output()
        .unwrap();
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(triton.id() as i32, libc::SIGINT) };
    let _ = triton.wait();
    assert!(ready, "PyTriton did not start");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["worst_abs_diff_vs_triton"].as_f64().unwrap() <= 1e-6);
    for row in report["rows"].as_array().unwrap() {
        let case = row["case"].as_str().unwrap();
        // Triton passes NaN to the model and answers unparsable JSON with a
        // 500; this server refuses both with a 400.
        if case == "NaN in features" || case == "not JSON" {
            assert_eq!(row["status"]["ours"], 400, "{row}");
            continue;
        }
        assert_eq!(row["same"], true, "{row}");
        if let Some(layout) = row.get("same_layout") {
            assert_eq!(layout, true, "{row}");
        }
    }
}

/// A tiny exported model, for requests that need no dataset.
fn tiny_model() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (model, _) = export_model(dir.path(), "tiny", &ModelConfig::tiny(), 11);
    (dir, model)
}

/// An answer of the server: status, `Content-Type` and body.
struct Reply {
    status: u16,
    content_type: String,
    body: String,
}

impl Reply {
    /// The message of a JSON error body (`{"error": "..."}`); panics on
    /// another body.
    fn error(&self) -> String {
        assert_eq!(self.content_type, "application/json", "{}", self.body);
        let v: serde_json::Value = serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body));
        v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{v}"))
            .to_string()
    }
}

/// One HTTP/1.1 request on its own connection; `target` is sent as written
/// (no percent-encoding).
fn http(url: &str, method: &str, target: &str, body: &str) -> Reply {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(url).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {url}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(body.as_bytes()).unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").expect("no end of headers");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    Reply {
        status,
        content_type,
        body: body.to_string(),
    }
}

/// A JSON request for the `tcanet` model (one video of the tiny model):
/// zero features, these `proposals` of `shape`, and `outputs` when given.
fn raw_request(
    proposals: serde_json::Value,
    shape: &[usize],
    outputs: Option<serde_json::Value>,
) -> String {
    let cfg = ModelConfig::tiny();
    let features = vec![0.0f32; cfg.feat_dim * cfg.temporal_scale];
    let mut request = serde_json::json!({"inputs": [
        {"name": "features", "datatype": "FP32",
         "shape": [1, cfg.feat_dim, cfg.temporal_scale], "data": features},
        {"name": "proposals", "datatype": "FP32", "shape": shape, "data": proposals},
    ]});
    if let Some(outputs) = outputs {
        request["outputs"] = outputs;
    }
    request.to_string()
}

const INFER: &str = "/v2/models/tcanet/infer";

#[test]
fn shared_memory_on_an_output_is_refused_by_name() {
    let (_dir, model) = tiny_model();
    let server = Server::start(&model, &[]);
    let proposals = serde_json::json!([0.1, 0.4, 0.5, 0.9]);
    let asked = serde_json::json!([{"name": "iou_1"}]);
    let ok = http(
        &server.url,
        "POST",
        INFER,
        &raw_request(proposals.clone(), &[1, 2, 2], Some(asked)),
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    for params in [
        serde_json::json!({"shared_memory_region": "out0", "shared_memory_byte_size": 8}),
        serde_json::json!({"shared_memory_byte_size": 8}),
    ] {
        let asked = serde_json::json!([{"name": "iou_1", "parameters": params}]);
        let r = http(
            &server.url,
            "POST",
            INFER,
            &raw_request(proposals.clone(), &[1, 2, 2], Some(asked)),
        );
        assert_eq!(r.status, 400, "{params}: {}", r.body);
        let e = r.error();
        assert!(
            e.contains("output 'iou_1'") && e.contains("shared memory is not supported"),
            "{e}"
        );
    }
}

#[test]
fn nested_data_must_match_the_shape() {
    let (_dir, model) = tiny_model();
    let server = Server::start(&model, &[]);
    let post = |data: serde_json::Value| {
        http(
            &server.url,
            "POST",
            INFER,
            &raw_request(data, &[1, 2, 2], None),
        )
    };
    // Flat with the right count, or nested exactly as the shape: accepted.
    for good in [
        serde_json::json!([0.1, 0.4, 0.5, 0.9]),
        serde_json::json!([[[0.1, 0.4], [0.5, 0.9]]]),
    ] {
        let r = post(good.clone());
        assert_eq!(r.status, 200, "{good}: {}", r.body);
    }
    for (bad, why) in [
        (
            serde_json::json!([[[0.1, 0.4], [0.5]], [0.9]]),
            "data has 2 entries, expected 1",
        ),
        (
            serde_json::json!([[[0.1, 0.4], [0.5]]]),
            "data[0][1] has 1 entries, expected 2",
        ),
        (
            serde_json::json!([[0.1, [0.4, 0.5]]]),
            "data[0][0] is 0.1, expected a list of 2",
        ),
        (
            serde_json::json!([[[0.1, [0.4]], [0.5, 0.9]]]),
            "data[0][0][1] is a list, expected a number",
        ),
        (
            serde_json::json!([0.1, 0.4, [0.5, 0.9]]),
            "data has 3 entries, expected 1",
        ),
        (serde_json::json!(0.1), "'data' must be a list"),
    ] {
        let r = post(bad.clone());
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        let e = r.error();
        assert!(
            e.contains("input 'proposals'") && e.contains(why),
            "{bad}: {e}"
        );
    }
}

#[test]
fn empty_versions_and_undecodable_paths_are_json_errors() {
    let (_dir, model) = tiny_model();
    let server = Server::start(&model, &[]);
    let body = raw_request(serde_json::json!([0.1, 0.4, 0.5, 0.9]), &[1, 2, 2], None);
    let r = http(
        &server.url,
        "POST",
        "/v2/models/tcanet/versions/1/infer",
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = http(
        &server.url,
        "POST",
        "/v2/models/tcanet/versions//infer",
        &body,
    );
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.error().contains("has no version ''"), "{}", r.body);
    let r = http(&server.url, "GET", "/v2/models/tcanet/versions/", "");
    assert_eq!(r.status, 404, "{}", r.body);
    for target in [
        "/v2/models/%ff%fe",
        "/v2/models/%ff%fe/ready",
        "/v2/models/tcanet/versions/%ff/config",
        "/v2/models/%ff/infer",
    ] {
        let method = if target.ends_with("infer") {
            "POST"
        } else {
            "GET"
        };
        let r = http(&server.url, method, target, &body);
        assert_eq!(r.status, 400, "{target}: {}", r.body);
        assert!(r.error().contains("Invalid UTF-8"), "{target}: {}", r.body);
    }
}

/// `tcanet_refine`'s duration follows the one rule for durations (0.001 s
/// to 1e9 s): a subnormal one used to reach the graph and answer 500.
#[test]
fn refine_durations_out_of_range_are_400() {
    let (_dir, model) = tiny_model();
    let server = Server::start(&model, &[]);
    let request = |duration: f64| {
        serde_json::json!({"inputs": [
            {"name": "features", "datatype": "FP32", "shape": [1, 32, 40], "data": vec![0.1f32; 32 * 40]},
            {"name": "proposals", "datatype": "FP64", "shape": [1, 1, 2], "data": [0.0, duration / 2.0]},
            {"name": "proposal_scores", "datatype": "FP64", "shape": [1, 1], "data": [0.9]},
            {"name": "duration", "datatype": "FP64", "shape": [1, 1], "data": [duration]},
        ]})
        .to_string()
    };
    let target = "/v2/models/tcanet_refine/infer";
    let ok = http(&server.url, "POST", target, &request(20.0));
    assert_eq!(ok.status, 200, "{}", ok.body);
    for duration in [1e-310, 1e308] {
        let r = http(&server.url, "POST", target, &request(duration));
        assert_eq!(r.status, 400, "{duration}: {}", r.body);
        let e = r.error();
        assert!(e.contains("duration") && e.contains("from 0.001 to"), "{e}");
    }
}

/// Requests that used to end the server or answer nonsense: nested data
/// under a shape of 2^31 proposals (the declared count was reserved at
/// once), more proposals than --max-request-proposals, features that make
/// the network overflow (NaN answered 200), and load/unload of a model.
#[test]
fn hostile_requests_are_answered_and_the_server_keeps_serving() {
    let (_dir, model) = tiny_model();
    let server = Server::start(&model, &["--max-request-proposals", "3"]);
    let post = |body: &str| http(&server.url, "POST", INFER, body);
    let huge = post(&raw_request(
        serde_json::json!([[[0.1, 0.4]]]),
        &[1, 1 << 31, 2],
        None,
    ));
    assert_eq!(huge.status, 400, "{}", huge.body);
    let many = post(&raw_request(
        serde_json::json!([0.1, 0.2, 0.2, 0.3, 0.3, 0.4, 0.4, 0.5]),
        &[1, 4, 2],
        None,
    ));
    assert_eq!(many.status, 400, "{}", many.body);
    assert!(
        many.error()
            .contains("4 proposals per video, more than --max-request-proposals 3"),
        "{}",
        many.body
    );
    let cfg = ModelConfig::tiny();
    let overflowing = serde_json::json!({"inputs": [
        {"name": "features", "datatype": "FP32", "shape": [1, cfg.feat_dim, cfg.temporal_scale],
         "data": vec![3e38f32; cfg.feat_dim * cfg.temporal_scale]},
        {"name": "proposals", "datatype": "FP32", "shape": [1, 1, 2], "data": [0.1, 0.4]},
    ]});
    let nan = post(&overflowing.to_string());
    assert_eq!(nan.status, 500, "{}", nan.body);
    assert!(
        nan.error()
            .contains("batch item 0: the network produced a non-finite value"),
        "{}",
        nan.body
    );
    for action in ["load", "unload"] {
        let r = http(
            &server.url,
            "POST",
            &format!("/v2/repository/models/tcanet/{action}"),
            "{}",
        );
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.error().contains("fixed set of models"), "{}", r.body);
    }
    let r = http(&server.url, "POST", "/v2/repository/models/nope/load", "{}");
    assert_eq!(r.status, 404, "{}", r.body);
    let ok = post(&raw_request(
        serde_json::json!([0.1, 0.4, 0.5, 0.9]),
        &[1, 2, 2],
        None,
    ));
    assert_eq!(ok.status, 200, "{}", ok.body);
}

/// A client that never finishes its request cannot hold the shutdown: the
/// server ends at --request-timeout-s after the signal, or at once on a
/// second signal.
#[test]
fn a_half_sent_request_does_not_hold_the_shutdown() {
    use std::io::Write;
    let (_dir, model) = tiny_model();
    for second_signal in [false, true] {
        let server = Server::start(&model, &["--request-timeout-s", "2"]);
        let mut conn = std::net::TcpStream::connect(&server.url).unwrap();
        conn.write_all(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let pid = server.child.id() as i32;
        let start = Instant::now();
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        if second_signal {
            std::thread::sleep(Duration::from_millis(300));
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGINT) };
        }
        let (status, log) = server.wait();
        let took = start.elapsed();
        assert!(status.success(), "{status}: {log}");
        let why = if second_signal {
            "SIGINT again; closing the connections still open"
        } else {
            "after the signal; closing the connections still open"
        };
        assert!(log.contains(why), "{log}");
        assert!(took < Duration::from_secs(30), "{took:?}: {log}");
        drop(conn);
    }
}

/// A `--dynamic-time` model takes each video at its own length: the steps a
/// request may hold are bounded by --max-request-steps (its attention's
/// memory grows with their square); up to it, answers as usual.
#[test]
fn a_dynamic_time_model_bounds_the_steps_of_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ModelConfig::tiny();
    let (_, ckpt) = export_model(dir.path(), "tiny", &cfg, 11);
    let model = dir.path().join("dynamic.onnx");
    let opts = tcanet_exporter::ExportOptions {
        dynamic_time: true,
        ..Default::default()
    };
    tcanet_exporter::export_to_file(&ckpt, &opts, &model).unwrap();
    let server = Server::start(&model, &["--max-request-steps", "50"]);
    let request = |steps: usize| {
        serde_json::json!({"inputs": [
            {"name": "features", "datatype": "FP32", "shape": [1, cfg.feat_dim, steps],
             "data": vec![0.1f32; cfg.feat_dim * steps]},
            {"name": "proposals", "datatype": "FP32", "shape": [1, 1, 2], "data": [0.1, 0.4]},
        ]})
        .to_string()
    };
    let ok = http(&server.url, "POST", INFER, &request(50));
    assert_eq!(ok.status, 200, "{}", ok.body);
    let long = http(&server.url, "POST", INFER, &request(51));
    assert_eq!(long.status, 400, "{}", long.body);
    assert!(
        long.error()
            .contains("51 feature steps per video, more than --max-request-steps 50"),
        "{}",
        long.body
    );
}
