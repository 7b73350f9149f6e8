//! `tcanet-train bench` with flags whose random batch does not fit in
//! memory: a clear error (exit 1, the GiB the batch needs), not an abort on
//! the allocation (run under `ulimit -v` so that the result does not depend
//! on the machine's memory). Features of the other layout than
//! `--feature-layout` gives: the message names the trainer's flag.
mod common;

use std::process::{Command, Output};

use common::{assert_clean_message, bin, run, small_config, synth_small, tmp};

/// Virtual memory for each run: room for libtorch, not for the big batches.
const LIMIT_KIB: u64 = 6 << 20;

/// `tcanet-train bench` on the tiny preset (C = 32, T = 64), one step, under
/// [`LIMIT_KIB`] of virtual memory.
fn bench_limited(batch: usize, proposals: usize) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {LIMIT_KIB} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_tcanet-train"))
        .args([
            "bench",
            "--preset",
            "tiny",
            "--device",
            "cpu",
            "--threads",
            "1",
        ])
        .args(["--steps", "1", "--warmup", "0"])
        .args(["--batch-size", &batch.to_string()])
        .args(["--proposals", &proposals.to_string()])
        .output()
        .unwrap()
}

#[test]
fn a_batch_beyond_the_memory_at_hand_is_an_error_not_an_abort() {
    // 65536 × 32 × 64 feature values and 65536 × N × 5 proposal values
    // (proposals, ground truth, mask), 4 bytes each.
    for (proposals, gib) in [(100_000, "122.6"), (10_000, "12.7")] {
        let o = bench_limited(65_536, proposals);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{proposals}: {err}");
        assert!(
            err.contains(&format!(
                "a random batch of 65536 videos × {proposals} proposals for the config needs \
                 {gib} GiB of memory, which could not be allocated (lower --batch-size or \
                 --proposals"
            )),
            "{err}"
        );
        assert_clean_message(&err);
        assert!(o.stdout.is_empty(), "{proposals}");
    }
    // The limit leaves room for a small bench.
    let o = bench_limited(2, 4);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        out.contains("\"batch\":2") && out.contains("\"proposals\":4"),
        "{out}"
    );
}

#[test]
fn features_of_the_other_layout_name_the_trainers_flag() {
    let dir = tmp();
    let data = dir.path().join("data");
    synth_small(&data, 3, 2, 0); // features [T, C] = [32, 16]
    let config = small_config(&dir.path().join("small.json"));
    let out = dir.path().join("run");
    let o = run(bin()
        .args(["train", "--quiet", "--device", "cpu", "--threads", "1"])
        .args(["--epochs", "1", "--feature-layout", "ct"])
        .arg("--data")
        .arg(&data)
        .arg("--config")
        .arg(&config)
        .arg("--out")
        .arg(&out));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("the features have shape [32, 16]: read as [C, T] (layout ct)")
            && err.contains("the file has the other layout, [T, C]")
            && err.contains("tcanet-train --feature-layout tc or auto")
            && !err.contains("give --layout"),
        "{err}"
    );
    assert_clean_message(&err);
    assert!(!out.exists(), "nothing is written on an error");
}

/// A batch that fits on the host but whose step does not (libtorch's own
/// allocation fails inside the network): a one-line error, exit 1, not a
/// panic with libtorch's stack.
#[test]
fn a_step_beyond_the_memory_at_hand_is_an_error_not_a_panic() {
    let o = bench_limited(4096, 1000);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("libtorch failed: ") && err.contains("does not fit in memory"),
        "{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("frame #"),
        "{err}"
    );
    assert_clean_message(&err);
}
