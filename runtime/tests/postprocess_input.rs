//! `tcanet-infer postprocess`: the input proposals through the post-processing
//! alone (no network), checked against the library's `postprocess_video` and
//! the plain reference applied to each video's input proposals directly.
use tcanet_models::ModelConfig;
use tcanet_runtime::postprocess::{postprocess_video, PostProcessOptions, SoftNmsParams};

mod common;
use common::{infer, plain_postprocess, read_results, stderr, synth_videos, write_dataset};

#[test]
fn postprocess_equals_soft_nms_on_each_videos_input_proposals() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = ModelConfig::preset("tiny").unwrap();
    let mut videos = synth_videos(&cfg, 10, 11);
    // Tied scores, and a video with a single proposal (the release keeps it).
    for p in videos[1].proposals.iter_mut() {
        p.2 = (p.2 * 2.0).round() / 2.0;
    }
    videos[2].proposals.truncate(1);
    let data = tmp.path().join("data");
    write_dataset(&data, &videos, cfg.feat_dim);
    // Features are not needed: delete them.
    std::fs::remove_dir_all(data.join("features")).unwrap();

    let cases: [(&[&str], PostProcessOptions); 2] = [
        (&[], PostProcessOptions::default()),
        (
            &[
                "--soft-nms-alpha",
                "0.7",
                "--soft-nms-t1",
                "0.1",
                "--soft-nms-t2",
                "0.5",
                "--top-k",
                "5",
            ],
            PostProcessOptions {
                soft_nms: SoftNmsParams {
                    alpha: 0.7,
                    t1: 0.1,
                    t2: 0.5,
                    ..SoftNmsParams::default()
                },
                top_k: 5,
            },
        ),
    ];
    for (i, (flags, opts)) in cases.iter().enumerate() {
        let out = tmp.path().join(format!("out{i}.json"));
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"postprocess"];
        let (ann, props) = (data.join("annotations.json"), data.join("proposals.json"));
        // The first case with --data DIR, the second with explicit files and no --features.
        if i == 0 {
            args.extend([&"--data" as &dyn AsRef<std::ffi::OsStr>, &data]);
        } else {
            args.extend([
                &"--annotations" as &dyn AsRef<std::ffi::OsStr>,
                &ann,
                &"--proposals",
                &props,
            ]);
        }
        args.extend([
            &"--subset" as &dyn AsRef<std::ffi::OsStr>,
            &"validation",
            &"-o",
            &out,
        ]);
        for f in flags.iter() {
            args.push(f);
        }
        let o = infer(&args);
        assert!(o.status.success(), "case {i}: {}", stderr(&o));

        let got = read_results(&out);
        let want_videos: Vec<_> = videos.iter().filter(|v| v.subset == "validation").collect();
        assert_eq!(
            got.iter().map(|(v, _)| v.as_str()).collect::<Vec<_>>(),
            want_videos
                .iter()
                .map(|v| v.id.as_str())
                .collect::<Vec<_>>(),
            "case {i}: videos in the annotations' order"
        );
        for ((video, entries), v) in got.iter().zip(&want_videos) {
            let seg: Vec<(f64, f64)> = v.proposals.iter().map(|p| (p.0, p.1)).collect();
            let scores: Vec<f64> = v.proposals.iter().map(|p| p.2).collect();
            let lib = postprocess_video(&seg, &scores, v.duration, opts);
            assert_eq!(entries.len(), lib.len(), "case {i}: {video}: number kept");
            for (e, l) in entries.iter().zip(&lib) {
                assert_eq!(
                    (e.0, e.1, e.2),
                    (l.start, l.end, l.score),
                    "case {i}: {video}"
                );
                assert!(e.3.is_none());
            }
            let mut plain = plain_postprocess(
                &seg,
                &scores,
                &vec![1.0; seg.len()],
                v.duration,
                opts.soft_nms.alpha,
                opts.soft_nms.t1,
                opts.soft_nms.t2,
            );
            plain.truncate(opts.top_k);
            assert_eq!(
                entries.len(),
                plain.len(),
                "case {i}: {video}: plain, number kept"
            );
            for (e, p) in entries.iter().zip(&plain) {
                assert!(
                    (e.0 - p.0).abs() <= 1e-12
                        && (e.1 - p.1).abs() <= 1e-12
                        && (e.2 - p.2).abs() <= 1e-12,
                    "case {i}: {video}: {e:?} vs {p:?}"
                );
            }
            if video == &videos[2].id {
                let p = videos[2].proposals[0];
                assert_eq!(
                    entries.iter().map(|e| (e.0, e.1, e.2)).collect::<Vec<_>>(),
                    [(p.0, p.1, p.2)],
                    "a single proposal is kept as it is"
                );
            } else {
                assert!(!entries.is_empty());
            }
        }
    }
}

#[test]
fn postprocess_names_the_file_video_and_field_of_a_bad_proposal() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = ModelConfig::preset("tiny").unwrap();
    let mut videos = synth_videos(&cfg, 4, 3);
    let p = &mut videos[0].proposals[2];
    (p.0, p.1) = (p.1, p.0);
    let data = tmp.path().join("data");
    write_dataset(&data, &videos, cfg.feat_dim);
    let out = tmp.path().join("out.json");
    let o = infer(&[&"postprocess", &"--data", &data, &"-o", &out]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("proposals.json") && err.contains("v_000") && err.contains("start >= end"),
        "{err}"
    );
    assert!(!out.exists(), "nothing is written on an error");
}
