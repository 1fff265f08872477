//! The ValidatingWebhookConfiguration and MutatingWebhookConfiguration that
//! register our two webhooks (`roost-keeper webhook-config`).

use crate::admission::{MUTATE_PATH, POLICY_VALIDATE_PATH, VALIDATE_PATH};
use crate::api::GROUP;
use crate::{Error, Result};
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, ServiceReference,
    ValidatingWebhook, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta,
};

/// Name of the ValidatingWebhookConfiguration.
pub const VALIDATING_CONFIG_NAME: &str = "roost-keeper-validating";
/// Name of the MutatingWebhookConfiguration.
pub const MUTATING_CONFIG_NAME: &str = "roost-keeper-mutating";

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

fn rules(resource: &str, scope: &str) -> Vec<RuleWithOperations> {
    vec![RuleWithOperations {
        api_groups: Some(vec![GROUP.to_owned()]),
        api_versions: Some(vec!["v1alpha1".to_owned()]),
        operations: Some(vec!["CREATE".to_owned(), "UPDATE".to_owned()]),
        resources: Some(vec![resource.to_owned()]),
        scope: Some(scope.to_owned()),
    }]
}

fn namespace_selector(own_namespace: &str) -> LabelSelector {
    LabelSelector {
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: "kubernetes.io/metadata.name".to_owned(),
            operator: "NotIn".to_owned(),
            values: Some(vec!["kube-system".to_owned(), own_namespace.to_owned()]),
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
    let validating = ValidatingWebhookConfiguration {
        metadata: metadata(VALIDATING_CONFIG_NAME),
        webhooks: Some(vec![
            ValidatingWebhook {
                name: "validate.managedroost.roost.birb.party".to_owned(),
                admission_review_versions: vec!["v1".to_owned()],
                client_config: client_config(options, VALIDATE_PATH),
                failure_policy: Some(options.validate_failure_policy.as_str().to_owned()),
                match_policy: Some("Equivalent".to_owned()),
                namespace_selector: Some(namespace_selector(&options.namespace)),
                rules: Some(rules("managedroosts", "Namespaced")),
                side_effects: "None".to_owned(),
                timeout_seconds: Some(5),
                ..ValidatingWebhook::default()
            },
            ValidatingWebhook {
                name: "validate.roostpolicy.roost.birb.party".to_owned(),
                admission_review_versions: vec!["v1".to_owned()],
                client_config: client_config(options, POLICY_VALIDATE_PATH),
                failure_policy: Some(options.validate_failure_policy.as_str().to_owned()),
                match_policy: Some("Equivalent".to_owned()),
                rules: Some(rules("roostpolicies", "Cluster")),
                side_effects: "None".to_owned(),
                timeout_seconds: Some(5),
                ..ValidatingWebhook::default()
            },
        ]),
    };
    let mutating = MutatingWebhookConfiguration {
        metadata: metadata(MUTATING_CONFIG_NAME),
        webhooks: Some(vec![MutatingWebhook {
            name: "default.managedroost.roost.birb.party".to_owned(),
            admission_review_versions: vec!["v1".to_owned()],
            client_config: client_config(options, MUTATE_PATH),
            failure_policy: Some(options.mutate_failure_policy.as_str().to_owned()),
            match_policy: Some("Equivalent".to_owned()),
            namespace_selector: Some(namespace_selector(&options.namespace)),
            reinvocation_policy: Some("IfNeeded".to_owned()),
            rules: Some(rules("managedroosts", "Namespaced")),
            side_effects: "None".to_owned(),
            timeout_seconds: Some(5),
            ..MutatingWebhook::default()
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
