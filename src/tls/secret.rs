//! Self-managed certificates kept in a Secret (`serve --cert-secret NS/NAME`).
//!
//! The Secret is read through the API, not a mounted volume (kubelet
//! refreshes those up to a minute late). It holds:
//! - `tls.crt` / `tls.key`: the serving pair every replica presents;
//! - `ca.crt`: the CA bundle patched into both webhook configurations;
//! - `next-ca.crt` / `next-ca.key`: the CA that will sign the next serving
//!   certificate. It joins the bundle when it is made, one rotation ahead, so
//!   by the time a replica presents a certificate it signed, the apiserver has
//!   trusted it for a whole rotation period. A replica patching a bundle from
//!   a slightly stale view therefore never removes the CA in use.
//!
//! Rotation happens at 2/3 of the serving certificate's lifetime, or when
//! the Secret's `roost.birb.party/rotate` annotation takes a value not yet
//! handled (`kubectl annotate secret ... roost.birb.party/rotate=$(date +%s)
//! --overwrite`; the value handled is echoed in `roost.birb.party/rotated`).
//! The next CA signs a new serving pair, a new next CA is
//! made, and CAs stay in the bundle until they expire. Every certificate a CA
//! signs expires no later than the CA, so a CA leaves the bundle only when
//! nothing can still present a certificate it signed.
//!
//! Every write is conditional (create, or replace at the resourceVersion
//! read), so replicas starting or rotating together agree: one write wins,
//! the others re-read and adopt it.

use super::generate::{self, KeyedCert, ServingNames};
use crate::{Error, Result};
use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use prometheus_client::metrics::counter::Counter;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// The CA bundle (PEM, one or more certificates).
pub const BUNDLE_KEY: &str = "ca.crt";
/// The serving certificate (PEM).
pub const CERT_KEY: &str = "tls.crt";
/// The serving certificate's private key (PEM).
pub const KEY_KEY: &str = "tls.key";
/// The CA that signs the next serving certificate (PEM).
pub const NEXT_CA_CERT_KEY: &str = "next-ca.crt";
/// Its private key (PEM).
pub const NEXT_CA_KEY_KEY: &str = "next-ca.key";
/// Annotation that requests a rotation: any new value.
pub const ROTATE_ANNOTATION: &str = "roost.birb.party/rotate";
/// The last `rotate` value handled.
pub const ROTATED_ANNOTATION: &str = "roost.birb.party/rotated";
/// A CA lives this many serving lifetimes: it is trusted one rotation before
/// it signs, and what it signs must expire before it does.
const CA_LIFETIMES: u32 = 3;
/// After patching a bundle, how long the apiserver gets to see it before a
/// certificate that needs it is presented.
const BUNDLE_PROPAGATION: Duration = Duration::from_secs(3);

/// Where the certificates live and what they are for.
#[derive(Clone, Debug)]
pub struct CertSecretConfig {
    pub namespace: String,
    pub name: String,
    /// Names the serving certificate covers (the Service in `namespace`, plus extras).
    pub names: ServingNames,
    /// Lifetime of a serving certificate; rotated at 2/3 of it.
    pub validity: Duration,
    /// How often rotation and the webhook configurations' caBundle are checked.
    pub check_interval: Duration,
}

impl CertSecretConfig {
    /// `NS/NAME` for the Secret; the serving certificate covers `service` in NS.
    pub fn new(secret: &str, service: &str, extra_sans: &[String]) -> Result<Self> {
        let (namespace, name) = parse_secret_ref(secret)?;
        Ok(CertSecretConfig {
            names: ServingNames::new(service, &namespace, extra_sans),
            namespace,
            name,
            validity: Duration::from_secs(90 * 24 * 3600),
            check_interval: Duration::from_secs(30),
        })
    }
}

/// Splits `NS/NAME`.
pub fn parse_secret_ref(text: &str) -> Result<(String, String)> {
    match text.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns.to_owned(), name.to_owned()))
        }
        _ => Err(Error::Config(format!(
            "--cert-secret {text:?} must be NAMESPACE/NAME"
        ))),
    }
}

/// What the Secret holds.
#[derive(Clone, PartialEq, Eq)]
pub struct CertMaterial {
    pub bundle_pem: String,
    pub serving: KeyedCert,
    pub next_ca: KeyedCert,
}

impl std::fmt::Debug for CertMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys never reach a log line.
        f.debug_struct("CertMaterial").finish_non_exhaustive()
    }
}

