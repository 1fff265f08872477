//! Load run against `roost-keeper serve` over TLS (see BENCHMARKS.md).
//!
//! `cargo bench --bench load` starts, on free loopback ports with a fresh CA
//! and serving certificate, the release server binary and, beside it, this
//! bench itself as a **null handler**: the same server stack from the
//! library (TLS, HTTP/1.1 and HTTP/2, connection and body limits, metrics,
//! logging) whose webhooks answer a canned allowed review for the uid and
//! judge nothing: the limit of the stack on this machine. It drives both
//! with persistent TLS keep-alive connections (hyper's low-level client over
//! tokio-rustls): `LOAD_CONNECTIONS` (64) requests in flight, on 64 HTTP/1.1
//! connections or on `LOAD_H2_CONNECTIONS` (4) HTTP/2 connections.
//!
//! Closed-loop phases (`LOAD_SECONDS`, 10, each after `LOAD_WARMUP_SECONDS`,
//! 1, of warm-up), in `LOAD_ROUNDS` (3) alternating rounds, each over
//! HTTP/1.1 and then HTTP/2: the null handler, validate with the same spec
//! every time (the uid varies: cache hits, as a re-apply), mutate with the
//! same spec (targets and ratios use the medians of the rounds; a single
//! run's null handler varies by up to a fifth); then for both protocols validate
//! and mutate with a spec that differs per request (chart version `1.0.N`:
//! cache misses). Then an open loop at half the rate of each HTTP/1.1
//! validate phase (request `i` at `i / rate` on connection `i mod 64`), for
//! latency percentiles. The phases the targets judge run first, while the
//! machine is most likely still quiet.
//!
//! For each phase: requests per second, non-200 responses and transport
//! errors (both must be 0), latency percentiles, CPU of the server and of this
//! load generator (`/proc/<pid>/stat`), CPU of the whole machine
//! (`/proc/stat`: "other" is what neither process used, e.g. a compiler
//! running beside), server VmRSS/VmHWM, for validate phases the cache hit
//! ratio scraped from `/metrics`, and each phase against the null handler of
//! its protocol (req/s ratio, server µs/request above it). Markdown tables
//! go to stdout; the exit code is 1 when a request failed or the server did
//! not exit 0 on SIGTERM.
//!
//! Soak (`LOAD_SOAK_SECONDS`, e.g. 1800): instead of the phases above, a
//! closed loop of the mixed workload measures its throughput, then an open
//! loop at half that rate runs for the soak time in segments of
//! `LOAD_SOAK_SEGMENT_SECONDS` (60). The mix, by request number: 5 in 10
//! validate the same spec (cache hits), 1 a new spec (miss), 1 a spec with an
//! error (denial), 2 mutate the same spec and 1 a new one. Each segment
//! reports throughput, latency percentiles and the server's RSS; the end
//! compares the last segment with the first.
//!
//! Environment: `ROOST_KEEPER_BIN` (server binary; default the one cargo built
//! for this bench, else `target/release/roost-keeper`, built when missing),
//! `LOAD_SECONDS`, `LOAD_WARMUP_SECONDS`, `LOAD_CONNECTIONS`,
//! `LOAD_H2_CONNECTIONS`, `LOAD_ROUNDS`, `LOAD_CLIENT_THREADS` (load generator runtime
//! workers, default 1: on a small machine one thread drives 64 connections
//! with less CPU per request than two, leaving more to the server; the
//! report says when it saturates), `LOAD_RUST_LOG` (the servers' `RUST_LOG`,
//! default `warn`: `info` logs every request).

#[path = "support/mod.rs"]
mod support;

use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::{http1, http2};
use hyper::{Request, Uri, header};
use hyper_util::rt::{TokioExecutor, TokioIo};
use roost_keeper::admission::review::{encode_verdict, scan_uid};
use roost_keeper::admission::{
    MUTATE_PATH, Reply, Reviewer, Summary, VALIDATE_PATH, Verdict, Webhook,
};
use roost_keeper::server::Server;
use roost_keeper::tls::generate;
use roost_testcluster::{ServeCommand, ServeProcess};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::{
    clock_ticks, env_or, load_average, machine_facts, machine_ticks, server_binary, source_version,
};
use tokio_rustls::TlsConnector;

// ---------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------

struct Settings {
    seconds: f64,
    warmup: f64,
    /// Soak mode when set: total seconds.
    soak_seconds: Option<f64>,
    soak_segment: f64,
    connections: usize,
    /// HTTP/2 connections the same requests in flight share.
    h2_connections: usize,
    /// Alternating rounds of the phases the targets judge (medians reported).
    rounds: usize,
    client_threads: usize,
    rust_log: String,
}

impl Settings {
    fn from_env() -> Settings {
        let settings = Settings {
            seconds: env_or("LOAD_SECONDS", 10.0),
            warmup: env_or("LOAD_WARMUP_SECONDS", 1.0),
            soak_seconds: std::env::var("LOAD_SOAK_SECONDS")
                .ok()
                .map(|s| s.parse().expect("LOAD_SOAK_SECONDS is a number of seconds")),
            soak_segment: env_or("LOAD_SOAK_SEGMENT_SECONDS", 60.0),
            connections: env_or("LOAD_CONNECTIONS", 64),
            h2_connections: env_or("LOAD_H2_CONNECTIONS", 4),
            rounds: env_or("LOAD_ROUNDS", 3),
            client_threads: env_or("LOAD_CLIENT_THREADS", 1),
            rust_log: env_or("LOAD_RUST_LOG", "warn".to_owned()),
        };
        assert!(settings.seconds > 0.0, "LOAD_SECONDS must be positive");
        assert!(
            settings.warmup >= 0.0,
            "LOAD_WARMUP_SECONDS must not be negative"
        );
        assert!(
            settings.connections > 0,
            "LOAD_CONNECTIONS must be positive"
        );
        assert!(
            (1..=settings.connections).contains(&settings.h2_connections),
            "LOAD_H2_CONNECTIONS must be between 1 and LOAD_CONNECTIONS"
        );
        assert!(settings.rounds > 0, "LOAD_ROUNDS must be positive");
        assert!(
            settings.client_threads > 0,
            "LOAD_CLIENT_THREADS must be positive"
        );
        settings
    }
}

// ---------------------------------------------------------------------------
// The server processes
// ---------------------------------------------------------------------------

