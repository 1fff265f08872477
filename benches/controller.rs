//! Controller convergence at scale on the local control plane (see BENCHMARKS.md).
//!
//! `cargo bench --bench controller` (real work only with `--bench` in argv, so
//! `cargo test --all-targets` never runs it):
//!
//! 1. waits until no other benchmark runs (`pgrep -f 'deps/load-'`, `pgrep -f
//!    'roost-keeper serve'`, our own server excluded) and the 1-minute load
//!    average is below `CONTROLLER_BENCH_MAX_LOAD` (1.5), for at most
//!    `CONTROLLER_BENCH_QUIET_WAIT_SECONDS` (600), then goes on and says so;
//! 2. starts etcd + kube-apiserver (`roost_testcluster::ControlPlane`),
//!    installs the CRD, waits for it to be established;
//! 3. for each size N in `CONTROLLER_BENCH_SIZES` (`1000,5000`): starts the
//!    release `roost-keeper serve` binary as its own process (controller on,
//!    `RUST_LOG=warn`, fresh process per size so its RSS starts from the same
//!    baseline), registers both webhooks once (`webhook-config | kubectl
//!    apply`), waits until a probe (`examples/invalid.yaml`, `--dry-run=server`)
//!    is refused with `[CHART_VERSION_INVALID]`, creates N ManagedRoosts
//!    (`examples/web-valid.yaml` with a per-object health-check URL and tenant,
//!    spread over `CONTROLLER_BENCH_NAMESPACES` (10) fresh namespaces) with
//!    `Api::create` at `CONTROLLER_BENCH_CONCURRENCY` (32) in flight, and
//!    watches them until every one has `status.phase == Pending` and a `True`
//!    `Validated` condition (confirmed afterwards by a list);
//! 4. reads `roost_keeper_api_status_updates_total` from `/metrics` before,
//!    at convergence and `CONTROLLER_BENCH_STEADY_SECONDS` (30) later, VmRSS /
//!    VmHWM of the server from `/proc/<pid>/status`, and the CPU time of the
//!    server, kube-apiserver, etcd and this process (`/proc/<pid>/stat`) over
//!    the convergence window, to tell who the bottleneck is;
//! 5. deletes the objects and stops the server between sizes;
//! 6. then gives every object a lifecycle history of 50 records (server-side
//!    apply of its status with 49 more `track_lifecycle` records, field
//!    manager `roost-keeper`, as if the controller had written them over
//!    time), waits `CONTROLLER_BENCH_HISTORY_SETTLE_SECONDS` (10) and reads
//!    VmRSS again: memory per tracked object with 50 records = (that RSS -
//!    RSS before the creates) / N, measured; plus, for reading, the JSON size
//!    and the heap one object holds (counting allocator) typed and in the
//!    controller's stored form, part by part.
//!
//! Markdown tables go to stdout. `ROOST_KEEPER_BIN` names the server binary
//! (default `<manifest>/target/release/roost-keeper`, built when missing);
//! `CONTROLLER_BENCH_TIMEOUT_SECONDS` (600) bounds the wait for convergence.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/mod.rs"]
mod support;

use cluster::{Quiet, checked, cpu_ticks, create_namespaces, plane_pids, vm_kib, wait_quiet};
use futures::StreamExt;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use roost_keeper::api::{
    LifecycleEventRecord, LifecycleStatus, ManagedRoost, ManagedRoostSpec, ManagedRoostStatus,
    Phase,
};
use roost_keeper::controller::lifecycle::{add_phase_duration, kind, track_lifecycle};
use roost_keeper::controller::stored::StoredRoost;
use roost_testcluster::{ControlPlane, ServeCommand, ServeProcess, output_with_stdin, text};
use serde_json::{Value, json};
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{
    clock_ticks, env_or, load_average, machine_facts, machine_ticks, server_binary, source_version,
};

/// Label that marks the objects of one size's run.
const RUN_LABEL: &str = "bench.roost.birb.party/run";
/// Field manager of the bench's creates.
const FIELD_MANAGER: &str = "roost-keeper-bench";
/// Lifecycle records in the "full history" memory figure.
const RECORDS: usize = 50;

// ---------------------------------------------------------------------------
// Counting allocator (for the heap held by one deserialized object)
// ---------------------------------------------------------------------------

/// `System`, counting the net bytes allocated while `COUNTING` is on.
struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
/// Net bytes allocated while counting.
static NET_BYTES: AtomicIsize = AtomicIsize::new(0);