fn lifetime(validity: Duration) -> time::Duration {
    time::Duration::try_from(validity).unwrap_or(time::Duration::days(90))
}

impl CertMaterial {
    /// A fresh set: a CA that signs the serving pair now, and the next CA.
    pub fn generate(names: &ServingNames, validity: Duration, now: OffsetDateTime) -> Result<Self> {
        let life = lifetime(validity);
        let ca = generate::new_ca(&names.namespace, now, now + life * CA_LIFETIMES)?;
        let serving = generate::new_serving(&ca, names, now, now + life)?;
        let next_ca = generate::new_ca(&names.namespace, now, now + life * CA_LIFETIMES)?;
        Ok(CertMaterial {
            bundle_pem: format!("{}{}", ca.cert_pem, next_ca.cert_pem),
            serving,
            next_ca,
        })
    }

    /// The next set: the next CA signs a new serving pair, a new next CA joins
    /// the bundle, expired CAs leave it. When even the next CA has expired
    /// (nothing ran for a very long time) it starts afresh.
    pub fn rotate(
        &self,
        names: &ServingNames,
        validity: Duration,
        now: OffsetDateTime,
    ) -> Result<Self> {
        let life = lifetime(validity);
        let (_, signer_until) = generate::validity(&self.next_ca.cert_pem)?;
        if signer_until <= now {
            return CertMaterial::generate(names, validity, now);
        }
        let serving =
            generate::new_serving(&self.next_ca, names, now, (now + life).min(signer_until))?;
        let next_ca = generate::new_ca(&names.namespace, now, now + life * CA_LIFETIMES)?;
        let mut bundle: Vec<String> = generate::split_bundle(&self.bundle_pem)
            .into_iter()
            .filter(|ca| generate::validity(ca).is_ok_and(|(_, until)| until > now))
            .collect();
        for ca in [&self.next_ca.cert_pem, &next_ca.cert_pem] {
            if !bundle.iter().any(|known| known.trim() == ca.trim()) {
                bundle.push(ca.clone());
            }
        }
        Ok(CertMaterial {
            bundle_pem: bundle.concat(),
            serving,
            next_ca,
        })
    }

    /// When the serving certificate is due for rotation: 2/3 into its lifetime.
    pub fn rotation_due_at(&self) -> Result<OffsetDateTime> {
        let (from, until) = generate::validity(&self.serving.cert_pem)?;
        Ok(from + (until - from) * 2 / 3)
    }

    fn from_secret(secret: &Secret, config: &CertSecretConfig) -> Result<Self> {
        let empty = BTreeMap::new();
        let data = secret.data.as_ref().unwrap_or(&empty);
        let field = |key: &str| -> Result<String> {
            data.get(key)
                .and_then(|v| String::from_utf8(v.0.clone()).ok())
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| {
                    Error::Certificate {
                        context: format!(
                            "Secret {}/{} has no usable {key:?}; delete it and roost-keeper generates a new one",
                            config.namespace, config.name
                        ),
                        source: None,
                    }
                })
        };
        Ok(CertMaterial {
            bundle_pem: field(BUNDLE_KEY)?,
            serving: KeyedCert {
                cert_pem: field(CERT_KEY)?,
                key_pem: field(KEY_KEY)?,
            },
            next_ca: KeyedCert {
                cert_pem: field(NEXT_CA_CERT_KEY)?,
                key_pem: field(NEXT_CA_KEY_KEY)?,
            },
        })
    }

    fn data(&self) -> BTreeMap<String, ByteString> {
        [
            (BUNDLE_KEY, &self.bundle_pem),
            (CERT_KEY, &self.serving.cert_pem),
            (KEY_KEY, &self.serving.key_pem),
            (NEXT_CA_CERT_KEY, &self.next_ca.cert_pem),
            (NEXT_CA_KEY_KEY, &self.next_ca.key_pem),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), ByteString(v.as_bytes().to_vec())))
        .collect()
    }
}

fn api_error(what: &str, config: &CertSecretConfig, source: kube::Error) -> Error {
    Error::Kube {
        context: format!("{what} Secret {}/{}", config.namespace, config.name),
        source,
    }
}

fn is_status(err: &kube::Error, code: u16) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == code)
}

