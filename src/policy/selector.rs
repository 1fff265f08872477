//! Kubernetes label selectors (`matchLabels`, `matchExpressions`), checked
//! when a policy is compiled and matched against labels.

use super::Labels;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Requirement {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

/// A checked label selector; an empty one matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector(Vec<Requirement>);

impl Selector {
    /// Checks `selector` as the apiserver would: known operators, values
    /// only for In and NotIn (and at least one there).
    pub fn new(selector: &LabelSelector) -> Result<Self, String> {
        let mut requirements: Vec<Requirement> = selector
            .match_labels
            .iter()
            .flatten()
            .map(|(k, v)| Requirement::In(k.clone(), vec![v.clone()]))
            .collect();
        for (i, expression) in selector.match_expressions.iter().flatten().enumerate() {
            let key = expression.key.clone();
            if key.is_empty() {
                return Err(format!("matchExpressions[{i}]: key is empty"));
            }
            let values = expression.values.clone().unwrap_or_default();
            let requirement = match expression.operator.as_str() {
                "In" | "NotIn" if values.is_empty() => {
                    return Err(format!(
                        "matchExpressions[{i}]: {} needs at least one value",
                        expression.operator
                    ));
                }
                "Exists" | "DoesNotExist" if !values.is_empty() => {
                    return Err(format!(
                        "matchExpressions[{i}]: {} takes no values",
                        expression.operator
                    ));
                }
                "In" => Requirement::In(key, values),
                "NotIn" => Requirement::NotIn(key, values),
                "Exists" => Requirement::Exists(key),
                "DoesNotExist" => Requirement::DoesNotExist(key),
                other => {
                    return Err(format!(
                        "matchExpressions[{i}]: operator {} is not In, NotIn, Exists or DoesNotExist",
                        crate::validation::finding::shown_max(other, 32)
                    ));
                }
            };
            requirements.push(requirement);
        }
        Ok(Selector(requirements))
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::In(k, values) => labels.get(k).is_some_and(|v| values.contains(v)),
            Requirement::NotIn(k, values) => labels.get(k).is_none_or(|v| !values.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn selector(value: serde_json::Value) -> Result<Selector, String> {
        Selector::new(&serde_json::from_value(value).unwrap())
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn selectors_match_as_in_kubernetes() {
        let prod = labels(&[("env", "prod"), ("team", "a")]);
        let preview = labels(&[("env", "preview")]);
        let cases = [
            ("empty", json!({}), true, true),
            (
                "matchLabels",
                json!({"matchLabels": {"env": "prod"}}),
                true,
                false,
            ),
            (
                "In",
                json!({"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "staging"]}]}),
                true,
                false,
            ),
            (
                "NotIn",
                json!({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}),
                false,
                true,
            ),
            (
                "Exists",
                json!({"matchExpressions": [{"key": "team", "operator": "Exists"}]}),
                true,
                false,
            ),
            (
                "DoesNotExist",
                json!({"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]}),
                false,
                true,
            ),
        ];
        let mut wrong = Vec::new();
        for (name, value, on_prod, on_preview) in cases {
            let s = selector(value).unwrap();
            if (s.matches(&prod), s.matches(&preview)) != (on_prod, on_preview) {
                wrong.push(name);
            }
        }
        assert!(wrong.is_empty(), "{wrong:?}");
    }

    #[test]
    fn invalid_selectors_are_refused() {
        let mut accepted = Vec::new();
        for value in [
            json!({"matchExpressions": [{"key": "env", "operator": "Equals", "values": ["x"]}]}),
            json!({"matchExpressions": [{"key": "env", "operator": "In"}]}),
            json!({"matchExpressions": [{"key": "env", "operator": "Exists", "values": ["x"]}]}),
            json!({"matchExpressions": [{"key": "", "operator": "Exists"}]}),
        ] {
            if selector(value.clone()).is_ok() {
                accepted.push(value);
            }
        }
        assert!(accepted.is_empty(), "{accepted:?}");
    }
}
