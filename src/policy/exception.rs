//! RoostPolicyExceptions: checked once per generation into a
//! [`CompiledException`], matched to a roost by namespace and name or
//! labels, and applied to a verdict by [`super::Matched::apply`] while they
//! have not expired at the caller's `now`.

use super::selector::Selector;
use super::{Labels, is_code};
use crate::api::roost_policy_exception::RoostPolicyException;
use crate::validation::codes::{self, Code};
use crate::validation::finding::shown_max;
use crate::validation::{Finding, Level};
use k8s_openapi::jiff::Timestamp;

/// Most codes one exception names.
pub const MAX_CODES: usize = 50;
/// Most roosts one exception names.
pub const MAX_ROOSTS: usize = 100;
/// Longest justification, in bytes.
pub const MAX_JUSTIFICATION: usize = 1024;
/// Most exceptions in force at once, over every namespace.
pub const MAX_EXCEPTIONS_IN_FORCE: usize = 1000;

/// A RoostPolicyException ready to apply.
#[derive(Debug)]
pub struct CompiledException {
    pub name: String,
    pub namespace: String,
    codes: Vec<String>,
    target: Target,
    pub justification: String,
    /// When it stops applying; `None`, never.
    pub expires_at: Option<Timestamp>,
    /// Identifies the exception's content (cache keys).
    pub(super) fingerprint: u64,
}

#[derive(Debug)]
enum Target {
    Names(Vec<String>),
    Selector(Selector),
}

impl CompiledException {
    /// Whether it names or selects the roost `name` (with `labels`) of its namespace.
    pub fn selects(&self, namespace: &str, name: &str, labels: &Labels) -> bool {
        namespace == self.namespace
            && match &self.target {
                Target::Names(names) => names.iter().any(|n| n == name),
                Target::Selector(selector) => selector.matches(labels),
            }
    }

    /// Whether it still applies at `now`.
    pub fn active_at(&self, now: Timestamp) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }

    /// Whether it exempts findings of `code`.
    pub fn exempts(&self, code: &str) -> bool {
        self.codes.iter().any(|c| c == code)
    }
}

/// Whether findings of `code` may be exempted: every code but the built-in
/// errors (a roost with one cannot work) and the errors about the verdict
/// itself (an undecidable rule, too many findings).
pub fn exemptable(code: &str) -> bool {
    codes::lookup(code).is_none_or(|c: Code| c.level() != Level::Error)
}

/// An `EXCEPTION_INVALID` error at `field`.
pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Finding {
    Finding::new(codes::EXCEPTION_INVALID, field, message)
}

/// Checks an exception, or lists every problem (field paths under `spec`).
pub fn compile(exception: &RoostPolicyException) -> Result<CompiledException, Vec<Finding>> {
    let spec = &exception.spec;
    let mut problems = Vec::new();
    if spec.codes.is_empty() {
        problems.push(invalid("spec.codes", "name at least one code to exempt"));
    }
    if spec.codes.len() > MAX_CODES {
        problems.push(invalid("spec.codes", format!("at most {MAX_CODES} codes")));
    }
    for (i, code) in spec.codes.iter().enumerate().take(MAX_CODES) {
        let field = format!("spec.codes[{i}]");
        if !is_code(code) {
            problems.push(invalid(
                field,
                format!(
                    "{} is not a code: upper case letters, digits and _, starting with a letter",
                    shown_max(code, 64)
                ),
            ));
        } else if !exemptable(code) {
            problems.push(invalid(
                field,
                format!(
                    "{code} is an error roost-keeper itself reports and cannot be exempted (the roost cannot work with it); exempt policy codes and built-in warnings"
                ),
            ));
        } else if spec.codes[..i].contains(code) {
            problems.push(invalid(field, format!("{code} is listed twice")));
        }
    }
    if spec.justification.trim().is_empty() {
        problems.push(invalid(
            "spec.justification",
            "say why the exemption is granted",
        ));
    } else if spec.justification.len() > MAX_JUSTIFICATION {
        problems.push(invalid(
            "spec.justification",
            format!("at most {MAX_JUSTIFICATION} bytes"),
        ));
    }
    let target = match (&spec.roosts, &spec.selector) {
        (Some(names), None) if names.is_empty() => {
            problems.push(invalid("spec.roosts", "name at least one roost"));
            None
        }
        (Some(names), None) if names.len() > MAX_ROOSTS => {
            problems.push(invalid(
                "spec.roosts",
                format!("at most {MAX_ROOSTS} roosts; use a selector"),
            ));
            None
        }
        (Some(names), None) => Some(Target::Names(names.clone())),
        (None, Some(selector)) => match Selector::new(selector) {
            Ok(selector) => Some(Target::Selector(selector)),
            Err(message) => {
                problems.push(invalid("spec.selector", message));
                None
            }
        },
        (Some(_), Some(_)) => {
            problems.push(invalid(
                "spec",
                "give either roosts (names) or selector (labels), not both",
            ));
            None
        }
        (None, None) => {
            problems.push(invalid(
                "spec",
                "choose the roosts exempted: roosts (names) or selector (labels; {} selects all)",
            ));
            None
        }
    };
    match target {
        Some(target) if problems.is_empty() => Ok(CompiledException {
            name: exception.metadata.name.clone().unwrap_or_default(),
            namespace: exception.metadata.namespace.clone().unwrap_or_default(),
            codes: spec.codes.clone(),
            target,
            justification: spec.justification.clone(),
            expires_at: spec.expires_at.as_ref().map(|t| t.0),
            fingerprint: fingerprint(exception),
        }),
        _ => Err(problems),
    }
}

