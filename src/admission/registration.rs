//! The ValidatingWebhookConfiguration and MutatingWebhookConfiguration that
//! register our webhooks (`roost-keeper webhook-config`): ManagedRoosts are
//! validated and defaulted, RoostPolicies and RoostPolicyExceptions validated.

use crate::admission::{EXCEPTION_VALIDATE_PATH, MUTATE_PATH, POLICY_VALIDATE_PATH, VALIDATE_PATH};
use crate::api::GROUP;
use crate::api::version::ApiVersion;
use crate::{Error, Result};
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MatchCondition, MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations,
    ServiceReference, ValidatingWebhook, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta,
};

/// Name of the ValidatingWebhookConfiguration.
pub const VALIDATING_CONFIG_NAME: &str = "roost-keeper-validating";
/// Name of the MutatingWebhookConfiguration.
pub const MUTATING_CONFIG_NAME: &str = "roost-keeper-mutating";

/// The ManagedRoost validating webhook's name: the prefix of the audit
/// annotations it sets (`<name>/error-codes`, see [`super::audit`]).
pub const VALIDATE_WEBHOOK_NAME: &str = "validate.managedroost.roost.birb.party";
/// The RoostPolicy validating webhook's name.
pub const POLICY_WEBHOOK_NAME: &str = "validate.roostpolicy.roost.birb.party";
/// The RoostPolicyException validating webhook's name.
pub const EXCEPTION_WEBHOOK_NAME: &str = "validate.roostpolicyexception.roost.birb.party";
/// The ManagedRoost mutating webhook's name.
pub const MUTATE_WEBHOOK_NAME: &str = "default.managedroost.roost.birb.party";

/// Where the apiserver sends reviews.
#[derive(Clone, Debug)]
pub enum Target {
    /// A URL prefix, e.g. `https://127.0.0.1:8443` (local development).
    Url(String),
    /// A Service in the cluster (port 443 forwards to the webhook port).
    Service { name: String, namespace: String },
}

/// What to render.
#[derive(Clone, Debug)]
pub struct WebhookConfigOptions {
    pub target: Target,
    /// PEM CA bundle that signed the serving certificate; `None` leaves it to be injected.
    pub ca_bundle: Option<Vec<u8>>,
    /// The webhook's own namespace, excluded from review with kube-system.
    pub namespace: String,
    pub validate_failure_policy: FailurePolicy,
    pub mutate_failure_policy: FailurePolicy,
    pub selection: Selection,
}

/// Which requests reach the webhooks, and how long the apiserver waits.
/// The Helm chart renders the same fields with the same rules
/// (charts/roost-keeper/templates/webhooks.yaml; tests/helm_chart.rs compares).
#[derive(Clone, Debug, PartialEq)]
pub struct Selection {
    /// `timeoutSeconds` of every webhook (the apiserver allows 1 to 30).
    pub timeout_seconds: i32,
    /// Namespaces not reviewed, besides kube-system and the webhook's own.
    pub exclude_namespaces: Vec<String>,
    /// `objectSelector` of the ManagedRoost webhooks.
    pub object_selector: Option<LabelSelector>,
    /// `matchConditions` (CEL) of the ManagedRoost webhooks.
    pub match_conditions: Vec<MatchCondition>,
    /// `objectSelector` of the RoostPolicy and RoostPolicyException
    /// webhooks: their own, so that a selection meant for roosts cannot let
    /// policies or exceptions skip their review.
    pub policy_object_selector: Option<LabelSelector>,
    /// `matchConditions` of the RoostPolicy and RoostPolicyException webhooks.
    pub policy_match_conditions: Vec<MatchCondition>,
}

impl Default for Selection {
    fn default() -> Self {
        Selection {
            timeout_seconds: 5,
            exclude_namespaces: Vec::new(),
            object_selector: None,
            match_conditions: Vec::new(),
            policy_object_selector: None,
            policy_match_conditions: Vec::new(),
        }
    }
}

impl Selection {
    /// `None` when empty, so the default output has no `matchConditions: []`.
    fn match_conditions(&self) -> Option<Vec<MatchCondition>> {
        (!self.match_conditions.is_empty()).then(|| self.match_conditions.clone())
    }

