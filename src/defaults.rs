//! Defaulting (RULES.md, "Defaults"): one function shared by the mutating
//! webhook and the offline validator. It only fills fields that are absent,
//! so it is idempotent and never overwrites what the user wrote.

use crate::validation::checks::is_label_value;
use serde_json::{Map, Value, json};

/// Label every defaulted object carries.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Label naming the tenant.
pub const TENANT_LABEL: &str = "roost.birb.party/tenant";

/// The defaulted object and the RFC 6902 patch that turns the input into it.
#[derive(Clone, Debug, PartialEq)]
pub struct Defaulted {
    pub object: Value,
    pub patch: json_patch::Patch,
}

/// Applies every default to a ManagedRoost object (as JSON). An object whose
/// spec breaks the CRD's size limits is left as it is: the apiserver refuses
/// it, and defaulting each of its items would only grow the patch with it.
pub fn apply_defaults(object: &Value) -> Defaulted {
    if object
        .get("spec")
        .is_some_and(crate::validation::decode::exceeds_size_limits)
    {
        return Defaulted {
            object: object.clone(),
            patch: json_patch::Patch(Vec::new()),
        };
    }
    let mut defaulted = object.clone();
    if let Some(root) = defaulted.as_object_mut() {
        default_spec(root);
        default_labels(root);
    }
    let patch = json_patch::diff(object, &defaulted);
    Defaulted {
        object: defaulted,
        patch,
    }
}

/// Sets `key` when it is unset: absent, null or an empty string (Go's
/// `omitempty` drops "" too). Any other value, even one the rules reject, stays.
fn fill(map: &mut Map<String, Value>, key: &str, value: Value) {
    let unset = match map.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(_) => false,
    };
    if unset {
        map.insert(key.to_owned(), value);
    }
}

fn child<'a>(map: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    map.get_mut(key).and_then(Value::as_object_mut)
}

fn default_spec(root: &mut Map<String, Value>) {
    let Some(spec) = child(root, "spec") else {
        return;
    };
    if let Some(repo) = child(spec, "chart").and_then(|c| child(c, "repository")) {
        let url = repo
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let repo_type = if url.starts_with("oci://") {
            "oci"
        } else if url.starts_with("git+https://") {
            "git"
        } else {
            "http"
        };
        fill(repo, "type", json!(repo_type));
        if let Some(auth) = child(repo, "auth") {
            fill(auth, "type", json!("basic"));
        }
    }
    if let Some(checks) = spec.get_mut("healthChecks").and_then(Value::as_array_mut) {
        for check in checks.iter_mut().filter_map(Value::as_object_mut) {
            default_health_check(check);
        }
    }
    if let Some(tenancy) = child(spec, "tenancy") {
        let tenant = tenancy
            .get("tenantId")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        if let (Some(tenant), Some(rbac)) = (tenant, child(tenancy, "rbac"))
            && rbac.get("enabled").and_then(Value::as_bool) == Some(true)
        {
            fill(rbac, "tenantId", json!(tenant));
        }
    }
}

fn default_health_check(check: &mut Map<String, Value>) {
    fill(check, "interval", json!("30s"));
    fill(check, "timeout", json!("10s"));
    fill(check, "failureThreshold", json!(3));
    fill(check, "weight", json!(1));
    if let Some(http) = child(check, "http") {
        fill(http, "method", json!("GET"));
    }
    if let Some(udp) = child(check, "udp") {
        fill(udp, "sendData", json!("ping"));
        fill(udp, "readTimeout", json!("5s"));
        fill(udp, "retries", json!(3));
    }
}

