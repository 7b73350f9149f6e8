//! Where the state dict sits in the files of the authors' release.
//!
//! * `TCA_best.pth.tar` / `TCA_checkpoint.pth.tar`: `{'epoch': N, 'state_dict': {...}}`,
//!   saved through DataParallel (keys start with `module.`).
//! * `epoch-N.pth.tar`: `{'epoch': N, 'model_state': {...}, 'optimizer_dict': {...}}`
//!   (the optimizer state is not needed and is skipped).
//! * a bare state dict `{key: tensor}`.
use std::fmt;

use super::convert::Problem;
use super::{Tensor, Value};

/// Which of the release's layouts a file has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `{'epoch', 'state_dict'}` (TCA_best.pth.tar).
    StateDict,
    /// `{'epoch', 'model_state', 'optimizer_dict'}` (epoch-N.pth.tar).
    ModelState,
    /// A bare state dict.
    Bare,
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layout::StateDict => "{'epoch', 'state_dict'}",
            Layout::ModelState => "{'epoch', 'model_state', 'optimizer_dict'}",
            Layout::Bare => "bare state dict",
        })
    }
}

/// The state dict of a release file, with the epoch it records.
#[derive(Debug, Clone)]
pub struct ReleaseCheckpoint {
    /// The layout found.
    pub layout: Layout,
    /// The file's `epoch` entry, if it has one.
    pub epoch: Option<u64>,
    /// Every state dict entry, keys as in the file, in file order.
    pub entries: Vec<(String, Tensor)>,
}

/// Finds the state dict in the object a release file holds.
pub fn find_state_dict(root: &Value) -> Result<ReleaseCheckpoint, Problem> {
    let Value::Dict(top) = root else {
        return Err(Problem::NoStateDict(format!(
            "the file holds {}, not a dict",
            root.kind()
        )));
    };
    let (layout, dict) = if let Some(sd) = root.get("state_dict") {
        (Layout::StateDict, sd)
    } else if let Some(sd) = root.get("model_state") {
        (Layout::ModelState, sd)
    } else if !top.is_empty() && top.iter().all(|(_, v)| matches!(v, Value::Tensor(_))) {
        (Layout::Bare, root)
    } else {
        let keys: Vec<String> = top.iter().take(12).map(|(k, _)| key_text(k)).collect();
        return Err(Problem::NoStateDict(format!(
            "a dict with keys [{}]{}",
            keys.join(", "),
            if top.len() > 12 { ", ..." } else { "" }
        )));
    };
    let epoch = match (layout, root.get("epoch")) {
        (Layout::Bare, _) | (_, None) => None,
        (_, Some(Value::Int(n))) if *n >= 0 => Some(*n as u64),
        (_, Some(other)) => return Err(Problem::BadEpoch(describe(other))),
    };
    let Value::Dict(items) = dict else {
        return Err(Problem::NoStateDict(format!(
            "its state dict is {}, not a dict",
            dict.kind()
        )));
    };
    let mut entries = Vec::with_capacity(items.len());
    for (k, v) in items {
        let Value::Str(key) = k else {
            return Err(Problem::NoStateDict(format!(
                "its state dict has the non-string key {}",
                key_text(k)
            )));
        };
        match v {
            Value::Tensor(t) => entries.push((key.clone(), t.clone())),
            other => {
                return Err(Problem::NotTensor {
                    key: key.clone(),
                    found: other.kind(),
                })
            }
        }
    }
    Ok(ReleaseCheckpoint {
        layout,
        epoch,
        entries,
    })
}

fn key_text(k: &Value) -> String {
    match k {
        Value::Str(s) => format!("'{s}'"),
        Value::Int(i) => i.to_string(),
        other => other.kind(),
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::Float(x) => x.to_string(),
        other => other.kind(),
    }
}
