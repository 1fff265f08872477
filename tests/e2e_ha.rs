//! High availability end to end, on the real kube-apiserver with RBAC: two
//! `roost-keeper serve --cert-secret roost-system/roost-keeper-tls` processes
//! running as deploy/'s service account (its token, its RBAC), behind a TCP
//! proxy that routes new connections to ready replicas only.
//!
//! The proxy stands in for a Service: this control plane has no nodes, so no
//! kube-proxy and no endpoints controller. Like them it sends new connections
//! only to replicas whose `/readyz` answers 200 (polled every 100 ms) and
//! leaves open connections alone.
//!
//! Each test starts its own control plane; they run one at a time (a lock)
//! so timing checks do not compete for the machine's cores.

use roost_testcluster::{
    ControlPlane, ServeCommand, ServeProcess, output_with_stdin, repo_root, succeeded, text,
    wait_for,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NAMESPACE: &str = "roost-system";
const SECRET: &str = "roost-keeper-tls";
const LEASE: &str = "roost-keeper-controller";
/// Where the apply streams write.
const TEAM: &str = "team-ha";

static SERIAL: Mutex<()> = Mutex::new(());

// ---------------------------------------------------------------------------
// The proxy (a Service's stand-in)
// ---------------------------------------------------------------------------

struct Backend {
    webhook: SocketAddr,
    metrics: SocketAddr,
    ready: AtomicBool,
}

struct Proxy {
    port: u16,
    backends: Arc<Mutex<Vec<Arc<Backend>>>>,
}

impl Proxy {
    fn start(runtime: &tokio::runtime::Runtime) -> Proxy {
        let backends: Arc<Mutex<Vec<Arc<Backend>>>> = Arc::default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let polled = Arc::clone(&backends);
        runtime.spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_millis(800))
                .build()
                .unwrap();
            loop {
                let all: Vec<Arc<Backend>> = polled.lock().unwrap().clone();
                for backend in all {
                    let url = format!("http://{}/readyz", backend.metrics);
                    let ready = matches!(http.get(&url).send().await, Ok(r) if r.status() == 200);
                    backend.ready.store(ready, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let routed = Arc::clone(&backends);
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let next = AtomicUsize::new(0);
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                let ready: Vec<SocketAddr> = routed
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|b| b.ready.load(Ordering::SeqCst))
                    .map(|b| b.webhook)
                    .collect();
                if ready.is_empty() {
                    continue; // no endpoints: the connection is closed
                }
                let target = ready[next.fetch_add(1, Ordering::Relaxed) % ready.len()];
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = inbound.set_nodelay(true);
                        let _ = outbound.set_nodelay(true);
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Proxy { port, backends }
    }

    fn add(&self, webhook: SocketAddr, metrics: SocketAddr) {
        self.backends.lock().unwrap().push(Arc::new(Backend {
            webhook,
            metrics,
            ready: AtomicBool::new(false),
        }));
    }
}

// ---------------------------------------------------------------------------
// The cluster and its replicas
// ---------------------------------------------------------------------------

struct Replica {
    name: String,
    serve: ServeProcess,
}

struct Cluster {
    plane: ControlPlane,
    /// Kubeconfig of deploy/'s service account (namespace roost-system).
    service_account: PathBuf,
    proxy: Proxy,
    runtime: tokio::runtime::Runtime,
    replicas: Vec<Replica>,
    /// Holds the service account's kubeconfig.
    _dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // The replicas go first (killed on drop), then the control plane.
        self.replicas.clear();
        self.plane.stop();
    }
}

impl Cluster {
    /// A control plane with the CRD, deploy/'s namespace, service account and
    /// RBAC, and both webhook configurations and the CRD's conversion
    /// pointing at the proxy (no caBundle: the replicas inject it).
    fn start() -> Cluster {
        let plane = ControlPlane::start().expect("control plane starts");
        plane.install_crd().expect("CRD installed");
        let deploy = repo_root().join("deploy");
        succeeded(
            "apply deploy/ RBAC",
            &plane
                .kubectl()
                .args(["apply", "-f"])
                .arg(deploy.join("namespace.yaml"))
                .arg("-f")
                .arg(deploy.join("serviceaccount.yaml"))
                .arg("-f")
                .arg(deploy.join("rbac.yaml"))
                .output()
                .unwrap(),
        );
        succeeded(
            "create the team namespace",
            &plane
                .kubectl()
                .args(["create", "namespace", TEAM])
                .output()
                .unwrap(),
        );
        let token = succeeded(
            "create a service account token",
            &plane
                .kubectl()
                .args([
                    "create",
                    "token",
                    "roost-keeper",
                    "-n",
                    NAMESPACE,
                    "--duration=2h",
                ])
                .output()
                .unwrap(),
        );
        let dir = tempfile::tempdir().unwrap();
        let service_account = dir.path().join("service-account.kubeconfig");
        let kubeconfig = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "e2e", "cluster": {"server": plane.server, "certificate-authority": plane.dir.path().join("ca.crt")}}],
            "users": [{"name": "roost-keeper", "user": {"token": token.trim()}}],
            "contexts": [{"name": "sa", "context": {"cluster": "e2e", "user": "roost-keeper", "namespace": NAMESPACE}}],
            "current-context": "sa"
        });
        std::fs::write(&service_account, kubeconfig.to_string()).unwrap();

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let proxy = Proxy::start(&runtime);
        let webhooks = Command::new(env!("CARGO_BIN_EXE_roost-keeper"))
            .args(["webhook-config", "--url"])
            .arg(format!("https://127.0.0.1:{}", proxy.port))
            .output()
            .unwrap();
        let yaml = succeeded("webhook-config", &webhooks);
        succeeded(
            "apply webhook configurations",
            &apply(&plane.bin.join("kubectl"), &plane.kubeconfig, &yaml),
        );
        // Conversion by the replicas too, its caBundle left to their injection.
        plane
            .convert_at(&format!("https://127.0.0.1:{}", proxy.port), None)
            .expect("CRD conversion pointed at the proxy");
        Cluster {
            plane,
            service_account,
            proxy,
            runtime,
            replicas: Vec::new(),
            _dir: dir,
        }
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        self.plane.kubectl().args(args).output().unwrap()
    }

    /// Starts a replica named `name` (does not wait until it is ready);
    /// returns its index.
    fn spawn(&mut self, name: &str) -> usize {
        let serve = ServeCommand::new(env!("CARGO_BIN_EXE_roost-keeper"))
            .managed_certs()
            .controller(&self.service_account)
            .args(["--cert-secret", &format!("{NAMESPACE}/{SECRET}")])
            .args(["--extra-san", "127.0.0.1"])
            .args(["--identity", name])
            .args(["--shutdown-delay", "2s", "--shutdown-grace", "10s"])
            .args(["--lease-duration", "8s", "--lease-renew-deadline", "5s"])
            .args(["--lease-retry-period", "1s", "--cert-check-interval", "2s"])
            .ready_within(None)
            .spawn()
            .unwrap();
        self.proxy.add(serve.webhook, serve.metrics);
        self.replicas.push(Replica {
            name: name.to_owned(),
            serve,
        });
        self.replicas.len() - 1
    }

    fn log(&self, i: usize) -> String {
        self.replicas[i].serve.log_text()
    }

    fn wait_ready(&mut self, i: usize) {
        let replica = &mut self.replicas[i];
        if let Err(why) = replica.serve.wait_ready(Duration::from_secs(60)) {
            panic!("replica {}: {why}", replica.name);
        }
    }

    fn signal(&self, i: usize, signal: &str) {
        self.replicas[i].serve.signal(signal);
    }

    fn wait_exit(&mut self, i: usize, within: Duration) -> std::process::ExitStatus {
        let replica = &mut self.replicas[i];
        replica
            .serve
            .wait_exit(within)
            .unwrap_or_else(|| panic!("{} exits: not within {within:?}", replica.name))
    }

    /// What a JSONPath template reads from the certificate Secret.
    fn secret_jsonpath(&self, template: &str) -> String {
        let out = self.kubectl(&[
            "get",
            "secret",
            SECRET,
            "-n",
            NAMESPACE,
            "-o",
            &format!("jsonpath={template}"),
        ]);
        succeeded("read the certificate Secret", &out)
    }

    /// A key of the certificate Secret, decoded.
    fn secret(&self, key: &str) -> String {
        let encoded = self.secret_jsonpath(&format!("{{.data.{}}}", key.replace('.', "\\.")));
        use base64::Engine as _;
        text(
            &base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .unwrap(),
        )
    }

    /// The caBundle of a webhook configuration's webhooks, or of a CRD's
    /// conversion webhook (`kind` crd).
    fn ca_bundle(&self, kind: &str, name: &str) -> String {
        let path = if kind == "crd" {
            "jsonpath={.spec.conversion.webhook.clientConfig.caBundle}"
        } else {
            "jsonpath={.webhooks[*].clientConfig.caBundle}"
        };
        let out = self.kubectl(&["get", kind, name, "-o", path]);
        let encoded = succeeded("read a caBundle", &out);
        use base64::Engine as _;
        let mut bundles: Vec<String> = encoded
            .split_whitespace()
            .map(|b| text(&base64::engine::general_purpose::STANDARD.decode(b).unwrap()))
            .collect();
        // Every webhook of the configuration carries the same bundle; when
        // they differ, all of them are returned, so no comparison holds.
        bundles.dedup();
        bundles.join("\n(another webhook's caBundle)\n")
    }

    /// The certificate replica `i` presents, verified against `bundle_pem`
    /// for 127.0.0.1; `None` when the handshake fails.
    fn presented(&self, i: usize, bundle_pem: &str) -> Option<Vec<u8>> {
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(bundle_pem.as_bytes()) {
            roots.add(ca.ok()?).ok()?;
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .ok()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let addr = self.replicas[i].serve.webhook;
        self.runtime.block_on(async move {
            let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
            let name = ServerName::IpAddress(addr.ip().into());
            let tls = tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp))
                .await
                .ok()?
                .ok()?;
            let (_, session) = tls.get_ref();
            Some(session.peer_certificates()?.first()?.to_vec())
        })
    }

    fn metrics(&self, i: usize) -> String {
        self.replicas[i].serve.metrics_text()
    }

    fn lease_holder(&self) -> String {
        let out = self.kubectl(&[
            "get",
            "lease",
            LEASE,
            "-n",
            NAMESPACE,
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ]);
        if out.status.success() {
            text(&out.stdout).trim().to_owned()
        } else {
            String::new()
        }
    }

    fn roost_json(&self, name: &str) -> serde_json::Value {
        let out = self.kubectl(&["get", "managedroost", name, "-n", TEAM, "-o", "json"]);
        serde_json::from_str(&succeeded("get managedroost", &out)).unwrap()
    }
}

