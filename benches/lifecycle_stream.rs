//! Lifecycle API stream fan-out at scale (issue 24; see BENCHMARKS.md).
//!
//! `cargo bench --bench lifecycle_stream` (real work only with `--bench` in
//! argv, so `cargo test --all-targets` never runs it):
//!
//! 1. waits for a quiet machine (as benches/controller.rs), starts etcd +
//!    kube-apiserver, installs the CRD, starts the release `roost-keeper
//!    serve` as its own process (controller on, `RUST_LOG=warn`, lifecycle
//!    API on a free port, 64 streams per identity; CRD conversion pointed at
//!    it, no admission webhooks registered: the bench measures the stream),
//!    creates `LIFECYCLE_BENCH_ROOSTS` (1000) ManagedRoosts over
//!    `LIFECYCLE_BENCH_NAMESPACES` (10) namespaces and waits until the API
//!    lists them all Pending and validated;
//! 2. binds a ServiceAccount cluster-wide to get/list/watch managedroosts
//!    and takes a token from `kubectl create token`;
//! 3. reads VmRSS (median of 9 readings after 10 s of quiet), opens `LIFECYCLE_BENCH_STREAMS` (50) streams (one reqwest
//!    client, so one connection, each) that read continuously and one slow
//!    client (raw HTTP/1.1 over TLS, small receive buffer) that reads
//!    `LIFECYCLE_BENCH_SLOW_BYTES` (64) bytes a second, reads VmRSS again;
//! 4. makes `LIFECYCLE_BENCH_CHANGES` (600) merge patches of the status
//!    subresource at `LIFECYCLE_BENCH_RATE` (20) per second, each setting
//!    `status.health` (alternately healthy / unhealthy) of a different roost,
//!    the time taken just before each PATCH; every reader records when the
//!    matching `health` event arrived, and the bench's own kube watch when
//!    the apiserver delivered the change to a watcher;
//! 5. closes the readers and, the slow client still reading slowly,
//!    patches every roost's health round after round (at most
//!    `LIFECYCLE_BENCH_STRESS_ROUNDS`, 20) until the server sends a
//!    `resync` or drops the stream, then waits up to
//!    `LIFECYCLE_BENCH_SLOW_HOLD_SECONDS` (60) for either; lets the slow
//!    client read what is left;
//! 6. prints markdown tables: latency p50/p99/max, events missed, server CPU
//!    over the change window and per event delivered, RSS per stream.
//!
//! `ROOST_KEEPER_BIN` names the server binary (default: the one cargo built).

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/mod.rs"]
mod support;

