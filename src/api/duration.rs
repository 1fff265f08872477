//! Go duration strings (`time.ParseDuration`): `300ms`, `-1.5h`, `1h30m`, `0`.

use std::fmt;

const NANOS_PER_UNIT: &[(&str, u64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("\u{00b5}s", 1_000), // micro sign
    ("\u{03bc}s", 1_000), // Greek small letter mu
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// A parsed Go duration, in nanoseconds (Go's `time.Duration` range).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoDuration(pub i64);

impl GoDuration {
    pub const fn from_secs(secs: i64) -> Self {
        GoDuration(secs * 1_000_000_000)
    }

    pub fn as_nanos(self) -> i64 {
        self.0
    }
}

/// Why a string is not a Go duration; the text is shown to users.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DurationError {
    Empty,
    MissingUnit,
    UnknownUnit(String),
    BadNumber,
    Overflow,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationError::Empty => f.write_str("empty duration"),
            DurationError::MissingUnit => f.write_str("missing unit"),
            DurationError::UnknownUnit(u) => write!(f, "unknown unit {u:?}"),
            DurationError::BadNumber => f.write_str("malformed number"),
            DurationError::Overflow => f.write_str("out of range"),
        }
    }
}

/// Go's `leadingFraction`: the fraction's digits as an integer and 10^(digits
/// kept); digits past what fits in 63 bits are ignored.
fn leading_fraction(digits: &str) -> (u64, f64) {
    let (mut value, mut divisor) = (0u64, 1.0f64);
    for digit in digits.bytes() {
        let next = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(digit - b'0')))
            .filter(|v| *v <= 1 << 63);
        match next {
            Some(next) => {
                value = next;
                divisor *= 10.0;
            }
            None => break,
        }
    }
    (value, divisor)
}

/// Parses a Go duration with the semantics of Go's `time.ParseDuration`.
pub fn parse_go_duration(input: &str) -> Result<GoDuration, DurationError> {
    let mut s = input;
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    let negative = match s.as_bytes()[0] {
        b'-' => {
            s = &s[1..];
            true
        }
        b'+' => {
            s = &s[1..];
            false
        }
        _ => false,
    };
    if s == "0" {
        return Ok(GoDuration(0));
    }
    if s.is_empty() {
        return Err(DurationError::BadNumber);
    }
    // Accumulate in u64 like Go does; the limit is 1<<63 (only reachable when negative).
    let limit: u64 = 1 << 63;
    let mut total: u64 = 0;
    while !s.is_empty() {
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, rest) = s.split_at(int_len);
        s = rest;
        let mut frac_part = "";
        if let Some(rest) = s.strip_prefix('.') {
            let frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &rest[..frac_len];
            s = &rest[frac_len..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(DurationError::BadNumber);
        }
        let unit_len = s
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(s.len(), |(i, _)| i);
        let (unit, rest) = s.split_at(unit_len);
        s = rest;
        if unit.is_empty() {
            return Err(DurationError::MissingUnit);
        }
        let scale = NANOS_PER_UNIT
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, n)| *n)
            .ok_or_else(|| DurationError::UnknownUnit(unit.to_owned()))?;
        let whole: u64 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| DurationError::Overflow)?
        };
        let mut value = whole.checked_mul(scale).ok_or(DurationError::Overflow)?;
        let (fraction, divisor) = leading_fraction(frac_part);
        if fraction > 0 {
            // As Go does: the digits as an integer times unit/10^digits, which is
            // nanosecond-exact (a parsed "0.digits" float is not: .520407s was 1 ns short).
            value = value
                .checked_add((fraction as f64 * (scale as f64 / divisor)) as u64)
                .ok_or(DurationError::Overflow)?;
        }
        total = total.checked_add(value).ok_or(DurationError::Overflow)?;
        if total > limit {
            return Err(DurationError::Overflow);
        }
    }
    if negative {
        Ok(GoDuration((total as i128).wrapping_neg() as i64))
    } else if total >= limit {
        Err(DurationError::Overflow)
    } else {
        Ok(GoDuration(total as i64))
    }
}

/// Formats nanoseconds as Go's `Duration.String()` does: `1h2m3.5s`, `150ms`, `0s`.
pub fn format_go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_owned();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    if n < 1_000_000_000 {
        let (value, unit) = match n {
            0..1_000 => return format!("{sign}{n}ns"),
            1_000..1_000_000 => (n as f64 / 1e3, "µs"),
            _ => (n as f64 / 1e6, "ms"),
        };
        return format!("{sign}{}{unit}", trim_float(value));
    }
    let hours = n / 3_600_000_000_000;
    let minutes = (n / 60_000_000_000) % 60;
    let seconds = (n % 60_000_000_000) as f64 / 1e9;
    let mut out = sign.to_owned();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&format!("{}s", trim_float(seconds)));
    out
}

