//! Rules for `spec.namespace`, the release's target namespace.

use super::checks::{is_dns1123_label, non_empty};
use super::codes;
use super::finding::{Findings, shown};
use super::{FnRule, Input};

pub const RULES: &[FnRule] = &[
    FnRule {
        name: "target/namespace",
        codes: &[codes::TARGET_NAMESPACE_INVALID],
        check: namespace,
    },
    FnRule {
        name: "target/immutable",
        codes: &[codes::TARGET_NAMESPACE_IMMUTABLE],
        check: immutable,
    },
];

const FIELD: &str = "spec.namespace";

fn namespace(input: Input<'_>, out: &mut Findings) {
    if let Some(ns) = non_empty(&input.spec.namespace).filter(|ns| !is_dns1123_label(ns)) {
        out.report(
            codes::TARGET_NAMESPACE_INVALID,
            FIELD,
            format!(
                "namespace {} must be a DNS-1123 label (a-z, 0-9, '-', at most 63)",
                shown(ns)
            ),
        );
    }
}

fn immutable(input: Input<'_>, out: &mut Findings) {
    let Some(before) = input.old.and_then(|old| non_empty(&old.namespace)) else {
        return;
    };
    if non_empty(&input.spec.namespace) != Some(before) {
        out.report(
            codes::TARGET_NAMESPACE_IMMUTABLE,
            FIELD,
            format!(
                "target namespace cannot change once set (was {}); create a new roost",
                shown(before)
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::test_support::{Case, fires, run_table, silent};
    use serde_json::json;

    fn cases() -> Vec<Case> {
        vec![
            fires(
                "upper case",
                "TARGET_NAMESPACE_INVALID",
                FIELD,
                json!({"namespace": "Prod"}),
            ),
            fires(
                "too long",
                "TARGET_NAMESPACE_INVALID",
                FIELD,
                json!({"namespace": "a".repeat(64)}),
            ),
            silent(
                "label",
                "TARGET_NAMESPACE_INVALID",
                json!({"namespace": "prod-1"}),
            ),
            Case {
                name: "moved",
                spec: json!({"namespace": "b"}),
                old: Some(json!({"namespace": "a"})),
                code: "TARGET_NAMESPACE_IMMUTABLE",
                field: FIELD,
                fires: true,
            },
            Case {
                name: "kept",
                spec: json!({"namespace": "a"}),
                old: Some(json!({"namespace": "a"})),
                code: "TARGET_NAMESPACE_IMMUTABLE",
                field: FIELD,
                fires: false,
            },
            Case {
                name: "first set",
                spec: json!({"namespace": "a"}),
                old: Some(json!({})),
                code: "TARGET_NAMESPACE_IMMUTABLE",
                field: FIELD,
                fires: false,
            },
        ]
    }

    #[test]
    fn target_rules_table() {
        run_table(RULES, cases());
    }
}
