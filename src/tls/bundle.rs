//! caBundle injection: both webhook configurations and the ManagedRoost
//! CRD's conversion webhook are patched to trust the CA bundle of the
//! managed Secret ([`super::secret`]); the CRD's conversion is also pointed
//! at our Service when it still names the one it ships with.

use super::generate::ServingNames;
use crate::admission::registration::{MUTATING_CONFIG_NAME, VALIDATING_CONFIG_NAME};
use crate::api::ManagedRoost;
use crate::api::crd::{SERVICE_NAME, SERVICE_NAMESPACE};
use crate::{Error, Result};
use base64::Engine as _;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, WebhookClientConfig as CrdClientConfig,
};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, CustomResourceExt};

/// Makes both webhook configurations carry `bundle_pem` as every webhook's
/// caBundle, and the ManagedRoost CRD as its conversion webhook's. A
/// configuration or CRD that does not exist yet is skipped (it is checked
/// again later). Returns whether anything was patched.
pub async fn ensure_bundles(
    client: &Client,
    bundle_pem: &str,
    names: &ServingNames,
) -> Result<bool> {
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
    let conversion = inject_conversion_bundle(client, bundle_pem, names).await?;
    Ok(validating || mutating || conversion)
}

/// Patches the ManagedRoost CRD's conversion webhook (merge patch) to trust
/// `bundle_pem` and, where needed, to reach our Service ([`conversion_patch`]).
/// A missing CRD, or one that does not convert by webhook (the apiserver
/// refuses a webhook config then), is skipped. Returns whether it patched.
async fn inject_conversion_bundle(
    client: &Client,
    bundle_pem: &str,
    names: &ServingNames,
) -> Result<bool> {
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
        .unwrap_or_default();
    let Some(patch) = conversion_patch(&current, bundle_pem, names) else {
        return Ok(false);
    };
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| bundle_error(name, e))?;
    tracing::info!(
        crd = name,
        "conversion webhook of the CRD updated (caBundle, Service)"
    );
    Ok(true)
}

/// The merge patch that makes the CRD's conversion client config trust
/// `bundle_pem` and, when it still names the Service the CRD ships with
/// (`roost-keeper` in `roost-system`: Helm cannot template a chart's
/// `crds/`) while ours is another, name ours, whose DNS names our
/// certificate covers. A URL, or a Service someone chose, is left alone.
/// `None` when nothing differs.
fn conversion_patch(
    current: &CrdClientConfig,
    bundle_pem: &str,
    names: &ServingNames,
) -> Option<serde_json::Value> {
    let mut client_config = serde_json::Map::new();
    if current.ca_bundle.as_ref().map(|b| b.0.as_slice()) != Some(bundle_pem.as_bytes()) {
        let encoded = base64::engine::general_purpose::STANDARD.encode(bundle_pem);
        client_config.insert("caBundle".into(), encoded.into());
    }
    if let Some(service) = &current.service {
        let shipped = service.name == SERVICE_NAME && service.namespace == SERVICE_NAMESPACE;
        let ours = service.name == names.service && service.namespace == names.namespace;
        if shipped && !ours {
            client_config.insert(
                "service".into(),
                serde_json::json!({"name": names.service, "namespace": names.namespace}),
            );
        }
    }
    (!client_config.is_empty()).then(|| {
        serde_json::json!({"spec": {"conversion": {"webhook": {"clientConfig": client_config}}}})
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::ServiceReference;

    fn service(name: &str, namespace: &str) -> CrdClientConfig {
        CrdClientConfig {
            service: Some(ServiceReference {
                name: name.into(),
                namespace: namespace.into(),
                path: Some("/convert".into()),
                port: Some(443),
            }),
            ca_bundle: Some(ByteString(b"CA".to_vec())),
            url: None,
        }
    }

    fn names(namespace: &str) -> ServingNames {
        ServingNames::new("roost-keeper", namespace, &[])
    }

    #[test]
    fn the_shipped_service_follows_ours_and_nothing_else_is_touched() {
        let moved = conversion_patch(
            &service("roost-keeper", "roost-system"),
            "CA",
            &names("platform"),
        );
        assert_eq!(
            moved,
            Some(
                serde_json::json!({"spec": {"conversion": {"webhook": {"clientConfig":
                {"service": {"name": "roost-keeper", "namespace": "platform"}}}}}})
            )
        );
        // Already ours, or a Service or URL someone chose: left alone.
        assert_eq!(
            conversion_patch(
                &service("roost-keeper", "platform"),
                "CA",
                &names("platform")
            ),
            None
        );
        assert_eq!(
            conversion_patch(&service("proxy", "roost-system"), "CA", &names("platform")),
            None
        );
        let url = CrdClientConfig {
            url: Some("https://127.0.0.1:8443/convert".into()),
            ca_bundle: Some(ByteString(b"CA".to_vec())),
            service: None,
        };
        assert_eq!(conversion_patch(&url, "CA", &names("platform")), None);
        // A new bundle is patched whatever the target.
        let bundle = conversion_patch(&url, "NEW", &names("platform")).unwrap();
        assert_eq!(
            bundle["spec"]["conversion"]["webhook"]["clientConfig"]["caBundle"],
            base64::engine::general_purpose::STANDARD.encode("NEW")
        );
    }
}
