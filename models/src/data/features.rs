//! Per-video features: one `.npy` per video, `[T, C]` or `[C, T]`, read into
//! a channel-major [`FeatureMatrix`], then padded or resampled to the model's T.
use super::npy::read_npy;
use super::{DataError, ErrorKind};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// How a feature file's two dimensions are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FeatureLayout {
    /// Detect from the model's channel count C: the dimension equal to C is
    /// the channel one. A square `[C, C]` array (T equal to C) could be
    /// either and is an error asking for the layout.
    #[default]
    Auto,
    /// `[T, C]`: one row per time step (the common layout).
    TimeChannels,
    /// `[C, T]`: one row per channel.
    ChannelsTime,
}

impl FeatureLayout {
    /// Its name as files write it: `auto`, `tc` or `ct`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::TimeChannels => "tc",
            Self::ChannelsTime => "ct",
        }
    }
}

fn unknown_layout(s: &str) -> String {
    format!("unknown feature layout '{s}': use auto, tc ([T, C]) or ct ([C, T])")
}

/// A flag's spelling: a [`FeatureLayout::name`] in any case, or `t,c`,
/// `time-channels`, `c,t`, `channels-time`.
impl FromStr for FeatureLayout {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "tc" | "t,c" | "time-channels" => Ok(Self::TimeChannels),
            "ct" | "c,t" | "channels-time" => Ok(Self::ChannelsTime),
            _ => Err(unknown_layout(s)),
        }
    }
}

/// Written as its [`FeatureLayout::name`].
impl serde::Serialize for FeatureLayout {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Read from exactly a [`FeatureLayout::name`] (files take no other spelling).
impl<'de> serde::Deserialize<'de> for FeatureLayout {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        [Self::Auto, Self::TimeChannels, Self::ChannelsTime]
            .into_iter()
            .find(|l| l.name() == text)
            .ok_or_else(|| serde::de::Error::custom(unknown_layout(&text)))
    }
}

/// A video's features, channel-major: `data[c * steps + t]`.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureMatrix {
    /// Time steps.
    pub steps: usize,
    /// Channels C.
    pub channels: usize,
    /// Values, `[C, steps]` row-major.
    pub data: Vec<f32>,
}

impl FeatureMatrix {
    /// Value at channel `c`, step `t`.
    pub fn at(&self, c: usize, t: usize) -> f32 {
        self.data[c * self.steps + t]
    }

    /// Zero-pads at the end to `t` steps (`t >= steps`), channel-major.
    pub fn padded(&self, t: usize) -> Vec<f32> {
        assert!(t >= self.steps, "padding cannot shorten");
        let mut out = vec![0f32; self.channels * t];
        for c in 0..self.channels {
            out[c * t..c * t + self.steps]
                .copy_from_slice(&self.data[c * self.steps..(c + 1) * self.steps]);
        }
        out
    }

    /// Linearly interpolates to exactly `t` steps, channel-major.
    ///
    /// Steps are treated as cell centres (align_corners=False): new step `j`
    /// reads the old timeline at `u = (j + 0.5) * steps / t - 0.5`, clamped to
    /// `[0, steps - 1]`, so the covered time span is unchanged.
    pub fn resampled(&self, t: usize) -> Vec<f32> {
        if t == self.steps {
            return self.data.clone();
        }
        let n = self.steps;
        let weights: Vec<(usize, usize, f32)> = (0..t)
            .map(|j| {
                let u = ((j as f64 + 0.5) * n as f64 / t as f64 - 0.5).clamp(0.0, (n - 1) as f64);
                let lo = u.floor() as usize;
                let hi = (lo + 1).min(n - 1);
                (lo, hi, (u - lo as f64) as f32)
            })
            .collect();
        let mut out = vec![0f32; self.channels * t];
        for c in 0..self.channels {
            let row = &self.data[c * n..(c + 1) * n];
            for (j, &(lo, hi, w)) in weights.iter().enumerate() {
                out[c * t + j] = row[lo] * (1.0 - w) + row[hi] * w;
            }
        }
        out
    }
}

/// `DIR/<video>.npy`: where a video's features are expected.
pub fn feature_path(dir: &Path, video: &str) -> PathBuf {
    dir.join(format!("{video}.npy"))
}

/// Decides which dimension of `shape` is time, given C and the layout.
fn orient(
    shape: [usize; 2],
    channels: usize,
    layout: FeatureLayout,
) -> Result<bool /* time-major */, ErrorKind> {
    let wrong = || ErrorKind::WrongChannels {
        shape,
        expected: channels,
    };
    match layout {
        FeatureLayout::TimeChannels if shape[1] == channels => Ok(true),
        FeatureLayout::ChannelsTime if shape[0] == channels => Ok(false),
        FeatureLayout::TimeChannels => Err(layout_mismatch(shape, channels, 1)),
        FeatureLayout::ChannelsTime => Err(layout_mismatch(shape, channels, 0)),
        FeatureLayout::Auto if shape[0] == channels && shape[1] == channels => {
            Err(ErrorKind::Invalid(format!(
                "the features have shape [{c}, {c}]: with the model's {c} channels it may be \
                 [T, C] or [C, T]; {}",
                give_layout("tc or ct"),
                c = channels
            )))
        }
        FeatureLayout::Auto if shape[1] == channels => Ok(true),
        FeatureLayout::Auto if shape[0] == channels => Ok(false),
        FeatureLayout::Auto => Err(wrong()),
    }
}