fn default_labels(root: &mut Map<String, Value>) {
    let tenant = root
        .get("spec")
        .and_then(|s| s.get("tenancy"))
        .and_then(|t| t.get("tenantId"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty() && is_label_value(t))
        .map(str::to_owned);
    fill(root, "metadata", json!({}));
    let Some(metadata) = child(root, "metadata") else {
        return;
    };
    fill(metadata, "labels", json!({}));
    let Some(labels) = child(metadata, "labels") else {
        return;
    };
    fill(labels, MANAGED_BY_LABEL, json!("roost-keeper"));
    if let Some(tenant) = tenant {
        fill(labels, TENANT_LABEL, json!(tenant));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaulted(v: Value) -> Value {
        apply_defaults(&v).object
    }

    #[test]
    fn fills_every_default() {
        let out = defaulted(json!({
            "metadata": {"name": "web"},
            "spec": {
                "chart": {"repository": {"url": "oci://ghcr.io/o/c", "auth": {"username": "u"}}},
                "healthChecks": [
                    {"name": "h", "type": "http", "http": {"url": "http://x"}},
                    {"name": "u", "type": "udp", "udp": {"host": "h", "port": 53}}
                ],
                "tenancy": {"tenantId": "team-a", "rbac": {"enabled": true}}
            }
        }));
        let spec = &out["spec"];
        assert_eq!(spec["chart"]["repository"]["type"], "oci");
        assert_eq!(spec["chart"]["repository"]["auth"]["type"], "basic");
        let http = &spec["healthChecks"][0];
        assert_eq!(
            (http["interval"].as_str(), http["timeout"].as_str()),
            (Some("30s"), Some("10s"))
        );
        assert_eq!(
            (http["failureThreshold"].as_i64(), http["weight"].as_i64()),
            (Some(3), Some(1))
        );
        assert_eq!(http["http"]["method"], "GET");
        let udp = &spec["healthChecks"][1]["udp"];
        assert_eq!(
            (
                udp["sendData"].as_str(),
                udp["readTimeout"].as_str(),
                udp["retries"].as_i64()
            ),
            (Some("ping"), Some("5s"), Some(3))
        );
        assert_eq!(spec["tenancy"]["rbac"]["tenantId"], "team-a");
        assert_eq!(out["metadata"]["labels"][MANAGED_BY_LABEL], "roost-keeper");
        assert_eq!(out["metadata"]["labels"][TENANT_LABEL], "team-a");
    }

    #[test]
    fn an_object_beyond_the_size_limits_is_left_alone() {
        let many =
            json!({"spec": {"healthChecks": vec![json!({"name": "h", "type": "http"}); 101]}});
        let out = apply_defaults(&many);
        assert!(out.patch.0.is_empty());
        assert_eq!(out.object, many);
        let most =
            json!({"spec": {"healthChecks": vec![json!({"name": "h", "type": "http"}); 100]}});
        assert!(apply_defaults(&most).patch.0.len() >= 100);
    }

    #[test]
    fn repository_type_follows_the_url() {
        for (url, want) in [
            ("git+https://github.com/o/r", "git"),
            ("https://x", "http"),
            ("http://x", "http"),
        ] {
            let out = defaulted(json!({"spec": {"chart": {"repository": {"url": url}}}}));
            assert_eq!(out["spec"]["chart"]["repository"]["type"], want, "{url}");
        }
    }

    #[test]
    fn never_overwrites_user_values() {
        let input = json!({
            "metadata": {"labels": {MANAGED_BY_LABEL: "kustomize", TENANT_LABEL: "other"}},
            "spec": {
                "chart": {"repository": {"url": "oci://x/y", "type": "http", "auth": {"type": "token"}}},
                "healthChecks": [{"interval": "1m", "timeout": "2s", "failureThreshold": 0, "weight": 0,
                                  "http": {"method": "POST"}, "udp": {"sendData": "hello", "readTimeout": "1s", "retries": 0}}],
                "tenancy": {"tenantId": "a", "rbac": {"enabled": true, "tenantId": "b"}}
            }
        });
        let result = apply_defaults(&input);
        assert_eq!(result.object, input);
        assert!(result.patch.0.is_empty());
    }

    #[test]
    fn empty_strings_count_as_unset() {
        let out = defaulted(json!({"spec": {
            "chart": {"repository": {"url": "OCI://R.IO/c", "type": ""}},
            "healthChecks": [{"interval": "", "http": {"method": ""}}],
            "tenancy": {"tenantId": "a", "rbac": {"enabled": true, "tenantId": ""}}
        }}));
        assert_eq!(out["spec"]["chart"]["repository"]["type"], "oci");
        assert_eq!(out["spec"]["healthChecks"][0]["interval"], "30s");
        assert_eq!(out["spec"]["healthChecks"][0]["http"]["method"], "GET");
        assert_eq!(out["spec"]["tenancy"]["rbac"]["tenantId"], "a");
    }

    #[test]
    fn tenant_label_only_for_valid_label_values() {
        let out = defaulted(json!({"spec": {"tenancy": {"tenantId": "not a label!"}}}));
        assert!(out["metadata"]["labels"].get(TENANT_LABEL).is_none());
        assert_eq!(out["metadata"]["labels"][MANAGED_BY_LABEL], "roost-keeper");
    }

    #[test]
    fn rbac_tenant_not_copied_when_rbac_disabled() {
        let out =
            defaulted(json!({"spec": {"tenancy": {"tenantId": "a", "rbac": {"enabled": false}}}}));
        assert!(out["spec"]["tenancy"]["rbac"].get("tenantId").is_none());
    }

    #[test]
    fn patch_applied_to_input_gives_the_defaulted_object() {
        let input = json!({"metadata": {"name": "a"}, "spec": {"healthChecks": [{"name": "x", "http": {}}]}});
        let result = apply_defaults(&input);
        let mut patched = input.clone();
        json_patch::patch(&mut patched, &result.patch).unwrap();
        assert_eq!(patched, result.object);
        assert!(apply_defaults(&result.object).patch.0.is_empty());
    }
}
