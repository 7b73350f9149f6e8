//! Reading the inputs (files or standard input), the checks that run
//! before any work, and the excluded videos.

use std::collections::HashSet;
use std::path::Path;

use tcanet_cli::{refuse_duplicate_outputs, refuse_output_onto_inputs, refuse_stdin_twice};
use tcanet_cli::{Input, Output};
use tcanet_evaluator::{read_video_list, DetectionSet, Error, GroundTruth, ProposalSet};

use crate::args::CommonArgs;
use crate::Failure;

/// Reads `input`: a file with `from_path`, standard input's bytes with
/// `from_slice` (named `<stdin>` in messages).
fn read_input<T>(
    input: &Input,
    from_path: impl FnOnce(&Path) -> Result<T, Error>,
    from_slice: impl FnOnce(&[u8], &str) -> Result<T, Error>,
) -> Result<T, Error> {
    match input {
        Input::Path(p) => from_path(p),
        Input::Stdin => from_slice(&stdin_bytes()?, "<stdin>"),
    }
}

/// Reads a ground truth from a file or standard input.
fn ground_truth(input: &Input, subset: &str) -> Result<GroundTruth, Error> {
    read_input(
        input,
        |p| GroundTruth::from_path(p, subset),
        |bytes, name| GroundTruth::from_slice(bytes, name, subset),
    )
}

/// A submission file's contents: proposals or detections.
pub trait Submission: Sized + Send {
    /// Reads one from a file or standard input.
    fn read(input: &Input) -> Result<Self, Error>;
    /// The same without the videos `ids`.
    fn without(&self, ids: &HashSet<String>) -> Self;
}

impl Submission for ProposalSet {
    fn read(input: &Input) -> Result<Self, Error> {
        read_input(input, |p| Self::from_path(p), Self::from_slice)
    }

    fn without(&self, ids: &HashSet<String>) -> Self {
        self.without_videos(ids)
    }
}

impl Submission for DetectionSet {
    fn read(input: &Input) -> Result<Self, Error> {
        read_input(input, |p| Self::from_path(p), Self::from_slice)
    }

    fn without(&self, ids: &HashSet<String>) -> Self {
        self.without_videos(ids)
    }
}

/// What a scoring command reads: the ground truth, the submission and the
/// optional baseline submission, read in parallel, each without the
/// videos of `--exclude` (whose count is reported).
pub fn scoring_inputs<S: Submission>(
    c: &CommonArgs,
    baseline: Option<&Input>,
    log: &tcanet_cli::Log,
) -> Result<(GroundTruth, S, Option<S>), Error> {
    let excluded = excluded(c.exclude.as_ref())?;
    let (gt, (pred, base)) = rayon::join(
        || ground_truth(&c.gt, &c.subset),
        || rayon::join(|| S::read(&c.pred), || baseline.map(S::read)),
    );
    let (gt, pred, base) = (gt?, pred?, base.transpose()?);
    let Some(ids) = &excluded else {
        return Ok((gt, pred, base));
    };
    report_excluded(log, &gt, ids);
    let base = base.map(|b| b.without(ids));
    Ok((gt.without_videos(ids), pred.without(ids), base))
}

/// Reads any input's bytes (small files: lists, characteristics).
pub fn bytes(input: &Input) -> Result<Vec<u8>, Error> {
    input.read_all().map_err(|cause| Error::Read {
        path: input.name(),
        cause,
    })
}

fn stdin_bytes() -> Result<Vec<u8>, Error> {
    bytes(&Input::Stdin)
}

/// The videos of `--exclude`, if given.
fn excluded(input: Option<&Input>) -> Result<Option<HashSet<String>>, Error> {
    let Some(input) = input else {
        return Ok(None);
    };
    let list = read_video_list(&bytes(input)?, &input.name())?;
    Ok(Some(list.into_iter().collect()))
}

/// The paths of the inputs that are files.
fn input_paths<'a>(inputs: &[&'a Input]) -> Vec<&'a Path> {
    inputs.iter().filter_map(|i| i.path()).collect()
}

/// The checks before any work: standard input read at most once; every
/// output (`(flag, output)`) writable, not an input and not another
/// output.
pub fn check_before_work(
    named_inputs: &[(&str, &Input)],
    outputs: &[(&str, &Output)],
) -> Result<(), Failure> {
    refuse_stdin_twice(named_inputs).map_err(Failure::usage)?;
    let inputs: Vec<&Input> = named_inputs.iter().map(|(_, i)| *i).collect();
    let paths = input_paths(&inputs);
    for (_, out) in outputs {
        refuse_output_onto_inputs(out, &paths)?;
    }
    refuse_duplicate_outputs(outputs)?;
    for (_, out) in outputs {
        out.check_writable()?;
    }
    Ok(())
}

/// The inputs every scoring command reads, named as in messages.
pub fn common_inputs(c: &CommonArgs) -> Vec<(&'static str, &Input)> {
    let mut v = vec![("GT", &c.gt), ("PRED", &c.pred)];
    if let Some(e) = &c.exclude {
        v.push(("--exclude", e));
    }
    v
}

/// Says how many excluded videos were found, on standard error.
fn report_excluded(log: &tcanet_cli::Log, gt: &GroundTruth, ids: &HashSet<String>) {
    let in_gt = gt.videos.iter().filter(|v| ids.contains(&v.id)).count();
    log.info(format!(
        "excluded {} video id(s), {in_gt} of them in the ground truth's subset \"{}\"",
        ids.len(),
        gt.subset
    ));
}
