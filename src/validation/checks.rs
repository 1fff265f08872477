//! Small value checks shared by the rule groups.

use crate::api::duration::{GoDuration, parse_go_duration};
use crate::api::{DurationText, NumberText};
use crate::validation::codes;
use crate::validation::finding::{Findings, shown};
use std::ops::RangeInclusive;

/// DNS-1123 label: lower case alphanumerics and '-', alphanumeric at both ends, at most 63.
pub fn is_dns1123_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// Kubernetes label value: empty, or at most 63 of [A-Za-z0-9-_.] with alphanumeric ends.
pub fn is_label_value(s: &str) -> bool {
    let bytes = s.as_bytes();
    if bytes.is_empty() {
        return true;
    }
    bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
}

/// The URL's scheme when `s` is `scheme://host...` with a non-empty host.
/// The raw text is checked too: the URL parser repairs `http:///x` and `https:/x`.
pub fn url_scheme_with_host(s: &str) -> Option<String> {
    let s = s.trim();
    let (_, rest) = s.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') {
        return None;
    }
    let parsed = url::Url::parse(s).ok()?;
    let has_host = parsed.host_str().is_some_and(|h| !h.is_empty());
    has_host.then(|| parsed.scheme().to_owned())
}

/// A URL quoted for a message as `scheme://host…`: never its user info,
/// path, query or fragment, which may carry passwords or tokens. Works on
/// the raw text, before any parsing: credentials end at the *last* `@`
/// (a password may hold `/`, `?`, `#`, `@` or spaces), and text that is not
/// `scheme://` (a URL without a scheme) shows its host only.
pub fn shown_url(s: &str) -> String {
    let s = s.trim();
    let (scheme, rest) = match s.split_once("://") {
        Some((scheme, rest)) if is_scheme(scheme) => (Some(scheme), rest),
        _ => (None, s),
    };
    let after_credentials = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let host = after_credentials
        .split(['/', '?', '#', '\\'])
        .next()
        .unwrap_or("");
    let elided = if host.len() < after_credentials.len() || after_credentials.len() < rest.len() {
        "…"
    } else {
        ""
    };
    match scheme {
        Some(scheme) => shown(&format!("{scheme}://{host}{elided}")),
        None => shown(&format!("{host}{elided}")),
    }
}

/// RFC 3986 scheme: a letter, then letters, digits, `+`, `-` or `.`.
fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// True for an `http`/`https` URL with a host.
pub fn is_http_url(s: &str) -> bool {
    matches!(url_scheme_with_host(s).as_deref(), Some("http" | "https"))
}

/// An optional string that is present and not blank.
pub fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|s| !s.trim().is_empty())
}

/// A number field, unless absent or blank.
pub fn given(value: Option<&NumberText>) -> Option<&NumberText> {
    value.filter(|v| !v.is_empty())
}

/// The value as written (cut short) when it is given but not an integer in `range`.
pub fn integer_outside(value: Option<&NumberText>, range: RangeInclusive<i64>) -> Option<String> {
    let value = given(value)?;
    match value.as_i64() {
        Some(n) if range.contains(&n) => None,
        Some(n) => Some(n.to_string()),
        None => Some(shown(&value.as_text())),
    }
}

/// Checks one duration field (blank counts as absent); reports DURATION_INVALID and returns the parsed value.
pub fn check_duration(
    out: &mut Findings,
    field: impl FnOnce() -> String,
    value: Option<&DurationText>,
) -> Option<GoDuration> {
    let text = value?.as_text();
    if text.trim().is_empty() {
        return None;
    }
    match parse_go_duration(&text) {
        Ok(duration) => Some(duration),
        Err(err) => {
            out.report(
                codes::DURATION_INVALID,
                field(),
                format!(
                    "{} is not a Go duration ({err}); write e.g. 30s, 5m or 1h30m",
                    shown(&text)
                ),
            );
            None
        }
    }
}

/// `must be one of a, b, c`, and `; did you mean "b"?` when `value` is a
/// likely typo of one choice (shown only as the choice itself, never the value).
pub fn one_of(value: &str, choices: &[&str]) -> String {
    one_of_or_meant(value, choices, &[])
}

