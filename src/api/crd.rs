//! The generated CustomResourceDefinition (`roost-keeper crd`), with a size
//! limit on every list and map of the spec.
//!
//! The limits bound the work any object can cause (findings, patches,
//! replies): the apiserver refuses an object beyond them, and the webhooks and
//! the offline validator read them from this same schema
//! ([`spec_schema`]), so all three agree.

use crate::api::ManagedRoost;
use crate::api::version::ApiVersion;
use crate::{Error, Result};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceConversion, CustomResourceDefinition, JSONSchemaProps, ServiceReference,
    WebhookClientConfig, WebhookConversion,
};
use kube::CustomResourceExt;
use serde_json::Value;
use std::sync::LazyLock;

/// Most items in any list of a ManagedRoost spec.
pub const MAX_LIST_ITEMS: u64 = 100;
/// Most entries in any map (string keys) of a ManagedRoost spec.
pub const MAX_MAP_ENTRIES: u64 = 100;

/// Path of the conversion webhook on the serving port.
pub const CONVERT_PATH: &str = "/convert";

/// What kubectl prints for every request in v1alpha1.
pub const V1ALPHA1_DEPRECATION: &str = "roost.birb.party/v1alpha1 ManagedRoost is deprecated; use roost.birb.party/v1beta1 (roost-keeper convert -f FILE --to v1beta1)";

/// The Service in front of the webhook server, as deploy/ installs it.
pub const SERVICE_NAME: &str = "roost-keeper";
/// Its namespace.
pub const SERVICE_NAMESPACE: &str = "roost-system";

/// Where the apiserver sends ConversionReviews, as the deploy/ manifests
/// install roost-keeper (`Service` roost-keeper in roost-system, port 443).
pub fn default_conversion_client() -> WebhookClientConfig {
    WebhookClientConfig {
        service: Some(ServiceReference {
            name: SERVICE_NAME.into(),
            namespace: SERVICE_NAMESPACE.into(),
            path: Some(CONVERT_PATH.into()),
            port: Some(443),
        }),
        ..WebhookClientConfig::default()
    }
}

/// The CRD: v1alpha1 (served, deprecated) and v1beta1 (served, stored), the
/// spec's lists and maps capped, conversion by our webhook at the default
/// client config.
pub fn managed_roost_crd() -> CustomResourceDefinition {
    managed_roost_crd_with(default_conversion_client())
}

/// The CRD with conversion sent to `client`.
pub fn managed_roost_crd_with(client: WebhookClientConfig) -> CustomResourceDefinition {
    let mut crd = with_capped_spec(ManagedRoost::crd());
    let Some(mut alpha) = crd.spec.versions.pop() else {
        return crd;
    };
    let mut beta = alpha.clone();
    beta.name = ApiVersion::V1beta1.name().into();
    beta.storage = true;
    let beta_spec = version_spec_schema(&alpha)
        .map(|alpha_spec| super::v1beta1::spec_schema(&alpha_spec))
        .and_then(|spec| serde_json::from_value::<JSONSchemaProps>(spec).ok());
    if let (Some(spec), Some(properties)) = (
        beta_spec,
        beta.schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
            .and_then(|s| s.properties.as_mut()),
    ) {
        properties.insert("spec".into(), spec);
    }
    alpha.storage = false;
    alpha.deprecated = Some(true);
    alpha.deprecation_warning = Some(V1ALPHA1_DEPRECATION.into());
    crd.spec.versions = vec![alpha, beta];
    crd.spec.conversion = Some(CustomResourceConversion {
        strategy: "Webhook".into(),
        webhook: Some(WebhookConversion {
            client_config: Some(client),
            conversion_review_versions: vec!["v1".into()],
        }),
    });
    crd
}

fn version_spec_schema(
    version: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinitionVersion,
) -> Option<Value> {
    let spec = version
        .schema
        .as_ref()?
        .open_api_v3_schema
        .as_ref()?
        .properties
        .as_ref()?
        .get("spec")?;
    serde_json::to_value(spec).ok()
}

/// `crd` with [`cap`] applied to the schema of `spec` in every version.
fn with_capped_spec(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    for version in &mut crd.spec.versions {
        let spec = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
            .and_then(|s| s.properties.as_mut())
            .and_then(|p| p.get_mut("spec"));
        if let Some(spec) = spec {
            let mut json = serde_json::to_value(&*spec).unwrap_or(Value::Null);
            cap(&mut json);
            if let Ok(capped) = serde_json::from_value(json) {
                *spec = capped;
            }
        }
    }
    crd
}

/// Adds the size limits to every list and string map below `schema`; opaque
/// sub-trees (kept as written, read by no rule) are left alone.
fn cap(schema: &mut Value) {
    let Some(node) = schema.as_object_mut() else {
        return;
    };
    match node.get("type").and_then(Value::as_str) {
        Some("array") => {
            node.entry("maxItems").or_insert(MAX_LIST_ITEMS.into());
        }
        Some("object") if node.contains_key("additionalProperties") => {
            node.entry("maxProperties")
                .or_insert(MAX_MAP_ENTRIES.into());
        }
        _ => {}
    }
    if let Some(Value::Object(properties)) = node.get_mut("properties") {
        properties.values_mut().for_each(cap);
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = node.get_mut(key) {
            cap(child);
        }
    }
}

