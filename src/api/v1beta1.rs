//! The v1beta1 schema of ManagedRoost, made from the v1alpha1 one by the
//! changes docs/api-versions.md gives reasons for:
//!
//! - durations and quantities are strings (v1alpha1: integer or string);
//! - `multiplier`, `threshold` and `samplingRate` are decimal strings
//!   (v1alpha1: any JSON value);
//! - the inline credentials `auth.password` and `auth.token` live on as
//!   `auth.deprecatedPassword` and `auth.deprecatedToken`;
//! - a health check and a teardown trigger are unions: the type names the one
//!   block allowed, and the apiserver refuses the object otherwise, with the
//!   webhook's code in brackets ([`UNIONS`]).
//!
//! Every other field is the same, so every v1alpha1 object the apiserver
//! accepts has a home here (see [`super::convert`]).

use super::version::RENAMED_CREDENTIALS;
use serde_json::{Map, Value, json};

/// A discriminated union: a list whose items name their member in `type`.
pub struct Union {
    /// The list, as a path of property names below `spec`.
    pub list: &'static [&'static str],
    /// The list's name in messages and field paths (`spec.healthChecks`).
    pub field: &'static str,
    pub members: &'static [Member],
    /// The code of a member present beside another type.
    pub mismatch_code: &'static str,
    /// What the item is called in messages (`check`, `trigger`).
    pub noun: &'static str,
}

/// One member: the `type` value, the block it needs and the code when absent.
pub struct Member {
    pub type_value: &'static str,
    pub block: &'static str,
    pub missing_code: &'static str,
}

/// The two unions of v1beta1. The code names are those of the rules'
/// table (a test in `validation::codes` ties them).
pub const UNIONS: &[Union] = &[
    Union {
        list: &["healthChecks"],
        field: "spec.healthChecks",
        noun: "check",
        mismatch_code: "HEALTH_CHECK_CONFIG_MISMATCH",
        members: &[
            member("http", "http", "HTTP_CONFIG_MISSING"),
            member("tcp", "tcp", "TCP_CONFIG_MISSING"),
            member("udp", "udp", "UDP_CONFIG_MISSING"),
            member("grpc", "grpc", "GRPC_CONFIG_MISSING"),
            member("prometheus", "prometheus", "PROMETHEUS_CONFIG_MISSING"),
            member("kubernetes", "kubernetes", "KUBERNETES_CONFIG_MISSING"),
        ],
    },
    Union {
        list: &["teardownPolicy", "triggers"],
        field: "spec.teardownPolicy.triggers",
        noun: "trigger",
        mismatch_code: "TRIGGER_CONFIG_MISMATCH",
        members: &[
            member("timeout", "timeout", "TIMEOUT_MISSING"),
            member("failure_count", "failureCount", "FAILURE_COUNT_MISSING"),
            member(
                "resource_threshold",
                "resourceThreshold",
                "RESOURCE_THRESHOLD_MISSING",
            ),
            member("schedule", "schedule", "SCHEDULE_MISSING"),
            member("webhook", "webhook", "WEBHOOK_TRIGGER_URL_MISSING"),
        ],
    },
];

const fn member(
    type_value: &'static str,
    block: &'static str,
    missing_code: &'static str,
) -> Member {
    Member {
        type_value,
        block,
        missing_code,
    }
}

impl Union {
    /// The message when `member`'s block is missing.
    pub fn missing_message(&self, member: &Member) -> String {
        format!(
            "a {} of type {} needs its {} block",
            self.noun, member.type_value, member.block
        )
    }

    /// The message when `member`'s block is present on another type.
    pub fn mismatch_message(&self, member: &Member) -> String {
        format!(
            "{} is allowed only when type is {}; remove it or change the type",
            member.block, member.type_value
        )
    }

