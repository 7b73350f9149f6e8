//! Times the phases of an evaluation (reading the ground truth, reading the
//! submission, evaluating), each on its own, to see where time goes.
//!
//! `cargo run --release -p tcanet-evaluator --example phases -- proposals|detections GT PRED`

use std::time::Instant;

use tcanet_evaluator::*;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: phases proposals|detections GT PRED");
        std::process::exit(2);
    }
    let (task, gt_path, pred_path) = (&args[1], &args[2], &args[3]);
    let runs = 10;
    let mut best = [f64::INFINITY; 3];
    for _ in 0..runs {
        let t = Instant::now();
        let gt = GroundTruth::from_path(gt_path, "validation").unwrap();
        best[0] = best[0].min(t.elapsed().as_secs_f64());
        if task == "proposals" {
            let t = Instant::now();
            let p = ProposalSet::from_path(pred_path).unwrap();
            best[1] = best[1].min(t.elapsed().as_secs_f64());
            let t = Instant::now();
            evaluate_proposals(&gt, &p, &ProposalOptions::default()).unwrap();
            best[2] = best[2].min(t.elapsed().as_secs_f64());
        } else {
            let t = Instant::now();
            let p = DetectionSet::from_path(pred_path).unwrap();
            best[1] = best[1].min(t.elapsed().as_secs_f64());
            let t = Instant::now();
            evaluate_detections(&gt, &p, &DetectionOptions::default()).unwrap();
            best[2] = best[2].min(t.elapsed().as_secs_f64());
        }
    }
    println!(
        "best of {runs}: ground truth {:.1} ms, submission {:.1} ms, evaluation {:.1} ms",
        1e3 * best[0],
        1e3 * best[1],
        1e3 * best[2]
    );
}