/// Set (internally) when this bench runs as the null-handler server.
const NULL_SERVER_ENV: &str = "ROOST_KEEPER_LOAD_NULL_SERVER";

/// Judges nothing: a canned allowed review for the uid. The limit of the
/// stack (TLS, HTTP/1.1 and HTTP/2, body limits, metrics) on this machine.
struct NullHandler;

impl Reviewer for NullHandler {
    fn review(&self, _webhook: Webhook, body: &[u8]) -> Reply {
        let uid = scan_uid(body).unwrap_or_default();
        Reply {
            status: 200,
            body: encode_verdict(&uid, &Verdict::allowed()),
            summary: Summary {
                uid,
                operation: "CREATE",
                allowed: true,
                ..Summary::default()
            },
        }
    }
}

/// `serve` as `roost-keeper serve` does it (same flags and environment,
/// same logging), with the webhooks answered by [`NullHandler`].
fn null_server() -> ! {
    let cli = roost_keeper::cli::Cli::parse();
    let roost_keeper::cli::Command::Serve(args) = cli.command else {
        panic!("the null server only serves");
    };
    let _telemetry = roost_keeper::telemetry::init(cli.log_format).expect("logging");
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let served = runtime.block_on(async {
        let server = Server::bind(args.config()?).await?;
        server
            .with_reviewer(Arc::new(NullHandler))
            .run(roost_keeper::server::shutdown_signal())
            .await
    });
    std::process::exit(i32::from(served.is_err()));
}

/// `roost-keeper serve` from `bin`, or with `null`, this bench itself as
/// the same server stack with the null handler ([`null_server`]),
/// configured by environment as a Deployment would be.
fn start_server(bin: &Path, certs: &Path, rust_log: &str, null: bool) -> ServeProcess {
    let binary = if null {
        std::env::current_exe().expect("the bench's own executable")
    } else {
        bin.to_owned()
    };
    let mut command = ServeCommand::new(binary)
        .certs_in(certs)
        .settings_in_env()
        // Connections are closed before SIGTERM; no need to wait 5 s for an apiserver.
        .env("ROOST_KEEPER_SHUTDOWN_DELAY", "0s")
        .rust_log(rust_log);
    if null {
        command = command.env(NULL_SERVER_ENV, "1");
    }
    command
        .spawn()
        .unwrap_or_else(|e| panic!("start the server: {e}"))
}

/// SIGTERM, then waits for the exit; returns the status and how long it took.
fn terminate(server: &mut ServeProcess) -> (ExitStatus, Duration) {
    let started = Instant::now();
    server.signal("-TERM");
    let status = server
        .wait_exit(Duration::from_secs(60))
        .expect("server still running 60 s after SIGTERM");
    (status, started.elapsed())
}

/// Validation cache (hits, misses) from `/metrics`.
fn cache_counters(metrics: SocketAddr) -> (u64, u64) {
    let text = roost_testcluster::scrape(metrics);
    let read = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name) && l.contains("cache=\"validation\""))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    };
    (
        read("roost_keeper_api_cache_hits_total"),
        read("roost_keeper_api_cache_misses_total"),
    )
}

// ---------------------------------------------------------------------------
// /proc
// ---------------------------------------------------------------------------

/// utime + stime of a process, in clock ticks.
fn process_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // Fields after the command name (which may hold spaces): state is field 3,
    // utime 14, stime 15.
    let rest = &stat[stat.rfind(')').expect("stat has a command name") + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// VmRSS and VmHWM of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    let read = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (read("VmRSS:"), read("VmHWM:"))
}

#[derive(Clone, Copy)]
struct CpuSnapshot {
    server: u64,
    client: u64,
    machine_busy: u64,
    machine_total: u64,
}

impl CpuSnapshot {
    fn take(server_pid: u32) -> CpuSnapshot {
        let (machine_busy, machine_total) = machine_ticks();
        CpuSnapshot {
            server: process_ticks(&server_pid.to_string()),
            client: process_ticks("self"),
            machine_busy,
            machine_total,
        }
    }
}

// ---------------------------------------------------------------------------
// Request bodies
// ---------------------------------------------------------------------------

/// Cores used by other processes above which a phase is reported as disturbed.
const DISTURBED_CORES: f64 = 0.2;

const UID_MARK: &str = "@@UID@@";
const VERSION_MARK: &str = "@@VERSION@@";

/// A CREATE AdmissionReview as the apiserver sends it for a typical roost
/// (the shape of `examples/web-valid.yaml`, with the metadata kubectl and the
/// apiserver add), split around the uid and the chart version.
struct Template {
    head: String,
    middle: String,
    tail: String,
    /// What goes between head and middle, and between middle and tail.
    order: [Mark; 2],
}

#[derive(Clone, Copy)]
enum Mark {
    Uid,
    Version,
}

