//! Rules for `spec.tenancy`.

use super::checks::{is_dns1123_label, non_empty};
use super::codes;
use super::finding::{Findings, shown};
use super::{FnRule, Input};
use crate::api::{ManagedRoostSpec, TenancySpec};

pub const RULES: &[FnRule] = &[
    FnRule {
        name: "tenancy/tenant_id",
        codes: &[
            codes::TENANT_ID_MISSING,
            codes::TENANT_ID_INVALID,
            codes::TENANT_ID_MISMATCH,
        ],
        check: tenant_ids,
    },
    FnRule {
        name: "tenancy/immutable",
        codes: &[codes::TENANT_ID_IMMUTABLE],
        check: immutable,
    },
    FnRule {
        name: "tenancy/namespace_isolation",
        codes: &[codes::NAMESPACE_ISOLATION_PREFIX_INVALID],
        check: namespace_isolation,
    },
    FnRule {
        name: "tenancy/resource_quota",
        codes: &[codes::RESOURCE_QUOTA_EMPTY],
        check: resource_quota,
    },
];

fn tenancy(spec: &ManagedRoostSpec) -> Option<&TenancySpec> {
    spec.tenancy.as_ref()
}

/// The tenant id, when set.
pub fn tenant_id(spec: &ManagedRoostSpec) -> Option<&str> {
    tenancy(spec).and_then(|t| non_empty(&t.tenant_id))
}

fn tenant_ids(input: Input<'_>, out: &mut Findings) {
    let Some(tenancy) = tenancy(input.spec) else {
        return;
    };
    let tenant = non_empty(&tenancy.tenant_id);
    let rbac = tenancy.rbac.as_ref();
    let rbac_tenant = rbac.and_then(|r| non_empty(&r.tenant_id));
    let rbac_enabled = rbac.and_then(|r| r.enabled).unwrap_or(false);

    if let Some(id) = tenant.filter(|id| !is_dns1123_label(id)) {
        out.report(
            codes::TENANT_ID_INVALID,
            "spec.tenancy.tenantId",
            format!(
                "tenant id {} must be a DNS-1123 label (a-z, 0-9, '-', at most 63)",
                shown(id)
            ),
        );
    }
    // An rbac id equal to tenancy.tenantId (often copied by defaulting) was checked above.
    if let Some(b) = rbac_tenant.filter(|b| Some(*b) != tenant) {
        if !is_dns1123_label(b) {
            out.report(
                codes::TENANT_ID_INVALID,
                "spec.tenancy.rbac.tenantId",
                format!(
                    "tenant id {} must be a DNS-1123 label (a-z, 0-9, '-', at most 63)",
                    shown(b)
                ),
            );
        }
        if let Some(a) = tenant {
            out.report(
                codes::TENANT_ID_MISMATCH,
                "spec.tenancy.rbac.tenantId",
                format!(
                    "rbac.tenantId {} differs from tenancy.tenantId {}; make them equal",
                    shown(b),
                    shown(a)
                ),
            );
        }
    }
    if rbac_enabled && tenant.is_none() && rbac_tenant.is_none() {
        out.report(
            codes::TENANT_ID_MISSING,
            "spec.tenancy.tenantId",
            "RBAC is enabled but no tenant id is set; set spec.tenancy.tenantId",
        );
    }
}

fn immutable(input: Input<'_>, out: &mut Findings) {
    let Some(old) = input.old else { return };
    let (Some(before), after) = (tenant_id(old), tenant_id(input.spec)) else {
        return;
    };
    if after != Some(before) {
        out.report(
            codes::TENANT_ID_IMMUTABLE,
            "spec.tenancy.tenantId",
            format!(
                "tenantId cannot change once set (was {}); create a new roost instead",
                shown(before)
            ),
        );
    }
}

