//! Rules for `spec.chart`: name, version, repository, auth, TLS, values.

use super::checks::{
    check_duration, non_empty, one_of, one_of_or_meant, shown_url, url_scheme_with_host,
};
use super::codes;
use super::finding::{Findings, shown, shown_max};
use super::{FnRule, Input};
use crate::api::{ChartRepositorySpec, ChartSpec};
use crate::yaml::{MAX_DEPTH, MAX_FLOW_DEPTH, RootKind, ShapeError};

pub const RULES: &[FnRule] = &[
    FnRule {
        name: "chart/name",
        codes: &[codes::CHART_NAME_MISSING, codes::CHART_NAME_INVALID],
        check: chart_name,
    },
    FnRule {
        name: "chart/version",
        codes: &[
            codes::CHART_VERSION_MISSING,
            codes::CHART_VERSION_INVALID,
            codes::CHART_VERSION_UNPINNED,
        ],
        check: chart_version,
    },
    FnRule {
        name: "chart/repository",
        codes: &[
            codes::CHART_REPO_URL_MISSING,
            codes::CHART_REPO_URL_INVALID,
            codes::CHART_REPO_TYPE_INVALID,
            codes::CHART_REPO_TYPE_MISMATCH,
            codes::CHART_REPO_INSECURE,
        ],
        check: repository,
    },
    FnRule {
        name: "chart/auth",
        codes: &[
            codes::AUTH_TYPE_INVALID,
            codes::AUTH_INLINE_CREDENTIALS,
            codes::AUTH_CREDENTIALS_INCOMPLETE,
        ],
        check: auth,
    },
    FnRule {
        name: "chart/tls",
        codes: &[codes::TLS_INSECURE_SKIP_VERIFY],
        check: repository_tls,
    },
    FnRule {
        name: "chart/values",
        codes: &[codes::VALUES_INLINE_INVALID, codes::VALUES_REF_NAME_MISSING],
        check: values,
    },
    FnRule {
        name: "chart/durations",
        codes: &[codes::DURATION_INVALID],
        check: durations,
    },
];

const REPO_TYPES: &[&str] = &["http", "oci", "git"];
/// Repository types people write for one of [`REPO_TYPES`]: a classic Helm
/// chart repository is served over HTTP(S).
const REPO_TYPES_MEANT: &[(&str, &str)] = &[("helm", "http"), ("https", "http")];
const AUTH_TYPES: &[&str] = &["basic", "token", "docker-config"];

fn chart(input: Input<'_>) -> Option<&ChartSpec> {
    input.spec.chart.as_ref()
}

fn repo(input: Input<'_>) -> Option<&ChartRepositorySpec> {
    chart(input)?.repository.as_ref()
}

/// Helm chart names: `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`.
fn is_chart_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn chart_name(input: Input<'_>, out: &mut Findings) {
    const FIELD: &str = "spec.chart.name";
    match chart(input).and_then(|c| non_empty(&c.name)) {
        None => out.report(
            codes::CHART_NAME_MISSING,
            FIELD,
            "chart name is required; set spec.chart.name",
        ),
        Some(name) if !is_chart_name(name) => out.report(
            codes::CHART_NAME_INVALID,
            FIELD,
            format!(
                "chart name {} must be lower case letters, digits and '-', e.g. ingress-nginx",
                shown(name)
            ),
        ),
        Some(_) => {}
    }
}

/// What a chart version string pins.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum VersionKind {
    /// One exact version (`1.2.3`, `v1.2.3`, `=1.2.3`).
    Exact,
    /// A range or wildcard (`^1.2`, `>=1.0 <2.0`, `1.2.x`, `*`).
    Range,
    Invalid,
}

