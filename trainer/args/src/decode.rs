//! `--decode-scale` (and the `decode_scale` of a `--train-config` file): how
//! the start/end decode scale at inference (`se_decode_scale_infer`) is set.
use std::fmt;

use serde::{Deserialize, Serialize};
use tcanet_models::calibration::RELEASE_DECODE_SCALE;

use crate::limits;

/// A decode scale that is none of the accepted values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "decode scale '{given}' must be calibrate, release or {}",
    limits::DECODE_SCALE.describe()
)]
pub struct DecodeScaleError {
    /// The text given.
    pub given: String,
}

/// How the start/end decode scale at inference (`se_decode_scale_infer`)
/// is set.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum DecodeScale {
    /// Chosen after training from the grid, on held-out training videos.
    #[default]
    Calibrate,
    /// The release's 0.2, no calibration (the paper exactly).
    Release,
    /// This scale, no calibration.
    Fixed(f64),
}

impl DecodeScale {
    /// Parses `calibrate`, `release` or a scale in (0, 2].
    pub fn parse(text: &str) -> Result<Self, DecodeScaleError> {
        match text.trim() {
            "calibrate" => Ok(Self::Calibrate),
            "release" => Ok(Self::Release),
            other => match other.parse::<f64>() {
                Ok(v) if limits::DECODE_SCALE.contains(v) => Ok(Self::Fixed(v)),
                _ => Err(DecodeScaleError {
                    given: other.to_string(),
                }),
            },
        }
    }

    /// The scale the model is trained and validated with before any
    /// calibration: the fixed one, or the release's for the other policies.
    pub fn initial_scale(self) -> f64 {
        match self {
            Self::Fixed(v) => v,
            Self::Calibrate | Self::Release => RELEASE_DECODE_SCALE,
        }
    }
}

impl fmt::Display for DecodeScale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Calibrate => f.write_str("calibrate"),
            Self::Release => f.write_str("release"),
            Self::Fixed(v) => write!(f, "{v}"),
        }
    }
}

impl Serialize for DecodeScale {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Fixed(v) => s.serialize_f64(*v),
            other => s.serialize_str(&other.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for DecodeScale {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        let text = match &v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_and_json() {
        assert_eq!(DecodeScale::parse("release"), Ok(DecodeScale::Release));
        assert_eq!(DecodeScale::parse("calibrate"), Ok(DecodeScale::Calibrate));
        assert_eq!(DecodeScale::parse("0.5"), Ok(DecodeScale::Fixed(0.5)));
        for bad in ["0", "nan", "inf", "3", "x", "-1"] {
            assert!(DecodeScale::parse(bad).is_err(), "{bad}");
        }
        let v: DecodeScale = serde_json::from_str("0.75").unwrap();
        assert_eq!(v, DecodeScale::Fixed(0.75));
        assert_eq!(serde_json::to_string(&v).unwrap(), "0.75");
        assert_eq!(
            serde_json::to_string(&DecodeScale::Release).unwrap(),
            "\"release\""
        );
        assert!(serde_json::from_str::<DecodeScale>("\"best\"").is_err());
        assert_eq!(DecodeScale::Release.initial_scale(), 0.2);
        assert_eq!(DecodeScale::Fixed(0.5).initial_scale(), 0.5);
    }
}