fn trim_float(value: f64) -> String {
    let text = format!("{value:.9}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn fractions_are_nanosecond_exact() {
        for (text, nanos) in [
            (".520407s", 520_407_000),
            (".5256s", 525_600_000),
            ("12.54775m", 752_865_000_000),
            ("1.000000000000000000001s", S),
        ] {
            assert_eq!(parse_go_duration(text).unwrap().as_nanos(), nanos, "{text}");
        }
    }

    #[test]
    fn formats_like_go() {
        let cases: &[(i64, &str)] = &[
            (0, "0s"),
            (1, "1ns"),
            (1_100, "1.1µs"),
            (2_200_000, "2.2ms"),
            (3 * S + 300_000_000, "3.3s"),
            (4 * 60 * S + 5 * S, "4m5s"),
            (3600 * S, "1h0m0s"),
            (5 * 3600 * S + 6 * 60 * S + 7 * S + 1_000_000, "5h6m7.001s"),
            (-90 * S, "-1m30s"),
            // A float fraction came out 1 ns short for these (found by cargo fuzz).
            (520_407_000, "520.407ms"),
            (2 * S + 7_950_404, "2.007950404s"),
        ];
        for (nanos, want) in cases {
            assert_eq!(format_go_duration(*nanos), *want);
            assert_eq!(
                parse_go_duration(want).unwrap().as_nanos(),
                *nanos,
                "{want} round-trips"
            );
        }
    }

    #[test]
    fn accepts_what_go_accepts() {
        let cases: &[(&str, i64)] = &[
            ("0", 0),
            ("-0", 0),
            ("+0", 0),
            ("5s", 5 * S),
            ("30s", 30 * S),
            ("1478s", 1478 * S),
            ("-5s", -5 * S),
            ("+5s", 5 * S),
            ("-0s", 0),
            ("5.0s", 5 * S),
            ("5.6s", 5 * S + 600_000_000),
            ("5.s", 5 * S),
            (".5s", S / 2),
            ("1.004s", S + 4_000_000),
            ("1.0040s", S + 4_000_000),
            ("100.00100s", 100 * S + 1_000_000),
            ("10ns", 10),
            ("11us", 11_000),
            ("12\u{00b5}s", 12_000),
            ("12\u{03bc}s", 12_000),
            ("13ms", 13_000_000),
            ("14s", 14 * S),
            ("15m", 15 * 60 * S),
            ("16h", 16 * 3600 * S),
            ("3h30m", (3 * 3600 + 30 * 60) * S),
            ("10.5s4m", 4 * 60 * S + 10 * S + S / 2),
            ("-2m3.4s", -(2 * 60 * S + 3 * S + 400_000_000)),
            (
                "1h2m3s4ms5us6ns",
                3600 * S + 2 * 60 * S + 3 * S + 4_000_000 + 5_000 + 6,
            ),
            (
                "39h9m14.425s",
                39 * 3600 * S + 9 * 60 * S + 14 * S + 425_000_000,
            ),
            ("1.5h", 5400 * S),
            ("300ms", 300_000_000),
            ("9223372036854775807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("0.3333333333333333333h", 1_200_000_000_000),
        ];
        for (input, want) in cases {
            assert_eq!(parse_go_duration(input), Ok(GoDuration(*want)), "{input}");
        }
    }

    #[test]
    fn rejects_what_go_rejects() {
        let cases: &[(&str, DurationError)] = &[
            ("", DurationError::Empty),
            ("3", DurationError::MissingUnit),
            ("30", DurationError::MissingUnit),
            ("-", DurationError::BadNumber),
            ("s", DurationError::BadNumber),
            (".", DurationError::BadNumber),
            ("-.", DurationError::BadNumber),
            (".s", DurationError::BadNumber),
            ("+.s", DurationError::BadNumber),
            ("1d", DurationError::UnknownUnit("d".into())),
            ("7d", DurationError::UnknownUnit("d".into())),
            ("1 h", DurationError::UnknownUnit(" h".into())),
            ("1hour", DurationError::UnknownUnit("hour".into())),
            ("1S", DurationError::UnknownUnit("S".into())),
            ("thirty", DurationError::BadNumber),
            ("1h-5m", DurationError::UnknownUnit("h-".into())),
            ("9223372036854775808ns", DurationError::Overflow),
            ("9223372036854775.808us", DurationError::Overflow),
            ("99999999999999999999h", DurationError::Overflow),
            ("3000000h", DurationError::Overflow),
        ];
        for (input, want) in cases {
            assert_eq!(parse_go_duration(input).as_ref(), Err(want), "{input}");
        }
    }
}