/// Features whose dimension `axis` should hold the model's channels under
/// the layout given (`tc`: axis 1, `ct`: axis 0) but does not; says so when
/// the other dimension would fit (the file has the other layout).
fn layout_mismatch(shape: [usize; 2], channels: usize, axis: usize) -> ErrorKind {
    let [(form, layout), (other_form, other)] = match axis {
        1 => [("[T, C]", "tc"), ("[C, T]", "ct")],
        _ => [("[C, T]", "ct"), ("[T, C]", "tc")],
    };
    let hint = if shape[1 - axis] == channels {
        format!(
            "; its other dimension is, so the file has the other layout, {other_form}: {}",
            give_layout(&format!("{other} or auto"))
        )
    } else {
        String::new()
    };
    ErrorKind::Invalid(format!(
        "the features have shape [{}, {}]: read as {form} (layout {layout}) their dimension \
         {axis} should be the model's {channels} channels (feat_dim), and it is not{hint}",
        shape[0], shape[1]
    ))
}

/// How to give the feature layout, for messages: each binary's flag with
/// `choices` (`tc or ct`). The one place that names these flags.
fn give_layout(choices: &str) -> String {
    format!(
        "give the layout (tcanet-infer --layout {choices}; tcanet-train --feature-layout \
         {choices}, or \"feature_layout\" in --train-config)"
    )
}

