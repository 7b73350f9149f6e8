//! The server's counters, rendered in Prometheus' text format for `/metrics`.
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use super::models::ModelKind;

/// Upper bounds (seconds) of the latency histograms.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A cumulative histogram with fixed bounds.
struct Histogram {
    bounds: Vec<f64>,
    counts: Vec<AtomicU64>,
    /// Sum in microseconds (or units for unit-less histograms).
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: Vec<f64>) -> Self {
        Self {
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            bounds,
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    fn observe(&self, value: f64, micros: u64) {
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            if value <= *b {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str, sum_scale: f64) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 * sum_scale;
        let braces = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                format!("{{{s}}}")
            }
        };
        let _ = writeln!(out, "{name}_sum{} {sum}", braces(labels));
        let _ = writeln!(out, "{name}_count{} {count}", braces(labels));
    }
}

/// Everything `/metrics` shows.
pub struct Metrics {
    /// Inference requests per model.
    requests: [AtomicU64; 2],
    /// Failed inference requests per (model, HTTP status).
    failures: Mutex<BTreeMap<(ModelKind, u16), u64>>,
    /// Latency of inference requests per model (arrival to answer).
    latency: [Histogram; 2],
    /// Requests waiting for the model.
    queue_depth: AtomicU64,
    queue_capacity: u64,
    /// Videos per model call.
    batch_videos: Histogram,
    /// Time of a model call.
    model_call: Histogram,
    /// All HTTP requests by status.
    http: Mutex<BTreeMap<u16, u64>>,
}

fn index(kind: ModelKind) -> usize {
    match kind {
        ModelKind::Raw => 0,
        ModelKind::Refine => 1,
    }
}

impl Metrics {
    /// Zeroed metrics for a queue of `queue_capacity` and batches up to `max_batch`.
    pub fn new(queue_capacity: usize, max_batch: usize) -> Self {
        let mut sizes: Vec<f64> = (0..)
            .map(|i| f64::from(1u32 << i))
            .take_while(|&b| b < max_batch as f64)
            .collect();
        sizes.push(max_batch as f64);
        let latency = || Histogram::new(LATENCY_BUCKETS.to_vec());
        Self {
            requests: Default::default(),
            failures: Mutex::new(BTreeMap::new()),
            latency: [latency(), latency()],
            queue_depth: AtomicU64::new(0),
            queue_capacity: queue_capacity as u64,
            batch_videos: Histogram::new(sizes),
            model_call: latency(),
            http: Mutex::new(BTreeMap::new()),
        }
    }

    /// Records an inference request of `kind` answered with `status` after `elapsed`.
    pub fn observe_infer(&self, kind: ModelKind, status: u16, elapsed: Duration) {
        let i = index(kind);
        self.requests[i].fetch_add(1, Ordering::Relaxed);
        self.latency[i].observe(elapsed.as_secs_f64(), elapsed.as_micros() as u64);
        if status != 200 {
            *self
                .failures
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry((kind, status))
                .or_default() += 1;
        }
    }

    /// Records any HTTP answer.
    pub fn observe_http(&self, status: u16) {
        *self
            .http
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(status)
            .or_default() += 1;
    }

    /// Sets the number of waiting requests.
    pub fn set_queue_depth(&self, depth: usize) {
        self.queue_depth.store(depth as u64, Ordering::Relaxed);
    }

    /// Records a model call of `videos` videos that took `elapsed`.
    pub fn observe_batch(&self, videos: usize, elapsed: Duration) {
        self.batch_videos
            .observe(videos as f64, videos as u64 * 1_000_000);
        self.model_call
            .observe(elapsed.as_secs_f64(), elapsed.as_micros() as u64);
    }

