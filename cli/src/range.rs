//! Clap value parsers for numeric flags with a documented range.
//!
//! Every numeric flag is checked when the command line is parsed: a value
//! that is not a number, not finite (`nan`, `inf`), or out of range is a
//! usage error (exit 2) whose message names the flag (clap adds it), the
//! value and the range, e.g. `invalid value '0' for '--runs <N>': must be an
//! integer from 1 to 1000000`.
//!
//! ```
//! use clap::Parser;
//! use tcanet_cli::range;
//! #[derive(Parser)]
//! struct Cli {
//!     /// Runs (1 to 1000).
//!     #[arg(long, default_value_t = 10, value_parser = range::int_in::<u32>(1, 1000))]
//!     runs: u32,
//!     /// A tIoU threshold in (0, 1].
//!     #[arg(long, default_value_t = 0.5, value_parser = range::float_in(0.0, false, 1.0, true))]
//!     tiou: f64,
//! }
//! let cli = Cli::try_parse_from(["x", "--runs", "3", "--tiou", "0.7"]).unwrap();
//! assert_eq!((cli.runs, cli.tiou), (3, 0.7));
//! assert!(Cli::try_parse_from(["x", "--runs", "0"]).is_err());
//! assert!(Cli::try_parse_from(["x", "--tiou", "nan"]).is_err());
//! ```

/// The text of a float range: `in (0, 1]`, `>= 1`, `> 0`.
pub fn describe_float(min: f64, min_inclusive: bool, max: f64, max_inclusive: bool) -> String {
    let lo = if min_inclusive { '[' } else { '(' };
    let hi = if max_inclusive { ']' } else { ')' };
    match (min.is_finite(), max.is_finite()) {
        (true, true) => format!("in {lo}{min}, {max}{hi}"),
        (true, false) => format!("{} {min}", if min_inclusive { ">=" } else { ">" }),
        (false, true) => format!("{} {max}", if max_inclusive { "<=" } else { "<" }),
        (false, false) => "finite".to_string(),
    }
}

/// A parser of finite floats between `min` and `max` (each bound included
/// or not; an infinite bound means none).
pub fn float_in(
    min: f64,
    min_inclusive: bool,
    max: f64,
    max_inclusive: bool,
) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync + 'static {
    move |text: &str| {
        let range = describe_float(min, min_inclusive, max, max_inclusive);
        let want = || format!("must be a finite number {range}");
        let v: f64 = text.trim().parse().map_err(|_| want())?;
        let above = if min_inclusive { v >= min } else { v > min };
        let below = if max_inclusive { v <= max } else { v < max };
        if v.is_finite() && above && below {
            Ok(v)
        } else {
            Err(want())
        }
    }
}

/// A number as messages show it: as Rust prints it, unless its magnitude
/// would take a long run of zeros (at least 1e15 or below 1e-6: `1e39`,
/// `1e-300`), then in scientific notation.
/// Generic over `f32` and `f64` so that each prints its own shortest form.
pub fn shown<T>(x: T) -> String
where
    T: Into<f64> + Copy + std::fmt::Display + std::fmt::LowerExp,
{
    let wide: f64 = x.into();
    let magnitude = wide.abs();
    if wide.is_finite() && wide != 0.0 && !(1e-6..1e15).contains(&magnitude) {
        format!("{x:e}")
    } else {
        x.to_string()
    }
}

/// A parser of integers from `min` to `max` (both included) into `T`.
pub fn int_in<T>(
    min: u64,
    max: u64,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: TryFrom<u64> + Clone + Send + Sync + 'static,
{
    move |text: &str| {
        let want = || format!("must be an integer from {min} to {max}");
        let v: u64 = text.trim().parse().map_err(|_| want())?;
        if !(min..=max).contains(&v) {
            return Err(want());
        }
        T::try_from(v).map_err(|_| want())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_shown_short() {
        assert_eq!(shown(2.5), "2.5");
        assert_eq!(shown(-0.2), "-0.2");
        assert_eq!(shown(1e39), "1e39");
        assert_eq!(shown(1e-300), "1e-300");
        assert_eq!(shown(123456.75), "123456.75");
        assert_eq!(shown(f64::NAN), "NaN");
        assert_eq!(shown(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(shown(1e30f32), "1e30");
    }

    #[test]
    fn floats_must_be_finite_and_in_range() {
        let unit = float_in(0.0, false, 1.0, true);
        assert_eq!(unit("1"), Ok(1.0));
        assert_eq!(unit("0.05"), Ok(0.05));
        for bad in [
            "0",
            "-1",
            "1.0000001",
            "nan",
            "NaN",
            "inf",
            "-inf",
            "1e999",
            "x",
            "",
        ] {
            let e = unit(bad).unwrap_err();
            assert_eq!(e, "must be a finite number in (0, 1]", "{bad}");
        }
        let pos = float_in(1.0, true, f64::INFINITY, false);
        assert_eq!(pos("1"), Ok(1.0));
        assert_eq!(pos("0.5").unwrap_err(), "must be a finite number >= 1");
        assert!(pos("inf").is_err());
    }

    #[test]
    fn integers_must_be_in_range_and_fit() {
        let runs = int_in::<u32>(1, 1_000_000);
        assert_eq!(runs("7"), Ok(7));
        for bad in [
            "0",
            "-1",
            "1.5",
            "nan",
            "inf",
            "99999999999999999999999",
            "1000001",
        ] {
            assert_eq!(
                runs(bad).unwrap_err(),
                "must be an integer from 1 to 1000000",
                "{bad}"
            );
        }
        let small = int_in::<u8>(0, 1000);
        assert!(small("300").is_err(), "300 does not fit a u8");
    }

    #[test]
    fn clap_names_the_flag() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[arg(long, value_parser = int_in::<u32>(1, 9), allow_negative_numbers = true)]
            runs: u32,
        }
        let e = Cli::try_parse_from(["x", "--runs", "-1"])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("'-1'") && e.contains("--runs"), "{e}");
        assert!(e.contains("from 1 to 9"), "{e}");
    }
}
