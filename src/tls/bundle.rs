//! caBundle injection: both webhook configurations and the ManagedRoost
//! CRD's conversion webhook are patched to trust the CA bundle of the
//! managed Secret ([`super::secret`]).

use crate::admission::registration::{MUTATING_CONFIG_NAME, VALIDATING_CONFIG_NAME};
use crate::api::ManagedRoost;
use crate::{Error, Result};
use base64::Engine as _;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, CustomResourceExt};

/// Makes both webhook configurations carry `bundle_pem` as every webhook's
/// caBundle, and the ManagedRoost CRD as its conversion webhook's. A
/// configuration or CRD that does not exist yet is skipped (it is checked
/// again later). Returns whether anything was patched.
pub async fn ensure_bundles(client: &Client, bundle_pem: &str) -> Result<bool> {
    let validating = inject_bundle::<ValidatingWebhookConfiguration>(
        client,
        VALIDATING_CONFIG_NAME,
        |config| {
            let hooks = config.webhooks.iter().flatten();
            hooks.map(|w| (w.name.as_str(), &w.client_config)).collect()
        },
        bundle_pem,
    )
    .await?;
    let mutating = inject_bundle::<MutatingWebhookConfiguration>(
        client,
        MUTATING_CONFIG_NAME,
        |config| {
            let hooks = config.webhooks.iter().flatten();
            hooks.map(|w| (w.name.as_str(), &w.client_config)).collect()
        },
        bundle_pem,
    )
    .await?;
    let conversion = inject_conversion_bundle(client, bundle_pem).await?;
    Ok(validating || mutating || conversion)
}

/// Patches `bundle_pem` into the ManagedRoost CRD's conversion webhook
/// (merge patch) when its caBundle differs. A missing CRD, or one that does
/// not convert by webhook (the apiserver refuses a webhook config then), is
/// skipped. Returns whether it patched.
async fn inject_conversion_bundle(client: &Client, bundle_pem: &str) -> Result<bool> {
    let name = ManagedRoost::crd_name();
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let Some(crd) = api.get_opt(name).await.map_err(|e| bundle_error(name, e))? else {
        return Ok(false);
    };
    let Some(conversion) = crd.spec.conversion.filter(|c| c.strategy == "Webhook") else {
        return Ok(false);
    };
    let current = conversion
        .webhook
        .and_then(|w| w.client_config)
        .and_then(|c| c.ca_bundle);
    if current.as_ref().map(|b| b.0.as_slice()) == Some(bundle_pem.as_bytes()) {
        return Ok(false);
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(bundle_pem);
    let patch = serde_json::json!({
        "spec": {"conversion": {"webhook": {"clientConfig": {"caBundle": encoded}}}}
    });
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| bundle_error(name, e))?;
    tracing::info!(crd = name, "caBundle injected into the conversion webhook");
    Ok(true)
}

fn bundle_error(config: &str, source: kube::Error) -> Error {
    Error::Kube {
        context: format!("cannot inject caBundle into {config}"),
        source,
    }
}

/// Patches `bundle_pem` into every webhook of the configuration `name` whose
/// caBundle differs (strategic merge, merged by webhook name). A missing
/// configuration is skipped. Returns whether it patched.
async fn inject_bundle<K>(
    client: &Client,
    name: &str,
    webhooks: fn(&K) -> Vec<(&str, &WebhookClientConfig)>,
    bundle_pem: &str,
) -> Result<bool>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let api: Api<K> = Api::all(client.clone());
    let Some(config) = api.get_opt(name).await.map_err(|e| bundle_error(name, e))? else {
        return Ok(false);
    };
    let encoded = base64::engine::general_purpose::STANDARD.encode(bundle_pem);
    let entries: Vec<serde_json::Value> = webhooks(&config)
        .into_iter()
        .filter(|(_, client_config)| {
            client_config.ca_bundle.as_ref().map(|b| b.0.as_slice()) != Some(bundle_pem.as_bytes())
        })
        .map(|(webhook, _)| serde_json::json!({"name": webhook, "clientConfig": {"caBundle": encoded}}))
        .collect();
    if entries.is_empty() {
        return Ok(false);
    }
    let patch = serde_json::json!({"webhooks": entries});
    api.patch(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .map_err(|e| bundle_error(name, e))?;
    tracing::info!(configuration = name, "caBundle injected");
    Ok(true)
}
