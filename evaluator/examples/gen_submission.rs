//! Writes a large synthetic submission for benchmarks (not committed):
//! about N proposals or detections over the ground truth's validation
//! videos, noisy copies of the instances plus random segments (and, for
//! detections, labels), with a fixed seed.
//!
//! `cargo run --release -p tcanet-evaluator --example gen_submission -- proposals|detections GT OUT.json [N]`

use std::io::Write;

use tcanet_evaluator::{GroundTruth, GtVideo};

/// SplitMix64, as `tcanet_models::rand` has it: the evaluator depends on no
/// crate of the network, so its example carries the generator's few lines.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One entry: a noisy copy of an instance (half the time) or a random
/// segment, and its label index.
fn entry(rng: &mut Rng, v: &GtVideo, n_labels: usize) -> (f64, f64, usize) {
    let duration = v.duration.unwrap_or(100.0).max(1.0);
    let (mut s, mut e, mut label) = if !v.instances.is_empty() && rng.unit() < 0.5 {
        let g = &v.instances[rng.next() as usize % v.instances.len()];
        let len = (g.segment[1] - g.segment[0]).abs().max(0.1);
        (
            g.segment[0] + (rng.unit() - 0.5) * 0.4 * len,
            g.segment[1] + (rng.unit() - 0.5) * 0.4 * len,
            g.label,
        )
    } else {
        let a = rng.unit() * duration;
        (
            a,
            a + rng.unit() * (duration - a),
            rng.next() as usize % n_labels,
        )
    };
    if rng.unit() < 0.3 {
        label = rng.next() as usize % n_labels;
    }
    if s > e && rng.unit() < 0.5 {
        std::mem::swap(&mut s, &mut e);
    }
    (s, e, label)
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: gen_submission proposals|detections GT OUT.json [N=470000]";
    if args.len() < 4 || !["proposals", "detections"].contains(&args[1].as_str()) {
        eprintln!("{usage}");
        std::process::exit(2);
    }
    let labelled = args[1] == "detections";
    let n: usize = match args.get(4).map(|s| s.parse()) {
        None => 470_000,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("N must be a positive count\n{usage}");
            std::process::exit(2);
        }
    };
    let gt = match GroundTruth::from_path(&args[2], "validation") {
        Ok(gt) => gt,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let per_video = n.div_ceil(gt.videos.len());
    let mut rng = Rng(20210619);
    let mut out = std::io::BufWriter::new(std::fs::File::create(&args[3])?);
    write!(
        out,
        "{{\"version\": \"VERSION 1.3\", \"external_data\": {{\"used\": false, \"details\": \"generated\"}}, \"results\": {{"
    )?;
    let mut written = 0;
    for (vi, v) in gt.videos.iter().enumerate() {
        if written >= n {
            break;
        }
        if vi > 0 {
            write!(out, ", ")?;
        }
        write!(out, "\"{}\": [", v.id)?;
        let count = per_video.min(n - written);
        for k in 0..count {
            let (s, e, label) = entry(&mut rng, v, gt.labels.len());
            if k > 0 {
                write!(out, ", ")?;
            }
            let score = rng.unit();
            if labelled {
                write!(
                    out,
                    "{{\"segment\": [{s:?}, {e:?}], \"score\": {score:?}, \"label\": \"{}\"}}",
                    gt.labels[label]
                )?;
            } else {
                write!(out, "{{\"segment\": [{s:?}, {e:?}], \"score\": {score:?}}}")?;
            }
        }
        written += count;
        write!(out, "]")?;
    }
    writeln!(out, "}}}}")?;
    out.flush()?;
    eprintln!("wrote {written} {} to {}", args[1], args[3]);
    Ok(())
}