use cluster::{checked, cpu_ticks, create_namespaces, plane_pids, vm_kib, wait_quiet};
use futures::StreamExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use roost_keeper::api::ManagedRoost;
use roost_testcluster::{ControlPlane, ServeCommand, output_with_stdin, text};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{
    clock_ticks, env_or, load_average, machine_facts, machine_ticks, server_binary, source_version,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// (namespace, name, health value) of one change.
type Key = (String, String, String);
type Times = Arc<Mutex<HashMap<Key, Instant>>>;

struct Settings {
    roosts: usize,
    namespaces: usize,
    streams: usize,
    changes: usize,
    rate: f64,
    slow_bytes: usize,
    slow_hold: Duration,
    drain: Duration,
}

impl Settings {
    fn from_env() -> Settings {
        Settings {
            roosts: env_or("LIFECYCLE_BENCH_ROOSTS", 1000usize).max(1),
            namespaces: env_or("LIFECYCLE_BENCH_NAMESPACES", 10usize).max(1),
            streams: env_or("LIFECYCLE_BENCH_STREAMS", 50usize).max(1),
            changes: env_or("LIFECYCLE_BENCH_CHANGES", 600usize).max(1),
            rate: env_or("LIFECYCLE_BENCH_RATE", 20.0f64).max(0.1),
            slow_bytes: env_or("LIFECYCLE_BENCH_SLOW_BYTES", 64usize).max(1),
            slow_hold: Duration::from_secs(env_or("LIFECYCLE_BENCH_SLOW_HOLD_SECONDS", 60u64)),
            drain: Duration::from_secs(env_or("LIFECYCLE_BENCH_DRAIN_SECONDS", 30u64)),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// p50 / p99 / max in ms of `values` (seconds).
fn spread(mut values: Vec<f64>) -> String {
    values.sort_by(f64::total_cmp);
    format!(
        "{:.0} / {:.0} / {:.0}",
        percentile(&values, 50.0) * 1e3,
        percentile(&values, 99.0) * 1e3,
        values.last().copied().unwrap_or(0.0) * 1e3
    )
}

// ---------------------------------------------------------------------------
// Stream clients
// ---------------------------------------------------------------------------

/// What one reading stream saw.
#[derive(Default)]
struct ReaderLog {
    health: HashMap<Key, Instant>,
    events: usize,
    resyncs: Vec<String>,
    ended: Option<String>,
}

/// The `health` events and resyncs in complete SSE frames of `buf` (consumed).
fn parse_frames(buf: &mut Vec<u8>, at: Instant, log: &mut ReaderLog) {
    while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
        let frame: Vec<u8> = buf.drain(..end + 2).collect();
        let frame = String::from_utf8_lossy(&frame);
        let (mut event, mut data) = (None, None);
        for line in frame.lines() {
            if let Some(v) = line.strip_prefix("event: ") {
                event = Some(v);
            } else if let Some(v) = line.strip_prefix("data: ") {
                data = serde_json::from_str::<Value>(v).ok();
            }
        }
        let (Some(event), Some(data)) = (event, data) else {
            continue;
        };
        log.events += 1;
        match event {
            "health" => {
                let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
                let roost = &data["roost"];
                let key = (s(&roost["namespace"]), s(&roost["name"]), s(&data["to"]));
                log.health.entry(key).or_insert(at);
            }
            "resync" => log.resyncs.push(data["reason"].to_string()),
            _ => {}
        }
    }
}

/// A stream read continuously until it ends (why it ended goes to the log).
async fn reader(url: String, ca: reqwest::Certificate, token: String, log: Arc<Mutex<ReaderLog>>) {
    let why = async {
        let client = reqwest::Client::builder()
            .add_root_certificate(ca)
            .build()
            .map_err(|e| e.to_string())?;
        let mut response = client
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
            let at = Instant::now();
            buf.extend_from_slice(&chunk);
            parse_frames(&mut buf, at, &mut lock(&log));
        }
        Ok::<_, String>("closed by the server".to_owned())
    };
    let why = why.await.unwrap_or_else(|e| format!("error: {e}"));
    lock(&log).ended = Some(why);
}

/// What the slow client saw.
#[derive(Default)]
struct SlowLog {
    bytes_slow: usize,
    bytes_total: usize,
    text: String,
    ended: Option<(Duration, String)>,
}

/// Raw HTTP/1.1 over TLS with a small receive buffer, reading `slow_bytes`
/// a second until `drain` is set, then everything left (3 s idle ends it).
async fn slow_client(
    port: u16,
    ca_pem: String,
    token: String,
    slow_bytes: usize,
    drain: Arc<AtomicBool>,
    log: Arc<Mutex<SlowLog>>,
) {
    use rustls_pki_types::pem::PemObject;
    let started = Instant::now();
    let end = |why: String| lock(&log).ended = Some((started.elapsed(), why));
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("CA certificate");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let tcp = socket
        .connect(([127, 0, 0, 1], port).into())
        .await
        .expect("connect");
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").expect("server name");
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake");
    let request = format!(
        "GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    );
    tls.write_all(request.as_bytes()).await.expect("request");
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let draining = drain.load(Ordering::Relaxed);
        let (want, wait) = if draining {
            (buf.len(), Duration::from_secs(3))
        } else {
            (slow_bytes, Duration::from_secs(1))
        };
        let read = tokio::time::timeout(wait, tls.read(&mut buf[..want])).await;
        match read {
            Ok(Ok(0)) => return end("closed by the server (EOF)".to_owned()),
            Ok(Ok(n)) => {
                let mut log = lock(&log);
                log.text.push_str(&String::from_utf8_lossy(&buf[..n]));
                log.bytes_total += n;
                if !draining {
                    log.bytes_slow += n;
                }
            }
            Ok(Err(err)) => return end(format!("error: {err}")),
            Err(_) if draining => return end("still open at the end".to_owned()),
            Err(_) => {}
        }
        if !draining {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

// ---------------------------------------------------------------------------
// Cluster work
// ---------------------------------------------------------------------------

fn roost(template: &Value, i: usize, namespace: &str) -> ManagedRoost {
    let name = format!("roost-{i:05}");
    let mut value = template.clone();
    value["metadata"] = json!({"name": name, "namespace": namespace});
    value["spec"]["healthChecks"][0]["http"]["url"] = json!(format!(
        "http://{name}-nginx.{namespace}.svc.cluster.local/healthz"
    ));
    value["spec"]["tenancy"]["tenantId"] = json!(format!("team-{}", i % 100));
    serde_json::from_value(value).expect("a ManagedRoost")
}

async fn create_all(client: &Client, settings: &Settings, namespaces: &[String]) {
    create_namespaces(client, namespaces).await;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/web-valid.yaml");
    let template: Value =
        serde_norway::from_str(&std::fs::read_to_string(path).expect("read example"))
            .expect("parse example");
    futures::stream::iter(0..settings.roosts)
        .map(|i| {
            let ns = &namespaces[i % namespaces.len()];
            let object = roost(&template, i, ns);
            let api: Api<ManagedRoost> = Api::namespaced(client.clone(), ns);
            async move { api.create(&PostParams::default(), &object).await }
        })
        .buffer_unordered(32)
        .for_each(|r| async move {
            r.expect("create ManagedRoost");
        })
        .await;
}

/// The API's list, once every roost is there, Pending and validated.
async fn wait_listed(http: &reqwest::Client, base: &str, token: &str, n: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let list: Value = match http
            .get(format!("{base}/api/v1/roosts"))
            .bearer_auth(token)
            .send()
            .await
        {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        let items = list["items"].as_array().map_or(&[][..], Vec::as_slice);
        let settled = items
            .iter()
            .filter(|i| i["phase"] == "Pending" && i["validated"]["status"] == "True")
            .count();
        if items.len() >= n && settled >= n {
            return items.len();
        }
        assert!(
            Instant::now() < deadline,
            "the API lists {} roosts, {settled} settled, of {n}",
            items.len()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The bench's own watch: when a watcher first saw each change.
async fn own_watch(client: Client, sends: Times, seen: Times) {
    let api: Api<ManagedRoost> = Api::all(client);
    let mut events = watcher(api, watcher::Config::default())
        .applied_objects()
        .boxed();
    while let Some(event) = events.next().await {
        let Ok(roost) = event else { continue };
        let at = Instant::now();
        let Some(health) = roost.status.as_ref().and_then(|s| s.health.clone()) else {
            continue;
        };
        let key = (
            roost.namespace().unwrap_or_default(),
            roost.name_any(),
            health,
        );
        if lock(&sends).contains_key(&key) {
            lock(&seen).entry(key).or_insert(at);
        }
    }
}

/// Server, apiserver, etcd, bench and machine CPU ticks.
#[derive(Clone, Copy)]
struct Cpu {
    keeper: u64,
    apiserver: u64,
    etcd: u64,
    me: u64,
    busy: u64,
}

fn cpu_now(keeper: u32, apiserver: Option<u32>, etcd: Option<u32>) -> Cpu {
    let ticks = |pid: Option<u32>| pid.and_then(cpu_ticks).unwrap_or(0);
    let (busy, _) = machine_ticks();
    Cpu {
        keeper: ticks(Some(keeper)),
        apiserver: ticks(apiserver),
        etcd: ticks(etcd),
        me: ticks(Some(std::process::id())),
        busy,
    }
}

/// VmRSS after 10 s of quiet: the median of 9 readings a second apart (the
/// allocator gives memory back in steps as the creates' churn settles).
async fn rss_median(pid: u32) -> u64 {
    tokio::time::sleep(Duration::from_secs(10)).await;
    let mut readings = Vec::new();
    for _ in 0..9 {
        readings.push(vm_kib(pid, "VmRSS").unwrap_or(0));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    readings.sort_unstable();
    readings[readings.len() / 2]
}

fn metric(port: u16, name: &str) -> f64 {
    let body = roost_testcluster::scrape(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    roost_testcluster::metric_sum(&body, name, &[])
}

/// The slow client alone under sustained changes.
struct Stress {
    patches: usize,
    failed: usize,
    seconds: f64,
    events: f64,
    rss_peak: u64,
    outcome: String,
}

/// With the readers gone and the slow client the one stream left: patches
/// every roost's `status.health` (`degraded`, then `unknown`, ...), round after round, until the server sends a resync or drops the stream,
/// for at most `LIFECYCLE_BENCH_STRESS_ROUNDS` rounds, then waits up to
/// `LIFECYCLE_BENCH_SLOW_HOLD_SECONDS` for either.
async fn stress(s: &Setup, namespaces: &[String]) -> Stress {
    let settings = &s.settings;
    let streams = || metric(s.metrics_port, "roost_keeper_lifecycle_api_streams");
    let resyncs = || metric(s.metrics_port, "roost_keeper_lifecycle_api_resyncs_total");
    let until = Instant::now() + Duration::from_secs(20);
    while streams() > 1.0 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let events_before = metric(
        s.metrics_port,
        "roost_keeper_lifecycle_api_stream_events_total",
    );
    let started = Instant::now();
    let (mut patches, mut failed, mut rss_peak) = (0, 0, 0);
    let done = || resyncs() > 0.0 || streams() < 1.0;
    for round in 0..env_or("LIFECYCLE_BENCH_STRESS_ROUNDS", 20usize) {
        if done() {
            break;
        }
        let errors = futures::stream::iter(0..settings.roosts)
            .map(|i| {
                let api: Api<ManagedRoost> =
                    Api::namespaced(s.client.clone(), &namespaces[i % namespaces.len()]);
                // `health` is an enum; neither value was set before the stress.
                let value = if round % 2 == 0 {
                    "degraded"
                } else {
                    "unknown"
                };
                let patch = Patch::Merge(json!({"status": {"health": value}}));
                async move {
                    api.patch_status(&format!("roost-{i:05}"), &PatchParams::default(), &patch)
                        .await
                        .is_err()
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<bool>>()
            .await;
        failed += errors.iter().filter(|e| **e).count();
        patches += settings.roosts;
        rss_peak = rss_peak.max(vm_kib(s.keeper, "VmRSS").unwrap_or(0));
    }
    let until = Instant::now() + settings.slow_hold;
    while Instant::now() < until && !done() {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss_peak = rss_peak.max(vm_kib(s.keeper, "VmRSS").unwrap_or(0));
    }
    let outcome = match (resyncs() > 0.0, streams() < 1.0) {
        (true, _) => "resync sent",
        (false, true) => "stream dropped (no resync)",
        (false, false) => "neither: still open",
    };
    Stress {
        patches,
        failed,
        seconds: started.elapsed().as_secs_f64(),
        events: metric(
            s.metrics_port,
            "roost_keeper_lifecycle_api_stream_events_total",
        ) - events_before,
        rss_peak,
        outcome: format!("{outcome} after {:.0} s", started.elapsed().as_secs_f64()),
    }
}

// ---------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------

struct Setup {
    settings: Settings,
    client: Client,
    base: String,
    api_port: u16,
    metrics_port: u16,
    ca_pem: String,
    token: String,
    keeper: u32,
    apiserver: Option<u32>,
    etcd: Option<u32>,
}

async fn run(s: &Setup, out: &mut String) {
    macro_rules! w {
        ($($arg:tt)*) => {
            let _ = writeln!(out, $($arg)*);
        };
    }
    let settings = &s.settings;
    let ca = reqwest::Certificate::from_pem(s.ca_pem.as_bytes()).expect("CA");
    let http = reqwest::Client::builder()
        .add_root_certificate(ca.clone())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("reqwest client");
    let namespaces: Vec<String> = (0..settings.namespaces)
        .map(|k| format!("lc-bench-{k}"))
        .collect();
    let started = Instant::now();
    create_all(&s.client, settings, &namespaces).await;
    let created = started.elapsed();
    let listed = wait_listed(&http, &s.base, &s.token, settings.roosts).await;
    let settled = started.elapsed();
    eprintln!("lifecycle_stream bench: {listed} roosts listed after {settled:?}; opening streams");
    let rss_before = rss_median(s.keeper).await;
    let url = format!("{}/api/v1/stream", s.base);
    let logs: Vec<Arc<Mutex<ReaderLog>>> = (0..settings.streams).map(|_| Arc::default()).collect();
    let mut tasks = Vec::new();
    for log in &logs {
        tasks.push(tokio::spawn(reader(
            url.clone(),
            ca.clone(),
            s.token.clone(),
            Arc::clone(log),
        )));
    }
    let drain = Arc::new(AtomicBool::new(false));
    let slow_log: Arc<Mutex<SlowLog>> = Arc::default();
    let slow = tokio::spawn(slow_client(
        s.api_port,
        s.ca_pem.clone(),
        s.token.clone(),
        settings.slow_bytes,
        Arc::clone(&drain),
        Arc::clone(&slow_log),
    ));
    let deadline = Instant::now() + Duration::from_secs(60);
    while metric(s.metrics_port, "roost_keeper_lifecycle_api_streams")
        < (settings.streams + 1) as f64
    {
        assert!(
            Instant::now() < deadline,
            "streams not open: {:?}",
            logs.iter()
                .filter_map(|l| lock(l).ended.clone())
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rss_open = rss_median(s.keeper).await;

    // The changes.
    let sends: Times = Arc::default();
    let seen: Times = Arc::default();
    let watch = tokio::spawn(own_watch(
        s.client.clone(),
        Arc::clone(&sends),
        Arc::clone(&seen),
    ));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut picks: Vec<usize> = (0..settings.roosts).collect();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..picks.len()).rev() {
        // xorshift64: a fixed, reproducible shuffle.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        picks.swap(i, (state % (i as u64 + 1)) as usize);
    }
    let changes: Vec<Key> = (0..settings.changes)
        .map(|k| {
            let i = picks[k % picks.len()];
            let value = if k % 2 == 0 { "healthy" } else { "unhealthy" };
            (
                namespaces[i % namespaces.len()].clone(),
                format!("roost-{i:05}"),
                value.to_owned(),
            )
        })
        .collect();
    let events_before = metric(
        s.metrics_port,
        "roost_keeper_lifecycle_api_stream_events_total",
    );
    let cpu_start = cpu_now(s.keeper, s.apiserver, s.etcd);
    let window = Instant::now();
    let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / settings.rate));
    let mut patches = Vec::new();
    for key in changes.clone() {
        pace.tick().await;
        let (client, sends) = (s.client.clone(), Arc::clone(&sends));
        patches.push(tokio::spawn(async move {
            let api: Api<ManagedRoost> = Api::namespaced(client, &key.0);
            let patch = Patch::Merge(json!({"status": {"health": key.2}}));
            lock(&sends).insert(key.clone(), Instant::now());
            api.patch_status(&key.1, &PatchParams::default(), &patch)
                .await
                .is_err()
        }));
    }
    let mut patch_errors = 0;
    for p in patches {
        patch_errors += usize::from(p.await.unwrap_or(true));
    }
    let patched = window.elapsed();
    let all_in = Instant::now() + settings.drain;
    let delivered = |log: &Arc<Mutex<ReaderLog>>| {
        let log = lock(log);
        changes
            .iter()
            .filter(|k| log.health.contains_key(*k))
            .count()
    };
    while Instant::now() < all_in && logs.iter().any(|l| delivered(l) < changes.len()) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cpu_end = cpu_now(s.keeper, s.apiserver, s.etcd);
    let window_secs = window.elapsed().as_secs_f64();
    let events = metric(
        s.metrics_port,
        "roost_keeper_lifecycle_api_stream_events_total",
    ) - events_before;
    let rss_end = vm_kib(s.keeper, "VmRSS").unwrap_or(0);
    eprintln!(
        "lifecycle_stream bench: changes delivered; readers closed, stress on the slow client"
    );
    watch.abort();
    for t in &tasks {
        t.abort();
    }
    let stress = stress(s, &namespaces).await;
    let streams_held = metric(s.metrics_port, "roost_keeper_lifecycle_api_streams");
    drain.store(true, Ordering::Relaxed);
    let _ = slow.await;
    // `+ 0.0`: a sum of no samples is -0.
    let resyncs = metric(s.metrics_port, "roost_keeper_lifecycle_api_resyncs_total") + 0.0;
    let hwm = vm_kib(s.keeper, "VmHWM").unwrap_or(0);

    // Latencies.
    let sends = lock(&sends).clone();
    let seen = lock(&seen).clone();
    let (mut to_client, mut to_watch, mut watch_to_client) = (Vec::new(), Vec::new(), Vec::new());
    let (mut missed, mut reader_resyncs, mut ended) = (Vec::new(), 0, Vec::new());
    for log in &logs {
        let log = lock(log);
        missed.push(
            changes.len()
                - changes
                    .iter()
                    .filter(|k| log.health.contains_key(*k))
                    .count(),
        );
        reader_resyncs += log.resyncs.len();
        if let Some(why) = &log.ended {
            ended.push(why.clone());
        }
        for key in &changes {
            if let (Some(sent), Some(at)) = (sends.get(key), log.health.get(key)) {
                to_client.push(at.duration_since(*sent).as_secs_f64());
                if let Some(w) = seen.get(key) {
                    watch_to_client.push(at.saturating_duration_since(*w).as_secs_f64());
                }
            }
        }
    }
    for key in &changes {
        if let (Some(sent), Some(w)) = (sends.get(key), seen.get(key)) {
            to_watch.push(w.duration_since(*sent).as_secs_f64());
        }
    }
    let slow = lock(&slow_log);
    let slow_health = slow.text.matches("event: health\n").count();
    let slow_resyncs: Vec<&str> = slow
        .text
        .match_indices("event: resync\ndata: ")
        .map(|(i, m)| slow.text[i + m.len()..].lines().next().unwrap_or(""))
        .collect();

    // Report.
    let tck = clock_ticks();
    let (n, m, k) = (settings.roosts, settings.changes, settings.streams);
    w!(
        "{n} roosts over {} namespaces created in {:.1} s, all listed by the API Pending and validated after {:.1} s; {k} reading streams + 1 slow client (one ServiceAccount token, bound cluster-wide); {m} status changes (merge patch of `status.health` on the status subresource, one roost each, alternately `healthy` / `unhealthy`) paced at {}/s: sent in {:.1} s, {patch_errors} failed.\n",
        settings.namespaces,
        created.as_secs_f64(),
        settled.as_secs_f64(),
        settings.rate,
        patched.as_secs_f64()
    );
    w!("| latency | pairs | p50 / p99 / max (ms) |");
    w!("|---|---:|---:|");
    w!(
        "| PATCH sent → `health` event read by each of the {k} streams (apiserver + watch + server fan-out) | {} | **{}** |",
        to_client.len(),
        spread(to_client.clone())
    );
    w!(
        "| PATCH sent → the bench's own kube watch sees it (apiserver + watch only) | {} | {} |",
        to_watch.len(),
        spread(to_watch)
    );
    w!(
        "| bench's watch saw it → stream read it (≈ server: its watch, diff, fan-out, TLS) | {} | {} |",
        watch_to_client.len(),
        spread(watch_to_client)
    );
    let delivered_pairs = to_client.len();
    let (d_keeper, d_api, d_etcd, d_me) = (
        cpu_end.keeper.saturating_sub(cpu_start.keeper) as f64 / tck,
        cpu_end.apiserver.saturating_sub(cpu_start.apiserver) as f64 / tck,
        cpu_end.etcd.saturating_sub(cpu_start.etcd) as f64 / tck,
        cpu_end.me.saturating_sub(cpu_start.me) as f64 / tck,
    );
    let machine = cpu_end.busy.saturating_sub(cpu_start.busy) as f64 / tck;
    w!(
        "\n| streams | health events missed (total, worst stream) | resyncs on reading streams | streams ended early | events sent on all streams in the window (server metric) |"
    );
    w!("|---:|---:|---:|---:|---:|");
    w!(
        "| {k} | {}, {} | {reader_resyncs} | {} | {events:.0} ({:.1} per change per stream) |",
        missed.iter().sum::<usize>(),
        missed.iter().max().unwrap_or(&0),
        if ended.is_empty() {
            "0".to_owned()
        } else {
            format!("{}: {:?}", ended.len(), ended)
        },
        events / m as f64 / (k + 1) as f64
    );
    let (when, how) = slow
        .ended
        .clone()
        .unwrap_or((Duration::ZERO, "unknown".to_owned()));
    w!(
        "\nSlow client (HTTP/1.1, 4 KiB receive buffer, reading {} B/s until the end of the stress below, then all that is left): read {} B slowly, {} B in all; `health` events in what it read: {slow_health} ({m} + the stress patches sent); resync: {}; connection: {how} after {:.0} s; streams open before it drained (server metric): {streams_held:.0}; resyncs sent by the server: {resyncs:.0}; kernel `tcp_wmem` (min default max): {}.\n",
        settings.slow_bytes,
        slow.bytes_slow,
        slow.bytes_total,
        if slow_resyncs.is_empty() {
            "none".to_owned()
        } else {
            slow_resyncs.join(", ")
        },
        when.as_secs_f64(),
        std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem").map_or("unknown".to_owned(), |t| t
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "))
    );
    w!(
        "Then the {k} readers closed and the slow client alone (still reading {} B/s) under sustained changes: {} patches (every roost, round after round, 16 in flight; {} failed) in {:.0} s; events the server handed to its stream: {:.0}; outcome: **{}**; server RSS peak {} (VmHWM {}).\n",
        settings.slow_bytes,
        stress.patches,
        stress.failed,
        stress.seconds,
        stress.events,
        stress.outcome,
        mib(stress.rss_peak),
        mib(hwm)
    );
    w!(
        "| window (first PATCH → last delivery) | server CPU | per change | per event delivered | kube-apiserver | etcd | bench | machine busy |"
    );
    w!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    w!(
        "| {window_secs:.1} s | {d_keeper:.2} s ({:.2} cores) | {:.2} ms | {:.1} µs | {d_api:.2} s | {d_etcd:.2} s | {d_me:.2} s | {machine:.2} CPU-s |",
        d_keeper / window_secs,
        d_keeper / m as f64 * 1e3,
        d_keeper / events.max(1.0) * 1e6,
    );
    let per_stream = (rss_open as f64 - rss_before as f64) * 1024.0 / (k + 1) as f64;
    w!(
        "\n| RSS before streams | with {} streams open | RSS per stream | after the changes | VmHWM | delivered pairs |",
        k + 1
    );
    w!("|---:|---:|---:|---:|---:|---:|");
    w!(
        "| {} | {} | **{:.1} KiB** | {} | {} | {delivered_pairs} of {} |",
        mib(rss_before),
        mib(rss_open),
        per_stream / 1024.0,
        mib(rss_end),
        mib(hwm),
        k * m
    );
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "lifecycle_stream bench: run it with `cargo bench --bench lifecycle_stream`; skipped"
        );
        return;
    }
    let settings = Settings::from_env();
    let (nproc, model) = machine_facts();
    let load_start = load_average();
    let bin = server_binary();
    let quiet = wait_quiet(
        "lifecycle_stream",
        env_or("LIFECYCLE_BENCH_MAX_LOAD", 1.5f64),
        Duration::from_secs(env_or("LIFECYCLE_BENCH_QUIET_WAIT_SECONDS", 600u64)),
        &[std::process::id()],
    )
    .describe();
    eprintln!("lifecycle_stream bench: {quiet}; starting the control plane");
    let mut plane = ControlPlane::start().expect("control plane starts");
    plane.install_crd().expect("CRD installed");
    let (apiserver, etcd) = plane_pids(plane.dir.path());
    let [webhook_port, metrics_port, api_port] = roost_testcluster::free_ports::<3>();
    let api_addr = format!("127.0.0.1:{api_port}");
    let mut keeper = ServeCommand::new(&bin)
        .ports(webhook_port, metrics_port)
        .controller(&plane.kubeconfig)
        .args(["--lifecycle-api-addr", &api_addr])
        .args(["--lifecycle-api-max-streams-per-identity", "64"])
        .args(["--shutdown-delay", "0s", "--shutdown-grace", "5s"])
        .rust_log("warn")
        .ready_path("/healthz")
        .ready_within(Some(Duration::from_secs(60)))
        .spawn()
        .unwrap_or_else(|why| panic!("roost-keeper serve not healthy: {why}"));
    let ca_pem = keeper.ca_pem();
    plane
        .convert_at(
            &format!("https://127.0.0.1:{webhook_port}"),
            Some(ca_pem.as_bytes()),
        )
        .expect("CRD conversion pointed at roost-keeper");
    let rbac = r#"
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: lc-bench-viewer}}
- {apiVersion: v1, kind: ServiceAccount, metadata: {name: viewer, namespace: lc-bench-viewer}}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: lc-bench-roost-reader}
  rules: [{apiGroups: [roost.birb.party], resources: [managedroosts], verbs: [get, list, watch]}]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRoleBinding
  metadata: {name: lc-bench-roost-reader}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: lc-bench-roost-reader}
  subjects: [{kind: ServiceAccount, name: viewer, namespace: lc-bench-viewer}]
"#;
    let mut apply = plane.kubectl();
    apply.args(["apply", "-f", "-"]);
    checked(
        "kubectl apply RBAC",
        output_with_stdin(&mut apply, rbac.as_bytes()).expect("run kubectl"),
    );
    // The CRD's new conversion settles asynchronously; until it does, the
    // apiserver's watch drops the events it cannot convert (objects created
    // then are never seen by a watcher). Wait until an object converts both ways.
    let probe =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/web-valid.yaml"))
            .expect("read examples/web-valid.yaml");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut apply = plane.kubectl();
        apply.args(["apply", "-f", "-"]);
        let applied = output_with_stdin(&mut apply, &probe).expect("run kubectl");
        let mut get = plane.kubectl();
        get.args([
            "get",
            "-n",
            "default",
            "managedroosts.v1alpha1.roost.birb.party",
            "web",
        ]);
        if applied.status.success() && get.output().is_ok_and(|o| o.status.success()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "conversion never worked: {}",
            text(&applied.stderr)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    checked(
        "kubectl delete the probe",
        plane
            .kubectl()
            .args(["delete", "-n", "default", "managedroost", "web", "--wait"])
            .output()
            .expect("run kubectl"),
    );
    let token = text(
        &checked(
            "kubectl create token",
            plane
                .kubectl()
                .args(["create", "token", "viewer", "-n", "lc-bench-viewer"])
                .args(["--duration", "2h"])
                .output()
                .expect("run kubectl"),
        )
        .stdout,
    )
    .trim()
    .to_owned();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let client = runtime
        .block_on(roost_keeper::server::kube_client(Some(&plane.kubeconfig)))
        .expect("kube client");
    let setup = Setup {
        settings,
        client,
        base: format!("https://127.0.0.1:{api_port}"),
        api_port,
        metrics_port,
        ca_pem,
        token,
        keeper: keeper.pid(),
        apiserver,
        etcd,
    };
    let mut tables = String::new();
    runtime.block_on(run(&setup, &mut tables));
    let exit = keeper.stop(Duration::from_secs(20));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Lifecycle API stream fan-out (issue 24)\n\nMachine: {model}, {nproc} CPUs; load at start {load_start}, at end {}; {quiet}. Source {}; `roost-keeper serve` release binary as its own process (controller on, `RUST_LOG=warn`, lifecycle API over HTTPS, no admission webhooks registered), etcd + kube-apiserver on loopback, bench on the same machine. Server stopped by SIGTERM: {}.\n",
        load_average(),
        source_version(),
        exit.map_or("unknown".to_owned(), |s| s.to_string())
    );
    out.push_str(&tables);
    println!("{out}");
    drop(setup);
    drop(runtime);
    plane.stop();
}