    /// The Prometheus text exposition of everything.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_requests(&mut out);
        help(
            &mut out,
            "tcanet_queue_depth",
            "gauge",
            "Requests waiting for the model.",
        );
        let depth = self.queue_depth.load(Ordering::Relaxed);
        let _ = writeln!(out, "tcanet_queue_depth {depth}");
        help(
            &mut out,
            "tcanet_queue_capacity",
            "gauge",
            "Requests that may wait before new ones are refused (503).",
        );
        let _ = writeln!(out, "tcanet_queue_capacity {}", self.queue_capacity);
        help(
            &mut out,
            "tcanet_batch_videos",
            "histogram",
            "Videos per model call.",
        );
        self.batch_videos
            .render(&mut out, "tcanet_batch_videos", "", 1e-6);
        let name = "tcanet_model_call_duration_seconds";
        help(&mut out, name, "histogram", "Time of one model call.");
        self.model_call.render(&mut out, name, "", 1e-6);
        help(
            &mut out,
            "tcanet_http_responses_total",
            "counter",
            "HTTP responses, per status.",
        );
        for (code, n) in self
            .http
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(out, "tcanet_http_responses_total{{code=\"{code}\"}} {n}");
        }
        out
    }

    /// Requests, failures and latency per model.
    fn render_requests(&self, out: &mut String) {
        let name = "tcanet_infer_requests_total";
        help(
            out,
            name,
            "counter",
            "Inference requests received, per model.",
        );
        for k in ModelKind::ALL {
            let n = self.requests[index(k)].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}{{model=\"{}\"}} {n}", k.name());
        }
        let name = "tcanet_infer_failures_total";
        help(
            out,
            name,
            "counter",
            "Inference requests answered with an error, per model and HTTP status.",
        );
        let failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        for k in ModelKind::ALL {
            let mut any = false;
            for ((_, code), n) in failures.range((k, 0)..=(k, u16::MAX)) {
                any = true;
                let _ = writeln!(out, "{name}{{model=\"{}\",code=\"{code}\"}} {n}", k.name());
            }
            if !any {
                let _ = writeln!(out, "{name}{{model=\"{}\",code=\"none\"}} 0", k.name());
            }
        }
        drop(failures);
        let name = "tcanet_infer_request_duration_seconds";
        help(
            out,
            name,
            "histogram",
            "Time from a request's arrival to its answer, per model.",
        );
        for k in ModelKind::ALL {
            let labels = format!("model=\"{}\"", k.name());
            self.latency[index(k)].render(out, name, &labels, 1e-6);
        }
    }
}

/// The `# HELP` and `# TYPE` lines of a metric.
fn help(out: &mut String, name: &str, kind: &str, text: &str) {
    let _ = writeln!(out, "# HELP {name} {text}\n# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_histograms_and_gauges() {
        let m = Metrics::new(64, 8);
        m.observe_infer(ModelKind::Raw, 200, Duration::from_millis(3));
        m.observe_infer(ModelKind::Raw, 400, Duration::from_millis(30));
        m.observe_batch(3, Duration::from_millis(2));
        m.set_queue_depth(5);
        m.observe_http(200);
        let text = m.render();
        for line in [
            "tcanet_infer_requests_total{model=\"tcanet\"} 2",
            "tcanet_infer_requests_total{model=\"tcanet_refine\"} 0",
            "tcanet_infer_failures_total{model=\"tcanet\",code=\"400\"} 1",
            "tcanet_infer_request_duration_seconds_bucket{model=\"tcanet\",le=\"0.005\"} 1",
            "tcanet_infer_request_duration_seconds_bucket{model=\"tcanet\",le=\"0.05\"} 2",
            "tcanet_infer_request_duration_seconds_count{model=\"tcanet\"} 2",
            "tcanet_infer_request_duration_seconds_sum{model=\"tcanet\"} 0.033",
            "tcanet_queue_depth 5",
            "tcanet_queue_capacity 64",
            "tcanet_batch_videos_bucket{le=\"2\"} 0",
            "tcanet_batch_videos_bucket{le=\"4\"} 1",
            "tcanet_batch_videos_bucket{le=\"8\"} 1",
            "tcanet_batch_videos_sum 3",
            "tcanet_http_responses_total{code=\"200\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }
}