/// A prefix that can start a DNS-1123 label: a lower case letter or digit,
/// then letters, digits and '-', at most 63 characters.
fn is_label_prefix(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

fn namespace_isolation(input: Input<'_>, out: &mut Findings) {
    let prefix = tenancy(input.spec)
        .and_then(|t| t.namespace_isolation.as_ref())
        .and_then(|n| non_empty(&n.prefix));
    if let Some(prefix) = prefix.filter(|p| !is_label_prefix(p)) {
        out.report(
            codes::NAMESPACE_ISOLATION_PREFIX_INVALID,
            "spec.tenancy.namespaceIsolation.prefix",
            format!(
                "prefix {} must start with a-z or 0-9 and use only a-z, 0-9, '-'",
                shown(prefix)
            ),
        );
    }
}

fn resource_quota(input: Input<'_>, out: &mut Findings) {
    let Some(quota) = tenancy(input.spec).and_then(|t| t.resource_quota.as_ref()) else {
        return;
    };
    if quota.enabled == Some(true) && quota.hard.as_ref().is_none_or(|h| h.is_empty()) {
        out.report(
            codes::RESOURCE_QUOTA_EMPTY,
            "spec.tenancy.resourceQuota.hard",
            "enabled with no hard limits; add some",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::test_support::{Case, fires, run_table, silent};
    use serde_json::json;

    fn update(
        name: &'static str,
        code: &'static str,
        old: serde_json::Value,
        new: serde_json::Value,
        fires: bool,
    ) -> Case {
        Case {
            name,
            spec: new,
            old: Some(old),
            code,
            field: "spec.tenancy.tenantId",
            fires,
        }
    }

    fn cases() -> Vec<Case> {
        vec![
            fires(
                "rbac without id",
                "TENANT_ID_MISSING",
                "spec.tenancy.tenantId",
                json!({"tenancy": {"rbac": {"enabled": true}}}),
            ),
            silent(
                "rbac with id",
                "TENANT_ID_MISSING",
                json!({"tenancy": {"tenantId": "a", "rbac": {"enabled": true}}}),
            ),
            silent(
                "rbac off",
                "TENANT_ID_MISSING",
                json!({"tenancy": {"rbac": {"enabled": false}}}),
            ),
            fires(
                "upper case id",
                "TENANT_ID_INVALID",
                "spec.tenancy.tenantId",
                json!({"tenancy": {"tenantId": "Team_A"}}),
            ),
            fires(
                "bad rbac id",
                "TENANT_ID_INVALID",
                "spec.tenancy.rbac.tenantId",
                json!({"tenancy": {"rbac": {"enabled": true, "tenantId": "-x"}}}),
            ),
            silent(
                "label id",
                "TENANT_ID_INVALID",
                json!({"tenancy": {"tenantId": "team-a", "rbac": {"tenantId": "team-a"}}}),
            ),
            fires(
                "different ids",
                "TENANT_ID_MISMATCH",
                "spec.tenancy.rbac.tenantId",
                json!({"tenancy": {"tenantId": "a", "rbac": {"tenantId": "b"}}}),
            ),
            fires(
                "bad and different rbac id",
                "TENANT_ID_INVALID",
                "spec.tenancy.rbac.tenantId",
                json!({"tenancy": {"tenantId": "team-a", "rbac": {"tenantId": "Team_B"}}}),
            ),
            fires(
                "bad and different rbac id mismatches too",
                "TENANT_ID_MISMATCH",
                "spec.tenancy.rbac.tenantId",
                json!({"tenancy": {"tenantId": "team-a", "rbac": {"tenantId": "Team_B"}}}),
            ),
            silent(
                "same ids",
                "TENANT_ID_MISMATCH",
                json!({"tenancy": {"tenantId": "a", "rbac": {"tenantId": "a"}}}),
            ),
            update(
                "changed id",
                "TENANT_ID_IMMUTABLE",
                json!({"tenancy": {"tenantId": "a"}}),
                json!({"tenancy": {"tenantId": "b"}}),
                true,
            ),
            update(
                "removed id",
                "TENANT_ID_IMMUTABLE",
                json!({"tenancy": {"tenantId": "a"}}),
                json!({}),
                true,
            ),
            update(
                "same id",
                "TENANT_ID_IMMUTABLE",
                json!({"tenancy": {"tenantId": "a"}}),
                json!({"tenancy": {"tenantId": "a"}}),
                false,
            ),
            update(
                "id added",
                "TENANT_ID_IMMUTABLE",
                json!({}),
                json!({"tenancy": {"tenantId": "a"}}),
                false,
            ),
            silent(
                "create",
                "TENANT_ID_IMMUTABLE",
                json!({"tenancy": {"tenantId": "a"}}),
            ),
            fires(
                "dash prefix",
                "NAMESPACE_ISOLATION_PREFIX_INVALID",
                "spec.tenancy.namespaceIsolation.prefix",
                json!({"tenancy": {"namespaceIsolation": {"prefix": "-team"}}}),
            ),
            fires(
                "upper prefix",
                "NAMESPACE_ISOLATION_PREFIX_INVALID",
                "spec.tenancy.namespaceIsolation.prefix",
                json!({"tenancy": {"namespaceIsolation": {"prefix": "Team"}}}),
            ),
            silent(
                "prefix ending in dash",
                "NAMESPACE_ISOLATION_PREFIX_INVALID",
                json!({"tenancy": {"namespaceIsolation": {"enabled": true, "prefix": "team-a-"}}}),
            ),
            fires(
                "no limits",
                "RESOURCE_QUOTA_EMPTY",
                "spec.tenancy.resourceQuota.hard",
                json!({"tenancy": {"resourceQuota": {"enabled": true}}}),
            ),
            fires(
                "empty limits",
                "RESOURCE_QUOTA_EMPTY",
                "spec.tenancy.resourceQuota.hard",
                json!({"tenancy": {"resourceQuota": {"enabled": true, "hard": {}}}}),
            ),
            silent(
                "limits",
                "RESOURCE_QUOTA_EMPTY",
                json!({"tenancy": {"resourceQuota": {"enabled": true, "hard": {"pods": "10"}}}}),
            ),
            silent(
                "disabled",
                "RESOURCE_QUOTA_EMPTY",
                json!({"tenancy": {"resourceQuota": {"enabled": false}}}),
            ),
        ]
    }

    #[test]
    fn tenancy_rules_table() {
        run_table(RULES, cases());
    }
}
