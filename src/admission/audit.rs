//! The `auditAnnotations` of a validating answer: which codes refused,
//! warned, were audited or exempted, so the cluster's audit log says why
//! (docs/serving.md, "Audit annotations").
//!
//! The apiserver records each key as `<webhook name>/<key>` and silently
//! drops a key that does not make a qualified name of the whole (one `/`, a
//! DNS subdomain before it, at most 63 characters of `[A-Za-z0-9._-]`
//! after it, starting and ending alphanumeric): the keys here are fixed
//! and checked against those rules in the tests. The values are codes only
//! (never a field value or a message), each listed once, bounded.

use crate::validation::ValidationResult;
use std::collections::BTreeMap;

/// The codes of the errors that refused the object.
pub const ERROR_CODES: &str = "error-codes";
/// The codes of the warnings kubectl printed.
pub const WARNING_CODES: &str = "warning-codes";
/// The codes of findings of policies (or rules) in Audit mode: no effect
/// on the answer, recorded here and in status and Reports.
pub const AUDIT_CODES: &str = "audit-codes";
/// The codes a RoostPolicyException exempted.
pub const EXEMPTED_CODES: &str = "exempted-codes";

/// Every key this webhook may set.
pub const KEYS: [&str; 4] = [ERROR_CODES, WARNING_CODES, AUDIT_CODES, EXEMPTED_CODES];

/// Most codes listed in one value; the rest are counted (`+N more`).
pub const MAX_CODES: usize = 32;
/// Longest value, in bytes, the `+N more` marker included.
pub const MAX_VALUE_BYTES: usize = 1024;
/// Room kept for the marker: `,+` and `N more`, N at most 4 digits
/// (each level holds at most a hundred findings).
const MARKER_BYTES: usize = 16;

/// The annotations of a verdict: one key per kind of finding it has, none
/// for an object admitted with nothing to say.
pub fn annotations(result: &ValidationResult) -> BTreeMap<&'static str, String> {
    // The usual answer: nothing to record, nothing to build.
    if result.errors.is_empty()
        && result.warnings.is_empty()
        && result.audited.is_empty()
        && result.exempted.is_empty()
    {
        return BTreeMap::new();
    }
    let exempted = result.exempted.iter().map(|e| &e.finding);
    [
        (
            ERROR_CODES,
            listed(result.errors.iter().map(|f| f.code.as_str())),
        ),
        (
            WARNING_CODES,
            listed(result.warnings.iter().map(|f| f.code.as_str())),
        ),
        (
            AUDIT_CODES,
            listed(result.audited.iter().map(|f| f.code.as_str())),
        ),
        (EXEMPTED_CODES, listed(exempted.map(|f| f.code.as_str()))),
    ]
    .into_iter()
    .filter_map(|(key, value)| Some((key, value?)))
    .collect()
}