/// Reads `path` (the features of `video`) as a channel-major matrix with
/// `channels` channels; a wrong channel count, an empty array, NaN or ±Inf is
/// an error naming the file, the video and the position.
pub fn load_features(
    path: &Path,
    video: &str,
    channels: usize,
    layout: FeatureLayout,
) -> Result<FeatureMatrix, DataError> {
    let arr = read_npy(path).map_err(|e| e.video(video))?;
    let time_major =
        orient(arr.shape, channels, layout).map_err(|k| DataError::new(path, k).video(video))?;
    let steps = if time_major {
        arr.shape[0]
    } else {
        arr.shape[1]
    };
    if steps == 0 {
        return Err(DataError::invalid(path, "the features have no time steps").video(video));
    }
    let data = if time_major {
        let mut out = vec![0f32; arr.data.len()];
        for t in 0..steps {
            for c in 0..channels {
                out[c * steps + t] = arr.data[t * channels + c];
            }
        }
        out
    } else {
        arr.data
    };
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(DataError::new(
            path,
            ErrorKind::NonFinite {
                step: i % steps,
                channel: i / steps,
                value: data[i],
            },
        )
        .video(video));
    }
    Ok(FeatureMatrix {
        steps,
        channels,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::super::npy::{npy_bytes_f16, npy_bytes_f32};
    use super::*;

    #[test]
    fn layouts_are_written_and_read_by_name_only() {
        for (layout, name) in [
            (FeatureLayout::Auto, "auto"),
            (FeatureLayout::TimeChannels, "tc"),
            (FeatureLayout::ChannelsTime, "ct"),
        ] {
            let json = serde_json::to_string(&layout).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(
                serde_json::from_str::<FeatureLayout>(&json).unwrap(),
                layout
            );
            assert_eq!(name.parse::<FeatureLayout>(), Ok(layout));
        }
        // The flags' other spellings are not a file's.
        assert_eq!("TC".parse(), Ok(FeatureLayout::TimeChannels));
        for bad in ["\"TC\"", "\"time-channels\"", "\"x\"", "1"] {
            assert!(serde_json::from_str::<FeatureLayout>(bad).is_err(), "{bad}");
        }
        let e = serde_json::from_str::<FeatureLayout>("\"x\"").unwrap_err();
        assert!(e.to_string().contains("unknown feature layout 'x'"), "{e}");
    }

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("tcanet-feat-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// [T=5, C=4] with value 10*t + c.
    fn tc() -> Vec<f32> {
        (0..5)
            .flat_map(|t| (0..4).map(move |c| (10 * t + c) as f32))
            .collect()
    }

    #[test]
    fn both_layouts_and_f16_give_the_same_matrix() {
        let d = dir();
        let data = tc();
        std::fs::write(d.join("tc.npy"), npy_bytes_f32([5, 4], &data)).unwrap();
        let mut ct = vec![0f32; 20];
        for t in 0..5 {
            for c in 0..4 {
                ct[c * 5 + t] = data[t * 4 + c];
            }
        }
        std::fs::write(d.join("ct.npy"), npy_bytes_f16([4, 5], &ct)).unwrap();
        let a = load_features(&d.join("tc.npy"), "v", 4, FeatureLayout::Auto).unwrap();
        let b = load_features(&d.join("ct.npy"), "v", 4, FeatureLayout::Auto).unwrap();
        let b2 = load_features(&d.join("ct.npy"), "v", 4, FeatureLayout::ChannelsTime).unwrap();
        assert_eq!((a.steps, a.channels), (5, 4));
        assert_eq!(a, b);
        assert_eq!(b, b2);
        assert_eq!(a.at(3, 2), 23.0);
        let e = load_features(&d.join("tc.npy"), "v", 4, FeatureLayout::ChannelsTime)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("tc.npy") && e.contains("'v'") && e.contains("[5, 4]"),
            "{e}"
        );
        // The layout given is named, and the other dimension's fit noted
        // with each binary's way to give the layout.
        assert!(
            e.ends_with(
                "the features have shape [5, 4]: read as [C, T] (layout ct) their dimension 0 \
                 should be the model's 4 channels (feat_dim), and it is not; its other dimension \
                 is, so the file has the other layout, [T, C]: give the layout (tcanet-infer \
                 --layout tc or auto; tcanet-train --feature-layout tc or auto, or \
                 \"feature_layout\" in --train-config)"
            ),
            "{e}"
        );
        let e = load_features(&d.join("ct.npy"), "v", 4, FeatureLayout::TimeChannels)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("read as [T, C] (layout tc)")
                && e.contains("the other layout, [C, T]")
                && e.contains("tcanet-infer --layout ct or auto;")
                && e.contains("tcanet-train --feature-layout ct or auto,"),
            "{e}"
        );
        let e = load_features(&d.join("tc.npy"), "v", 3, FeatureLayout::TimeChannels)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("dimension 1 should be the model's 3 channels"),
            "{e}"
        );
        assert!(!e.contains("other layout"), "{e}");
    }

    #[test]
    fn wrong_channels_nan_and_missing_are_named() {
        let d = dir();
        std::fs::write(d.join("w.npy"), npy_bytes_f32([5, 4], &tc())).unwrap();
        let e = load_features(&d.join("w.npy"), "vid_w", 8, FeatureLayout::Auto)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("w.npy") && e.contains("'vid_w'") && e.contains("8 channels"),
            "{e}"
        );
        let mut data = tc();
        data[2 * 4 + 3] = f32::NAN;
        std::fs::write(d.join("n.npy"), npy_bytes_f32([5, 4], &data)).unwrap();
        let e = load_features(&d.join("n.npy"), "vid_n", 4, FeatureLayout::Auto)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'vid_n'") && e.contains("step 2, channel 3"),
            "{e}"
        );
        data[2 * 4 + 3] = f32::INFINITY;
        std::fs::write(d.join("n.npy"), npy_bytes_f32([5, 4], &data)).unwrap();
        assert!(load_features(&d.join("n.npy"), "vid_n", 4, FeatureLayout::Auto).is_err());
        let e = load_features(&d.join("none.npy"), "vid_m", 4, FeatureLayout::Auto).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::Missing));
        assert!(e.to_string().contains("none.npy") && e.to_string().contains("'vid_m'"));
    }

    #[test]
    fn a_square_array_needs_an_explicit_layout() {
        let d = dir();
        let data: Vec<f32> = (0..16).map(|i| i as f32).collect();
        std::fs::write(d.join("sq.npy"), npy_bytes_f32([4, 4], &data)).unwrap();
        let e = load_features(&d.join("sq.npy"), "vid_sq", 4, FeatureLayout::Auto)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sq.npy") && e.contains("'vid_sq'") && e.contains("[4, 4]"),
            "{e}"
        );
        assert!(
            e.contains("tcanet-infer --layout tc or ct;")
                && e.contains("tcanet-train --feature-layout tc or ct,"),
            "{e}"
        );
        let tc = load_features(&d.join("sq.npy"), "v", 4, FeatureLayout::TimeChannels).unwrap();
        let ct = load_features(&d.join("sq.npy"), "v", 4, FeatureLayout::ChannelsTime).unwrap();
        // [T, C] transposed into channel-major; [C, T] kept as it is.
        assert_eq!(tc.at(1, 2), data[2 * 4 + 1]);
        assert_eq!(ct.at(1, 2), data[4 + 2]);
    }

    #[test]
    fn padding_and_resampling() {
        let m = FeatureMatrix {
            steps: 4,
            channels: 2,
            data: vec![0., 1., 2., 3., 10., 20., 30., 40.],
        };
        assert_eq!(
            m.padded(6),
            vec![0., 1., 2., 3., 0., 0., 10., 20., 30., 40., 0., 0.]
        );
        assert_eq!(m.resampled(4), m.data);
        // Down to 2 steps: u = 0.5 and 2.5.
        assert_eq!(m.resampled(2), vec![0.5, 2.5, 15., 35.]);
        // Up to 8 steps: u = (j + 0.5) / 2 - 0.5 clamped to [0, 3].
        let up = m.resampled(8);
        let expect: Vec<f32> = (0..8)
            .map(|j| ((j as f64 + 0.5) / 2.0 - 0.5).clamp(0.0, 3.0) as f32)
            .collect();
        assert_eq!(&up[..8], &expect[..]);
    }
}
