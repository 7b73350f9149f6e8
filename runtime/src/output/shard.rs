//! Shards: which videos one task of a sharded run processes, and where its
//! partial file goes.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A shard given on the command line or by a scheduler that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// `--shard` is not `K/N` with numbers.
    #[error("invalid shard '{text}': {reason}")]
    Malformed {
        /// The text given.
        text: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// K is not below N, or N is 0.
    #[error("invalid shard {index}/{count}: need N >= 1 and 0 <= K < N")]
    OutOfRange {
        /// K.
        index: usize,
        /// N.
        count: usize,
    },
    /// A scheduler variable that is not a number.
    #[error("{name}={value} is not a number")]
    NotANumber {
        /// The environment variable.
        name: &'static str,
        /// Its value.
        value: String,
    },
    /// `SLURM_ARRAY_TASK_ID` without a count.
    #[error("SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not; pass --shard-count N")]
    SlurmCountMissing,
    /// `SLURM_ARRAY_TASK_ID` below `SLURM_ARRAY_TASK_MIN`.
    #[error("SLURM_ARRAY_TASK_ID={id} is below SLURM_ARRAY_TASK_MIN={min}")]
    SlurmBelowMin {
        /// The task id.
        id: usize,
        /// The array's first id.
        min: usize,
    },
    /// `JOB_COMPLETION_INDEX` without `--shard-count`.
    #[error(
        "JOB_COMPLETION_INDEX is set (Kubernetes Indexed Job): pass --shard-count N (the Job's completions)"
    )]
    CompletionCountMissing,
}

/// Which rows of the dataset a shard owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This shard's index K, `0 <= K < count`.
    pub index: usize,
    /// Number of shards N.
    pub count: usize,
}

impl Shard {
    /// The whole dataset as one shard.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Parses `K/N`.
    pub fn parse(text: &str) -> Result<Self, ShardError> {
        let bad = |reason| ShardError::Malformed {
            text: text.to_string(),
            reason,
        };
        let (k, n) = text
            .split_once('/')
            .ok_or_else(|| bad("expected K/N, e.g. 0/4"))?;
        let index: usize = k.trim().parse().map_err(|_| bad("K must be a number"))?;
        let count: usize = n.trim().parse().map_err(|_| bad("N must be a number"))?;
        Self::new(index, count)
    }

    /// A checked shard `index` of `count`.
    pub fn new(index: usize, count: usize) -> Result<Self, ShardError> {
        if count == 0 || index >= count {
            return Err(ShardError::OutOfRange { index, count });
        }
        Ok(Self { index, count })
    }

    /// The shard given by a scheduler's environment, if any:
    /// `SLURM_ARRAY_TASK_ID` − `SLURM_ARRAY_TASK_MIN` (0 if unset) of
    /// `SLURM_ARRAY_TASK_COUNT`; else `JOB_COMPLETION_INDEX` (Kubernetes
    /// Indexed Job) of `count` (from `--shard-count`). Returns the shard and
    /// the variable it came from.
    pub fn from_env(
        get: impl Fn(&str) -> Option<String>,
        count: Option<usize>,
    ) -> Result<Option<(Self, &'static str)>, ShardError> {
        let num = |name: &'static str| -> Result<Option<usize>, ShardError> {
            match get(name) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| ShardError::NotANumber { name, value: v }),
            }
        };
        if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
            let n = num("SLURM_ARRAY_TASK_COUNT")?
                .or(count)
                .ok_or(ShardError::SlurmCountMissing)?;
            let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let k = id
                .checked_sub(min)
                .ok_or(ShardError::SlurmBelowMin { id, min })?;
            return Self::new(k, n).map(|s| Some((s, "SLURM_ARRAY_TASK_ID")));
        }
        if let Some(k) = num("JOB_COMPLETION_INDEX")? {
            let n = count.ok_or(ShardError::CompletionCountMissing)?;
            return Self::new(k, n).map(|s| Some((s, "JOB_COMPLETION_INDEX")));
        }
        Ok(None)
    }

    /// This shard's items out of `total`, in order: every N-th item starting
    /// at K (round-robin, so long and short videos spread evenly).
    pub fn indices(&self, total: usize) -> impl Iterator<Item = usize> + '_ {
        (self.index..total).step_by(self.count.max(1))
    }

    /// How many of `total` items this shard owns.
    pub fn len_of(&self, total: usize) -> usize {
        if self.index >= total {
            0
        } else {
            (total - self.index).div_ceil(self.count.max(1))
        }
    }

    /// The partial file name for `output`: `DIR/STEM.shard-K-of-N.EXT`.
    pub fn partial_path(&self, output: &Path) -> PathBuf {
        let stem = output
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "results".into());
        let ext = output
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default();
        output.with_file_name(format!(
            "{stem}.shard-{}-of-{}{ext}",
            self.index, self.count
        ))
    }
}

/// Shard bookkeeping stored in a partial file (`tcanet_shard`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// Shard index K.
    pub index: usize,
    /// Shard count N.
    pub count: usize,
    /// The videos this shard was given, in order.
    pub assigned: Vec<String>,
    /// The assigned videos that failed (absent from `results`).
    pub failed: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn len_of_counts_the_round_robin_slice() {
        for total in [0usize, 1, 5, 12, 13] {
            for count in 1..6 {
                for index in 0..count {
                    let s = Shard { index, count };
                    assert_eq!(s.len_of(total), s.indices(total).count());
                }
            }
        }
    }
}