fn count(bytes: isize) {
    if COUNTING.load(Ordering::Relaxed) {
        NET_BYTES.fetch_add(bytes, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded to `System` unchanged; counting has no
// effect on the memory handed out.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            count(layout.size() as isize);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            count(layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        new
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Live heap bytes `f` allocates and keeps (malloc's headers not included),
/// and what it returned (dropped after the reading).
fn heap_delta<T>(f: impl FnOnce() -> T) -> (isize, T) {
    NET_BYTES.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let out = f();
    COUNTING.store(false, Ordering::SeqCst);
    (NET_BYTES.load(Ordering::SeqCst), out)
}

// ---------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------

struct Settings {
    sizes: Vec<usize>,
    concurrency: usize,
    namespaces: usize,
    steady: Duration,
    history_settle: Duration,
    timeout: Duration,
    max_load: f64,
    quiet_wait: Duration,
}

impl Settings {
    fn from_env() -> Settings {
        let sizes = std::env::var("CONTROLLER_BENCH_SIZES")
            .ok()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| "1000,5000".to_owned());
        let sizes: Vec<usize> = sizes
            .split([',', ' '])
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse()
                    .unwrap_or_else(|_| panic!("CONTROLLER_BENCH_SIZES: {s:?} is not a count"))
            })
            .collect();
        assert!(
            !sizes.is_empty() && sizes.iter().all(|n| *n > 0),
            "CONTROLLER_BENCH_SIZES needs positive counts"
        );
        Settings {
            sizes,
            concurrency: env_or("CONTROLLER_BENCH_CONCURRENCY", 32usize).max(1),
            namespaces: env_or("CONTROLLER_BENCH_NAMESPACES", 10usize).max(1),
            steady: Duration::from_secs(env_or("CONTROLLER_BENCH_STEADY_SECONDS", 30u64)),
            history_settle: Duration::from_secs(env_or(
                "CONTROLLER_BENCH_HISTORY_SETTLE_SECONDS",
                10u64,
            )),
            timeout: Duration::from_secs(env_or("CONTROLLER_BENCH_TIMEOUT_SECONDS", 600u64)),
            max_load: env_or("CONTROLLER_BENCH_MAX_LOAD", 1.5f64),
            quiet_wait: Duration::from_secs(env_or("CONTROLLER_BENCH_QUIET_WAIT_SECONDS", 600u64)),
        }
    }
}

// ---------------------------------------------------------------------------
// Machine and processes
// ---------------------------------------------------------------------------

/// `roost-keeper serve` with its controller on `ports`, waited for until
/// `/healthz` answers (`/readyz` also needs the controller's first list,
/// see [`readyz`]).
fn start_keeper(bin: &Path, certs: &Path, kubeconfig: &Path, ports: (u16, u16)) -> ServeProcess {
    ServeCommand::new(bin)
        .certs_in(certs)
        .ports(ports.0, ports.1)
        .controller(kubeconfig)
        .args(["--shutdown-delay", "0s", "--shutdown-grace", "5s"])
        .rust_log(&std::env::var("CONTROLLER_BENCH_RUST_LOG").unwrap_or_else(|_| "warn".to_owned()))
        .ready_path("/healthz")
        .ready_within(Some(Duration::from_secs(60)))
        .spawn()
        .unwrap_or_else(|why| panic!("roost-keeper serve not healthy: {why}"))
}

// ---------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    status_writes: f64,
    status_errors: f64,
    write_seconds_sum: f64,
    write_seconds_count: f64,
    admission_requests: f64,
    lifecycle_events: f64,
}

impl std::ops::Sub for Counters {
    type Output = Counters;
    fn sub(self, o: Counters) -> Counters {
        Counters {
            status_writes: self.status_writes - o.status_writes,
            status_errors: self.status_errors - o.status_errors,
            write_seconds_sum: self.write_seconds_sum - o.write_seconds_sum,
            write_seconds_count: self.write_seconds_count - o.write_seconds_count,
            admission_requests: self.admission_requests - o.admission_requests,
            lifecycle_events: self.lifecycle_events - o.lifecycle_events,
        }
    }
}

/// The counters the report reads, from the metrics port.
fn counters(port: u16) -> Counters {
    let body = roost_testcluster::scrape(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    let metric = |name: &str| roost_testcluster::metric_sum(&body, name, &[]);
    Counters {
        status_writes: metric("roost_keeper_api_status_updates_total"),
        status_errors: metric("roost_keeper_api_status_update_errors_total"),
        write_seconds_sum: metric("roost_keeper_api_status_update_duration_seconds_sum"),
        write_seconds_count: metric("roost_keeper_api_status_update_duration_seconds_count"),
        admission_requests: metric("roost_keeper_admission_requests_total"),
        lifecycle_events: metric("roost_keeper_api_lifecycle_events_total"),
    }
}

/// The `/readyz` answer: status and body.
fn readyz(server: &ServeProcess) -> String {
    match roost_testcluster::http_get(server.metrics, "/readyz") {
        Ok((status, body)) => format!("{status} {}", body.trim()),
        Err(err) => format!("no answer: {err}"),
    }
}

// ---------------------------------------------------------------------------
// Objects
// ---------------------------------------------------------------------------

fn template() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/web-valid.yaml");
    let yaml = std::fs::read_to_string(&path).expect("read examples/web-valid.yaml");
    serde_norway::from_str(&yaml).expect("parse examples/web-valid.yaml")
}

/// Object `i` of run `label`: the example with its own name, namespace,
/// health-check URL and tenant (so each spec is distinct, as in a real cluster).
fn roost(template: &Value, i: usize, namespace: &str, label: &str) -> ManagedRoost {
    let name = format!("roost-{i:05}");
    let mut value = template.clone();
    value["metadata"] = json!({"name": name, "namespace": namespace, "labels": {RUN_LABEL: label}});
    value["spec"]["healthChecks"][0]["http"]["url"] = json!(format!(
        "http://{name}-nginx.{namespace}.svc.cluster.local/healthz"
    ));
    value["spec"]["tenancy"]["tenantId"] = json!(format!("team-{}", i % 100));
    serde_json::from_value(value).expect("a ManagedRoost")
}

fn converged(roost: &ManagedRoost) -> bool {
    roost.status.as_ref().is_some_and(|s| {
        s.phase == Some(Phase::Pending)
            && s.conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Validated" && c.status == "True")
    })
}

fn key(roost: &ManagedRoost) -> String {
    format!(
        "{}/{}",
        roost.namespace().unwrap_or_default(),
        roost.name_any()
    )
}