/// Reads the Secret, or creates it with fresh material when it does not
/// exist. When replicas race to create it, one wins and the others adopt it.
pub async fn ensure(client: &Client, config: &CertSecretConfig) -> Result<CertMaterial> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &config.namespace);
    loop {
        match api.get_opt(&config.name).await {
            Ok(Some(secret)) => return CertMaterial::from_secret(&secret, config),
            Ok(None) => {}
            Err(err) => return Err(api_error("cannot read", config, err)),
        }
        let material =
            CertMaterial::generate(&config.names, config.validity, OffsetDateTime::now_utc())?;
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(config.name.clone()),
                namespace: Some(config.namespace.clone()),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/name".to_owned(),
                    "roost-keeper".to_owned(),
                )])),
                ..Default::default()
            },
            type_: Some("kubernetes.io/tls".to_owned()),
            data: Some(material.data()),
            ..Default::default()
        };
        match api.create(&PostParams::default(), &secret).await {
            Ok(_) => {
                tracing::info!(namespace = %config.namespace, name = %config.name, "generated a CA and serving certificate");
                return Ok(material);
            }
            // Another replica created it first: read and adopt theirs.
            Err(err) if is_status(&err, 409) => continue,
            Err(err) => return Err(api_error("cannot create", config, err)),
        }
    }
}

/// A rotation asked for through the annotation and not yet handled.
fn rotation_requested(secret: &Secret) -> Option<&String> {
    let annotations = secret.metadata.annotations.as_ref()?;
    let requested = annotations.get(ROTATE_ANNOTATION)?;
    (annotations.get(ROTATED_ANNOTATION) != Some(requested)).then_some(requested)
}

/// Rotates when the serving certificate is 2/3 through its lifetime or a
/// rotation was requested, unless another writer changed the Secret first
/// (then its rotation stands). A deleted Secret starts over (a new CA).
/// Returns the material now stored.
pub async fn rotate_if_due(client: &Client, config: &CertSecretConfig) -> Result<CertMaterial> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &config.namespace);
    let Some(mut secret) = api
        .get_opt(&config.name)
        .await
        .map_err(|err| api_error("cannot read", config, err))?
    else {
        return ensure(client, config).await;
    };
    let current = CertMaterial::from_secret(&secret, config)?;
    let now = OffsetDateTime::now_utc();
    let requested = rotation_requested(&secret).cloned();
    if requested.is_none() && current.rotation_due_at()? > now {
        return Ok(current);
    }
    // The CA about to sign must be trusted before anything presents its work.
    if super::bundle::ensure_bundles(client, &current.bundle_pem, &config.names).await? {
        tokio::time::sleep(BUNDLE_PROPAGATION).await;
    }
    let next = current.rotate(&config.names, config.validity, now)?;
    secret.data = Some(next.data());
    secret.metadata.managed_fields = None;
    if let Some(requested) = requested {
        secret
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(ROTATED_ANNOTATION.to_owned(), requested);
    }
    match api
        .replace(&config.name, &PostParams::default(), &secret)
        .await
    {
        Ok(_) => {
            tracing::info!(namespace = %config.namespace, name = %config.name, "rotated the serving certificate");
            Ok(next)
        }
        Err(err) if is_status(&err, 409) => {
            tracing::info!(namespace = %config.namespace, name = %config.name, "another replica rotated first; adopting its certificate");
            let secret = api
                .get(&config.name)
                .await
                .map_err(|err| api_error("cannot read", config, err))?;
            CertMaterial::from_secret(&secret, config)
        }
        Err(err) => Err(api_error("cannot update", config, err)),
    }
}

