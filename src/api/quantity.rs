//! Kubernetes quantities (`resource.ParseQuantity` syntax) and percentages.

/// True when `s` is a Kubernetes quantity: an optional sign, a decimal
/// number, then nothing, a binary suffix (Ki..Ei), a decimal suffix
/// (n u m k M G T P E) or a decimal exponent (e3, E-2).
pub fn is_quantity(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let number_len = body
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    let (number, suffix) = body.split_at(number_len);
    let dots = number.bytes().filter(|b| *b == b'.').count();
    if dots > 1 || !number.bytes().any(|b| b.is_ascii_digit()) {
        return false;
    }
    match suffix {
        "" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" | "n" | "u" | "m" | "k" | "M" | "G" | "T"
        | "P" | "E" => true,
        _ => is_exponent(suffix),
    }
}

fn is_exponent(suffix: &str) -> bool {
    let Some(exp) = suffix.strip_prefix(['e', 'E']) else {
        return false;
    };
    let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The value of a percentage such as `80%` or `12.5%`, if `s` is one.
pub fn parse_percentage(s: &str) -> Option<f64> {
    let number = s.strip_suffix('%')?;
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    number.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        for ok in [
            "1", "0", "4Gi", "512Mi", "100m", "1.5", ".5", "1.", "2k", "1e3", "1E-3", "+1", "-1",
            "1Ki", "1Ei", "5n", "5u", "1e+3", "10T", "3P", "7E",
        ] {
            assert!(is_quantity(ok), "{ok} should be a quantity");
        }
        for bad in [
            "", "Gi", "1GB", "1gi", "1.2.3", "abc", "80%", "1 Gi", " 1", "1e", "1e+", "1Kii", ".",
            "1.5x", "--1", "1K",
        ] {
            assert!(!is_quantity(bad), "{bad} should not be a quantity");
        }
    }

    #[test]
    fn percentages() {
        assert_eq!(parse_percentage("80%"), Some(80.0));
        assert_eq!(parse_percentage("12.5%"), Some(12.5));
        assert_eq!(parse_percentage("0%"), Some(0.0));
        assert_eq!(parse_percentage("150%"), Some(150.0));
        for bad in ["%", "80", "-5%", "eighty%", "80 %", "8%0"] {
            assert_eq!(parse_percentage(bad), None, "{bad}");
        }
    }
}