impl Template {
    fn new() -> Template {
        let spec = json!({
            "chart": {
                "repository": {"url": "https://charts.bitnami.com/bitnami"},
                "name": "nginx",
                "version": VERSION_MARK,
                "values": {"inline": "replicaCount: 2\nservice:\n  type: ClusterIP\n"}
            },
            "healthChecks": [
                {"name": "http-ready", "type": "http",
                 "http": {"url": "http://web-nginx.default.svc.cluster.local/healthz", "expectedCodes": [200]},
                 "interval": "30s", "timeout": "5s"},
                {"name": "pods", "type": "kubernetes",
                 "kubernetes": {"checkPods": true, "requiredReadyRatio": 0.5}}
            ],
            "teardownPolicy": {"triggers": [{"type": "timeout", "timeout": "24h"}]},
            "tenancy": {"tenantId": "team-web", "rbac": {"enabled": true}},
            "observability": {"metrics": {"enabled": true, "interval": "15s"}, "logging": {"level": "info"}}
        });
        let object = json!({
            "apiVersion": "roost.birb.party/v1alpha1",
            "kind": "ManagedRoost",
            "metadata": {
                "name": "web",
                "namespace": "default",
                "uid": "6f1c2d4e-8a7b-4c3d-9e2f-1a2b3c4d5e6f",
                "generation": 1,
                "creationTimestamp": "2025-06-01T12:00:00Z",
                "labels": {"app.kubernetes.io/name": "web", "app.kubernetes.io/part-of": "storefront"},
                "managedFields": [{
                    "manager": "kubectl",
                    "operation": "Apply",
                    "apiVersion": "roost.birb.party/v1alpha1",
                    "time": "2025-06-01T12:00:00Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:metadata": {"f:labels": {"f:app.kubernetes.io/name": {}, "f:app.kubernetes.io/part-of": {}}},
                                 "f:spec": {"f:chart": {"f:name": {}, "f:repository": {"f:url": {}}, "f:values": {"f:inline": {}}, "f:version": {}},
                                            "f:healthChecks": {}, "f:observability": {"f:logging": {"f:level": {}}, "f:metrics": {"f:enabled": {}, "f:interval": {}}},
                                            "f:teardownPolicy": {"f:triggers": {}}, "f:tenancy": {"f:rbac": {"f:enabled": {}}, "f:tenantId": {}}}}
                }]
            },
            "spec": spec
        });
        let gvk =
            json!({"group": "roost.birb.party", "version": "v1alpha1", "kind": "ManagedRoost"});
        let gvr = json!({"group": "roost.birb.party", "version": "v1alpha1", "resource": "managedroosts"});
        let review = json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": UID_MARK,
                "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
                "name": "web",
                "namespace": "default",
                "operation": "CREATE",
                "userInfo": {
                    "username": "system:serviceaccount:ci:deployer",
                    "uid": "0b9a8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d",
                    "groups": ["system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated"]
                },
                "object": object,
                "oldObject": null,
                "dryRun": false,
                "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions", "fieldManager": "kubectl"}
            }
        });
        let text = serde_json::to_string(&review).unwrap();
        let uid_at = text.find(UID_MARK).expect("uid mark");
        let version_at = text.find(VERSION_MARK).expect("version mark");
        assert_eq!(text.matches(UID_MARK).count(), 1);
        assert_eq!(text.matches(VERSION_MARK).count(), 1);
        // serde_json sorts keys, so the version (under `object`) may come first.
        let (first, second) = if uid_at < version_at {
            (
                (uid_at, UID_MARK, Mark::Uid),
                (version_at, VERSION_MARK, Mark::Version),
            )
        } else {
            (
                (version_at, VERSION_MARK, Mark::Version),
                (uid_at, UID_MARK, Mark::Uid),
            )
        };
        Template {
            head: text[..first.0].to_owned(),
            middle: text[first.0 + first.1.len()..second.0].to_owned(),
            tail: text[second.0 + second.1.len()..].to_owned(),
            order: [first.2, second.2],
        }
    }

    fn body(&self, id: u64, spec: SpecMode) -> Bytes {
        let mut out =
            String::with_capacity(self.head.len() + self.middle.len() + self.tail.len() + 64);
        let fill = |out: &mut String, mark: Mark| match (mark, spec) {
            (Mark::Uid, _) => {
                let _ = write!(
                    out,
                    "{:08x}-{:04x}-4{:03x}-8000-{:012x}",
                    id >> 32,
                    (id >> 16) & 0xffff,
                    id & 0xfff,
                    id & 0xffff_ffff_ffff
                );
            }
            (Mark::Version, SpecMode::Same | SpecMode::Mix) => out.push_str("15.4.4"),
            (Mark::Version, SpecMode::Varied) => {
                let _ = write!(out, "1.0.{id}");
            }
            (Mark::Version, SpecMode::Denied) => {
                let _ = write!(out, "not-a-version-{id}");
            }
        };
        out.push_str(&self.head);
        fill(&mut out, self.order[0]);
        out.push_str(&self.middle);
        fill(&mut out, self.order[1]);
        out.push_str(&self.tail);
        Bytes::from(out)
    }
}

// ---------------------------------------------------------------------------
// Client connections
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Proto {
    H1,
    H2,
}

enum Conn {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

struct Client {
    webhook: SocketAddr,
    h1: TlsConnector,
    h2: TlsConnector,
}

impl Client {
    fn new(webhook: SocketAddr, ca_pem: &str) -> Client {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).expect("CA is PEM"))
            .expect("CA is a usable root");
        let config = |alpn: &[u8]| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("ring supports the default versions")
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
            config.alpn_protocols = vec![alpn.to_vec()];
            TlsConnector::from(Arc::new(config))
        };
        Client {
            webhook,
            h1: config(b"http/1.1"),
            h2: config(b"h2"),
        }
    }

    async fn connect(&self, proto: Proto) -> Result<Conn, String> {
        let tcp = tokio::net::TcpStream::connect(self.webhook)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let name = ServerName::try_from("localhost").expect("static name");
        let connector = match proto {
            Proto::H1 => &self.h1,
            Proto::H2 => &self.h2,
        };
        let tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake: {e}"))?;
        let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        let io = TokioIo::new(tls);
        match proto {
            Proto::H1 => {
                let (sender, connection) = http1::handshake(io)
                    .await
                    .map_err(|e| format!("HTTP/1.1 handshake: {e}"))?;
                tokio::spawn(connection);
                Ok(Conn::H1(sender))
            }
            Proto::H2 => {
                if alpn.as_deref() != Some(b"h2") {
                    return Err("server did not select h2 by ALPN".into());
                }
                let (sender, connection) = http2::handshake(TokioExecutor::new(), io)
                    .await
                    .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
                tokio::spawn(connection);
                Ok(Conn::H2(sender))
            }
        }
    }

    fn uri(&self, proto: Proto, path: &str) -> Uri {
        match proto {
            // origin-form with a Host header for HTTP/1.1; HTTP/2 needs :scheme and :authority.
            Proto::H1 => path.parse().unwrap(),
            Proto::H2 => format!("https://localhost:{}{path}", self.webhook.port())
                .parse()
                .unwrap(),
        }
    }
}

impl Conn {
    /// POSTs a JSON body; returns the status and the body (read to the end so
    /// the connection can be reused).
    async fn post(&mut self, uri: &Uri, host: &str, body: Bytes) -> Result<(u16, Bytes), String> {
        let mut request = Request::post(uri.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json");
        if matches!(self, Conn::H1(_)) {
            request = request.header(header::HOST, host);
        }
        let request = request.body(Full::new(body)).unwrap();
        let response = match self {
            Conn::H1(sender) => {
                sender.ready().await.map_err(|e| e.to_string())?;
                sender.send_request(request).await
            }
            Conn::H2(sender) => {
                sender.ready().await.map_err(|e| e.to_string())?;
                sender.send_request(request).await
            }
        }
        .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body))
    }
}

