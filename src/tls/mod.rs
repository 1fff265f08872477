//! Serving TLS: rustls (TLS 1.2 and 1.3 only) with a certificate that is
//! re-read when its files change, including when kubelet swaps the symlinked
//! directory of a Secret volume. The swap is atomic: handshakes in progress
//! keep the key they started with, new ones get the new key.

pub mod bundle;
pub mod generate;
pub mod secret;

use crate::{Error, Result};
use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Reads a PEM certificate chain and private key into a signing key.
pub fn load_certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::tls("certificate file is not PEM", e))?;
    if chain.is_empty() {
        return Err(Error::Tls {
            context: "certificate file holds no certificate".into(),
            source: None,
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| Error::tls("key file is not a PEM private key", e))?;
    let signing_key = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| Error::tls("unusable private key", e))?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified
        .keys_match()
        .map_err(|e| Error::tls("certificate and key do not match", e))?;
    Ok(certified)
}

/// The serving certificate, swappable while the server runs.
#[derive(Debug)]
pub struct CertStore {
    current: ArcSwap<CertifiedKey>,
    /// Certificate and key files to poll; `None` when the pair comes from the API.
    files: Option<(PathBuf, PathBuf)>,
    /// PEM bytes last loaded, to notice a change.
    loaded: std::sync::Mutex<(Vec<u8>, Vec<u8>)>,
    /// notAfter of the certificate served (Unix seconds; 0 when unreadable).
    not_after: AtomicI64,
}

impl CertStore {
    /// Loads the files; fails when they are missing or unusable.
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<Arc<Self>> {
        let (cert, key) = read_pair(cert_file, key_file)?;
        let mut store = CertStore::new(cert, key)?;
        store.files = Some((cert_file.to_path_buf(), key_file.to_path_buf()));
        Ok(Arc::new(store))
    }

    /// Serves a PEM pair held in memory (replaced with [`CertStore::replace`]).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<Self>> {
        CertStore::new(cert_pem.to_vec(), key_pem.to_vec()).map(Arc::new)
    }

    fn new(cert: Vec<u8>, key: Vec<u8>) -> Result<Self> {
        let certified = load_certified_key(&cert, &key)?;
        Ok(CertStore {
            current: ArcSwap::from_pointee(certified),
            files: None,
            not_after: AtomicI64::new(not_after(&cert)),
            loaded: std::sync::Mutex::new((cert, key)),
        })
    }

    /// notAfter of the certificate served now (Unix seconds; 0 when unreadable).
    pub fn not_after(&self) -> i64 {
        self.not_after.load(Ordering::Relaxed)
    }

    /// Swaps in a new PEM pair when it differs from the one served and is
    /// usable; returns whether a new key is now served. On error the old key
    /// stays in service.
    pub fn replace(&self, cert: Vec<u8>, key: Vec<u8>) -> Result<bool> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if loaded.0 == cert && loaded.1 == key {
            return Ok(false);
        }
        let certified = load_certified_key(&cert, &key)?;
        self.current.store(Arc::new(certified));
        self.not_after.store(not_after(&cert), Ordering::Relaxed);
        *loaded = (cert, key);
        Ok(true)
    }

    /// Re-reads the files; swaps the key when they changed and are usable.
    /// Returns whether a new key is now served. A half-written pair is left
    /// for the next attempt and the old key stays in service.
    pub fn reload(&self) -> Result<bool> {
        let Some((cert_file, key_file)) = &self.files else {
            return Ok(false);
        };
        let (cert, key) = read_pair(cert_file, key_file)?;
        self.replace(cert, key)
    }

    /// Polls the files every `interval` until the task is dropped.
    /// Failures are logged and counted in `errors`.
    pub fn spawn_reloader(
        self: &Arc<Self>,
        interval: Duration,
        errors: prometheus_client::metrics::counter::Counter,
    ) -> tokio::task::JoinHandle<()> {
        let store = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                match store.reload() {
                    Ok(true) => {
                        tracing::info!("serving certificate reloaded from its files")
                    }
                    Ok(false) => {}
                    Err(err) => {
                        errors.inc();
                        tracing::warn!(error = %crate::error::ErrorChain(&err), "serving certificate not reloaded; keeping the current one")
                    }
                }
            }
        })
    }

    /// rustls server configuration: TLS 1.2/1.3, HTTP/2 and HTTP/1.1 by ALPN.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<rustls::ServerConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| Error::tls("no usable protocol versions", e))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// Completes a TLS handshake with our own listener (readiness). The
/// certificate is not verified: the question is only whether the listener answers.
pub async fn self_dial(addr: std::net::SocketAddr) -> Result<()> {
    static CONFIG: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnswersOnly(provider)))
            .with_no_client_auth();
        Arc::new(config)
    });
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| Error::tls(format!("cannot connect to {addr}"), e))?;
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("static name is valid");
    tokio_rustls::TlsConnector::from(Arc::clone(config))
        .connect(name, tcp)
        .await
        .map_err(|e| Error::tls(format!("no handshake with {addr}"), e))?;
    Ok(())
}

/// Accepts any certificate but still checks the handshake signatures.
#[derive(Debug)]
struct AnswersOnly(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnswersOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// notAfter of the first certificate of a PEM chain (Unix seconds; 0 when unreadable).
fn not_after(cert_pem: &[u8]) -> i64 {
    crate::tls::generate::validity(&String::from_utf8_lossy(cert_pem))
        .map_or(0, |(_, until)| until.unix_timestamp())
}

fn read_pair(cert_file: &Path, key_file: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    Ok((read(cert_file)?, read(key_file)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::generate;

    #[test]
    fn reload_swaps_only_on_change_and_keeps_serving_on_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let now = time::OffsetDateTime::now_utc();
        generate::write_bundle(&generate::generate("a", "b", &[], now).unwrap(), dir.path())
            .unwrap();
        let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        let store = CertStore::load(&cert, &key).unwrap();
        let first = store.current.load_full();
        assert!(!store.reload().unwrap());
        std::fs::write(&key, "not a key").unwrap();
        assert!(store.reload().is_err());
        assert!(
            Arc::ptr_eq(&first, &store.current.load_full()),
            "old key still served"
        );
        generate::write_bundle(&generate::generate("a", "b", &[], now).unwrap(), dir.path())
            .unwrap();
        assert!(store.reload().unwrap());
        assert!(!Arc::ptr_eq(&first, &store.current.load_full()));
    }

    #[test]
    fn mismatched_pair_is_refused() {
        let now = time::OffsetDateTime::now_utc();
        let a = generate::generate("a", "b", &[], now).unwrap();
        let b = generate::generate("a", "b", &[], now).unwrap();
        let err = load_certified_key(a.cert_pem.as_bytes(), b.key_pem.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("do not match"), "{err}");
    }
}