fn fingerprint(exception: &RoostPolicyException) -> u64 {
    let mut bytes = Vec::new();
    for part in [&exception.metadata.namespace, &exception.metadata.name] {
        bytes.extend_from_slice(part.as_deref().unwrap_or_default().as_bytes());
        bytes.push(0);
    }
    // Serializing a spec into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut bytes, &exception.spec);
    xxhash_rust::xxh3::xxh3_64(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn exception(spec: Value) -> RoostPolicyException {
        serde_json::from_value(json!({
            "apiVersion": "roost.birb.party/v1alpha1", "kind": "RoostPolicyException",
            "metadata": {"name": "ex", "namespace": "team-a"}, "spec": spec
        }))
        .unwrap()
    }

    fn problems(spec: Value) -> Vec<(String, String)> {
        compile(&exception(spec))
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|f| (f.field, f.message))
            .collect()
    }

    #[test]
    fn a_valid_exception_selects_by_name_or_labels_until_it_expires() {
        let by_name = compile(&exception(json!({
            "codes": ["PROD_TEARDOWN_REQUIRED", "CHART_VERSION_UNPINNED"],
            "roosts": ["web"], "justification": "migration", "expiresAt": "2026-12-31T00:00:00Z"
        })))
        .unwrap();
        let labels = Labels::new();
        assert!(by_name.selects("team-a", "web", &labels));
        assert!(!by_name.selects("team-a", "api", &labels));
        assert!(!by_name.selects("team-b", "web", &labels));
        assert!(by_name.exempts("CHART_VERSION_UNPINNED"));
        assert!(!by_name.exempts("NO_HEALTH_CHECKS"));
        let expiry: Timestamp = "2026-12-31T00:00:00Z".parse().unwrap();
        assert!(by_name.active_at(expiry - jiff_second()));
        assert!(!by_name.active_at(expiry));

        let by_labels = compile(&exception(json!({
            "codes": ["X"], "selector": {"matchLabels": {"tier": "web"}}, "justification": "j"
        })))
        .unwrap();
        let web = Labels::from([("tier".to_owned(), "web".to_owned())]);
        assert!(by_labels.selects("team-a", "any", &web));
        assert!(!by_labels.selects("team-a", "any", &labels));
        assert!(by_labels.active_at(Timestamp::MAX));
    }

    fn jiff_second() -> k8s_openapi::jiff::SignedDuration {
        k8s_openapi::jiff::SignedDuration::from_secs(1)
    }

    #[test]
    fn every_problem_is_listed_with_its_field() {
        let listed = problems(json!({
            "codes": ["lower", "CHART_VERSION_MISSING", "X", "X"],
            "roosts": ["a"], "selector": {}, "justification": " "
        }));
        let fields: Vec<&str> = listed.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.codes[0]",
                "spec.codes[1]",
                "spec.codes[3]",
                "spec.justification",
                "spec"
            ],
            "{listed:#?}"
        );
        assert!(listed[1].1.contains("cannot be exempted"), "{listed:?}");
        assert_eq!(
            problems(json!({"codes": [], "justification": "j"}))
                .iter()
                .map(|(f, _)| f.as_str())
                .collect::<Vec<_>>(),
            ["spec.codes", "spec"]
        );
        assert_eq!(
            problems(json!({"codes": ["X"], "roosts": [], "justification": "j"}))[0].0,
            "spec.roosts"
        );
    }

    /// An attacker's exception: every list and text past its bound is
    /// refused at admission, so nothing in force grows with it.
    #[test]
    fn oversized_exceptions_are_refused() {
        let codes: Vec<String> = (0..=MAX_CODES).map(|i| format!("CODE_{i}")).collect();
        let roosts: Vec<String> = (0..=MAX_ROOSTS).map(|i| format!("r{i}")).collect();
        let listed = problems(json!({
            "codes": codes, "roosts": roosts,
            "justification": "j".repeat(MAX_JUSTIFICATION + 1)
        }));
        let fields: Vec<&str> = listed.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            ["spec.codes", "spec.justification", "spec.roosts"],
            "{listed:?}"
        );
        let within = compile(&exception(json!({
            "codes": codes[..MAX_CODES], "roosts": roosts[..MAX_ROOSTS],
            "justification": "j".repeat(MAX_JUSTIFICATION)
        })));
        assert!(within.is_ok());
    }

    #[test]
    fn built_in_errors_and_verdict_errors_are_not_exemptable() {
        assert!(!exemptable("CHART_VERSION_MISSING"));
        assert!(!exemptable("POLICY_EVALUATION_ERROR"));
        assert!(exemptable("CHART_VERSION_UNPINNED"));
        assert!(exemptable("MY_POLICY_CODE"));
    }
}