// ---------------------------------------------------------------------------
// Phases
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum SpecMode {
    /// The same spec every time (uid varies): validation cache hits.
    Same,
    /// A new chart version per request: validation cache misses.
    Varied,
    /// A chart version that is an error (new each time): denials.
    Denied,
    /// The soak mix, chosen by request number ([`mixed_request`]).
    Mix,
}

/// The soak's request `id`: which webhook and which spec.
fn mixed_request(id: u64) -> (&'static str, SpecMode) {
    match id % 10 {
        0..=4 => (VALIDATE_PATH, SpecMode::Same),
        5 => (VALIDATE_PATH, SpecMode::Varied),
        6 => (VALIDATE_PATH, SpecMode::Denied),
        7 | 8 => (MUTATE_PATH, SpecMode::Same),
        _ => (MUTATE_PATH, SpecMode::Varied),
    }
}

#[derive(Clone, Copy)]
enum Load {
    /// Workers send back to back.
    Closed,
    /// Request `i` starts at `i / rate` seconds, on connection `i % connections`.
    Open { rate: f64 },
}

#[derive(Clone)]
struct Phase {
    name: String,
    /// What is measured (one of the phase kinds below), whatever the protocol and round.
    kind: &'static str,
    target: Target,
    path: &'static str,
    proto: Proto,
    /// TCP connections (HTTP/2 workers share them).
    connections: usize,
    /// Requests in flight at most.
    workers: usize,
    spec: SpecMode,
    load: Load,
    /// Measured seconds and warm-up, when not the settings'.
    window: Option<(f64, f64)>,
}

/// What one worker saw inside the measurement window.
#[derive(Default)]
struct WorkerStats {
    /// Responses (any status) that ended inside the window: the throughput.
    completed: u64,
    /// Requests counted (closed loop: ended in the window; open loop: scheduled in it).
    ok: u64,
    non_200: u64,
    errors: u64,
    /// Nanoseconds from sending to the end of the response body.
    latency: Vec<u64>,
    /// Open loop: nanoseconds from the scheduled start to the end of the response.
    from_schedule: Vec<u64>,
    /// Open loop: nanoseconds the send started after its scheduled time.
    lag: Vec<u64>,
    first_failure: Option<String>,
}

struct Outcome {
    phase: Phase,
    stats: WorkerStats,
    window: f64,
    cpu_before: CpuSnapshot,
    cpu_after: CpuSnapshot,
    rss_kib: u64,
    hwm_kib: u64,
    cache: Option<(u64, u64)>,
}

/// CPU used during a phase's window, in cores (CPU seconds per second).
struct Cores {
    server: f64,
    client: f64,
    /// Everything else on the machine.
    other: f64,
}

impl Outcome {
    fn cores(&self, ticks: f64, cpus: usize) -> Cores {
        let (before, after) = (&self.cpu_before, &self.cpu_after);
        let server = (after.server - before.server) as f64 / ticks / self.window;
        let client = (after.client - before.client) as f64 / ticks / self.window;
        let busy = (after.machine_busy - before.machine_busy) as f64;
        let total = (after.machine_total - before.machine_total) as f64;
        // Machine-wide jiffies cover every CPU: the busy share times the CPU count is cores.
        let machine = if total > 0.0 {
            busy / total * cpus as f64
        } else {
            0.0
        };
        Cores {
            server,
            client,
            other: (machine - server - client).max(0.0),
        }
    }

    fn requests(&self) -> u64 {
        self.stats.completed
    }

    /// Server CPU per answered request, in µs.
    fn server_us_per_request(&self, ticks: f64) -> f64 {
        let server_ticks = (self.cpu_after.server - self.cpu_before.server) as f64;
        server_ticks / ticks / self.requests().max(1) as f64 * 1e6
    }

    /// Responses per second that ended inside the window (for an open loop
    /// that falls behind, less than the offered rate).
    fn rate(&self) -> f64 {
        self.requests() as f64 / self.window
    }
}

/// A server the load generator drives.
struct Endpoint {
    client: Client,
    host: String,
    pid: u32,
    metrics: SocketAddr,
}

impl Endpoint {
    fn new(server: &ServeProcess, ca_pem: &str) -> Endpoint {
        Endpoint {
            client: Client::new(server.webhook, ca_pem),
            host: format!("localhost:{}", server.webhook.port()),
            pid: server.pid(),
            metrics: server.metrics,
        }
    }
}

/// Which server a phase drives.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    /// `roost-keeper serve`.
    Product,
    /// The same stack with the null handler.
    Null,
}

struct Bench {
    product: Endpoint,
    null: Option<Endpoint>,
    template: Template,
    settings: Settings,
    ids: AtomicU64,
    clock_ticks: f64,
}