/// Classifies a chart version the way Helm reads it (Masterminds semver syntax:
/// comparators separated by spaces or commas, `||` alternatives, hyphen ranges).
pub fn classify_version(raw: &str) -> VersionKind {
    let text = raw.trim();
    if semver::Version::parse(text.strip_prefix('v').unwrap_or(text)).is_ok() {
        return VersionKind::Exact;
    }
    let alternatives: Vec<&str> = text.split("||").map(str::trim).collect();
    let mut requirements = Vec::with_capacity(alternatives.len());
    for alternative in &alternatives {
        match parse_requirement(alternative) {
            Some(req) => requirements.push(req),
            None => return VersionKind::Invalid,
        }
    }
    let pins_one = |req: &semver::VersionReq| matches!(req.comparators.as_slice(), [c] if c.op == semver::Op::Exact && c.minor.is_some() && c.patch.is_some());
    if requirements.len() == 1 && pins_one(&requirements[0]) {
        VersionKind::Exact
    } else {
        VersionKind::Range
    }
}

fn parse_requirement(alternative: &str) -> Option<semver::VersionReq> {
    if alternative.is_empty() {
        return None;
    }
    let tokens: Vec<&str> = alternative
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
        .collect();
    let mut comparators: Vec<String> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let token = tokens[i];
        if tokens.get(i + 1) == Some(&"-") {
            // Hyphen range `a - b` means `>=a, <=b`.
            let upper = tokens.get(i + 2)?;
            comparators.push(format!(">={}", strip_v(token)));
            comparators.push(format!("<={}", strip_v(upper)));
            i += 3;
            continue;
        }
        let op_len = token
            .find(|c: char| !matches!(c, '<' | '>' | '=' | '~' | '^' | '!'))
            .unwrap_or(token.len());
        let (op, version) = token.split_at(op_len);
        if op == "!=" {
            // Helm allows exclusions; semver has no `!=`, so check the version and move on.
            let excluded = if version.is_empty() {
                tokens.get(i + 1)?
            } else {
                &version
            };
            semver::Version::parse(strip_v(excluded)).ok()?;
            i += if version.is_empty() { 2 } else { 1 };
            continue;
        }
        if op.contains('!') {
            return None;
        }
        if version.is_empty() {
            // Operator written apart from its version: `>= 1.0`.
            let next = tokens.get(i + 1)?;
            comparators.push(format!("{op}{}", strip_v(next)));
            i += 2;
        } else {
            comparators.push(format!("{op}{}", strip_v(version)));
            i += 1;
        }
    }
    if comparators.is_empty() {
        // Only exclusions: any other version matches.
        return Some(semver::VersionReq::STAR);
    }
    semver::VersionReq::parse(&comparators.join(", ")).ok()
}

fn strip_v(s: &str) -> &str {
    s.strip_prefix('v').unwrap_or(s)
}

fn chart_version(input: Input<'_>, out: &mut Findings) {
    const FIELD: &str = "spec.chart.version";
    let version = chart(input)
        .and_then(|c| c.version.as_ref())
        .map(|v| v.as_text());
    let Some(version) = version.as_deref().map(str::trim).filter(|v| !v.is_empty()) else {
        out.report(
            codes::CHART_VERSION_MISSING,
            FIELD,
            "chart version is required; set spec.chart.version, e.g. 1.2.3",
        );
        return;
    };
    match classify_version(version) {
        VersionKind::Exact => {}
        VersionKind::Range => out.report(
            codes::CHART_VERSION_UNPINNED,
            FIELD,
            format!(
                "{} is a range; pin one version, e.g. 1.2.3",
                shown_max(version, 20)
            ),
        ),
        VersionKind::Invalid => out.report(
            codes::CHART_VERSION_INVALID,
            FIELD,
            format!(
                "{} is not a semver version or range; write e.g. 1.2.3 or ^1.2",
                shown(version)
            ),
        ),
    }
}