fn der(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

fn manifest(name: &str, iteration: usize) -> String {
    serde_json::json!({
        "apiVersion": "roost.birb.party/v1alpha1",
        "kind": "ManagedRoost",
        "metadata": {"name": name, "namespace": TEAM, "labels": {"iteration": iteration.to_string()}},
        "spec": {
            "chart": {"name": "nginx", "version": "15.4.4", "repository": {"url": "https://charts.example.org/stable"}},
            "teardownPolicy": {"triggers": [{"type": "timeout", "timeout": "24h"}]}
        }
    })
    .to_string()
}

/// `kubectl apply` of one object in a loop (a new label each time, so every
/// apply is a write the webhooks judge), until stopped.
/// When each apply started, and how it ended.
type ApplyLog = Arc<Mutex<Vec<(Instant, Result<(), String>)>>>;

struct ApplyStream {
    stop: Arc<AtomicBool>,
    results: ApplyLog,
    handle: std::thread::JoinHandle<()>,
}

impl ApplyStream {
    fn start(cluster: &Cluster, name: &str) -> ApplyStream {
        let stop = Arc::new(AtomicBool::new(false));
        let results = ApplyLog::default();
        let kubectl = cluster.plane.bin.join("kubectl");
        let kubeconfig = cluster.plane.kubeconfig.clone();
        let (name, stopping, log) = (name.to_owned(), Arc::clone(&stop), Arc::clone(&results));
        let handle = std::thread::spawn(move || {
            let mut i = 0;
            while !stopping.load(Ordering::SeqCst) {
                i += 1;
                let started = Instant::now();
                let out = apply(&kubectl, &kubeconfig, &manifest(&name, i));
                let result = if out.status.success() {
                    Ok(())
                } else {
                    Err(format!("apply {i}: {}", text(&out.stderr).trim()))
                };
                log.lock().unwrap().push((started, result));
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        ApplyStream {
            stop,
            results,
            handle,
        }
    }

    /// Successful applies that started at or after `since`.
    fn succeeded_since(&self, since: Instant) -> usize {
        let results = self.results.lock().unwrap();
        results
            .iter()
            .filter(|(started, result)| *started >= since && result.is_ok())
            .count()
    }

    /// Waits until `n` applies started at or after `since` have gone through.
    fn wait_succeeded_since(&self, what: &str, since: Instant, n: usize) {
        wait_for(what, Duration::from_secs(60), || {
            (self.succeeded_since(since) >= n).then_some(())
        });
    }

    /// Stops the stream: how many applies went through, and the failures.
    fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().unwrap();
        let results = std::mem::take(&mut *self.results.lock().unwrap());
        let applied = results.iter().filter(|(_, r)| r.is_ok()).count();
        let failures = results.into_iter().filter_map(|(_, r)| r.err()).collect();
        (applied, failures)
    }
}

fn apply(kubectl: &Path, kubeconfig: &Path, manifest: &str) -> Output {
    let mut command = Command::new(kubectl);
    command
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["apply", "-f", "-"]);
    output_with_stdin(&mut command, manifest.as_bytes()).unwrap()
}

/// Two replicas started together, both ready.
fn two_replicas() -> Cluster {
    let mut cluster = Cluster::start();
    let (a, b) = (cluster.spawn("replica-a"), cluster.spawn("replica-b"));
    cluster.wait_ready(a);
    cluster.wait_ready(b);
    cluster
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn replicas_starting_together_agree_on_one_ca_and_inject_it() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let cluster = two_replicas();
    let generated = (0..2)
        .filter(|i| {
            cluster
                .log(*i)
                .contains("generated a CA and serving certificate")
        })
        .count();
    assert_eq!(
        generated, 1,
        "exactly one replica generates; the other adopts"
    );
    let bundle = cluster.secret("ca.crt");
    let serving = der(&cluster.secret("tls.crt"));
    for i in 0..2 {
        assert_eq!(
            cluster.presented(i, &bundle).as_deref(),
            Some(serving.as_slice()),
            "replica {i} presents the Secret's certificate, trusted by its bundle"
        );
    }
    for (kind, name) in [
        ("validatingwebhookconfiguration", "roost-keeper-validating"),
        ("mutatingwebhookconfiguration", "roost-keeper-mutating"),
        ("crd", "managedroosts.roost.birb.party"),
    ] {
        assert_eq!(cluster.ca_bundle(kind, name), bundle, "{name} caBundle");
    }
    // The apiserver trusts it: a create goes through both webhooks.
    let out = apply(
        &cluster.plane.bin.join("kubectl"),
        &cluster.plane.kubeconfig,
        &manifest("first", 0),
    );
    succeeded("apply through the webhooks", &out);
    let roost = cluster.roost_json("first");
    assert_eq!(
        roost["metadata"]["labels"]["app.kubernetes.io/managed-by"], "roost-keeper",
        "the mutating webhook filled defaults: {roost}"
    );
}

#[test]
fn a_forced_rotation_under_a_stream_of_applies_fails_none() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let cluster = two_replicas();
    let old_cert = cluster.secret("tls.crt");
    let stream = ApplyStream::start(&cluster, "rotating");
    let started = Instant::now();
    stream.wait_succeeded_since("applies before the rotation", started, 3);
    succeeded(
        "request a rotation",
        &cluster.kubectl(&[
            "annotate",
            "secret",
            SECRET,
            "-n",
            NAMESPACE,
            "roost.birb.party/rotate=e2e-1",
            "--overwrite",
        ]),
    );
    let new_cert = wait_for(
        "the Secret holds a new certificate",
        Duration::from_secs(30),
        || {
            let cert = cluster.secret("tls.crt");
            (cert != old_cert).then_some(cert)
        },
    );
    let bundle = cluster.secret("ca.crt");
    for i in 0..2 {
        wait_for(
            &format!("replica {i} presents the new certificate"),
            Duration::from_secs(15),
            || (cluster.presented(i, &bundle) == Some(der(&new_cert))).then_some(()),
        );
    }
    let (_, not_after) = roost_keeper::tls::generate::validity(&new_cert).unwrap();
    let expiry = format!(
        "roost_keeper_serving_certificate_expiry_timestamp_seconds {}",
        not_after.unix_timestamp()
    );
    for i in 0..2 {
        let metrics = cluster.metrics(i);
        assert!(
            metrics.lines().any(|l| l == expiry),
            "replica {i}: {metrics}"
        );
    }
    wait_for(
        "the new bundle is injected",
        Duration::from_secs(15),
        || {
            (cluster.ca_bundle("validatingwebhookconfiguration", "roost-keeper-validating")
                == bundle
                && cluster.ca_bundle("crd", "managedroosts.roost.birb.party") == bundle)
                .then_some(())
        },
    );
    // Applies across the switch, and after it, with the new certificate.
    stream.wait_succeeded_since("applies after the switch", Instant::now(), 5);
    let (applied, failures) = stream.finish();
    assert!(failures.is_empty(), "failed applies: {failures:#?}");
    assert!(applied >= 10, "only {applied} applies ran");
    assert_eq!(
        roost_keeper::tls::generate::split_bundle(&bundle).len(),
        3,
        "old CA kept, signer kept, a new next CA added"
    );
    let handled = cluster.secret_jsonpath("{.metadata.annotations.roost\\.birb\\.party/rotated}");
    assert_eq!(handled.trim(), "e2e-1");
}

#[test]
fn when_the_leader_is_killed_another_replica_updates_status_within_15_s() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut cluster = two_replicas();
    let leader = wait_for("a replica holds the Lease", Duration::from_secs(30), || {
        let holder = cluster.lease_holder();
        (!holder.is_empty()).then_some(holder)
    });
    let leader_index = cluster
        .replicas
        .iter()
        .position(|r| r.name == leader)
        .expect("the holder is one of ours");
    succeeded(
        "create",
        &apply(
            &cluster.plane.bin.join("kubectl"),
            &cluster.plane.kubeconfig,
            &manifest("watched", 0),
        ),
    );
    wait_for("the leader sets Pending", Duration::from_secs(30), || {
        (cluster.roost_json("watched")["status"]["phase"] == "Pending").then_some(())
    });

    cluster.signal(leader_index, "-KILL");
    let killed = Instant::now();
    cluster.wait_exit(leader_index, Duration::from_secs(5));
    // Another actor (a deployer) moves the phase; only a live controller records it.
    succeeded(
        "patch the phase",
        &cluster.kubectl(&[
            "patch",
            "managedroost",
            "watched",
            "-n",
            TEAM,
            "--subresource=status",
            "--type=merge",
            "--field-manager=deployer",
            "-p",
            r#"{"status":{"phase":"Ready"}}"#,
        ]),
    );
    let recorded = wait_for("the Ready record", Duration::from_secs(30), || {
        let roost = cluster.roost_json("watched");
        roost["status"]["lifecycle"]["events"]
            .as_array()
            .is_some_and(|events| events.iter().any(|e| e["type"] == "Ready"))
            .then(|| killed.elapsed())
    });
    assert!(
        recorded < Duration::from_secs(15),
        "status updated {recorded:?} after the leader was killed"
    );
    let survivor = &cluster.replicas[1 - leader_index].name;
    assert_eq!(&cluster.lease_holder(), survivor);
}