    /// The CRD's `x-kubernetes-validations` for one item of the list.
    fn rules(&self) -> Vec<Value> {
        let missing = self.members.iter().map(|m| {
            json!({
                "rule": format!("self.type != '{}' || has(self.{})", m.type_value, m.block),
                "message": format!("{} [{}]", self.missing_message(m), m.missing_code),
                "fieldPath": format!(".{}", m.block),
                "reason": "FieldValueRequired",
            })
        });
        let mismatch = self.members.iter().map(|m| {
            json!({
                "rule": format!("!has(self.{}) || self.type == '{}'", m.block, m.type_value),
                "message": format!("{} [{}]", self.mismatch_message(m), self.mismatch_code),
                "fieldPath": format!(".{}", m.block),
                "reason": "FieldValueForbidden",
            })
        });
        missing.chain(mismatch).collect()
    }
}

/// What the v1beta1 unions refuse in a spec, as the apiserver's CEL rules
/// do: (field, code name, message), in list order.
pub fn union_refusals(spec: &Value) -> Vec<(String, &'static str, String)> {
    let mut found = Vec::new();
    for union in UNIONS {
        let list = union
            .list
            .iter()
            .try_fold(spec, |node, key| node.get(key))
            .and_then(Value::as_array);
        for (i, item) in list.into_iter().flatten().enumerate() {
            let Some(item) = item.as_object() else {
                continue;
            };
            let kind = item.get("type").and_then(Value::as_str);
            for m in union.members {
                let present = item.contains_key(m.block);
                let field = format!("{}[{i}].{}", union.field, m.block);
                if kind == Some(m.type_value) && !present {
                    found.push((field, m.missing_code, union.missing_message(m)));
                } else if kind != Some(m.type_value) && present {
                    found.push((field, union.mismatch_code, union.mismatch_message(m)));
                }
            }
        }
    }
    found
}

/// The v1alpha1 leaves that hold any JSON value, typed as decimal strings in v1beta1.
const OPEN_NUMBERS: &[&[&str]] = &[
    &["healthChecks", "items", "grpc", "retryPolicy", "multiplier"],
    &["healthChecks", "items", "prometheus", "threshold"],
    &["observability", "tracing", "samplingRate"],
];

/// The v1beta1 schema of `spec`, from the v1alpha1 one (`alpha`).
pub fn spec_schema(alpha: &Value) -> Value {
    let mut schema = alpha.clone();
    strings_for_int_or_string(&mut schema);
    for path in OPEN_NUMBERS {
        if let Some(node) = schema_at(&mut schema, path) {
            let mut typed = json!({"type": "string"});
            for key in ["description", "nullable"] {
                if let Some(value) = node.get(key) {
                    typed[key] = value.clone();
                }
            }
            *node = typed;
        }
    }
    if let Some(Value::Object(auth)) =
        schema_at(&mut schema, &["chart", "repository", "auth", "properties"])
    {
        for (from, to) in RENAMED_CREDENTIALS {
            rename_credential(auth, from, to);
        }
    }
    for union in UNIONS {
        let mut path = union.list.to_vec();
        path.push("items");
        if let Some(Value::Object(item)) = schema_at(&mut schema, &path) {
            item.insert("x-kubernetes-validations".into(), union.rules().into());
        }
    }
    schema
}

fn rename_credential(auth: &mut Map<String, Value>, from: &str, to: &str) {
    if let Some(mut field) = auth.remove(from) {
        field["description"] = format!(
            "Deprecated: an inline {from} (v1alpha1 auth.{from}); put it in a Secret and use secretRef."
        )
        .into();
        auth.insert(to.into(), field);
    }
}

/// The node at `path`, where each step is a property name or `items`
/// (`properties` is implied before a name).
fn schema_at<'a>(schema: &'a mut Value, path: &[&str]) -> Option<&'a mut Value> {
    let mut node = schema;
    for step in path {
        node = match *step {
            "items" | "properties" => node.get_mut(*step)?,
            name if node.get("properties").is_some() => {
                node.get_mut("properties")?.get_mut(name)?
            }
            name => node.get_mut(name)?,
        };
    }
    Some(node)
}