impl Bench {
    fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed)
    }

    fn endpoint(&self, target: Target) -> &Endpoint {
        match target {
            Target::Product => &self.product,
            Target::Null => self.null.as_ref().expect("the null server runs"),
        }
    }

    async fn run(self: &Arc<Self>, phase: Phase) -> Outcome {
        let endpoint = self.endpoint(phase.target);
        // Connections first: handshakes are not part of the measurement.
        let mut conns = Vec::with_capacity(phase.workers);
        let mut shared = Vec::new();
        for _ in 0..phase.connections {
            let conn = endpoint
                .client
                .connect(phase.proto)
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", phase.name));
            shared.push(conn);
        }
        for w in 0..phase.workers {
            let conn = match phase.proto {
                Proto::H1 => {
                    assert_eq!(phase.connections, phase.workers);
                    shared.pop().expect("one connection per HTTP/1.1 worker")
                }
                Proto::H2 => match &shared[w % shared.len()] {
                    Conn::H2(sender) => Conn::H2(sender.clone()),
                    Conn::H1(_) => unreachable!(),
                },
            };
            conns.push(conn);
        }
        let counts_cache = phase.path == VALIDATE_PATH && phase.target == Target::Product;
        let cache_before = counts_cache.then(|| cache_counters(endpoint.metrics));

        let (seconds, warmup) = phase
            .window
            .unwrap_or((self.settings.seconds, self.settings.warmup));
        let start = Instant::now() + Duration::from_millis(20);
        let window_start = start + Duration::from_secs_f64(warmup);
        let window_end = window_start + Duration::from_secs_f64(seconds);
        let uri = endpoint.client.uri(phase.proto, phase.path);
        let mut tasks = Vec::with_capacity(phase.workers);
        for (w, conn) in conns.into_iter().enumerate() {
            let bench = Arc::clone(self);
            let phase = phase.clone();
            let uri = uri.clone();
            tasks.push(tokio::spawn(async move {
                bench
                    .worker(w, conn, &phase, &uri, start, window_start, window_end)
                    .await
            }));
        }

        tokio::time::sleep_until(window_start.into()).await;
        let cpu_before = CpuSnapshot::take(endpoint.pid);
        let measured_from = Instant::now();
        tokio::time::sleep_until(window_end.into()).await;
        let cpu_after = CpuSnapshot::take(endpoint.pid);
        let window = measured_from.elapsed().as_secs_f64();
        let (rss_kib, hwm_kib) = memory_kib(endpoint.pid);

        let mut stats = WorkerStats::default();
        for task in tasks {
            let s = task.await.expect("worker panicked");
            stats.completed += s.completed;
            stats.ok += s.ok;
            stats.non_200 += s.non_200;
            stats.errors += s.errors;
            stats.latency.extend(s.latency);
            stats.from_schedule.extend(s.from_schedule);
            stats.lag.extend(s.lag);
            if stats.first_failure.is_none() {
                stats.first_failure = s.first_failure;
            }
        }
        stats.latency.sort_unstable();
        stats.from_schedule.sort_unstable();
        stats.lag.sort_unstable();
        let cache = cache_before.map(|(hits, misses)| {
            let (h, m) = cache_counters(endpoint.metrics);
            (h - hits, m - misses)
        });
        Outcome {
            phase,
            stats,
            window,
            cpu_before,
            cpu_after,
            rss_kib,
            hwm_kib,
            cache,
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn worker(
        &self,
        w: usize,
        mut conn: Conn,
        phase: &Phase,
        uri: &Uri,
        start: Instant,
        window_start: Instant,
        window_end: Instant,
    ) -> WorkerStats {
        let endpoint = self.endpoint(phase.target);
        let mut stats = WorkerStats::default();
        let in_window = |t: Instant| t >= window_start && t < window_end;
        let mut i = w as u64;
        tokio::time::sleep_until(start.into()).await;
        loop {
            let scheduled = match phase.load {
                Load::Closed => None,
                Load::Open { rate } => {
                    let at = start + Duration::from_secs_f64(i as f64 / rate);
                    i += phase.connections as u64;
                    if at >= window_end {
                        break;
                    }
                    if Instant::now() < at {
                        tokio::time::sleep_until(at.into()).await;
                    }
                    Some(at)
                }
            };
            let id = self.next_id();
            let (body, mixed_uri) = match phase.spec {
                SpecMode::Mix => {
                    let (path, spec) = mixed_request(id);
                    (
                        self.template.body(id, spec),
                        Some(endpoint.client.uri(phase.proto, path)),
                    )
                }
                spec => (self.template.body(id, spec), None),
            };
            let sent = Instant::now();
            if scheduled.is_none() && sent >= window_end {
                break;
            }
            let result = conn
                .post(mixed_uri.as_ref().unwrap_or(uri), &endpoint.host, body)
                .await;
            let done = Instant::now();
            // Closed loop counts what completes in the window; open loop what was scheduled in it.
            let counted = match scheduled {
                None => in_window(done),
                Some(at) => in_window(at),
            };
            if result.is_ok() && in_window(done) {
                stats.completed += 1;
            }
            match result {
                Ok((200, _)) if counted => stats.ok += 1,
                Ok((status, body)) if counted => {
                    stats.non_200 += 1;
                    stats.first_failure.get_or_insert_with(|| {
                        let text = String::from_utf8_lossy(&body);
                        format!(
                            "HTTP {status}: {}",
                            text.chars().take(300).collect::<String>()
                        )
                    });
                }
                Ok(_) => {}
                Err(err) => {
                    if counted {
                        stats.errors += 1;
                        stats.first_failure.get_or_insert_with(|| err.clone());
                    }
                    // The connection is gone: open a new one (outside any timing).
                    conn = loop {
                        match endpoint.client.connect(phase.proto).await {
                            Ok(conn) => break conn,
                            Err(_) if Instant::now() < window_end => {
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                            Err(e) => return failed(stats, e),
                        }
                    };
                    continue;
                }
            }
            if counted {
                stats.latency.push(nanos(done - sent));
                if let Some(at) = scheduled {
                    stats.from_schedule.push(nanos(done - at));
                    stats.lag.push(nanos(sent.saturating_duration_since(at)));
                }
            }
        }
        stats
    }
}

/// Phase names: the kind of request, then the protocol.
const NULL_PHASE: &str = "null handler (judges nothing)";
const VALIDATE_HIT: &str = "validate, same spec (cache hit)";
const MUTATE_HIT: &str = "mutate, same spec (cache hit)";
const VALIDATE_MISS: &str = "validate, spec varies (cache miss)";
const MUTATE_MISS: &str = "mutate, spec varies (cache miss)";

fn proto_name(proto: Proto) -> &'static str {
    match proto {
        Proto::H1 => "HTTP/1.1",
        Proto::H2 => "HTTP/2",
    }
}

/// The closed-loop outcomes (one per round) of `kind` over `proto`.
fn rounds_of<'a>(outcomes: &'a [Outcome], kind: &str, proto: Proto) -> Vec<&'a Outcome> {
    let found: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| {
            o.phase.kind == kind && o.phase.proto == proto && matches!(o.phase.load, Load::Closed)
        })
        .collect();
    assert!(!found.is_empty(), "no phase {kind}, {}", proto_name(proto));
    found
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// Median req/s and server µs/request of `kind` over `proto`, across rounds.
fn medians(outcomes: &[Outcome], kind: &str, proto: Proto, ticks: f64) -> (f64, f64) {
    let rounds = rounds_of(outcomes, kind, proto);
    (
        median(rounds.iter().map(|o| o.rate()).collect()),
        median(
            rounds
                .iter()
                .map(|o| o.server_us_per_request(ticks))
                .collect(),
        ),
    )
}