#[test]
fn a_rolling_restart_under_a_stream_of_applies_fails_none() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut cluster = two_replicas();
    let stream = ApplyStream::start(&cluster, "rolling");
    stream.wait_succeeded_since("applies before the restart", Instant::now(), 3);
    // As a Deployment rolls: a new replica first (maxSurge 1), then an old one goes.
    for (old, new) in [(0, "replica-c"), (1, "replica-d")] {
        let fresh = cluster.spawn(new);
        cluster.wait_ready(fresh);
        std::thread::sleep(Duration::from_secs(1));
        let terminated = Instant::now();
        cluster.signal(old, "-TERM");
        let status = cluster.wait_exit(old, Duration::from_secs(30));
        assert!(status.success(), "replica {old} exited with {status}");
        // Applies while it drained and after it was gone.
        stream.wait_succeeded_since(
            &format!("applies after replica {old} was stopped"),
            terminated,
            5,
        );
    }
    let (applied, failures) = stream.finish();
    assert!(failures.is_empty(), "failed applies: {failures:#?}");
    assert!(applied >= 10, "only {applied} applies ran");
    // The new replicas took over the controller too.
    let holder = wait_for(
        "a new replica holds the Lease",
        Duration::from_secs(20),
        || {
            let holder = cluster.lease_holder();
            (holder == "replica-c" || holder == "replica-d").then_some(holder)
        },
    );
    assert!(!holder.is_empty());
}