/// The schema of v1alpha1's `spec` (JSON), as the CRD carries it: the
/// hub's shape, which the rules read.
pub fn spec_schema() -> &'static Value {
    spec_schema_of(ApiVersion::V1alpha1)
}

/// The schema of `spec` (JSON) in `version`, as the CRD carries it.
pub fn spec_schema_of(version: ApiVersion) -> &'static Value {
    static SCHEMAS: LazyLock<[Value; 2]> = LazyLock::new(|| {
        let crd = managed_roost_crd();
        ApiVersion::ALL.map(|version| {
            crd.spec
                .versions
                .iter()
                .find(|v| v.name == version.name())
                .and_then(version_spec_schema)
                .unwrap_or(Value::Null)
        })
    });
    match version {
        ApiVersion::V1alpha1 => &SCHEMAS[0],
        ApiVersion::V1beta1 => &SCHEMAS[1],
    }
}

/// The RoostPolicy CRD, with its lists capped like the ManagedRoost spec's.
pub fn roost_policy_crd() -> CustomResourceDefinition {
    with_capped_spec(super::roost_policy::RoostPolicy::crd())
}

/// The RoostPolicyException CRD, with its lists capped like the others.
pub fn roost_policy_exception_crd() -> CustomResourceDefinition {
    with_capped_spec(super::roost_policy_exception::RoostPolicyException::crd())
}

/// Which CRD `roost-keeper crd` prints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum CrdKind {
    #[default]
    Managedroost,
    Roostpolicy,
    Roostpolicyexception,
}

/// The CRD as YAML, exactly what `crds/managedroost.yaml` holds.
pub fn crd_yaml() -> Result<String> {
    crd_yaml_of(CrdKind::Managedroost)
}

/// A CRD as YAML, exactly what `crds/<kind>.yaml` holds.
pub fn crd_yaml_of(kind: CrdKind) -> Result<String> {
    match kind {
        CrdKind::Managedroost => yaml_of(&managed_roost_crd()),
        CrdKind::Roostpolicy => yaml_of(&roost_policy_crd()),
        CrdKind::Roostpolicyexception => yaml_of(&roost_policy_exception_crd()),
    }
}

/// The ManagedRoost CRD as YAML, with conversion sent to `client`.
pub fn managed_roost_crd_yaml_with(client: WebhookClientConfig) -> Result<String> {
    yaml_of(&managed_roost_crd_with(client))
}

fn yaml_of(crd: &CustomResourceDefinition) -> Result<String> {
    let body = serde_norway::to_string(crd).map_err(|source| Error::Serialize {
        what: "CustomResourceDefinition",
        source,
    })?;
    Ok(format!(
        "# Generated by `roost-keeper crd`; do not edit. A test fails when this file drifts.\n{}",
        quote_yaml11_booleans(&body)
    ))
}

/// Quotes list items that YAML 1.1 (kubectl's reader) takes for booleans:
/// the emitter writes YAML 1.2, where `off` is a string.
fn quote_yaml11_booleans(yaml: &str) -> String {
    const WORDS: [&str; 8] = ["off", "on", "yes", "no", "Off", "On", "Yes", "No"];
    yaml.lines()
        .map(|line| {
            let item = line.trim_start().strip_prefix("- ");
            match item {
                Some(word) if WORDS.contains(&word) => {
                    format!(
                        "{}- \"{word}\"\n",
                        &line[..line.len() - line.trim_start().len()]
                    )
                }
                _ => format!("{line}\n"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_reads_the_override_level_off_as_a_string() {
        let yaml = crd_yaml_of(CrdKind::Roostpolicy).unwrap();
        // The YAML 1.1 reading kubectl does (go-yaml v2 scalars).
        let crd = crate::yaml::Documents::new(&yaml)
            .next()
            .unwrap()
            .unwrap()
            .value;
        let levels = crd.pointer(
            "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/overrides/items/properties/level/enum",
        );
        assert_eq!(
            levels,
            Some(&serde_json::json!(["error", "warning", "info", "off"]))
        );
    }

    #[test]
    fn every_list_and_map_of_the_spec_is_capped() {
        let schema = spec_schema();
        let health = &schema["properties"]["healthChecks"];
        assert_eq!(health["maxItems"], MAX_LIST_ITEMS);
        let codes = &health["items"]["properties"]["http"]["properties"]["expectedCodes"];
        assert_eq!(codes["maxItems"], MAX_LIST_ITEMS);
        let custom = &schema["properties"]["teardownPolicy"]["properties"]["triggers"]["items"]["properties"]
            ["resourceThreshold"]["properties"]["custom"];
        assert_eq!(custom["maxProperties"], MAX_MAP_ENTRIES);
        let template =
            &schema["properties"]["chart"]["properties"]["values"]["properties"]["template"];
        assert!(template.get("maxProperties").is_none(), "{template}");
    }
}
