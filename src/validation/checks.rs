//! Small value checks shared by the rule groups.

use crate::api::DurationText;
use crate::api::duration::{GoDuration, parse_go_duration};
use crate::validation::finding::{Findings, shown};

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

/// The URL's scheme when `s` parses as a URL with a non-empty host.
pub fn url_scheme_with_host(s: &str) -> Option<String> {
    let parsed = url::Url::parse(s.trim()).ok()?;
    let has_host = parsed.host_str().is_some_and(|h| !h.is_empty());
    has_host.then(|| parsed.scheme().to_owned())
}

/// True for an `http`/`https` URL with a host.
pub fn is_http_url(s: &str) -> bool {
    matches!(url_scheme_with_host(s).as_deref(), Some("http" | "https"))
}

/// An optional string that is present and not blank.
pub fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|s| !s.trim().is_empty())
}

/// Checks one duration field; reports DURATION_INVALID and returns the parsed value.
pub fn check_duration(
    out: &mut Findings,
    field: impl FnOnce() -> String,
    value: Option<&DurationText>,
) -> Option<GoDuration> {
    let value = value?;
    let text = value.as_text();
    match parse_go_duration(&text) {
        Ok(duration) => Some(duration),
        Err(err) => {
            out.error(
                "DURATION_INVALID",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        for ok in ["a", "team-alpha", "0abc", "a1", &"a".repeat(63)] {
            assert!(is_dns1123_label(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "Team", "a_b", "a.b", &"a".repeat(64), "ä"] {
            assert!(!is_dns1123_label(bad), "{bad}");
        }
    }

    #[test]
    fn label_values() {
        for ok in ["", "a", "Team_A.1", "tenant-a", &"a".repeat(63)] {
            assert!(is_label_value(ok), "{ok}");
        }
        for bad in ["-a", "a-", "a b", "a/b", &"a".repeat(64)] {
            assert!(!is_label_value(bad), "{bad}");
        }
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
    }
}