/// Every `x-kubernetes-int-or-string` node becomes `type: string`.
fn strings_for_int_or_string(node: &mut Value) {
    let Some(map) = node.as_object_mut() else {
        return;
    };
    if map.remove("x-kubernetes-int-or-string") == Some(Value::Bool(true)) {
        map.insert("type".into(), "string".into());
    }
    for key in ["properties"] {
        if let Some(Value::Object(children)) = map.get_mut(key) {
            children.values_mut().for_each(strings_for_int_or_string);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = map.get_mut(key) {
            strings_for_int_or_string(child);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::crd::spec_schema_of;
    use crate::api::version::ApiVersion;

    fn beta() -> &'static Value {
        spec_schema_of(ApiVersion::V1beta1)
    }

    #[test]
    fn durations_quantities_and_open_numbers_are_strings() {
        let health = &beta()["properties"]["healthChecks"]["items"]["properties"];
        assert_eq!(health["interval"]["type"], "string");
        assert_eq!(health["interval"]["nullable"], true);
        assert!(
            health["interval"]
                .get("x-kubernetes-int-or-string")
                .is_none()
        );
        assert_eq!(
            health["prometheus"]["properties"]["threshold"]["type"],
            "string"
        );
        let quota =
            &beta()["properties"]["tenancy"]["properties"]["resourceQuota"]["properties"]["hard"];
        assert_eq!(quota["additionalProperties"]["type"], "string");
        let tracing = &beta()["properties"]["observability"]["properties"]["tracing"]["properties"];
        assert_eq!(tracing["samplingRate"]["type"], "string");
        // values.inline stays any JSON: a mapping or YAML text.
        let inline = &beta()["properties"]["chart"]["properties"]["values"]["properties"]["inline"];
        assert_eq!(inline["x-kubernetes-preserve-unknown-fields"], true);
    }

    #[test]
    fn inline_credentials_have_a_deprecated_home() {
        let auth = &beta()["properties"]["chart"]["properties"]["repository"]["properties"]["auth"]
            ["properties"];
        assert!(auth.get("password").is_none() && auth.get("token").is_none());
        assert_eq!(auth["deprecatedPassword"]["type"], "string");
        assert_eq!(auth["deprecatedToken"]["type"], "string");
    }

    #[test]
    fn unions_carry_a_rule_per_member_and_side_with_the_code() {
        let rules = &beta()["properties"]["healthChecks"]["items"]["x-kubernetes-validations"];
        assert_eq!(rules.as_array().unwrap().len(), 12);
        assert!(rules.to_string().contains("[HTTP_CONFIG_MISSING]"));
        let rules = &beta()["properties"]["teardownPolicy"]["properties"]["triggers"]["items"]["x-kubernetes-validations"];
        assert_eq!(rules.as_array().unwrap().len(), 10);
        assert!(rules.to_string().contains("[TRIGGER_CONFIG_MISMATCH]"));
    }

    #[test]
    fn union_refusals_follow_the_rules() {
        let spec = json!({
            "healthChecks": [
                {"name": "a", "type": "http", "http": {"url": "https://x"}},
                {"name": "b", "type": "http", "tcp": {"host": "x", "port": 1}},
            ],
            "teardownPolicy": {"triggers": [
                {"type": "failure_count", "failureCount": 3},
                {"type": "schedule", "timeout": "1h"},
            ]},
        });
        let found: Vec<(String, &str)> = union_refusals(&spec)
            .into_iter()
            .map(|(field, code, _)| (field, code))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "spec.healthChecks[1].http".to_owned(),
                    "HTTP_CONFIG_MISSING"
                ),
                (
                    "spec.healthChecks[1].tcp".to_owned(),
                    "HEALTH_CHECK_CONFIG_MISMATCH"
                ),
                (
                    "spec.teardownPolicy.triggers[1].timeout".to_owned(),
                    "TRIGGER_CONFIG_MISMATCH"
                ),
                (
                    "spec.teardownPolicy.triggers[1].schedule".to_owned(),
                    "SCHEDULE_MISSING"
                ),
            ]
        );
        assert!(union_refusals(&json!({"healthChecks": "x"})).is_empty());
    }
}
