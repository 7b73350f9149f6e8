//! What every reader of a JSON file says about a number JSON cannot hold.

/// The non-finite literal (`NaN`, `Infinity`, `-Infinity`) that `rest`
/// starts with, if any: Python's json module writes them for non-finite
/// floats, and no JSON reader accepts them.
pub fn non_finite_literal(rest: &[u8]) -> Option<&'static str> {
    ["NaN", "Infinity", "-Infinity"]
        .into_iter()
        .find(|lit| rest.starts_with(lit.as_bytes()))
}

/// "found LITERAL, which is not valid JSON (…)", saying where such a
/// literal comes from and what to do.
pub fn found_non_finite(literal: &str) -> String {
    format!(
        "found {literal}, which is not valid JSON (Python's json module writes it for \
         non-finite floats; fix the writer or replace it with a finite number)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_literals_and_nothing_else() {
        assert_eq!(non_finite_literal(b"NaN, 1]"), Some("NaN"));
        assert_eq!(non_finite_literal(b"Infinity]"), Some("Infinity"));
        assert_eq!(non_finite_literal(b"-Infinity]"), Some("-Infinity"));
        for other in [&b"-1"[..], b"null", b"nan", b"Inf", b""] {
            assert_eq!(non_finite_literal(other), None);
        }
        assert!(found_non_finite("NaN").starts_with("found NaN, which is not valid JSON"));
    }
}