fn repository(input: Input<'_>, out: &mut Findings) {
    const URL: &str = "spec.chart.repository.url";
    const TYPE: &str = "spec.chart.repository.type";
    let repo = repo(input);
    let url = repo.and_then(|r| non_empty(&r.url));
    let scheme = match url {
        None => {
            out.report(
                codes::CHART_REPO_URL_MISSING,
                URL,
                "repository URL is required; set spec.chart.repository.url",
            );
            None
        }
        Some(url) => match url_scheme_with_host(url) {
            Some(s) if matches!(s.as_str(), "http" | "https" | "oci" | "git+https") => Some(s),
            _ => {
                out.report(
                    codes::CHART_REPO_URL_INVALID,
                    URL,
                    format!(
                        "{} is not a URL with a host and scheme http, https, oci or git+https",
                        shown_url(url)
                    ),
                );
                None
            }
        },
    };
    if scheme.as_deref() == Some("http") {
        out.report(
            codes::CHART_REPO_INSECURE,
            URL,
            "plain http repository; use https",
        );
    }
    let Some(repo_type) = repo.and_then(|r| non_empty(&r.type_)) else {
        return;
    };
    if !REPO_TYPES.contains(&repo_type) {
        out.report(
            codes::CHART_REPO_TYPE_INVALID,
            TYPE,
            format!(
                "repository type {} {}",
                shown(repo_type),
                one_of_or_meant(repo_type, REPO_TYPES, REPO_TYPES_MEANT)
            ),
        );
        return;
    }
    let Some(scheme) = scheme else { return };
    let expected = match repo_type {
        "oci" => "oci://",
        "git" => "git+https://",
        _ => "http(s)://",
    };
    let agrees = match repo_type {
        "oci" => scheme == "oci",
        "git" => scheme == "git+https",
        _ => scheme == "http" || scheme == "https",
    };
    if !agrees {
        out.report(
            codes::CHART_REPO_TYPE_MISMATCH,
            TYPE,
            format!(
                "type {repo_type} needs a URL starting with {expected}; fix the type or the URL"
            ),
        );
    }
}

fn auth(input: Input<'_>, out: &mut Findings) {
    let Some(auth) = repo(input).and_then(|r| r.auth.as_ref()) else {
        return;
    };
    let auth_type = non_empty(&auth.type_).unwrap_or("basic");
    if !AUTH_TYPES.contains(&auth_type) {
        out.report(
            codes::AUTH_TYPE_INVALID,
            "spec.chart.repository.auth.type",
            format!(
                "auth type {} {}",
                shown(auth_type),
                one_of(auth_type, AUTH_TYPES)
            ),
        );
    }
    for (value, field) in [
        (&auth.password, "spec.chart.repository.auth.password"),
        (&auth.token, "spec.chart.repository.auth.token"),
    ] {
        if non_empty(value).is_some() {
            out.report(
                codes::AUTH_INLINE_CREDENTIALS,
                field,
                "stored in plain text; use auth.secretRef",
            );
        }
    }
    if auth_type == "basic"
        && non_empty(&auth.username).is_some()
        && non_empty(&auth.password).is_none()
        && auth.secret_ref.is_none()
    {
        out.report(
            codes::AUTH_CREDENTIALS_INCOMPLETE,
            "spec.chart.repository.auth",
            "basic auth has a username but no password; set auth.secretRef to a Secret holding it",
        );
    }
}

fn repository_tls(input: Input<'_>, out: &mut Findings) {
    let skip = repo(input)
        .and_then(|r| r.tls.as_ref())
        .and_then(|t| t.insecure_skip_verify)
        .unwrap_or(false);
    if skip {
        out.report(
            codes::TLS_INSECURE_SKIP_VERIFY,
            "spec.chart.repository.tls.insecureSkipVerify",
            "certificate checks are off; trust a CA",
        );
    }
}

fn values(input: Input<'_>, out: &mut Findings) {
    let Some(values) = chart(input).and_then(|c| c.values.as_ref()) else {
        return;
    };
    if let Some(problem) = values.inline.as_ref().and_then(inline_values_problem) {
        out.report(
            codes::VALUES_INLINE_INVALID,
            "spec.chart.values.inline",
            format!("values.inline must be a YAML mapping (key: value lines); {problem}"),
        );
    }
    for (list, name) in [
        (&values.config_map_refs, "configMapRefs"),
        (&values.secret_refs, "secretRefs"),
    ] {
        for (i, reference) in list.iter().flatten().enumerate() {
            if non_empty(&reference.name).is_none() {
                out.report(
                    codes::VALUES_REF_NAME_MISSING,
                    format!("spec.chart.values.{name}[{i}].name"),
                    "reference has no name; set the name of the ConfigMap or Secret",
                );
            }
        }
    }
}