/// `kind`'s req/s as a share of `base`'s: the median of each round's share
/// when both ran in the same rounds, else the ratio of the medians.
fn share(outcomes: &[Outcome], kind: &str, base: &str, proto: Proto) -> f64 {
    let (ours, theirs) = (
        rounds_of(outcomes, kind, proto),
        rounds_of(outcomes, base, proto),
    );
    if ours.len() == theirs.len() {
        median(
            ours.iter()
                .zip(&theirs)
                .map(|(a, b)| a.rate() / b.rate())
                .collect(),
        )
    } else {
        median(ours.iter().map(|o| o.rate()).collect())
            / median(theirs.iter().map(|o| o.rate()).collect())
    }
}

fn failed(mut stats: WorkerStats, err: String) -> WorkerStats {
    stats.first_failure.get_or_insert(err);
    stats
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The `q` quantile (nearest rank) of sorted nanoseconds, in milliseconds.
fn percentile_ms(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1e6
}

// ---------------------------------------------------------------------------
// Checks before measuring
// ---------------------------------------------------------------------------

/// One request of each kind, checked for the expected verdict.
async fn sanity_check(bench: &Bench) -> Vec<String> {
    let mut notes = Vec::new();
    let product = &bench.product;
    let mut conn = product.client.connect(Proto::H1).await.expect("connect");
    for (path, spec, label) in [
        (VALIDATE_PATH, SpecMode::Same, "validate, same spec"),
        (VALIDATE_PATH, SpecMode::Varied, "validate, varied spec"),
        (MUTATE_PATH, SpecMode::Same, "mutate"),
    ] {
        let id = bench.next_id();
        let body = bench.template.body(id, spec);
        let size = body.len();
        let uri = product.client.uri(Proto::H1, path);
        let (status, reply) = conn.post(&uri, &product.host, body).await.expect("post");
        let reply: Value = serde_json::from_slice(&reply).expect("JSON reply");
        let response = &reply["response"];
        assert_eq!(status, 200, "{label}: {reply}");
        assert_eq!(response["allowed"], true, "{label}: {reply}");
        let warnings = response["warnings"].as_array().map_or(0, Vec::len);
        let patch = response["patch"].as_str().map_or(0, str::len);
        if path == VALIDATE_PATH {
            assert_eq!(
                warnings, 0,
                "{label}: a typical roost has no warnings: {reply}"
            );
        } else {
            assert!(
                patch > 0,
                "mutate: the typical roost gets defaults: {reply}"
            );
        }
        notes.push(format!(
            "{label}: request {size} B, reply {} B, allowed, {warnings} warnings{}",
            serde_json::to_vec(&reply).unwrap().len(),
            if patch > 0 {
                format!(", JSON patch {patch} B base64")
            } else {
                String::new()
            }
        ));
    }
    notes
}

// ---------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn table(outcomes: &[Outcome], ticks: f64, cpus: usize) -> String {
    let mut out = String::new();
    out.push_str(
        "| phase | req/s | non-200 | errors | p50 ms | p90 ms | p99 ms | max ms | server cores | server µs/req | loadgen cores | loadgen µs/req | other cores | RSS MiB | HWM MiB | cache hits |\n",
    );
    out.push_str(
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for o in outcomes {
        let l = &o.stats.latency;
        let cpu = o.cores(ticks, cpus);
        let per_req = |cores: f64| cores * o.window / o.requests().max(1) as f64 * 1e6;
        let cache = match o.cache {
            Some((hits, misses)) if hits + misses > 0 => {
                format!("{:.1} %", hits as f64 * 100.0 / (hits + misses) as f64)
            }
            _ => "–".to_owned(),
        };
        let _ = writeln!(
            out,
            "| {} | {:.0} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {:.2} | {:.0} | {:.2} | {:.1} | {:.1} | {} |",
            o.phase.name,
            o.rate(),
            o.stats.non_200,
            o.stats.errors,
            percentile_ms(l, 0.50),
            percentile_ms(l, 0.90),
            percentile_ms(l, 0.99),
            percentile_ms(l, 1.0),
            cpu.server,
            per_req(cpu.server),
            cpu.client,
            per_req(cpu.client),
            cpu.other,
            mib(o.rss_kib),
            mib(o.hwm_kib),
            cache,
        );
    }
    out
}

/// Each kind of closed-loop phase against the null handler over the same
/// protocol in the same run: medians over its rounds.
fn ratio_table(outcomes: &[Outcome], ticks: f64) -> String {
    let mut out = String::from(
        "| phase | rounds | req/s (median) | of the null handler's req/s | server µs/req (median) | above the null handler's µs/req |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for proto in [Proto::H1, Proto::H2] {
        for kind in [
            NULL_PHASE,
            VALIDATE_HIT,
            MUTATE_HIT,
            VALIDATE_MISS,
            MUTATE_MISS,
        ] {
            let (rate, us) = medians(outcomes, kind, proto, ticks);
            let (_, null_us) = medians(outcomes, NULL_PHASE, proto, ticks);
            let _ = writeln!(
                out,
                "| {kind}, {} | {} | {rate:.0} | {:.0}% | {us:.1} | {:+.1} |",
                proto_name(proto),
                rounds_of(outcomes, kind, proto).len(),
                share(outcomes, kind, NULL_PHASE, proto) * 100.0,
                us - null_us,
            );
        }
    }
    out
}

fn latency_table(outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    out.push_str("| open-loop phase | offered req/s | achieved req/s | from schedule p50 / p99 / max ms | send lag p50 / p99 / max ms |\n");
    out.push_str("|---|---:|---:|---:|---:|\n");
    for o in outcomes {
        let Load::Open { rate } = o.phase.load else {
            continue;
        };
        let s = &o.stats.from_schedule;
        let g = &o.stats.lag;
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.0} | {:.2} / {:.2} / {:.2} | {:.2} / {:.2} / {:.2} |",
            o.phase.name,
            rate,
            o.rate(),
            percentile_ms(s, 0.5),
            percentile_ms(s, 0.99),
            percentile_ms(s, 1.0),
            percentile_ms(g, 0.5),
            percentile_ms(g, 0.99),
            percentile_ms(g, 1.0),
        );
    }
    out
}

// ---------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------