/// Keeps the served certificate, the Secret and the webhook bundles current
/// until the task is dropped: follows the Secret with a watch (a rotation by
/// any replica reaches every replica at once), rotates when due, and re-checks
/// the bundles every `check_interval` (an `apply` of the configurations may
/// have reset them). Failures are logged, counted in `errors` and retried.
pub async fn maintain(
    client: Client,
    config: CertSecretConfig,
    store: Arc<crate::tls::CertStore>,
    errors: Counter,
) {
    let api: Api<Secret> = Api::namespaced(client.clone(), &config.namespace);
    let secrets = watcher(
        api,
        watcher::Config::default().fields(&format!("metadata.name={}", config.name)),
    )
    .default_backoff()
    .applied_objects();
    let mut secrets = std::pin::pin!(secrets);
    let mut ticker = tokio::time::interval(config.check_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let upkeep = Upkeep {
        client,
        config,
        store,
        errors,
    };
    loop {
        tokio::select! {
            event = secrets.next() => match event {
                Some(Ok(secret)) => upkeep.adopt(&secret).await,
                Some(Err(err)) => upkeep.failed("watch of the certificate Secret failed; retrying", &err),
                None => return,
            },
            _ = ticker.tick() => upkeep.check().await,
        }
    }
}

struct Upkeep {
    client: Client,
    config: CertSecretConfig,
    store: Arc<crate::tls::CertStore>,
    errors: Counter,
}

impl Upkeep {
    fn failed(&self, what: &'static str, err: &(dyn std::error::Error + 'static)) {
        self.errors.inc();
        tracing::warn!(error = %crate::error::ErrorChain(err), "{what}");
    }

    /// Rotates if due, then makes sure the bundles and the served pair are current.
    async fn check(&self) {
        match rotate_if_due(&self.client, &self.config).await {
            Ok(material) => self.inject_then_serve(&material).await,
            Err(err) => self.failed("certificate check failed; retrying", &err),
        }
    }

    /// Patches the bundles first; when that changed them, gives the apiserver
    /// time to see the new bundle before presenting a certificate that may need it.
    async fn inject_then_serve(&self, material: &CertMaterial) {
        match super::bundle::ensure_bundles(&self.client, &material.bundle_pem, &self.config.names)
            .await
        {
            Ok(true) => tokio::time::sleep(BUNDLE_PROPAGATION).await,
            Ok(false) => {}
            Err(err) => self.failed("caBundle not injected; retrying", &err),
        }
        self.serve(material);
    }

    /// A Secret version seen by the watch: bundles first, then the serving pair.
    async fn adopt(&self, secret: &Secret) {
        if rotation_requested(secret).is_some() {
            return self.check().await;
        }
        match CertMaterial::from_secret(secret, &self.config) {
            Ok(material) => self.inject_then_serve(&material).await,
            Err(err) => self.failed(
                "certificate Secret unusable; keeping the current certificate",
                &err,
            ),
        }
    }

    fn serve(&self, material: &CertMaterial) {
        match self.store.replace(
            material.serving.cert_pem.as_bytes().to_vec(),
            material.serving.key_pem.as_bytes().to_vec(),
        ) {
            Ok(true) => tracing::info!("serving certificate reloaded from the Secret"),
            Ok(false) => {}
            Err(err) => self.failed(
                "serving certificate from the Secret unusable; keeping the current one",
                &err,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

    fn names() -> ServingNames {
        ServingNames::new("roost-keeper", "roost-system", &["127.0.0.1".into()])
    }

    const HOUR: Duration = Duration::from_secs(3600);

    /// Whether `cert_pem` verifies for the Service name against `bundle_pem` at `at`.
    fn trusted(bundle_pem: &str, cert_pem: &str, at: OffsetDateTime) -> bool {
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(bundle_pem.as_bytes()) {
            roots.add(ca.unwrap()).unwrap();
        }
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        let leaf = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
        let now = UnixTime::since_unix_epoch(Duration::from_secs(
            u64::try_from(at.unix_timestamp()).unwrap(),
        ));
        verifier
            .verify_server_cert(
                &leaf,
                &[],
                &ServerName::try_from("roost-keeper.roost-system.svc").unwrap(),
                &[],
                now,
            )
            .is_ok()
    }

    #[test]
    fn a_fresh_set_is_trusted_and_already_trusts_the_next_ca() {
        let now = OffsetDateTime::now_utc();
        let material = CertMaterial::generate(&names(), HOUR, now).unwrap();
        assert!(trusted(
            &material.bundle_pem,
            &material.serving.cert_pem,
            now
        ));
        assert_eq!(generate::split_bundle(&material.bundle_pem).len(), 2);
        assert!(material.bundle_pem.contains(&material.next_ca.cert_pem));
    }

    #[test]
    fn rotation_is_due_at_two_thirds_of_the_serving_lifetime() {
        let now = OffsetDateTime::now_utc();
        let material = CertMaterial::generate(&names(), 3 * HOUR, now).unwrap();
        let due = material.rotation_due_at().unwrap();
        // notBefore is 5 minutes back for clock skew: 2/3 of (3h + 5m) after it.
        let expected = now - time::Duration::minutes(5) + time::Duration::minutes(185) * 2 / 3;
        let off: time::Duration = due - expected;
        assert!(
            off.abs() < time::Duration::seconds(2),
            "{due} vs {expected}"
        );
    }

    #[test]
    fn after_a_rotation_the_old_bundle_already_trusts_the_new_certificate() {
        let now = OffsetDateTime::now_utc();
        let first = CertMaterial::generate(&names(), HOUR, now).unwrap();
        let second = first.rotate(&names(), HOUR, now).unwrap();
        assert_ne!(second.serving, first.serving);
        // A replica still patching the old bundle keeps the new certificate trusted...
        assert!(trusted(&first.bundle_pem, &second.serving.cert_pem, now));
        // ...and the new bundle still trusts the old certificate until it expires.
        assert!(trusted(&second.bundle_pem, &first.serving.cert_pem, now));
        assert!(trusted(&second.bundle_pem, &second.serving.cert_pem, now));
        assert!(second.bundle_pem.contains(&second.next_ca.cert_pem));
    }

    #[test]
    fn expired_cas_leave_the_bundle_and_live_ones_stay() {
        let start = OffsetDateTime::now_utc();
        let at = |minutes: i64| start + time::Duration::minutes(minutes);
        // CAs live 3 hours (3 serving lifetimes).
        let first = CertMaterial::generate(&names(), HOUR, at(0)).unwrap();
        let second = first.rotate(&names(), HOUR, at(60)).unwrap();
        let third = second.rotate(&names(), HOUR, at(120)).unwrap();
        assert_eq!(
            generate::split_bundle(&third.bundle_pem).len(),
            4,
            "nothing expired yet"
        );
        let fourth = third.rotate(&names(), HOUR, at(181)).unwrap();
        let cas = generate::split_bundle(&fourth.bundle_pem);
        assert_eq!(
            cas.len(),
            3,
            "the two CAs made at the start expired and left"
        );
        for gone in generate::split_bundle(&first.bundle_pem) {
            assert!(!cas.contains(&gone));
        }
        assert!(trusted(
            &fourth.bundle_pem,
            &fourth.serving.cert_pem,
            at(181)
        ));
        assert!(trusted(
            &fourth.bundle_pem,
            &third.serving.cert_pem,
            at(170)
        ));
    }

    #[test]
    fn a_long_dead_set_starts_afresh() {
        let start = OffsetDateTime::now_utc();
        let first = CertMaterial::generate(&names(), HOUR, start).unwrap();
        let much_later = start + time::Duration::hours(10);
        let next = first.rotate(&names(), HOUR, much_later).unwrap();
        assert!(trusted(
            &next.bundle_pem,
            &next.serving.cert_pem,
            much_later
        ));
        assert_eq!(generate::split_bundle(&next.bundle_pem).len(), 2);
    }

    #[test]
    fn secret_data_round_trips_and_a_missing_key_is_named_without_content() {
        let config =
            CertSecretConfig::new("roost-system/roost-keeper-tls", "roost-keeper", &[]).unwrap();
        let material =
            CertMaterial::generate(&config.names, HOUR, OffsetDateTime::now_utc()).unwrap();
        let mut secret = Secret {
            data: Some(material.data()),
            ..Default::default()
        };
        assert_eq!(
            CertMaterial::from_secret(&secret, &config).unwrap(),
            material
        );
        secret.data.as_mut().unwrap().remove(NEXT_CA_KEY_KEY);
        let err = CertMaterial::from_secret(&secret, &config)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("next-ca.key") && err.contains("roost-system/roost-keeper-tls"),
            "{err}"
        );
        assert!(!err.contains("PRIVATE"), "{err}");
        assert!(!format!("{material:?}").contains("PRIVATE"));
    }

    #[test]
    fn secret_refs_need_a_namespace_and_a_name() {
        assert_eq!(
            parse_secret_ref("roost-system/tls").unwrap(),
            ("roost-system".to_owned(), "tls".to_owned())
        );
        for bad in ["tls", "/tls", "ns/", "a/b/c", ""] {
            assert!(parse_secret_ref(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_rotation_is_requested_by_a_new_annotation_value_only() {
        let secret = |annotations: &[(&str, &str)]| Secret {
            metadata: kube::api::ObjectMeta {
                annotations: Some(
                    annotations
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                ),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(rotation_requested(&secret(&[])), None);
        assert_eq!(
            rotation_requested(&secret(&[(ROTATE_ANNOTATION, "1")])),
            Some(&"1".to_owned())
        );
        assert_eq!(
            rotation_requested(&secret(&[
                (ROTATE_ANNOTATION, "1"),
                (ROTATED_ANNOTATION, "1")
            ])),
            None
        );
        assert_eq!(
            rotation_requested(&secret(&[
                (ROTATE_ANNOTATION, "2"),
                (ROTATED_ANNOTATION, "1")
            ])),
            Some(&"2".to_owned())
        );
    }
}