#[test]
fn a_deleted_secret_starts_over_with_a_new_ca_that_every_replica_serves() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let cluster = two_replicas();
    let old_bundle = cluster.secret("ca.crt");
    succeeded(
        "delete the Secret",
        &cluster.kubectl(&["delete", "secret", SECRET, "-n", NAMESPACE]),
    );
    let bundle = wait_for("a new Secret", Duration::from_secs(30), || {
        let out = cluster.kubectl(&["get", "secret", SECRET, "-n", NAMESPACE]);
        out.status.success().then(|| cluster.secret("ca.crt"))
    });
    for old_ca in roost_keeper::tls::generate::split_bundle(&old_bundle) {
        assert!(!bundle.contains(&old_ca), "a fresh CA, not the old one");
    }
    let serving = der(&cluster.secret("tls.crt"));
    for i in 0..2 {
        wait_for(
            &format!("replica {i} presents the new certificate"),
            Duration::from_secs(20),
            || (cluster.presented(i, &bundle).as_deref() == Some(serving.as_slice())).then_some(()),
        );
    }
    assert_eq!(
        cluster.ca_bundle("mutatingwebhookconfiguration", "roost-keeper-mutating"),
        bundle
    );
    assert_eq!(
        cluster.ca_bundle("crd", "managedroosts.roost.birb.party"),
        bundle
    );
    succeeded(
        "apply through the webhooks",
        &apply(
            &cluster.plane.bin.join("kubectl"),
            &cluster.plane.kubeconfig,
            &manifest("after", 0),
        ),
    );
}