/// The soak: the mix's closed-loop throughput, then an open loop at half of
/// it for `total` seconds in segments (the first outcome is the closed loop).
async fn soak(bench: &Arc<Bench>, closed: Phase, total: f64) -> Vec<Outcome> {
    eprintln!("running: {} ...", closed.name);
    let measured = bench.run(closed.clone()).await;
    let rate = measured.rate() / 2.0;
    let segment = bench.settings.soak_segment;
    let segments = (total / segment).ceil().max(1.0) as usize;
    let mut outcomes = vec![measured];
    for n in 0..segments {
        let phase = Phase {
            name: format!("soak segment {}/{segments} at {rate:.0} req/s", n + 1),
            load: Load::Open { rate },
            window: Some((segment, if n == 0 { bench.settings.warmup } else { 0.0 })),
            ..closed.clone()
        };
        eprintln!("running: {} ...", phase.name);
        outcomes.push(bench.run(phase).await);
    }
    outcomes
}

/// Per soak segment: minute, throughput, latency, RSS; then last against first.
fn soak_table(outcomes: &[Outcome]) -> String {
    let segments = &outcomes[1..];
    let mut out = String::from(
        "| segment | req/s | p50 ms | p99 ms | p99.9 ms | RSS MiB |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for (n, o) in segments.iter().enumerate() {
        let l = &o.stats.latency;
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1} |",
            n + 1,
            o.rate(),
            percentile_ms(l, 0.5),
            percentile_ms(l, 0.99),
            percentile_ms(l, 0.999),
            mib(o.rss_kib)
        );
    }
    if let (Some(first), Some(last)) = (segments.first(), segments.last()) {
        let growth = |a: f64, b: f64| if a > 0.0 { (b / a - 1.0) * 100.0 } else { 0.0 };
        let (p99_a, p99_b) = (
            percentile_ms(&first.stats.latency, 0.99),
            percentile_ms(&last.stats.latency, 0.99),
        );
        let _ = writeln!(
            out,
            "\n- RSS first → last segment: {:.1} → {:.1} MiB ({:+.1}%); p99 {:.2} → {:.2} ms ({:+.1}%)",
            mib(first.rss_kib),
            mib(last.rss_kib),
            growth(first.rss_kib as f64, last.rss_kib as f64),
            p99_a,
            p99_b,
            growth(p99_a, p99_b)
        );
    }
    out
}