/// [`one_of`], where `meant` maps values people write for a choice that is
/// named otherwise (`helm` for an `http` chart repository) to that choice: a
/// value close to one of them is offered the choice it stands for.
pub fn one_of_or_meant(value: &str, choices: &[&str], meant: &[(&str, &str)]) -> String {
    let listed = choices.join(", ");
    let candidates: Vec<&str> = choices
        .iter()
        .copied()
        .chain(meant.iter().map(|(written, _)| *written))
        .collect();
    let suggestion = closest(value, &candidates).map(|candidate| {
        meant
            .iter()
            .find(|(written, _)| *written == candidate)
            .map_or(candidate, |(_, choice)| *choice)
    });
    match suggestion {
        Some(choice) => format!("must be one of {listed}; did you mean {choice:?}?"),
        None => format!("must be one of {listed}"),
    }
}

pub use crate::text::{closest, nearest};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_enum_values_get_a_suggestion_and_far_ones_none() {
        let cases: [(&str, &[&str], Option<&str>); 9] = [
            ("htpp", &["http", "tcp", "udp"], Some("http")),
            ("get", &["GET", "POST"], Some("GET")),
            ("warnng", &["debug", "info", "warn", "error"], Some("warn")),
            ("gti", &["http", "oci", "git"], Some("git")),
            ("timout", &["timeout", "schedule"], Some("timeout")),
            ("sftp", &["http", "oci", "git"], None),
            ("hlem", &["http", "oci", "git"], None),
            ("", &["http"], None),
            ("x", &["tcp", "udp"], None),
        ];
        let wrong: Vec<_> = cases
            .iter()
            .filter(|(value, choices, want)| closest(value, choices) != *want)
            .map(|(value, _, want)| format!("{value}: want {want:?}"))
            .collect();
        assert!(wrong.is_empty(), "{wrong:?}");
        assert_eq!(
            one_of("htpp", &["http", "tcp"]),
            "must be one of http, tcp; did you mean \"http\"?"
        );
        assert_eq!(one_of("zzz", &["http", "tcp"]), "must be one of http, tcp");
        assert_eq!(closest(&"h".repeat(10_000), &["http"]), None);
    }

    #[test]
    fn a_value_meant_for_a_choice_is_offered_that_choice() {
        let types = ["http", "oci", "git"];
        let meant = [("helm", "http")];
        let cases = [
            ("helm", Some("http")),
            ("hlem", Some("http")),
            ("Helm", Some("http")),
            ("gti", Some("git")),
            ("sftp", None),
        ];
        for (value, want) in cases {
            let message = one_of_or_meant(value, &types, &meant);
            let want = match want {
                Some(choice) => format!("must be one of http, oci, git; did you mean {choice:?}?"),
                None => "must be one of http, oci, git".to_owned(),
            };
            assert_eq!(message, want, "{value}");
        }
    }

    #[test]
    fn nearest_lists_close_choices_nearest_first_without_far_ones() {
        let codes = [
            "CHART_REPO_URL_MISSING",
            "CHART_VERSION_MISSING",
            "HTTP_URL_INVALID",
            "TCP_PORT_INVALID",
            "UDP_PORT_INVALID",
        ];
        let cases: [(&str, usize, &[&str]); 4] = [
            ("CHART_VERSOIN_MISSING", 3, &["CHART_VERSION_MISSING"]),
            (
                "HTTP_PORT_INVALID",
                3,
                &["TCP_PORT_INVALID", "HTTP_URL_INVALID", "UDP_PORT_INVALID"],
            ),
            ("HTTP_PORT_INVALID", 1, &["TCP_PORT_INVALID"]),
            ("NOTHING_ALIKE", 3, &[]),
        ];
        for (value, most, want) in cases {
            assert_eq!(nearest(value, &codes, most), want, "{value}");
        }
    }

    /// Every value `check` gets wrong: refuses one of `ok` or accepts one of `bad`.
    fn misjudged(check: fn(&str) -> bool, ok: &[&str], bad: &[&str]) -> Vec<String> {
        let refused = ok
            .iter()
            .filter(|v| !check(v))
            .map(|v| format!("refused {v:?}"));
        let accepted = bad
            .iter()
            .filter(|v| check(v))
            .map(|v| format!("accepted {v:?}"));
        refused.chain(accepted).collect()
    }

    #[test]
    fn dns_labels() {
        let long_ok = "a".repeat(63);
        let long_bad = "a".repeat(64);
        let ok = ["a", "team-alpha", "0abc", "a1", &long_ok];
        let bad = ["", "-a", "a-", "Team", "a_b", "a.b", &long_bad, "ä"];
        assert_eq!(misjudged(is_dns1123_label, &ok, &bad), Vec::<String>::new());
    }

    #[test]
    fn label_values() {
        let long_ok = "a".repeat(63);
        let long_bad = "a".repeat(64);
        let ok = ["", "a", "Team_A.1", "tenant-a", &long_ok];
        let bad = ["-a", "a-", "a b", "a/b", &long_bad];
        assert_eq!(misjudged(is_label_value, &ok, &bad), Vec::<String>::new());
    }

    #[test]
    fn urls() {
        assert_eq!(
            url_scheme_with_host("https://charts.example.com").as_deref(),
            Some("https")
        );
        assert_eq!(
            url_scheme_with_host("oci://ghcr.io/org/charts").as_deref(),
            Some("oci")
        );
        assert_eq!(
            url_scheme_with_host("git+https://github.com/o/r").as_deref(),
            Some("git+https")
        );
        assert_eq!(url_scheme_with_host("http://"), None);
        assert_eq!(url_scheme_with_host("charts.example.com"), None);
        assert_eq!(url_scheme_with_host("file:///tmp/x"), None);
        assert!(is_http_url("http://svc:8080/health"));
        assert!(!is_http_url("ftp://host/x"));
        assert!(!is_http_url("not a url"));
        let accepted: Vec<&str> = [
            "http:///x",
            "https:/example.com",
            "http:example.com/h",
            "http://:80/x",
            "http://user@/x",
        ]
        .into_iter()
        .filter(|url| url_scheme_with_host(url).is_some())
        .collect();
        assert!(accepted.is_empty(), "{accepted:?}");
    }

    #[test]
    fn urls_are_shown_without_credentials() {
        let cases = [
            (
                "plain",
                "ftp://user:S3CRET@x.io/p?token=T0K#f",
                "\"ftp://x.io…\"",
            ),
            ("no scheme", "u:S3CRET@nohost?token=T0K", "\"nohost…\""),
            (
                "slash in password",
                "https://u:S3/CRET@x.io/p",
                "\"https://x.io…\"",
            ),
            (
                "query mark in password",
                "https://u:S3?CRET@x.io",
                "\"https://x.io…\"",
            ),
            (
                "hash in password",
                "https://u:S3#CRET@x.io",
                "\"https://x.io…\"",
            ),
            (
                "at in password",
                "https://u:S3@CRET@x.io",
                "\"https://x.io…\"",
            ),
            (
                "space in password",
                "https://u:S3 CRET@x.io",
                "\"https://x.io…\"",
            ),
            (
                "no scheme, slash in password",
                "u:S3/CRET@x.io/p",
                "\"x.io…\"",
            ),
            (
                "token in a path without scheme",
                "hooks.example.com/services/S3CRET",
                "\"hooks.example.com…\"",
            ),
            (
                "token in a path",
                "https://hooks.example.com/services/S3CRET",
                "\"https://hooks.example.com…\"",
            ),
            ("not a scheme", "u:S3CRET@h/x?r=https://y", "\"h…\""),
            ("host only", "http://x.io:8080", "\"http://x.io:8080\""),
        ];
        let mut failed = Vec::new();
        for (name, url, want) in cases {
            let got = shown_url(url);
            if got != want || got.contains("S3") || got.contains("T0K") {
                failed.push(format!("{name}: {url} -> {got}, want {want}"));
            }
        }
        assert!(failed.is_empty(), "{failed:#?}");
    }
}