/// `codes` comma-separated in the order first seen, each once, at most
/// [`MAX_CODES`] and [`MAX_VALUE_BYTES`]; the codes left out are counted
/// in a last `+N more`. `None` when there is no code.
pub fn listed<'a>(codes: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut unique: Vec<&str> = Vec::new();
    for code in codes {
        if !unique.contains(&code) {
            unique.push(code);
        }
    }
    if unique.is_empty() {
        return None;
    }
    let mut value = String::new();
    let mut shown = 0;
    for code in &unique {
        let separator = usize::from(shown > 0);
        if shown == MAX_CODES
            || value.len() + separator + code.len() > MAX_VALUE_BYTES - MARKER_BYTES
        {
            break;
        }
        if shown > 0 {
            value.push(',');
        }
        value.push_str(code);
        shown += 1;
    }
    let left = unique.len() - shown;
    if left > 0 {
        if shown > 0 {
            value.push(',');
        }
        value.push_str(&format!("+{left} more"));
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::registration::{
        EXCEPTION_WEBHOOK_NAME, MUTATE_WEBHOOK_NAME, POLICY_WEBHOOK_NAME, VALIDATE_WEBHOOK_NAME,
    };
    use crate::validation::finding::Exemption;
    use crate::validation::{Finding, codes};

    /// k8s.io/apimachinery's IsQualifiedName of the whole key, as
    /// k8s.io/apiserver's admission `checkKeyFormat` applies it to
    /// `<webhook name>/<key>`: exactly one `/`, a DNS-1123 subdomain of at
    /// most 253 characters before it, a name of at most 63 after it.
    fn apiserver_accepts(key: &str) -> bool {
        let Some((prefix, name)) = key.split_once('/') else {
            return false;
        };
        let alnum = |c: char| c.is_ascii_alphanumeric();
        let name_ok = !name.is_empty()
            && name.len() <= 63
            && name.starts_with(alnum)
            && name.ends_with(alnum)
            && name
                .chars()
                .all(|c| alnum(c) || matches!(c, '-' | '_' | '.'));
        let lower = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
        let prefix_ok = !prefix.is_empty()
            && prefix.len() <= 253
            && prefix.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.starts_with(lower)
                    && label.ends_with(lower)
                    && label.chars().all(|c| lower(c) || c == '-')
            });
        !name.contains('/') && name_ok && prefix_ok
    }

    #[test]
    fn every_key_is_accepted_by_the_apiserver_under_every_webhook_name() {
        for webhook in [
            VALIDATE_WEBHOOK_NAME,
            POLICY_WEBHOOK_NAME,
            EXCEPTION_WEBHOOK_NAME,
            MUTATE_WEBHOOK_NAME,
        ] {
            for key in KEYS {
                let full = format!("{webhook}/{key}");
                assert!(apiserver_accepts(&full), "{full}");
            }
        }
        // The check refuses what the apiserver drops.
        for bad in [
            "validate.managedroost.roost.birb.party/error codes",
            "validate.managedroost.roost.birb.party/a/b",
            "Validate.roost/error-codes",
            "validate.roost/-codes",
            &format!("validate.roost/{}", "a".repeat(64)),
        ] {
            assert!(!apiserver_accepts(bad), "{bad}");
        }
    }

    fn finding(code: &str) -> Finding {
        Finding {
            code: code.to_owned(),
            field: "spec.chart.repository.auth.password".to_owned(),
            message: "hunter2 is inline".to_owned(),
            ..Finding::new(codes::CHART_VERSION_UNPINNED, "spec", "m")
        }
    }

    #[test]
    fn each_kind_of_finding_has_its_key_with_codes_only() {
        let result = ValidationResult {
            valid: false,
            errors: vec![finding("CHART_NAME_MISSING"), finding("CUSTOM_E")],
            warnings: vec![
                finding("CHART_VERSION_UNPINNED"),
                finding("CHART_VERSION_UNPINNED"),
            ],
            info: vec![finding("INFO_ONLY")],
            audited: vec![finding("AUDITED_RULE")],
            exempted: vec![Exemption {
                finding: finding("EXEMPTED_RULE"),
                exception: "ex".into(),
                justification: "because".into(),
                expires_at: None,
            }],
        };
        let annotations = annotations(&result);
        assert_eq!(
            annotations,
            BTreeMap::from([
                (ERROR_CODES, "CHART_NAME_MISSING,CUSTOM_E".to_owned()),
                (WARNING_CODES, "CHART_VERSION_UNPINNED".to_owned()),
                (AUDIT_CODES, "AUDITED_RULE".to_owned()),
                (EXEMPTED_CODES, "EXEMPTED_RULE".to_owned()),
            ])
        );
        let text = format!("{annotations:?}");
        assert!(
            !text.contains("hunter2") && !text.contains("spec."),
            "{text}"
        );
    }

    #[test]
    fn a_clean_verdict_has_no_annotations() {
        let clean = ValidationResult {
            valid: true,
            info: vec![finding("INFO_ONLY")],
            ..ValidationResult::default()
        };
        assert!(annotations(&clean).is_empty());
        assert_eq!(listed([]), None);
    }

    #[test]
    fn values_are_bounded_and_count_what_they_leave_out() {
        let many: Vec<String> = (0..40).map(|i| format!("CODE_{i}")).collect();
        let value = listed(many.iter().map(String::as_str)).unwrap();
        assert_eq!(value.split(',').count(), MAX_CODES + 1);
        assert!(value.starts_with("CODE_0,CODE_1,"), "{value}");
        assert!(value.ends_with(",CODE_31,+8 more"), "{value}");
        // Long codes (64 bytes, the most a policy's code has) fill the bytes first.
        let long: Vec<String> = (0..30).map(|i| format!("{i:0>64}")).collect();
        let value = listed(long.iter().map(String::as_str)).unwrap();
        assert!(value.len() <= MAX_VALUE_BYTES, "{}", value.len());
        let shown = value.split(',').count() - 1;
        assert_eq!(shown, 15);
        assert!(
            value.ends_with(&format!(",+{} more", 30 - shown)),
            "{value}"
        );
        // At the bounds exactly, nothing is left out.
        let exact: Vec<String> = (0..MAX_CODES).map(|i| format!("C{i}")).collect();
        let value = listed(exact.iter().map(String::as_str)).unwrap();
        assert!(!value.contains("more"), "{value}");
        // A code too long to list at all is still counted.
        let huge = "X".repeat(MAX_VALUE_BYTES);
        assert_eq!(listed([huge.as_str()]).unwrap(), "+1 more");
    }
}