/// Why inline values are not a mapping; `None` when they are (or are empty).
/// The text never quotes the values, which may hold secrets.
fn inline_values_problem(inline: &serde_json::Value) -> Option<String> {
    let text = match inline {
        serde_json::Value::Null | serde_json::Value::Object(_) => return None,
        serde_json::Value::String(text) => text,
        serde_json::Value::Array(_) => return Some("got a list".to_owned()),
        _ => return Some("got a single value".to_owned()),
    };
    match crate::yaml::root_kind(text) {
        Ok(RootKind::Mapping | RootKind::Null) => None,
        Ok(RootKind::Sequence) => Some("got a list".to_owned()),
        Ok(RootKind::Scalar) => Some("got a single value".to_owned()),
        Err(ShapeError::TooDeep) => Some(format!(
            "it nests deeper than {MAX_DEPTH} levels, or {MAX_FLOW_DEPTH} levels of [ and {{"
        )),
        Err(ShapeError::SeveralDocuments) => Some("it holds more than one document".to_owned()),
        Err(ShapeError::Syntax(at)) => Some(format!(
            "YAML error at line {} column {}",
            at.line, at.column
        )),
    }
}

fn durations(input: Input<'_>, out: &mut Findings) {
    let Some(chart) = chart(input) else { return };
    if let Some(policy) = &chart.upgrade_policy {
        check_duration(
            out,
            || "spec.chart.upgradePolicy.timeout".into(),
            policy.timeout.as_ref(),
        );
    }
    if let Some(hooks) = &chart.hooks {
        check_duration(
            out,
            || "spec.chart.hooks.timeout".into(),
            hooks.timeout.as_ref(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::test_support::{Case, fires, run_table, silent};
    use serde_json::json;

    fn chart_with(repo: serde_json::Value) -> serde_json::Value {
        json!({"chart": {"name": "web", "version": "1.2.3", "repository": repo}})
    }

    fn cases() -> Vec<Case> {
        let good_repo = json!({"url": "https://charts.example.com", "type": "http"});
        vec![
            fires(
                "no chart at all",
                "CHART_NAME_MISSING",
                "spec.chart.name",
                json!({}),
            ),
            fires(
                "empty name",
                "CHART_NAME_MISSING",
                "spec.chart.name",
                json!({"chart": {"name": ""}}),
            ),
            silent(
                "name present",
                "CHART_NAME_MISSING",
                chart_with(good_repo.clone()),
            ),
            fires(
                "upper case name",
                "CHART_NAME_INVALID",
                "spec.chart.name",
                json!({"chart": {"name": "Nginx"}}),
            ),
            fires(
                "trailing dash",
                "CHART_NAME_INVALID",
                "spec.chart.name",
                json!({"chart": {"name": "nginx-"}}),
            ),
            silent(
                "dashed name",
                "CHART_NAME_INVALID",
                json!({"chart": {"name": "ingress-nginx"}}),
            ),
            fires(
                "no version",
                "CHART_VERSION_MISSING",
                "spec.chart.version",
                json!({"chart": {"name": "a"}}),
            ),
            fires(
                "blank version",
                "CHART_VERSION_MISSING",
                "spec.chart.version",
                json!({"chart": {"version": " "}}),
            ),
            silent(
                "version set",
                "CHART_VERSION_MISSING",
                json!({"chart": {"version": "1.0.0"}}),
            ),
            fires(
                "latest",
                "CHART_VERSION_INVALID",
                "spec.chart.version",
                json!({"chart": {"version": "latest"}}),
            ),
            fires(
                "four parts",
                "CHART_VERSION_INVALID",
                "spec.chart.version",
                json!({"chart": {"version": "1.2.3.4"}}),
            ),
            silent(
                "caret range is valid",
                "CHART_VERSION_INVALID",
                json!({"chart": {"version": "^1.2"}}),
            ),
            fires(
                "caret",
                "CHART_VERSION_UNPINNED",
                "spec.chart.version",
                json!({"chart": {"version": "^1.2"}}),
            ),
            fires(
                "space range",
                "CHART_VERSION_UNPINNED",
                "spec.chart.version",
                json!({"chart": {"version": ">=1.0 <2.0"}}),
            ),
            fires(
                "wildcard",
                "CHART_VERSION_UNPINNED",
                "spec.chart.version",
                json!({"chart": {"version": "1.2.x"}}),
            ),
            silent(
                "exact",
                "CHART_VERSION_UNPINNED",
                json!({"chart": {"version": "4.8.3"}}),
            ),
            fires(
                "no repository",
                "CHART_REPO_URL_MISSING",
                "spec.chart.repository.url",
                json!({"chart": {"name": "a"}}),
            ),
            fires(
                "empty url",
                "CHART_REPO_URL_MISSING",
                "spec.chart.repository.url",
                chart_with(json!({"url": ""})),
            ),
            silent(
                "url set",
                "CHART_REPO_URL_MISSING",
                chart_with(good_repo.clone()),
            ),
            fires(
                "no scheme",
                "CHART_REPO_URL_INVALID",
                "spec.chart.repository.url",
                chart_with(json!({"url": "charts.example.com"})),
            ),
            fires(
                "ftp",
                "CHART_REPO_URL_INVALID",
                "spec.chart.repository.url",
                chart_with(json!({"url": "ftp://charts.example.com"})),
            ),
            silent(
                "oci url",
                "CHART_REPO_URL_INVALID",
                chart_with(json!({"url": "oci://ghcr.io/org/charts", "type": "oci"})),
            ),
            fires(
                "helm type",
                "CHART_REPO_TYPE_INVALID",
                "spec.chart.repository.type",
                chart_with(json!({"url": "https://x.io", "type": "helm"})),
            ),
            silent(
                "git type",
                "CHART_REPO_TYPE_INVALID",
                chart_with(json!({"url": "git+https://github.com/o/r", "type": "git"})),
            ),
            fires(
                "oci type, https url",
                "CHART_REPO_TYPE_MISMATCH",
                "spec.chart.repository.type",
                chart_with(json!({"url": "https://x.io", "type": "oci"})),
            ),
            fires(
                "http type, oci url",
                "CHART_REPO_TYPE_MISMATCH",
                "spec.chart.repository.type",
                chart_with(json!({"url": "oci://x.io/c", "type": "http"})),
            ),
            silent(
                "types agree",
                "CHART_REPO_TYPE_MISMATCH",
                chart_with(json!({"url": "http://x.io", "type": "http"})),
            ),
            fires(
                "plain http",
                "CHART_REPO_INSECURE",
                "spec.chart.repository.url",
                chart_with(json!({"url": "http://charts.example.com", "type": "http"})),
            ),
            silent(
                "https",
                "CHART_REPO_INSECURE",
                chart_with(good_repo.clone()),
            ),
            fires(
                "oauth type",
                "AUTH_TYPE_INVALID",
                "spec.chart.repository.auth.type",
                chart_with(
                    json!({"url": "https://x.io", "auth": {"type": "oauth", "secretRef": {"name": "s"}}}),
                ),
            ),
            silent(
                "docker-config",
                "AUTH_TYPE_INVALID",
                chart_with(
                    json!({"url": "https://x.io", "auth": {"type": "docker-config", "secretRef": {"name": "s"}}}),
                ),
            ),
            fires(
                "inline password",
                "AUTH_INLINE_CREDENTIALS",
                "spec.chart.repository.auth.password",
                chart_with(
                    json!({"url": "https://x.io", "auth": {"username": "u", "password": "hunter2"}}),
                ),
            ),
            fires(
                "inline token",
                "AUTH_INLINE_CREDENTIALS",
                "spec.chart.repository.auth.token",
                chart_with(
                    json!({"url": "https://x.io", "auth": {"type": "token", "token": "t0k"}}),
                ),
            ),
            silent(
                "secretRef",
                "AUTH_INLINE_CREDENTIALS",
                chart_with(
                    json!({"url": "https://x.io", "auth": {"username": "u", "secretRef": {"name": "s"}}}),
                ),
            ),
            fires(
                "username only",
                "AUTH_CREDENTIALS_INCOMPLETE",
                "spec.chart.repository.auth",
                chart_with(
                    json!({"url": "https://x.io", "auth": {"type": "basic", "username": "u"}}),
                ),
            ),
            fires(
                "username only, untyped",
                "AUTH_CREDENTIALS_INCOMPLETE",
                "spec.chart.repository.auth",
                chart_with(json!({"url": "https://x.io", "auth": {"username": "u"}})),
            ),
            silent(
                "username and secretRef",
                "AUTH_CREDENTIALS_INCOMPLETE",
                chart_with(
                    json!({"url": "https://x.io", "auth": {"username": "u", "secretRef": {"name": "s"}}}),
                ),
            ),
            silent(
                "token auth with username",
                "AUTH_CREDENTIALS_INCOMPLETE",
                chart_with(
                    json!({"url": "https://x.io", "auth": {"type": "token", "username": "u"}}),
                ),
            ),
            fires(
                "skip verify",
                "TLS_INSECURE_SKIP_VERIFY",
                "spec.chart.repository.tls.insecureSkipVerify",
                chart_with(json!({"url": "https://x.io", "tls": {"insecureSkipVerify": true}})),
            ),
            silent(
                "verify on",
                "TLS_INSECURE_SKIP_VERIFY",
                chart_with(json!({"url": "https://x.io", "tls": {"insecureSkipVerify": false}})),
            ),
            fires(
                "inline list",
                "VALUES_INLINE_INVALID",
                "spec.chart.values.inline",
                json!({"chart": {"values": {"inline": "- a\n- b\n"}}}),
            ),
            fires(
                "inline scalar",
                "VALUES_INLINE_INVALID",
                "spec.chart.values.inline",
                json!({"chart": {"values": {"inline": "just text"}}}),
            ),
            fires(
                "inline broken yaml",
                "VALUES_INLINE_INVALID",
                "spec.chart.values.inline",
                json!({"chart": {"values": {"inline": "a: [1, 2\n"}}}),
            ),
            silent(
                "inline written as a mapping",
                "VALUES_INLINE_INVALID",
                json!({"chart": {"values": {"inline": {"replicaCount": 2}}}}),
            ),
            fires(
                "inline written as a list",
                "VALUES_INLINE_INVALID",
                "spec.chart.values.inline",
                json!({"chart": {"values": {"inline": ["a"]}}}),
            ),
            fires(
                "repo url without host",
                "CHART_REPO_URL_INVALID",
                "spec.chart.repository.url",
                chart_with(json!({"url": "https:/charts.example.com"})),
            ),
            silent(
                "numeric version is read as text",
                "CHART_VERSION_INVALID",
                json!({"chart": {"version": 1.2}}),
            ),
            silent(
                "inline mapping",
                "VALUES_INLINE_INVALID",
                json!({"chart": {"values": {"inline": "replicaCount: 1\nservice:\n  type: ClusterIP\n"}}}),
            ),
            fires(
                "configmap ref without name",
                "VALUES_REF_NAME_MISSING",
                "spec.chart.values.configMapRefs[1].name",
                json!({"chart": {"values": {"configMapRefs": [{"name": "a"}, {"key": "values.yaml"}]}}}),
            ),
            fires(
                "secret ref without name",
                "VALUES_REF_NAME_MISSING",
                "spec.chart.values.secretRefs[0].name",
                json!({"chart": {"values": {"secretRefs": [{"name": ""}]}}}),
            ),
            silent(
                "named refs",
                "VALUES_REF_NAME_MISSING",
                json!({"chart": {"values": {"configMapRefs": [{"name": "a"}], "secretRefs": [{"name": "b"}]}}}),
            ),
            fires(
                "bad upgrade timeout",
                "DURATION_INVALID",
                "spec.chart.upgradePolicy.timeout",
                json!({"chart": {"upgradePolicy": {"timeout": "5 minutes"}}}),
            ),
            fires(
                "bad hook timeout",
                "DURATION_INVALID",
                "spec.chart.hooks.timeout",
                json!({"chart": {"hooks": {"timeout": 60}}}),
            ),
            silent(
                "good timeouts",
                "DURATION_INVALID",
                json!({"chart": {"upgradePolicy": {"timeout": "300s"}, "hooks": {"timeout": "1m"}}}),
            ),
        ]
    }

    #[test]
    fn inline_values_problems_say_why_without_quoting() {
        let deep = format!("secret: {}", "[".repeat(100_000));
        let cases: &[(&str, serde_json::Value, Option<&str>)] = &[
            ("mapping", json!("a: 1\n"), None),
            ("empty", json!(""), None),
            ("list", json!("- a\n"), Some("got a list")),
            (
                "two documents",
                json!("a: 1\n---\nb: 2\n"),
                Some("it holds more than one document"),
            ),
            (
                "broken",
                json!("a: [1, 2\n"),
                Some("YAML error at line 2 column 1"),
            ),
            (
                "100k open brackets",
                json!(deep),
                Some("it nests deeper than 128 levels, or 32 levels of [ and {"),
            ),
        ];
        let failed: Vec<String> = cases
            .iter()
            .filter_map(|(name, inline, want)| {
                let got = inline_values_problem(inline);
                (got.as_deref() != *want).then(|| format!("{name}: got {got:?}, want {want:?}"))
            })
            .collect();
        assert!(failed.is_empty(), "{failed:#?}");
    }

    #[test]
    fn chart_rules_table() {
        run_table(RULES, cases());
    }

    #[test]
    fn versions() {
        let mut cases: Vec<(&str, VersionKind)> = Vec::new();
        for exact in ["1.2.3", "v1.2.3", "=1.2.3", "1.0.0-rc.1", "13.2.23"] {
            cases.push((exact, VersionKind::Exact));
        }
        for range in [
            "^1.2",
            "~1.2.0",
            ">=1.0 <2.0",
            ">=1.0, <2.0",
            ">= 1.0 < 2.0",
            "1.2.x",
            "1.2.*",
            "*",
            "1.2",
            "1",
            "1.2.3 - 1.4.5",
            "^1.0 || ^2.0",
            "x",
            ">=1.0 !=1.2.3",
            "!= 1.2.3",
        ] {
            cases.push((range, VersionKind::Range));
        }
        for invalid in [
            "latest", "stable", "1.2.3.4", "v", ">=", "^", "1.2.3 -", "a.b.c", "!=x", "||",
            "1.2.3 ||",
        ] {
            cases.push((invalid, VersionKind::Invalid));
        }
        let failed: Vec<String> = cases
            .into_iter()
            .filter_map(|(version, want)| {
                let got = classify_version(version);
                (got != want).then(|| format!("{version:?}: got {got:?}, want {want:?}"))
            })
            .collect();
        assert!(failed.is_empty(), "{failed:#?}");
    }

    #[test]
    fn messages_never_quote_credentials() {
        let spec = crate::validation::test_support::spec(chart_with(
            json!({"url": "https://x.io", "auth": {"username": "u", "password": "s3cr3t-pw", "token": "t0k3n-value"}}),
        ));
        let mut out = Findings::default();
        auth(
            Input {
                spec: &spec,
                old: None,
            },
            &mut out,
        );
        let findings = out.into_vec();
        assert_eq!(findings.len(), 2);
        for f in findings {
            assert!(
                !f.message.contains("s3cr3t-pw") && !f.message.contains("t0k3n-value"),
                "{f:?}"
            );
        }
    }
}