/// `status` with [`RECORDS`] lifecycle records: its own plus older ones made
/// with `track_lifecycle` (its phase bookkeeping untouched, so the controller
/// has nothing to add).
fn with_history(status: &ManagedRoostStatus) -> ManagedRoostStatus {
    let mut status = status.clone();
    let lifecycle = status.lifecycle.get_or_insert_with(Default::default);
    let own = lifecycle.events.take().unwrap_or_default();
    let start = Timestamp::from_second(Timestamp::now().as_second() - 86_400).unwrap_or_default();
    let at = |s: i64| Timestamp::from_second(start.as_second() + s).unwrap_or(start);
    let (last_activity, current_phase, phase_since) = (
        lifecycle.last_activity.clone(),
        lifecycle.current_phase.clone(),
        lifecycle.phase_since.clone(),
    );
    let mut older = LifecycleStatus {
        event_counts: lifecycle.event_counts.take(),
        ..LifecycleStatus::default()
    };
    for i in 0..RECORDS.saturating_sub(own.len()) {
        let n = i as i64;
        let (kind, message, details): (&str, String, BTreeMap<String, String>) = match i % 6 {
            0 => (
                kind::INSTALLING,
                "phase Pending -> Deploying".into(),
                BTreeMap::from([("phase".into(), "Deploying".into())]),
            ),
            1 => (
                kind::READY,
                "phase Deploying -> Ready".into(),
                BTreeMap::from([("phase".into(), "Ready".into())]),
            ),
            2 => (kind::HEALTHY, "health healthy".into(), BTreeMap::new()),
            3 => (kind::UNHEALTHY, "health unhealthy".into(), BTreeMap::new()),
            4 => (
                kind::UPGRADING,
                format!("chart version 15.4.{} -> 15.4.{}", 4 + i, 5 + i),
                BTreeMap::from([
                    ("from".into(), format!("15.4.{}", 4 + i)),
                    ("to".into(), format!("15.4.{}", 5 + i)),
                ]),
            ),
            _ => (
                kind::FAILED,
                "validation failed: CHART_VERSION_INVALID".into(),
                BTreeMap::new(),
            ),
        };
        track_lifecycle(&mut older, kind, message, details, at(60 * n));
    }
    for (i, phase) in ["Deploying", "Ready", "Failed"].into_iter().enumerate() {
        add_phase_duration(&mut older, phase, at(0), at(97 * (i as i64 + 1)));
    }
    let mut events = older.events.take().unwrap_or_default();
    events.extend(own);
    lifecycle.events = Some(events);
    lifecycle.event_counts = older.event_counts;
    lifecycle.phase_durations = older.phase_durations;
    lifecycle.last_activity = last_activity;
    lifecycle.current_phase = current_phase;
    lifecycle.phase_since = phase_since;
    status
}

/// `sample` as it is once its status has [`RECORDS`] records.
fn with_full_history(sample: &ManagedRoost) -> ManagedRoost {
    let mut object = sample.clone();
    object.status = Some(with_history(&sample.status.clone().unwrap_or_default()));
    object
}

/// Gives every object [`RECORDS`] lifecycle records, `concurrency` at a time.
async fn add_histories(run: &Run<'_>, objects: Vec<ManagedRoost>) -> (usize, usize) {
    let params = kube::api::PatchParams::apply(roost_keeper::controller::FIELD_MANAGER).force();
    let results: Vec<bool> = futures::stream::iter(objects)
        .map(|object| {
            let api: Api<ManagedRoost> =
                Api::namespaced(run.client.clone(), &object.namespace().unwrap_or_default());
            let params = params.clone();
            async move {
                let status = with_history(&object.status.clone().unwrap_or_default());
                // Only the fields the controller owns, as its own apply would send them.
                let owned = roost_keeper::controller::status::owned(&status);
                let patch = json!({
                    "apiVersion": roost_keeper::api::API_VERSION,
                    "kind": roost_keeper::api::KIND,
                    "status": owned,
                });
                let result = api
                    .patch_status(
                        &object.name_any(),
                        &params,
                        &kube::api::Patch::Apply(&patch),
                    )
                    .await;
                if let Err(err) = &result {
                    eprintln!("controller bench: history of {}: {err}", key(&object));
                }
                result.is_ok()
            }
        })
        .buffer_unordered(run.settings.concurrency)
        .collect()
        .await;
    let applied = results.iter().filter(|ok| **ok).count();
    (applied, results.len() - applied)
}

/// JSON size and heap held when deserialized (inside an `Arc`, as the reflector store keeps it).
/// JSON size (whole, and without managedFields) and the heap held when
/// deserialized inside an `Arc`: typed, and in the controller's stored form
/// (trimmed as its watch trims it).
fn object_cost(object: &ManagedRoost) -> (usize, usize, isize, isize) {
    let bytes = serde_json::to_vec(object).expect("serialize");
    let mut stripped = object.clone();
    stripped.metadata.managed_fields = None;
    let without_managed = serde_json::to_vec(&stripped).expect("serialize").len();
    let (typed, held) = heap_delta(|| {
        Arc::new(serde_json::from_slice::<ManagedRoost>(&bytes).expect("deserialize"))
    });
    drop(held);
    let (stored, held) = heap_delta(|| {
        let mut stored = serde_json::from_slice::<StoredRoost>(&bytes).expect("deserialize");
        stored.trim();
        Arc::new(stored)
    });
    drop(held);
    (bytes.len(), without_managed, typed, stored)
}