fn main() {
    if std::env::var_os(NULL_SERVER_ENV).is_some() {
        null_server();
    }
    // `cargo bench` passes `--bench`; nothing to parse.
    let settings = Settings::from_env();
    let (nproc, model) = machine_facts();
    let load_before = load_average();
    let bin = server_binary();
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = generate::generate(
        "roost-keeper",
        "roost-system",
        &["localhost".into(), "127.0.0.1".into()],
        time::OffsetDateTime::now_utc(),
    )
    .expect("generate certificates");
    generate::write_bundle(&bundle, dir.path()).expect("write certificates");
    let soaking = settings.soak_seconds.is_some();
    let mut server = start_server(&bin, dir.path(), &settings.rust_log, false);
    let mut null_server =
        (!soaking).then(|| start_server(&bin, dir.path(), &settings.rust_log, true));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.client_threads)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let seconds = settings.seconds;
    let warmup = settings.warmup;
    let conns = settings.connections;
    let h2_conns = settings.h2_connections;
    let client_threads = settings.client_threads;
    let rust_log = settings.rust_log.clone();
    let bench = Arc::new(Bench {
        product: Endpoint::new(&server, &bundle.ca_pem),
        null: null_server
            .as_ref()
            .map(|null| Endpoint::new(null, &bundle.ca_pem)),
        template: Template::new(),
        settings,
        ids: AtomicU64::new(1),
        clock_ticks: clock_ticks(),
    });

    let (notes, outcomes) = runtime.block_on(async {
        let notes = sanity_check(&bench).await;
        let rounds = bench.settings.rounds;
        let closed = |kind: &'static str, round: usize, target, path, proto, spec| Phase {
            name: if round == 0 {
                format!("{kind}, {}", proto_name(proto))
            } else {
                format!("{kind}, {}, round {round}/{rounds}", proto_name(proto))
            },
            kind,
            target,
            path,
            proto,
            connections: if proto == Proto::H1 { conns } else { h2_conns },
            workers: conns,
            spec,
            load: Load::Closed,
            window: None,
        };
        if let Some(total) = bench.settings.soak_seconds {
            return (
                notes,
                soak(
                    &bench,
                    closed(
                        "soak mix, closed loop",
                        0,
                        Target::Product,
                        VALIDATE_PATH,
                        Proto::H1,
                        SpecMode::Mix,
                    ),
                    total,
                )
                .await,
            );
        }
        // What the targets judge runs first, while the machine is most likely
        // still quiet, in alternating rounds: each protocol's null handler
        // right before its phases.
        let mut phases = Vec::new();
        for (round, proto) in (1..=rounds).flat_map(|r| [(r, Proto::H1), (r, Proto::H2)]) {
            phases.extend([
                closed(
                    NULL_PHASE,
                    round,
                    Target::Null,
                    VALIDATE_PATH,
                    proto,
                    SpecMode::Same,
                ),
                closed(
                    VALIDATE_HIT,
                    round,
                    Target::Product,
                    VALIDATE_PATH,
                    proto,
                    SpecMode::Same,
                ),
                closed(
                    MUTATE_HIT,
                    round,
                    Target::Product,
                    MUTATE_PATH,
                    proto,
                    SpecMode::Same,
                ),
            ]);
        }
        for proto in [Proto::H1, Proto::H2] {
            phases.extend([
                closed(
                    VALIDATE_MISS,
                    0,
                    Target::Product,
                    VALIDATE_PATH,
                    proto,
                    SpecMode::Varied,
                ),
                closed(
                    MUTATE_MISS,
                    0,
                    Target::Product,
                    MUTATE_PATH,
                    proto,
                    SpecMode::Varied,
                ),
            ]);
        }
        let mut outcomes = Vec::new();
        for phase in phases {
            eprintln!("running: {} ...", phase.name);
            outcomes.push(bench.run(phase).await);
        }
        // Latency at half the measured rate, on HTTP/1.1 connections.
        for kind in [VALIDATE_HIT, VALIDATE_MISS] {
            let (measured_rate, _) = medians(&outcomes, kind, Proto::H1, bench.clock_ticks);
            let measured = rounds_of(&outcomes, kind, Proto::H1)[0];
            let rate = measured_rate / 2.0;
            let open = Phase {
                name: format!("open loop at ½ the median rate: {kind}, HTTP/1.1"),
                load: Load::Open { rate },
                ..measured.phase.clone()
            };
            eprintln!("running: {} ({rate:.0} req/s) ...", open.name);
            let outcome = bench.run(open).await;
            outcomes.push(outcome);
        }
        (notes, outcomes)
    });
    // Every client connection closes here, before the server is asked to stop.
    let ticks = bench.clock_ticks;
    drop(bench);
    runtime.shutdown_timeout(Duration::from_secs(5));
    let (rss_end, hwm_end) = memory_kib(server.pid());
    let (status, stop_time) = terminate(&mut server);
    if let Some(null) = null_server.as_mut() {
        terminate(null);
    }
    let load_after = load_average();
    let log = server.log_text();

    let mut failures = Vec::new();
    for o in &outcomes {
        if o.stats.non_200 + o.stats.errors > 0 {
            failures.push(format!(
                "{}: {} non-200, {} errors; first: {}",
                o.phase.name,
                o.stats.non_200,
                o.stats.errors,
                o.stats.first_failure.as_deref().unwrap_or("?")
            ));
        }
    }
    if !status.success() {
        failures.push(format!("server exit status after SIGTERM: {status}"));
    }

    println!("## roost-keeper load run\n");
    println!("- machine: {nproc} CPUs (nproc), {model}");
    println!("- load average before / after: {load_before} / {load_after}");
    println!(
        "- server: {} (RUST_LOG={rust_log}, controller off), source {}",
        bin.display(),
        source_version()
    );
    println!(
        "- load: {conns} requests in flight: {conns} HTTP/1.1 connections, or {h2_conns} HTTP/2 connections with {conns} streams; {seconds} s measured after {warmup} s warm-up per phase; load generator on the same machine, {client_threads} tokio worker thread(s)"
    );
    for note in notes {
        println!("- {note}");
    }
    println!();
    println!("{}", table(&outcomes, ticks, nproc));
    if !soaking {
        println!("{}", ratio_table(&outcomes, ticks));
    }
    if soaking {
        println!("{}", soak_table(&outcomes));
    }
    println!("{}", latency_table(&outcomes));
    println!(
        "- cores = CPU seconds per wall second over the measured window (server, load generator, and everything else on the machine); µs/req = CPU per answered request."
    );
    println!(
        "- latency = send to end of response body; open loop: request i starts at i/rate on connection i mod {conns}; \"from schedule\" counts waiting for a busy connection or a late timer."
    );
    println!(
        "- server RSS / HWM at the end: {:.1} / {:.1} MiB; exit after SIGTERM: {status} in {:.2} s",
        mib(rss_end),
        mib(hwm_end),
        stop_time.as_secs_f64()
    );
    let log_lines = log.lines().count();
    if log_lines > 0 {
        println!(
            "- server log: {log_lines} lines at RUST_LOG={rust_log}; first: {}",
            log.lines().next().unwrap_or("")
        );
    }
    for o in &outcomes {
        let cpu = o.cores(ticks, nproc);
        if cpu.client >= 0.9 * client_threads as f64 {
            println!(
                "- WARNING: the load generator used {:.2} of its {client_threads} thread(s) in \"{}\": it may be the bottleneck (raise LOAD_CLIENT_THREADS)",
                cpu.client, o.phase.name
            );
        }
        if cpu.other >= DISTURBED_CORES {
            println!(
                "- WARNING: other processes used {:.2} cores during \"{}\": its figures are disturbed; rerun on a quiet machine",
                cpu.other, o.phase.name
            );
        }
    }
    if soaking {
        for failure in &failures {
            eprintln!("FAILED: {failure}");
        }
        std::process::exit(i32::from(!failures.is_empty()));
    }
    let mut targets = vec![
        (
            "validate ≥ 20000 req/s (64 conns, HTTP/1.1, cached)".to_owned(),
            medians(&outcomes, VALIDATE_HIT, Proto::H1, ticks).0 >= 20_000.0,
            format!(
                "{:.0}",
                medians(&outcomes, VALIDATE_HIT, Proto::H1, ticks).0
            ),
        ),
        (
            "RSS < 50 MB (peak)".to_owned(),
            hwm_end * 1024 < 50_000_000,
            format!("{:.1} MB", hwm_end as f64 * 1024.0 / 1e6),
        ),
    ];
    if let Some(open) = outcomes
        .iter()
        .find(|o| matches!(o.phase.load, Load::Open { .. }))
    {
        let p99 = percentile_ms(&open.stats.latency, 0.99);
        targets.push((
            "p99 < 5 ms at half load (cached)".to_owned(),
            p99 < 5.0,
            format!("{p99:.2} ms"),
        ));
    }
    for proto in [Proto::H1, Proto::H2] {
        let of_null = share(&outcomes, VALIDATE_HIT, NULL_PHASE, proto);
        let mutate_of_hit = share(&outcomes, MUTATE_HIT, VALIDATE_HIT, proto);
        let (_, server_us) = medians(&outcomes, VALIDATE_HIT, proto, ticks);
        targets.extend([
            (
                format!(
                    "validate hit ≥ 85% of the null handler, {}",
                    proto_name(proto)
                ),
                of_null >= 0.85,
                format!("{:.0}% (median of the rounds)", of_null * 100.0),
            ),
            (
                format!(
                    "server CPU per cached validate ≤ 35 µs, {}",
                    proto_name(proto)
                ),
                server_us <= 35.0,
                format!("{server_us:.1} µs (median)"),
            ),
            (
                format!(
                    "mutate hit within 10% of validate hit, {}",
                    proto_name(proto)
                ),
                mutate_of_hit >= 0.9,
                format!("{:.0}% (median of the rounds)", mutate_of_hit * 100.0),
            ),
        ]);
    }
    for (name, met, value) in targets {
        println!(
            "- target {name}: {} ({value})",
            if met { "met" } else { "MISSED" }
        );
    }
    if !failures.is_empty() {
        for failure in &failures {
            eprintln!("FAILED: {failure}");
        }
        std::process::exit(1);
    }
}
