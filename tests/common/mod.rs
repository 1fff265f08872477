//! A real roost-keeper server over HTTPS on free loopback ports, and a client
//! that trusts its CA.

#![allow(dead_code)] // each test binary uses a different part of this module

pub mod cluster;
pub mod schema_tools;

use roost_keeper::server::{ServeConfig, Server};
use roost_keeper::tls::generate;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub struct TestServer {
    pub webhook: SocketAddr,
    pub metrics: SocketAddr,
    pub dir: tempfile::TempDir,
    pub ca_pem: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: Option<tokio::task::JoinHandle<roost_keeper::Result<()>>>,
}

pub fn config(dir: &std::path::Path) -> ServeConfig {
    ServeConfig {
        webhook_addr: "127.0.0.1:0".parse().unwrap(),
        metrics_addr: "127.0.0.1:0".parse().unwrap(),
        cert_reload_interval: Duration::from_millis(100),
        shutdown_delay: Duration::from_millis(300),
        shutdown_grace: Duration::from_secs(10),
        read_timeout: Duration::from_secs(2),
        ..ServeConfig::new(dir.join("tls.crt"), dir.join("tls.key"))
    }
}

/// Shorter timeouts for tests of slow and idle clients.
pub trait ServeConfigExt {
    /// `read` (first request) and `idle` timeouts, in seconds.
    fn with_timeouts(self, read: u64, idle: u64) -> ServeConfig;
}

impl ServeConfigExt for ServeConfig {
    fn with_timeouts(self, read: u64, idle: u64) -> ServeConfig {
        ServeConfig {
            read_timeout: Duration::from_secs(read),
            idle_timeout: Duration::from_secs(idle),
            ..self
        }
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|c| c).await
    }

    pub async fn start_with(adjust: impl FnOnce(ServeConfig) -> ServeConfig) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let bundle = generate::generate(
            "roost-keeper",
            "roost-system",
            &["127.0.0.1".into(), "localhost".into()],
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
        generate::write_bundle(&bundle, dir.path()).unwrap();
        let server = Server::bind(adjust(config(dir.path()))).await.unwrap();
        let (webhook, metrics) = (server.webhook_addr(), server.metrics_addr());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        let test = TestServer {
            webhook,
            metrics,
            dir,
            ca_pem: bundle.ca_pem,
            stop: Some(stop),
            task: Some(task),
        };
        test.wait_ready().await;
        test
    }

    /// The metrics port's exposition, as Prometheus scrapes it.
    pub async fn metrics_text(&self) -> String {
        // Off the runtime's thread: the server answers on this same runtime.
        let metrics = self.metrics;
        tokio::task::spawn_blocking(move || roost_testcluster::scrape(metrics))
            .await
            .unwrap()
    }

    pub async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        for _ in 0..100 {
            if let Ok(resp) = client
                .get(format!("http://{}/readyz", self.metrics))
                .send()
                .await
                && resp.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("server never became ready");
    }

    pub fn client(&self) -> reqwest::Client {
        client_trusting(&[&self.ca_pem])
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.webhook.port())
    }

    /// Requests shutdown (as SIGTERM does).
    pub fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub fn cert_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

/// A TLS client configuration trusting the server's CA, offering `alpn`.
pub fn tls_client_config(
    server: &TestServer,
    alpn: &[&[u8]],
) -> std::sync::Arc<rustls::ClientConfig> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(server.ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    std::sync::Arc::new(config)
}

/// A raw TLS connection to the webhook port (for clients that misbehave on purpose).
pub async fn tls_connect(
    server: &TestServer,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(server.webhook)
        .await
        .unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(tls_client_config(server, alpn))
        .connect(name, tcp)
        .await
        .unwrap()
}

pub fn client_trusting(cas: &[&str]) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_info(true)
        .timeout(Duration::from_secs(20));
    for ca in cas {
        builder =
            builder.add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

pub const VALIDATE: &str = "/validate-roost-birb-party-v1alpha1-managedroost";
pub const MUTATE: &str = "/mutate-roost-birb-party-v1alpha1-managedroost";

/// A valid ManagedRoost as the apiserver would send it.
pub fn roost(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "roost.birb.party/v1alpha1",
        "kind": "ManagedRoost",
        "metadata": {"name": name, "namespace": "team-a"},
        "spec": spec
    })
}

pub fn valid_spec() -> Value {
    json!({
        "chart": {"name": "nginx", "version": "15.4.4", "repository": {"url": "https://charts.example.com", "type": "http"}},
        "healthChecks": [{"name": "web", "type": "http", "http": {"url": "http://web.team-a.svc/healthz", "method": "GET"},
                          "interval": "30s", "timeout": "5s", "failureThreshold": 3, "weight": 1}],
        "teardownPolicy": {"triggers": [{"type": "timeout", "timeout": "2h"}]}
    })
}

pub fn review(uid: &str, operation: &str, object: Value, old: Option<Value>) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "roost.birb.party", "version": "v1alpha1", "kind": "ManagedRoost"},
            "resource": {"group": "roost.birb.party", "version": "v1alpha1", "resource": "managedroosts"},
            "name": object["metadata"]["name"],
            "namespace": "team-a",
            "operation": operation,
            "userInfo": {"username": "alice"},
            "object": object,
            "oldObject": old,
            "dryRun": false
        }
    })
}

/// POSTs a body and returns (status, JSON).
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let json = resp.json::<Value>().await.unwrap_or(Value::Null);
    (status, json)
}