    fn policy_match_conditions(&self) -> Option<Vec<MatchCondition>> {
        (!self.policy_match_conditions.is_empty()).then(|| self.policy_match_conditions.clone())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FailurePolicy {
    Fail,
    Ignore,
}

impl FailurePolicy {
    fn as_str(self) -> &'static str {
        match self {
            FailurePolicy::Fail => "Fail",
            FailurePolicy::Ignore => "Ignore",
        }
    }
}

fn client_config(options: &WebhookConfigOptions, path: &str) -> WebhookClientConfig {
    let ca_bundle = options.ca_bundle.clone().map(ByteString);
    match &options.target {
        Target::Url(base) => WebhookClientConfig {
            url: Some(format!("{}{path}", base.trim_end_matches('/'))),
            ca_bundle,
            service: None,
        },
        Target::Service { name, namespace } => WebhookClientConfig {
            service: Some(ServiceReference {
                name: name.clone(),
                namespace: namespace.clone(),
                path: Some(path.to_owned()),
                port: Some(443),
            }),
            ca_bundle,
            url: None,
        },
    }
}

/// The rules of a resource's webhook: every version it serves is listed, so
/// each object reaches the webhook in the version it was written in
/// (with `matchPolicy: Equivalent` another version would be converted first).
fn rules(resource: &str, scope: &str, versions: &[&str]) -> Vec<RuleWithOperations> {
    vec![RuleWithOperations {
        api_groups: Some(vec![GROUP.to_owned()]),
        api_versions: Some(versions.iter().map(|v| (*v).to_owned()).collect()),
        operations: Some(vec!["CREATE".to_owned(), "UPDATE".to_owned()]),
        resources: Some(vec![resource.to_owned()]),
        scope: Some(scope.to_owned()),
    }]
}

/// kube-system, the webhook's own namespace, then the extra ones, each once.
fn namespace_selector(options: &WebhookConfigOptions) -> LabelSelector {
    let mut excluded = vec!["kube-system".to_owned()];
    for namespace in
        std::iter::once(&options.namespace).chain(&options.selection.exclude_namespaces)
    {
        if !excluded.contains(namespace) {
            excluded.push(namespace.clone());
        }
    }
    LabelSelector {
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: "kubernetes.io/metadata.name".to_owned(),
            operator: "NotIn".to_owned(),
            values: Some(excluded),
        }]),
        match_labels: None,
    }
}

fn metadata(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        labels: Some(
            [(
                "app.kubernetes.io/name".to_owned(),
                "roost-keeper".to_owned(),
            )]
            .into(),
        ),
        ..ObjectMeta::default()
    }
}

/// Both configurations.
pub fn build(
    options: &WebhookConfigOptions,
) -> (ValidatingWebhookConfiguration, MutatingWebhookConfiguration) {
    let selection = &options.selection;
    let validating = ValidatingWebhookConfiguration {
        metadata: metadata(VALIDATING_CONFIG_NAME),
        webhooks: Some(vec![
            ValidatingWebhook {
                name: VALIDATE_WEBHOOK_NAME.to_owned(),
                admission_review_versions: vec!["v1".to_owned()],
                client_config: client_config(options, VALIDATE_PATH),
                failure_policy: Some(options.validate_failure_policy.as_str().to_owned()),
                match_policy: Some("Equivalent".to_owned()),
                namespace_selector: Some(namespace_selector(options)),
                rules: Some(rules(
                    "managedroosts",
                    "Namespaced",
                    &ApiVersion::ALL.map(ApiVersion::name),
                )),
                side_effects: "None".to_owned(),
                timeout_seconds: Some(selection.timeout_seconds),
                object_selector: selection.object_selector.clone(),
                match_conditions: selection.match_conditions(),
            },
            ValidatingWebhook {
                name: POLICY_WEBHOOK_NAME.to_owned(),
                admission_review_versions: vec!["v1".to_owned()],
                client_config: client_config(options, POLICY_VALIDATE_PATH),
                failure_policy: Some(options.validate_failure_policy.as_str().to_owned()),
                match_policy: Some("Equivalent".to_owned()),
                // RoostPolicies are cluster-scoped: no namespace to select by.
                namespace_selector: None,
                rules: Some(rules("roostpolicies", "Cluster", &["v1alpha1"])),
                side_effects: "None".to_owned(),
                timeout_seconds: Some(selection.timeout_seconds),
                object_selector: selection.policy_object_selector.clone(),
                match_conditions: selection.policy_match_conditions(),
            },
            ValidatingWebhook {
                name: EXCEPTION_WEBHOOK_NAME.to_owned(),
                admission_review_versions: vec!["v1".to_owned()],
                client_config: client_config(options, EXCEPTION_VALIDATE_PATH),
                failure_policy: Some(options.validate_failure_policy.as_str().to_owned()),
                match_policy: Some("Equivalent".to_owned()),
                // Every namespace: an exception is refused wherever it is
                // written wrong (none is needed to start the webhook itself).
                namespace_selector: None,
                rules: Some(rules("roostpolicyexceptions", "Namespaced", &["v1alpha1"])),
                side_effects: "None".to_owned(),
                timeout_seconds: Some(selection.timeout_seconds),
                object_selector: selection.policy_object_selector.clone(),
                match_conditions: selection.policy_match_conditions(),
            },
        ]),
    };
    let mutating = MutatingWebhookConfiguration {
        metadata: metadata(MUTATING_CONFIG_NAME),
        webhooks: Some(vec![MutatingWebhook {
            name: MUTATE_WEBHOOK_NAME.to_owned(),
            admission_review_versions: vec!["v1".to_owned()],
            client_config: client_config(options, MUTATE_PATH),
            failure_policy: Some(options.mutate_failure_policy.as_str().to_owned()),
            match_policy: Some("Equivalent".to_owned()),
            namespace_selector: Some(namespace_selector(options)),
            reinvocation_policy: Some("IfNeeded".to_owned()),
            rules: Some(rules(
                "managedroosts",
                "Namespaced",
                &ApiVersion::ALL.map(ApiVersion::name),
            )),
            side_effects: "None".to_owned(),
            timeout_seconds: Some(selection.timeout_seconds),
            object_selector: selection.object_selector.clone(),
            match_conditions: selection.match_conditions(),
        }]),
    };
    (validating, mutating)
}