/// Heap held by `value` once deserialized as a `T` (the heap inside it; its inline size not included).
fn heap_as<T: serde::de::DeserializeOwned>(value: &impl serde::Serialize) -> isize {
    let bytes = serde_json::to_vec(value).expect("serialize");
    let (heap, held) = heap_delta(|| serde_json::from_slice::<T>(&bytes).expect("deserialize"));
    drop(held);
    heap
}

/// Where the heap of one deserialized object goes: (part, JSON bytes, heap bytes).
fn heap_breakdown(
    sample: &ManagedRoost,
    full: &ManagedRoost,
    event: Option<&K8sEvent>,
) -> Vec<(String, usize, isize)> {
    let mut rows = Vec::new();
    let managed = sample.metadata.managed_fields.clone().unwrap_or_default();
    rows.push((
        format!(
            "metadata, of which managedFields ({} entries)",
            managed.len()
        ),
        json_len(&managed),
        heap_as::<Vec<ManagedFieldsEntry>>(&managed),
    ));
    let mut bare = sample.metadata.clone();
    bare.managed_fields = None;
    rows.push((
        "metadata without managedFields".to_owned(),
        json_len(&bare),
        heap_as::<ObjectMeta>(&bare),
    ));
    rows.push((
        "spec".to_owned(),
        json_len(&sample.spec),
        heap_as::<ManagedRoostSpec>(&sample.spec),
    ));
    let status = sample.status.clone().unwrap_or_default();
    rows.push((
        "status (as written, 1 lifecycle record)".to_owned(),
        json_len(&status),
        heap_as::<ManagedRoostStatus>(&status),
    ));
    let status = full.status.clone().unwrap_or_default();
    rows.push((
        format!("status with {RECORDS} lifecycle records"),
        json_len(&status),
        heap_as::<ManagedRoostStatus>(&status),
    ));
    let events = status.lifecycle.and_then(|l| l.events).unwrap_or_default();
    if let Some(record) = events.iter().find(|e| e.details.is_some()) {
        rows.push((
            "one lifecycle record with `details`".to_owned(),
            json_len(record),
            heap_as::<LifecycleEventRecord>(record),
        ));
    }
    if let Some(record) = events.iter().find(|e| e.details.is_none()) {
        rows.push((
            "one lifecycle record without `details`".to_owned(),
            json_len(record),
            heap_as::<LifecycleEventRecord>(record),
        ));
    }
    if let Some(event) = event {
        rows.push((
            format!(
                "one Event (`{}`) as kube's `Recorder` caches it, per object, for 6 min",
                event.reason.as_deref().unwrap_or("?")
            ),
            json_len(event),
            heap_as::<K8sEvent>(event),
        ));
    }
    rows
}

/// JSON length of a value.
fn json_len(value: &impl serde::Serialize) -> usize {
    serde_json::to_vec(value).map_or(0, |v| v.len())
}

// ---------------------------------------------------------------------------
// One size
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Default)]
struct Cpu {
    keeper: u64,
    apiserver: u64,
    etcd: u64,
    me: u64,
    busy: u64,
    total: u64,
}

struct Pids {
    keeper: u32,
    apiserver: Option<u32>,
    etcd: Option<u32>,
}

fn cpu_now(pids: &Pids) -> Cpu {
    let (busy, total) = machine_ticks();
    Cpu {
        keeper: cpu_ticks(pids.keeper).unwrap_or(0),
        apiserver: pids.apiserver.and_then(cpu_ticks).unwrap_or(0),
        etcd: pids.etcd.and_then(cpu_ticks).unwrap_or(0),
        me: cpu_ticks(std::process::id()).unwrap_or(0),
        busy,
        total,
    }
}

struct Row {
    n: usize,
    quiet: String,
    load_start: String,
    load_end: String,
    create_seconds: f64,
    create_retries: u64,
    create_failures: usize,
    converge_seconds: Option<f64>,
    converged_watch: usize,
    converged_listed: usize,
    latency: Option<(f64, f64, f64)>,
    during: Counters,
    steady: Counters,
    watch_errors: u64,
    rss_before: u64,
    rss_converged: u64,
    rss_after: u64,
    hwm: u64,
    cpu_window: f64,
    cpu_start: Cpu,
    cpu_end: Cpu,
    keeper_steady_ticks: u64,
    history: History,
    sample: Option<ManagedRoost>,
    event_sample: Option<K8sEvent>,
}

/// The phase that gives every object 50 lifecycle records.
struct History {
    applied: usize,
    failed: usize,
    seconds: f64,
    /// Status writes the controller made in reaction (none expected).
    writes: f64,
    rss: u64,
    hwm: u64,
}

