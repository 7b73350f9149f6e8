//! The run directory: created fresh (a previous demo run of the same name
//! replaced, a foreign directory refused), files written atomically, and the
//! input proposals cut to the scored subset.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tcanet_models::calibration::{Calibration, KEY_CALIBRATION, RELEASE_DECODE_SCALE};
use tcanet_models::checkpoint::{Checkpoint, ConfigOverride};
use tcanet_models::data::{Annotations, ProposalSet};

/// Marks a run directory as written by tcanet-demo (safe to replace).
const MARKER: &str = ".tcanet-demo";

/// Creates `dir`, replacing a previous demo run there; refuses to touch a
/// non-empty directory that the demo did not write.
pub fn prepare_run_dir(dir: &Path) -> Result<PathBuf> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .next()
            .is_none();
        if !empty && !dir.join(MARKER).exists() {
            bail!(
                "{} exists and was not written by tcanet-demo; choose another --name or remove it",
                dir.display()
            );
        }
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("cannot remove the previous run {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_text(
        &dir.join(MARKER),
        "written by tcanet-demo; the next run of the same name replaces this directory\n",
    )?;
    Ok(dir.to_path_buf())
}

/// Writes `text` atomically (temporary sibling, then rename).
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    tcanet_cli::write_atomic_bytes(path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Writes the proposals of `subset`'s videos only, so that the input is
/// scored on the same videos as the refined output (the evaluator's
/// per-video cut counts every video of a submission). Returns the number
/// of videos written.
pub fn write_input_subset(
    proposals: &Path,
    annotations: &Path,
    subset: &str,
    out: &Path,
) -> Result<usize> {
    let annotations_read = Annotations::load(annotations)?;
    let mut props = ProposalSet::load(proposals)?;
    let in_subset = |video: &str| {
        annotations_read
            .get(video)
            .is_some_and(|v| v.subset == subset)
    };
    props.videos.retain(|(video, _)| in_subset(video));
    let kept = ProposalSet::new(props.source, props.videos);
    if kept.videos.is_empty() {
        bail!(
            "{}: no proposals for the videos of subset '{subset}' of {}",
            proposals.display(),
            annotations.display()
        );
    }
    write_text(out, &kept.to_json())?;
    Ok(kept.videos.len())
}

/// Reads the calibration record of `checkpoint` and writes its model
/// config with the release's decode scale (0.2) to `out`, for exporting the
/// same weights decoded as the release decodes them.
pub fn write_release_config(checkpoint: &Path, out: &Path) -> Result<Calibration> {
    let ck = Checkpoint::load(checkpoint, &ConfigOverride::Embedded)?;
    let record = ck.metadata.get(KEY_CALIBRATION).with_context(|| {
        format!(
            "{} has no calibration record ({KEY_CALIBRATION}): was it trained with \
             --decode-scale calibrate?",
            checkpoint.display()
        )
    })?;
    let calibration = Calibration::from_json(record)
        .with_context(|| format!("{}: metadata {KEY_CALIBRATION}", checkpoint.display()))?;
    let mut config = ck.config;
    config.se_decode_scale_infer = RELEASE_DECODE_SCALE;
    write_text(out, &config.to_json())?;
    Ok(calibration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_subset_keeps_the_subset_videos_only() {
        let dir = std::env::temp_dir().join(format!("tcanet-demo-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (ann, props, out) = (dir.join("a.json"), dir.join("p.json"), dir.join("o.json"));
        std::fs::write(
            &ann,
            r#"{"database": {"v1": {"subset": "training", "duration": 5, "annotations": []},
                "v2": {"subset": "validation", "duration": 5, "annotations": []}}}"#,
        )
        .unwrap();
        std::fs::write(
            &props,
            r#"{"version": "x", "results": {"v1": [], "v2": [{"segment": [1, 2], "score": 0.5}], "v3": []}}"#,
        )
        .unwrap();
        assert_eq!(
            write_input_subset(&props, &ann, "validation", &out).unwrap(),
            1
        );
        let back = ProposalSet::load(&out).unwrap();
        assert_eq!(back.videos.len(), 1);
        assert_eq!(back.videos[0].0, "v2");
        assert_eq!(
            (back.videos[0].1[0].start, back.videos[0].1[0].score),
            (1.0, 0.5)
        );
        let err = write_input_subset(&props, &ann, "testing", &out).unwrap_err();
        assert!(
            err.to_string()
                .contains("no proposals for the videos of subset 'testing'"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