fn to_yaml<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_norway::to_string(value).map_err(|source| Error::Serialize {
        what: "webhook configuration",
        source,
    })
}

/// Both configurations as one YAML stream (two documents).
pub fn render(options: &WebhookConfigOptions) -> Result<String> {
    let (validating, mutating) = build(options);
    Ok(format!(
        "# Generated by `roost-keeper webhook-config`; do not edit.\n{}---\n{}",
        to_yaml(&validating)?,
        to_yaml(&mutating)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(selection: Selection) -> WebhookConfigOptions {
        WebhookConfigOptions {
            target: Target::Service {
                name: "roost-keeper".into(),
                namespace: "roost-system".into(),
            },
            ca_bundle: None,
            namespace: "roost-system".into(),
            validate_failure_policy: FailurePolicy::Fail,
            mutate_failure_policy: FailurePolicy::Ignore,
            selection,
        }
    }

    fn excluded(selector: &Option<LabelSelector>) -> Vec<String> {
        selector
            .as_ref()
            .unwrap()
            .match_expressions
            .as_ref()
            .unwrap()[0]
            .values
            .clone()
            .unwrap()
    }

    #[test]
    fn defaults_render_no_selector_and_five_seconds() {
        let yaml = render(&options(Selection::default())).unwrap();
        assert!(!yaml.contains("objectSelector"), "{yaml}");
        assert!(!yaml.contains("matchConditions"), "{yaml}");
        assert_eq!(yaml.matches("timeoutSeconds: 5").count(), 4, "{yaml}");
    }

    #[test]
    fn selection_applies_to_its_own_webhooks() {
        let selector = |team: &str| LabelSelector {
            match_labels: Some([("team".to_owned(), team.to_owned())].into()),
            match_expressions: None,
        };
        let condition = |name: &str| MatchCondition {
            name: name.into(),
            expression: "!request.dryRun".into(),
        };
        let (validating, mutating) = build(&options(Selection {
            timeout_seconds: 12,
            exclude_namespaces: vec!["flock".into(), "kube-system".into(), "nest".into()],
            object_selector: Some(selector("birds")),
            match_conditions: vec![condition("not-dry-run")],
            policy_object_selector: Some(selector("admins")),
            policy_match_conditions: vec![condition("policy-not-dry-run")],
        }));
        let validating = validating.webhooks.unwrap();
        let mutating = mutating.webhooks.unwrap();
        let seen = validating
            .iter()
            .map(|w| {
                (
                    &w.name,
                    w.timeout_seconds,
                    &w.object_selector,
                    &w.match_conditions,
                )
            })
            .chain(mutating.iter().map(|w| {
                (
                    &w.name,
                    w.timeout_seconds,
                    &w.object_selector,
                    &w.match_conditions,
                )
            }));
        for (webhook, timeout, object_selector, conditions) in seen {
            let (team, name) = if webhook.contains("roostpolicy") {
                ("admins", "policy-not-dry-run")
            } else {
                ("birds", "not-dry-run")
            };
            assert_eq!(timeout, Some(12));
            assert_eq!(object_selector, &Some(selector(team)), "{webhook}");
            assert_eq!(conditions, &Some(vec![condition(name)]), "{webhook}");
        }
        // Namespaced webhooks skip the extra namespaces too, each listed once;
        // the RoostPolicy webhook (cluster-scoped objects) has no namespace
        // selector, nor has the RoostPolicyException one (every namespace).
        let expected = ["kube-system", "roost-system", "flock", "nest"];
        assert_eq!(excluded(&validating[0].namespace_selector), expected);
        assert_eq!(excluded(&mutating[0].namespace_selector), expected);
        assert!(validating[1].namespace_selector.is_none());
        assert_eq!(validating[2].name, EXCEPTION_WEBHOOK_NAME);
        assert!(validating[2].namespace_selector.is_none());
    }
}