struct Run<'a> {
    settings: &'a Settings,
    client: Client,
    template: &'a Value,
    metrics_port: u16,
    pids: Pids,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn measure(run: &Run<'_>, n: usize, namespaces: &[String], quiet: Quiet) -> Row {
    let label = format!("size-{n}");
    let selector = format!("{RUN_LABEL}={label}");
    let objects: Vec<ManagedRoost> = (0..n)
        .map(|i| roost(run.template, i, &namespaces[i % namespaces.len()], &label))
        .collect();

    // The bench's own watch: when each object converged.
    let seen: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let watch_errors = Arc::new(AtomicU64::new(0));
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
    let watch = {
        let seen = Arc::clone(&seen);
        let errors = Arc::clone(&watch_errors);
        let api: Api<ManagedRoost> = Api::all(run.client.clone());
        let stream = watcher(api, watcher::Config::default().labels(&selector)).default_backoff();
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            let mut ready = Some(ready_tx);
            while let Some(event) = stream.next().await {
                match event {
                    Ok(watcher::Event::InitDone) => {
                        if let Some(tx) = ready.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(watcher::Event::Apply(r) | watcher::Event::InitApply(r)) => {
                        if converged(&r) {
                            seen.lock()
                                .unwrap()
                                .entry(key(&r))
                                .or_insert_with(Instant::now);
                        }
                    }
                    Ok(_) => {}
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    tokio::time::timeout(Duration::from_secs(30), ready_rx)
        .await
        .expect("the bench's watch lists within 30 s")
        .expect("watch task alive");

    let load_start = load_average();
    let rss_before = vm_kib(run.pids.keeper, "VmRSS").unwrap_or(0);
    let counters_before = counters(run.metrics_port);
    let cpu_start = cpu_now(&run.pids);

    // Create everything, `concurrency` at a time.
    let started = Instant::now();
    let retries = Arc::new(AtomicU64::new(0));
    let post = PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    };
    let results: Vec<Result<(String, Instant), String>> = futures::stream::iter(objects)
        .map(|object| {
            let api: Api<ManagedRoost> =
                Api::namespaced(run.client.clone(), &object.namespace().unwrap_or_default());
            let post = post.clone();
            let retries = Arc::clone(&retries);
            async move {
                let key = key(&object);
                let mut attempt = 0u32;
                loop {
                    match api.create(&post, &object).await {
                        Ok(_) => return Ok((key, Instant::now())),
                        // A retried create whose first attempt went through.
                        Err(kube::Error::Api(status))
                            if attempt > 0 && status.is_already_exists() =>
                        {
                            return Ok((key, Instant::now()));
                        }
                        Err(err) if attempt < 5 => {
                            if attempt == 0 {
                                eprintln!("controller bench: create {key}: {err}; retrying");
                            }
                            retries.fetch_add(1, Ordering::Relaxed);
                            attempt += 1;
                            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt)))
                                .await;
                        }
                        Err(err) => return Err(format!("{key}: {err}")),
                    }
                }
            }
        })
        .buffer_unordered(run.settings.concurrency)
        .collect()
        .await;
    let create_seconds = started.elapsed().as_secs_f64();
    let mut created = HashMap::new();
    let mut failures = Vec::new();
    for result in results {
        match result {
            Ok((key, at)) => {
                created.insert(key, at);
            }
            Err(err) => failures.push(err),
        }
    }
    for failure in failures.iter().take(5) {
        eprintln!("controller bench: create failed: {failure}");
    }

    // Wait until the watch has seen every created object converge.
    let deadline = started + run.settings.timeout;
    loop {
        let done = seen.lock().unwrap().len() >= created.len();
        if done || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cpu_end = cpu_now(&run.pids);
    let counters_converged = counters(run.metrics_port);
    let rss_converged = vm_kib(run.pids.keeper, "VmRSS").unwrap_or(0);
    watch.abort();
    let seen = seen.lock().unwrap().clone();
    let converge_seconds = (seen.len() >= n)
        .then(|| seen.values().max().map(|t| t.duration_since(started)))
        .flatten()
        .map(|d| d.as_secs_f64());
    let mut latencies: Vec<f64> = created
        .iter()
        .filter_map(|(key, at)| {
            seen.get(key)
                .map(|done| done.saturating_duration_since(*at).as_secs_f64())
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let latency = (!latencies.is_empty()).then(|| {
        (
            percentile(&latencies, 50.0),
            percentile(&latencies, 99.0),
            latencies[latencies.len() - 1],
        )
    });

    // Confirm with a list (paged), keep one object as the memory sample.
    let api: Api<ManagedRoost> = Api::all(run.client.clone());
    let mut listed = 0;
    let mut all = Vec::with_capacity(n);
    let mut params = ListParams::default().labels(&selector).limit(500);
    loop {
        let page = api.list(&params).await.expect("list ManagedRoosts");
        listed += page.items.iter().filter(|r| converged(r)).count();
        all.extend(page.items);
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }

    // One Event the controller published (its Recorder caches each for 6 minutes).
    let events: Api<K8sEvent> = Api::namespaced(run.client.clone(), &namespaces[0]);
    let event_sample = events
        .list(&ListParams::default().limit(1))
        .await
        .ok()
        .and_then(|l| l.items.into_iter().next());

    // Steady state: nothing should be written.
    let keeper_ticks = cpu_ticks(run.pids.keeper).unwrap_or(0);
    tokio::time::sleep(run.settings.steady).await;
    let counters_after = counters(run.metrics_port);
    let keeper_steady_ticks = cpu_ticks(run.pids.keeper)
        .unwrap_or(0)
        .saturating_sub(keeper_ticks);
    let rss_after = vm_kib(run.pids.keeper, "VmRSS").unwrap_or(0);
    let hwm = vm_kib(run.pids.keeper, "VmHWM").unwrap_or(0);
    let sample = all.iter().find(|r| converged(r)).cloned();

    // Every object gets 50 lifecycle records; then RSS again.
    let history = {
        let started = Instant::now();
        let (applied, failed) = add_histories(run, all).await;
        let seconds = started.elapsed().as_secs_f64();
        tokio::time::sleep(run.settings.history_settle).await;
        let counters = counters(run.metrics_port);
        History {
            applied,
            failed,
            seconds,
            writes: counters.status_writes - counters_after.status_writes,
            rss: vm_kib(run.pids.keeper, "VmRSS").unwrap_or(0),
            hwm: vm_kib(run.pids.keeper, "VmHWM").unwrap_or(0),
        }
    };

    Row {
        n,
        quiet: quiet.describe(),
        load_start,
        load_end: load_average(),
        create_seconds,
        create_retries: retries.load(Ordering::Relaxed),
        create_failures: failures.len(),
        converge_seconds,
        converged_watch: seen.len(),
        converged_listed: listed,
        latency,
        during: counters_converged - counters_before,
        steady: counters_after - counters_converged,
        watch_errors: watch_errors.load(Ordering::Relaxed),
        rss_before,
        rss_converged,
        rss_after,
        hwm,
        cpu_window: (cpu_end.total.saturating_sub(cpu_start.total)) as f64,
        cpu_start,
        cpu_end,
        keeper_steady_ticks,
        history,
        sample,
        event_sample,
    }
}

async fn delete_run(client: &Client, namespaces: &[String], n: usize) {
    let selector = format!("{RUN_LABEL}=size-{n}");
    for ns in namespaces {
        let api: Api<ManagedRoost> = Api::namespaced(client.clone(), ns);
        api.delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels(&selector),
        )
        .await
        .expect("delete ManagedRoosts");
    }
    let api: Api<ManagedRoost> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(300);
    while Instant::now() < deadline {
        let left = api
            .list(&ListParams::default().labels(&selector).limit(1))
            .await
            .map(|l| l.items.len())
            .unwrap_or(1);
        if left == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("controller bench: objects of size {n} still listed after 300 s");
}

// ---------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn per_object_bytes(after_kib: u64, before_kib: u64, n: usize) -> f64 {
    (after_kib as f64 - before_kib as f64) * 1024.0 / n as f64
}

fn verdict(met: bool) -> &'static str {
    if met { "**met**" } else { "**NOT met**" }
}

#[allow(clippy::too_many_arguments)]
fn report(
    settings: &Settings,
    rows: &[Row],
    nproc: usize,
    model: &str,
    tck: f64,
    load_start: &str,
    first_quiet: &str,
    exits: &[String],
) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        "## Controller convergence (`cargo bench --bench controller`)\n"
    );
    let _ = writeln!(
        w,
        "Machine: `nproc` = {nproc}, CPU {model}; code {}; load average (1/5/15 min) at start {load_start}, at end {}.",
        source_version(),
        load_average()
    );
    let _ = writeln!(
        w,
        "Setup: real etcd + kube-apiserver on loopback, both webhooks registered (validate `Fail`, mutate `Ignore`), `roost-keeper serve` release binary as its own process (`RUST_LOG=warn`, fresh process per size), creates with `Api::create`, {} in flight, over {} namespaces; convergence = `status.phase == Pending` and `Validated=True`, seen by the bench's own watch and confirmed by a list. Before the control plane started: {first_quiet}.\n",
        settings.concurrency, settings.namespaces
    );

    let _ = writeln!(
        w,
        "| N | creates done (s, objects/s) | all converged (s) | lag after last create (s) | create→converged p50 / p99 / max (s) | status writes / object | write errors | writes in {} s steady state | RSS before | RSS converged | RSS +{} s | VmHWM | RSS growth / object |",
        settings.steady.as_secs(),
        settings.steady.as_secs()
    );
    let _ = writeln!(
        w,
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in rows {
        let converge = r.converge_seconds.map_or_else(
            || format!("**not converged** ({}/{})", r.converged_watch, r.n),
            |s| format!("{s:.1}"),
        );
        let lag = r
            .converge_seconds
            .map_or("-".to_owned(), |s| format!("{:.1}", s - r.create_seconds));
        let latency = r.latency.map_or("-".to_owned(), |(p50, p99, max)| {
            format!("{p50:.2} / {p99:.2} / {max:.2}")
        });
        let _ = writeln!(
            w,
            "| {} | {:.1} ({:.0}/s) | {} | {} | {} | {:.2} | {} | {} | {} | {} | {} | {} | {:.0} B |",
            r.n,
            r.create_seconds,
            r.n as f64 / r.create_seconds,
            converge,
            lag,
            latency,
            r.during.status_writes / r.n as f64,
            r.during.status_errors,
            r.steady.status_writes,
            mib(r.rss_before),
            mib(r.rss_converged),
            mib(r.rss_after),
            mib(r.hwm),
            per_object_bytes(r.rss_after, r.rss_before, r.n),
        );
    }

    let _ = writeln!(
        w,
        "\nCPU from the first create until every object converged (cores = CPU-seconds / wall-seconds; the machine has {nproc}):\n"
    );
    let _ = writeln!(
        w,
        "| N | window (s) | roost-keeper | kube-apiserver | etcd | bench (creates + watch) | whole machine | everything else | roost-keeper CPU in steady state |"
    );
    let _ = writeln!(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let (s, e) = (r.cpu_start, r.cpu_end);
        // Wall seconds of the window from the machine's total ticks (summed over CPUs).
        let wall = r.cpu_window / tck / nproc as f64;
        let cores = |ticks: u64| ticks as f64 / tck / wall.max(1e-9);
        let keeper = e.keeper.saturating_sub(s.keeper);
        let apiserver = e.apiserver.saturating_sub(s.apiserver);
        let etcd = e.etcd.saturating_sub(s.etcd);
        let me = e.me.saturating_sub(s.me);
        let busy = e.busy.saturating_sub(s.busy);
        let other = busy.saturating_sub(keeper + apiserver + etcd + me);
        let cell = |ticks: u64| format!("{:.1} s ({:.2})", ticks as f64 / tck, cores(ticks));
        let _ = writeln!(
            w,
            "| {} | {:.1} | {} | {} | {} | {} | {} | {} | {:.2} s |",
            r.n,
            wall,
            cell(keeper),
            cell(apiserver),
            cell(etcd),
            cell(me),
            cell(busy),
            cell(other),
            r.keeper_steady_ticks as f64 / tck,
        );
    }

    let _ = writeln!(w, "\nPer size:\n");
    for r in rows {
        let mean_write_ms = if r.during.write_seconds_count > 0.0 {
            r.during.write_seconds_sum / r.during.write_seconds_count * 1e3
        } else {
            0.0
        };
        let _ = writeln!(
            w,
            "- N={}: {}; load at start {}, at end {}; {} create retries, {} failed creates; admission reviews answered {:.0} ({:.2}/object); mean status write {:.1} ms; lifecycle records {:.0}; converged per watch {}, per list {}; bench watch errors {}.",
            r.n,
            r.quiet,
            r.load_start,
            r.load_end,
            r.create_retries,
            r.create_failures,
            r.during.admission_requests,
            r.during.admission_requests / r.n as f64,
            mean_write_ms,
            r.during.lifecycle_events,
            r.converged_watch,
            r.converged_listed,
            r.watch_errors,
        );
    }
    for exit in exits {
        let _ = writeln!(w, "- {exit}");
    }

    // Memory per tracked object.
    let sample = rows.iter().rev().find_map(|r| r.sample.as_ref());
    let largest = rows.iter().max_by_key(|r| r.n);
    let _ = writeln!(
        w,
        "\nEvery object then given {RECORDS} lifecycle records (server-side apply of its status by field manager `roost-keeper`), RSS {} s later:\n",
        settings.history_settle.as_secs()
    );
    let _ = writeln!(
        w,
        "| N | histories applied (failed) | apply time (s) | controller status writes in reaction | RSS before creates | RSS with {RECORDS} records each | VmHWM | memory per tracked object |"
    );
    let _ = writeln!(w, "|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let h = &r.history;
        let _ = writeln!(
            w,
            "| {} | {} ({}) | {:.1} | {:.0} | {} | {} | {} | **{:.0} B** |",
            r.n,
            h.applied,
            h.failed,
            h.seconds,
            h.writes,
            mib(r.rss_before),
            mib(h.rss),
            mib(h.hwm),
            per_object_bytes(h.rss, r.rss_before, r.n),
        );
    }
    if let Some(sample) = sample {
        let full = with_full_history(sample);
        let records = full
            .status
            .as_ref()
            .and_then(|s| s.lifecycle.as_ref())
            .and_then(|l| l.events.as_ref())
            .map_or(0, Vec::len);
        let _ = writeln!(
            w,
            "\nOne object's heap (JSON = `serde_json::to_vec` of the typed object; heap = bytes held once deserialized inside an `Arc`, counting allocator, malloc overhead not included; stored = the controller's `StoredRoost`, trimmed as its watch trims it):\n"
        );
        let _ = writeln!(
            w,
            "| object | JSON | JSON without managedFields | heap typed (`ManagedRoost`) | heap stored (`StoredRoost`) |"
        );
        let _ = writeln!(w, "|---|---:|---:|---:|---:|");
        for (what, object) in [
            (
                "converged object from the cluster (1 lifecycle record)".to_owned(),
                sample,
            ),
            (format!("same with {records} lifecycle records"), &full),
        ] {
            let (json, json_bare, typed, stored) = object_cost(object);
            let _ = writeln!(
                w,
                "| {what} | {json} B | {json_bare} B | {typed} B | {stored} B |"
            );
        }
        let _ = writeln!(
            w,
            "\nWhere the typed heap goes (each part deserialized on its own; `size_of::<ManagedRoost>()` = {} B inline):\n",
            std::mem::size_of::<ManagedRoost>()
        );
        let _ = writeln!(w, "| part | JSON | heap when deserialized |");
        let _ = writeln!(w, "|---|---:|---:|");
        for (part, json, heap) in heap_breakdown(
            sample,
            &full,
            rows.iter().rev().find_map(|r| r.event_sample.as_ref()),
        ) {
            let _ = writeln!(w, "| {part} | {json} B | {heap} B |");
        }
    }

    // Targets.
    let _ = writeln!(w, "\nTargets:\n");
    match rows.iter().find(|r| r.n == 5000) {
        Some(r) => {
            let _ = writeln!(
                w,
                "- 5,000 objects converge in < 60 s: {} ({})",
                verdict(r.converge_seconds.is_some_and(|s| s < 60.0)),
                r.converge_seconds
                    .map_or("not converged".to_owned(), |s| format!("{s:.1} s"))
            );
            let writes = r.during.status_writes / r.n as f64;
            let _ = writeln!(
                w,
                "- <= 2 status writes per object: {} ({writes:.2}; {} in the steady state)",
                verdict(writes <= 2.0),
                r.steady.status_writes
            );
        }
        None => {
            let _ = writeln!(
                w,
                "- 5,000 objects in < 60 s: not measured (sizes {:?})",
                settings.sizes
            );
            if let Some(r) = largest {
                let writes = r.during.status_writes / r.n as f64;
                let _ = writeln!(
                    w,
                    "- <= 2 status writes per object: {} at N={} ({writes:.2})",
                    verdict(writes <= 2.0),
                    r.n
                );
            }
        }
    }
    if let Some(r) = largest {
        // 150 MB = 143.05 MiB.
        let limit_kib = 150_000_000 / 1024;
        let _ = writeln!(
            w,
            "- RSS < 150 MB (143.1 MiB) at N={}: {} (VmRSS {} after convergence + {} s, peak VmHWM {})",
            r.n,
            verdict(r.hwm < limit_kib && r.rss_after < limit_kib),
            mib(r.rss_after),
            settings.steady.as_secs(),
            mib(r.hwm)
        );
    }
    if let Some(r) = largest {
        let measured = per_object_bytes(r.history.rss, r.rss_before, r.n);
        let _ = writeln!(
            w,
            "- < 16 KB per tracked object with {RECORDS} lifecycle records at N={}: {} ({measured:.0} B measured)",
            r.n,
            verdict(r.history.failed == 0 && measured < 16_000.0)
        );
    }
    out
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("controller bench: run it with `cargo bench --bench controller`; skipped");
        return;
    }
    let settings = Settings::from_env();
    let (nproc, model) = machine_facts();
    let tck = clock_ticks();
    let load_start = load_average();
    let bin = server_binary();
    let first_quiet = wait_quiet(
        "controller",
        settings.max_load,
        settings.quiet_wait,
        &[std::process::id()],
    )
    .describe();
    eprintln!("controller bench: {first_quiet}; starting the control plane");

    let mut plane = ControlPlane::start().expect("control plane starts");
    plane.install_crd().expect("CRD installed");
    let (apiserver, etcd) = plane_pids(plane.dir.path());

    let certs = tempfile::tempdir().expect("tempdir");
    checked(
        "roost-keeper certs generate",
        Command::new(&bin)
            .args(["certs", "generate", "--extra-san", "127.0.0.1", "--out-dir"])
            .arg(certs.path())
            .output()
            .unwrap(),
    );
    let ports: (u16, u16) = roost_testcluster::free_ports().into();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let client = runtime
        .block_on(roost_keeper::server::kube_client(Some(&plane.kubeconfig)))
        .expect("kube client");
    let template = template();
    let probe = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/invalid.yaml"))
        .expect("read examples/invalid.yaml");

    let mut rows = Vec::new();
    let mut exits = Vec::new();
    for (index, &n) in settings.sizes.iter().enumerate() {
        let mut keeper = start_keeper(&bin, certs.path(), &plane.kubeconfig, ports);
        if index == 0 {
            let yaml = checked(
                "roost-keeper webhook-config",
                Command::new(&bin)
                    .arg("webhook-config")
                    .arg("--ca-bundle-file")
                    .arg(certs.path().join("ca.crt"))
                    .args(["--url", &format!("https://127.0.0.1:{}", ports.0)])
                    .output()
                    .unwrap(),
            )
            .stdout;
            let mut apply = plane.kubectl();
            apply.args(["apply", "-f", "-"]);
            checked(
                "kubectl apply webhooks",
                output_with_stdin(&mut apply, &yaml).expect("run kubectl"),
            );
            let ca = std::fs::read(certs.path().join("ca.crt")).expect("read ca.crt");
            plane
                .convert_at(&format!("https://127.0.0.1:{}", ports.0), Some(&ca))
                .expect("CRD conversion pointed at roost-keeper");
        }
        // The apiserver picks webhook configurations (and a restarted server) up asynchronously.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut dry_run = plane.kubectl();
            dry_run.args(["apply", "--dry-run=server", "-f", "-"]);
            let out = output_with_stdin(&mut dry_run, &probe).expect("run kubectl");
            let stderr = text(&out.stderr);
            if stderr.contains("[CHART_VERSION_INVALID]") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "webhooks never judged the probe; last answer: {stderr}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        let namespaces: Vec<String> = (0..settings.namespaces)
            .map(|k| format!("ctl-bench-{n}-{k}"))
            .collect();
        runtime.block_on(create_namespaces(&client, &namespaces));

        let quiet = wait_quiet(
            "controller",
            settings.max_load,
            settings.quiet_wait,
            &[std::process::id(), keeper.pid()],
        );
        eprintln!("controller bench: N={n}: {}; creating", quiet.describe());
        let run = Run {
            settings: &settings,
            client: client.clone(),
            template: &template,
            metrics_port: ports.1,
            pids: Pids {
                keeper: keeper.pid(),
                apiserver,
                etcd,
            },
        };
        let row = runtime.block_on(measure(&run, n, &namespaces, quiet));
        eprintln!(
            "controller bench: N={n}: converged in {:?} s, {:.2} writes/object",
            row.converge_seconds,
            row.during.status_writes / n as f64
        );
        rows.push(row);
        let ready = readyz(&keeper);
        let exit = keeper.stop(Duration::from_secs(20));
        exits.push(format!(
            "N={n}: `/readyz` after the run: `{ready}`; roost-keeper serve stopped by SIGTERM: {}",
            exit.map_or("unknown".to_owned(), |s| s.to_string())
        ));
        if index + 1 < settings.sizes.len() {
            runtime.block_on(delete_run(&client, &namespaces, n));
        }
    }
    let report = report(
        &settings,
        &rows,
        nproc,
        &model,
        tck,
        &load_start,
        &first_quiet,
        &exits,
    );
    println!("{report}");
    drop(client);
    drop(runtime);
    plane.stop();
}
