//! Validation, cache and defaulting benchmarks (criterion), plus a heap
//! measurement of what one cached verdict costs.
//!
//! Run with `cargo bench --bench validation`. The memory figures are printed
//! first, then criterion runs:
//!
//! - `validate/typical_uncached`, `validate/typical_from_json`: every rule on a
//!   typical spec, from the decoded spec and from JSON (decode + validate).
//! - `validate/large_uncached`, `validate/large_from_json`: the same on a large
//!   spec (20 health checks, 6 teardown triggers).
//! - `validate/deep_inline_values`: the typical spec whose `values.inline` is
//!   `k: ` and 100,000 `[` (bounded by the YAML nesting limit).
//! - `yaml/samples_stream`, `yaml/large_stream`: the YAML reader over the 17
//!   sample files (49 manifests) as one stream (91 KB) and that stream repeated to
//!   about 1.5 MiB.
//! - `cache/hit`: a lookup of a key already cached; `cache/key_typical`: hashing
//!   the typical spec into a key.
//! - `defaults/typical`: defaulting the typical object (with its JSON patch).
//! - `review/validate_hit`, `review/validate_hit_decoded`, `review/mutate_hit`:
//!   one whole AdmissionReview body (the load bench's 2.4 KB CREATE, with
//!   `managedFields` and `userInfo`) answered by `Admission::review` when its
//!   spec is cached: the quick path, the full decode it replaced
//!   (`review_decoded`), and the mutating webhook's cached patch.
//! - `policies/builtin_only`, `policies/ten_custom_rules`: an uncached review
//!   of the typical object (decode + every built-in rule), alone and then
//!   with a matching RoostPolicy of 10 CEL rules applied; the difference is
//!   the added cost of the policies per review.
//! - `policy_attacks/*`: the policies of issue 21's review applied to one
//!   object each (`Matched::apply`, the step every caller shares): a
//!   "no duplicate lines" rule over 1,000 / 3,000 / 10,000 lines of
//!   `values.inline`, chains of 3 and 4 `replace('', 'b'×100)`, a loop over
//!   strings the expression makes itself, and 100 rules each looping 100 × 100
//!   over 100 health checks. Each stops at the review's CEL budget; the peak
//!   heap of one application is printed before criterion runs.
//!
//! The heap figures come from a counting global allocator: live bytes (and
//! blocks) before and after inserting `MEMORY_ENTRIES` distinct verdicts into a
//! `ValidationCache`, divided by the entries held; moka's per-entry overhead is
//! included. Bytes are those requested: malloc's own headers and rounding come
//! on top. Counting is switched on only while measuring, so the timed
//! benchmarks pay one relaxed atomic load per allocation and nothing more.

use criterion::{Criterion, criterion_group};
use roost_keeper::admission::cache::{CacheKey, ValidationCache};
use roost_keeper::api::ApiVersion;
use roost_keeper::api::ManagedRoostSpec;
use roost_keeper::defaults::apply_defaults;
use roost_keeper::validation::decode::validate_spec_value;
use roost_keeper::validation::{ValidationResult, validate};
use serde_json::{Value, json};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::Arc;

/// The built-in rule set's fingerprint, as the webhook keys its cache.
static RULES: std::sync::LazyLock<u64> =
    std::sync::LazyLock::new(|| roost_keeper::validation::Registry::global().fingerprint());
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::time::Duration;

// ---------------------------------------------------------------------------
// Counting allocator
// ---------------------------------------------------------------------------

/// `System`, counting the net bytes allocated while `COUNTING` is on.
struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
/// Net bytes allocated while counting (signed: memory allocated before the
/// window and freed inside it counts negative, so the difference of two
/// readings is the change in live heap bytes).
static NET_BYTES: AtomicIsize = AtomicIsize::new(0);
/// Net number of live allocations, counted the same way.
static NET_ALLOCS: AtomicIsize = AtomicIsize::new(0);
/// The highest `NET_BYTES` reached while counting.
static PEAK_BYTES: AtomicIsize = AtomicIsize::new(0);

/// Records `bytes` more (or fewer) live bytes in `allocs` more (or fewer) blocks.
fn count(bytes: isize, allocs: isize) {
    if COUNTING.load(Ordering::Relaxed) {
        let now = NET_BYTES.fetch_add(bytes, Ordering::Relaxed) + bytes;
        PEAK_BYTES.fetch_max(now, Ordering::Relaxed);
        NET_ALLOCS.fetch_add(allocs, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded to `System` unchanged; counting has no
// effect on the memory handed out.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            count(layout.size() as isize, 1);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            count(layout.size() as isize, 1);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize), -1);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            count(new_size as isize - layout.size() as isize, 0);
        }
        new
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Live heap growth caused by `f`: what it allocates and keeps, minus what it
/// frees.
struct HeapDelta {
    /// Bytes requested from the allocator (malloc's own headers and rounding
    /// are not included).
    bytes: isize,
    /// Blocks.
    allocs: isize,
}

/// The heap growth caused by `f`, and what `f` returned (dropped after the reading).
fn heap_delta<T>(f: impl FnOnce() -> T) -> (HeapDelta, T) {
    NET_BYTES.store(0, Ordering::SeqCst);
    NET_ALLOCS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let out = f();
    COUNTING.store(false, Ordering::SeqCst);
    let delta = HeapDelta {
        bytes: NET_BYTES.load(Ordering::SeqCst),
        allocs: NET_ALLOCS.load(Ordering::SeqCst),
    };
    (delta, out)
}

// ---------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------

/// The spec of a typical roost: a chart from an https repository at an exact
/// version with inline values, an http and a tcp check, a timeout trigger,
/// a tenant and metrics. It validates clean.
fn typical_spec_json() -> Value {
    json!({
        "chart": {
            "repository": {"url": "https://charts.bitnami.com/bitnami"},
            "name": "nginx",
            "version": "15.4.2",
            "values": {
                "inline": "replicaCount: 2\nimage:\n  tag: 1.25.3\nservice:\n  type: ClusterIP\n  port: 80\nresources:\n  limits:\n    memory: 256Mi\n"
            }
        },
        "healthChecks": [
            {
                "name": "http-ready",
                "type": "http",
                "http": {"url": "http://nginx.demo.svc.cluster.local/healthz", "expectedCodes": [200]},
                "interval": "30s",
                "timeout": "5s"
            },
            {
                "name": "tcp-port",
                "type": "tcp",
                "tcp": {"host": "nginx.demo.svc.cluster.local", "port": 80, "connectionTimeout": "3s"}
            }
        ],
        "teardownPolicy": {
            "triggers": [{"type": "timeout", "timeout": "4h"}]
        },
        "tenancy": {"tenantId": "team-alpha"},
        "observability": {"metrics": {"enabled": true, "interval": "15s"}},
        "namespace": "demo"
    })
}

/// One health check of each kind in turn, every one with its durations.
fn health_check(i: usize) -> Value {
    let kind = ["http", "tcp", "udp", "grpc", "prometheus", "kubernetes"][i % 6];
    let name = format!("{kind}-{i}");
    let host = format!("svc-{i}.prod.svc.cluster.local");
    let mut check = json!({
        "name": name,
        "type": kind,
        "interval": "30s",
        "timeout": "10s",
        "failureThreshold": 3,
        "weight": 1 + (i % 5),
    });
    let block = match kind {
        "http" => json!({
            "url": format!("https://{host}/healthz"),
            "method": "GET",
            "expectedCodes": [200, 204],
            "expectedBody": "ok",
            "headers": {"Accept": "application/json"}
        }),
        "tcp" => json!({
            "host": host, "port": 5432, "connectionTimeout": "3s", "enablePooling": true
        }),
        "udp" => json!({
            "host": host, "port": 53, "sendData": "ping", "expectedResponse": "pong",
            "readTimeout": "2s", "retries": 3
        }),
        "grpc" => json!({
            "host": host, "port": 9090, "service": "grpc.health.v1.Health",
            "tls": {"enabled": true, "serverName": "api.internal"},
            "connectionPool": {"enabled": true, "maxConnections": 10, "maxIdleTime": "5m",
                               "keepAliveTime": "30s", "keepAliveTimeout": "5s",
                               "healthCheckInterval": "1m"},
            "retryPolicy": {"enabled": true, "maxAttempts": 3, "initialDelay": "100ms",
                            "maxDelay": "2s", "multiplier": "2"},
            "circuitBreaker": {"enabled": true, "failureThreshold": 5, "successThreshold": 2,
                               "halfOpenTimeout": "30s", "recoveryTimeout": "1m"}
        }),
        "prometheus" => json!({
            "query": format!("sum(rate(http_requests_total{{job=\"svc-{i}\",code=~\"5..\"}}[5m]))"),
            "threshold": "0.05",
            "operator": "lt",
            "endpoint": "http://prometheus.monitoring.svc:9090",
            "queryTimeout": "10s",
            "cacheTTL": "30s",
            "trendAnalysis": {"enabled": true, "timeWindow": "15m"}
        }),
        _ => json!({
            "checkPods": true, "checkDeployments": true, "checkServices": true,
            "requiredReadyRatio": 0.8, "apiTimeout": "5s", "enableCaching": true,
            "cacheTTL": "30s"
        }),
    };
    check[kind] = block;
    check
}

/// A large spec: 20 health checks of every kind, 6 teardown triggers, full
/// tenancy and observability. It validates clean.
fn large_spec_json() -> Value {
    let mut spec = typical_spec_json();
    spec["chart"]["upgradePolicy"] = json!({"timeout": "10m", "atomic": true});
    spec["chart"]["hooks"] = json!({"preInstall": true, "timeout": "5m"});
    spec["chart"]["values"]["configMapRefs"] =
        json!([{"name": "nginx-values", "key": "values.yaml"}]);
    spec["healthChecks"] = (0..20).map(health_check).collect();
    spec["teardownPolicy"] = json!({
        "triggers": [
            {"type": "timeout", "timeout": "72h"},
            {"type": "failure_count", "failureCount": 10},
            {"type": "resource_threshold", "resourceThreshold": {
                "memory": "80%", "cpu": "90%", "storage": "50Gi",
                "custom": {"nvidia.com/gpu": "2"}
            }},
            {"type": "schedule", "schedule": "0 2 * * 1-5"},
            {"type": "webhook", "webhook": {
                "url": "https://hooks.example.com/teardown", "method": "POST",
                "headers": {"X-Team": "alpha"}
            }},
            {"type": "schedule", "schedule": "30 18 * * 5"}
        ],
        "requireManualApproval": false,
        "cleanup": {"gracePeriod": "30s", "force": false, "order": ["deployments", "services"]}
    });
    spec["tenancy"] = json!({
        "tenantId": "team-alpha",
        "namespaceIsolation": {"enabled": true, "prefix": "alpha-", "labels": {"team": "alpha"}},
        "rbac": {"enabled": true, "tenantId": "team-alpha", "identityProvider": "oidc",
                 "policyTemplates": ["developer"]},
        "resourceQuota": {"enabled": true, "hard": {"requests.cpu": "8", "requests.memory": "16Gi"}}
    });
    spec["observability"] = json!({
        "metrics": {"enabled": true, "interval": "15s"},
        "tracing": {"enabled": true, "samplingRate": "0.1",
                    "endpoint": {"url": "http://otel-collector.observability:4317"}},
        "logging": {"level": "info", "structured": true}
    });
    spec
}

/// The typical spec with three findings: a plain-http repository and a version
/// range (warnings) and no teardown policy (info).
fn three_findings_spec_json() -> Value {
    let mut spec = typical_spec_json();
    spec["chart"]["repository"]["url"] = json!("http://charts.example.com/stable");
    spec["chart"]["version"] = json!("^15.4");
    spec.as_object_mut()
        .expect("spec is an object")
        .remove("teardownPolicy");
    spec
}

/// A whole ManagedRoost object around `spec`, as the mutating webhook sees it.
fn object(spec: Value) -> Value {
    json!({
        "apiVersion": "roost.birb.party/v1alpha1",
        "kind": "ManagedRoost",
        "metadata": {"name": "web", "namespace": "demo"},
        "spec": spec
    })
}

/// The spec as validation sees it: defaulted, like the admission path does.
fn defaulted_spec(spec: Value) -> Value {
    apply_defaults(&object(spec)).object["spec"].clone()
}

fn decode(spec: &Value) -> ManagedRoostSpec {
    serde_json::from_value(spec.clone()).expect("bench spec decodes")
}

// ---------------------------------------------------------------------------
// Heap bytes per cached verdict
// ---------------------------------------------------------------------------

/// Distinct verdicts inserted to measure the per-entry cost (the default capacity).
const MEMORY_ENTRIES: usize = 10_000;

/// Heap figures for one kind of verdict, per entry.
struct EntryCost {
    /// Bytes the `Arc<ValidationResult>` alone holds.
    result_bytes: f64,
    /// Blocks it holds.
    result_allocs: f64,
    /// Bytes the same verdict holds inside a `ValidationCache`: the result
    /// plus moka's per-entry cost (key, entry metadata, deques, hash table).
    cached_bytes: f64,
    /// Blocks it holds there.
    cached_allocs: f64,
    /// Entries the cache held when measured.
    held: u64,
}

/// Heap held per verdict for `spec`, each verdict produced by a real
/// validation (so vectors keep the capacity validation gave them).
fn entry_cost(spec: &ManagedRoostSpec) -> EntryCost {
    // Keys are computed before counting: the Vec of keys is not part of the cost.
    let keys: Vec<CacheKey> = (0..MEMORY_ENTRIES)
        .map(|i| {
            CacheKey::new(
                *RULES,
                ApiVersion::V1alpha1,
                Some(&json!({ "entry": i })),
                None,
                None,
            )
        })
        .collect();

    // The verdicts alone, held in a Vec allocated before counting.
    let mut results: Vec<Arc<ValidationResult>> = Vec::with_capacity(MEMORY_ENTRIES);
    let (alone, ()) = heap_delta(|| {
        for _ in 0..MEMORY_ENTRIES {
            results.push(Arc::new(validate(spec)));
        }
    });
    drop(results);

    // The same verdicts in a cache (created, like the server's, before any request).
    let cache = ValidationCache::default();
    let (cached, held) = heap_delta(|| {
        for key in &keys {
            cache.get_or_validate(*key, || validate(spec));
        }
        // Runs moka's pending maintenance, so queued writes are applied and counted.
        cache.len()
    });
    let per = |total: isize, n: f64| total as f64 / n;
    let n = MEMORY_ENTRIES as f64;
    let held_n = held.max(1) as f64;
    EntryCost {
        result_bytes: per(alone.bytes, n),
        result_allocs: per(alone.allocs, n),
        cached_bytes: per(cached.bytes, held_n),
        cached_allocs: per(cached.allocs, held_n),
        held,
    }
}

/// Warms up lazily allocated state (rule registry, moka's and the allocator's
/// thread-locals) so one-off allocations are not charged to the entries.
fn warm_up_memory(spec: &ManagedRoostSpec) {
    let cache = ValidationCache::new(64 * 1024, Duration::from_secs(60));
    for i in 0..128 {
        cache.get_or_validate(
            CacheKey::new(*RULES, ApiVersion::V1alpha1, Some(&json!(i)), None, None),
            || validate(spec),
        );
    }
    cache.len();
}

fn print_memory_figures() {
    let cases = [
        ("typical", defaulted_spec(typical_spec_json())),
        ("large", defaulted_spec(large_spec_json())),
        ("3 findings", defaulted_spec(three_findings_spec_json())),
    ];
    let specs: Vec<(&str, ManagedRoostSpec)> = cases
        .iter()
        .map(|(name, json)| (*name, decode(json)))
        .collect();
    warm_up_memory(&specs[0].1);
    println!(
        "Heap held per cached verdict ({MEMORY_ENTRIES} distinct entries, counting allocator; \
         bytes requested, malloc headers not included):"
    );
    println!(
        "  {:<11} {:>8} {:>20} {:>22} {:>8}",
        "object", "findings", "Arc<result> alone", "in ValidationCache", "held"
    );
    for (name, spec) in &specs {
        let findings = validate(spec).all().count();
        let cost = entry_cost(spec);
        println!(
            "  {:<11} {:>8} {:>6.0} B {:>4.1} allocs {:>8.0} B {:>4.1} allocs {:>8}",
            name,
            findings,
            cost.result_bytes,
            cost.result_allocs,
            cost.cached_bytes,
            cost.cached_allocs,
            cost.held
        );
    }
    println!();
}

// ---------------------------------------------------------------------------
// Timed benchmarks
// ---------------------------------------------------------------------------

fn bench_validate(c: &mut Criterion) {
    let typical_json = defaulted_spec(typical_spec_json());
    let large_json = defaulted_spec(large_spec_json());
    let typical = decode(&typical_json);
    let large = decode(&large_json);
    assert!(validate(&typical).valid, "typical spec must be valid");
    assert!(validate(&large).valid, "large spec must be valid");

    let mut group = c.benchmark_group("validate");
    group.bench_function("typical_uncached", |b| {
        b.iter(|| validate(black_box(&typical)))
    });
    group.bench_function("typical_from_json", |b| {
        b.iter(|| validate_spec_value(Some(black_box(&typical_json)), None))
    });
    group.bench_function("large_uncached", |b| b.iter(|| validate(black_box(&large))));
    group.bench_function("large_from_json", |b| {
        b.iter(|| validate_spec_value(Some(black_box(&large_json)), None))
    });
    // 100k '[' in values.inline: refused at the flow nesting bound, so the
    // cost stays linear (it took 19 s when the whole text was parsed first).
    let mut deep_inline = typical_json.clone();
    deep_inline["chart"]["values"] = json!({"inline": format!("k: {}", "[".repeat(100_000))});
    group.bench_function("deep_inline_values", |b| {
        b.iter(|| validate_spec_value(Some(black_box(&deep_inline)), None))
    });
    group.finish();
}

/// The YAML reader (`yaml::Documents`, as `validate` reads files): the 17
/// sample files of tests/samples/ (49 manifests) as one 91 KB stream, and that stream
/// repeated to about 1.5 MiB (etcd's object limit).
fn bench_yaml(c: &mut Criterion) {
    let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/samples");
    let mut paths: Vec<_> = std::fs::read_dir(&samples)
        .expect("tests/samples")
        .map(|entry| entry.expect("an entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    let stream = paths
        .iter()
        .map(|path| std::fs::read_to_string(path).expect("a sample"))
        .collect::<Vec<_>>()
        .join("\n---\n");
    let large = vec![stream.as_str(); (3 << 19) / stream.len()].join("\n---\n");
    let read_all = |text: &str| {
        roost_keeper::yaml::Documents::new(text)
            .inspect(|document| assert!(document.is_ok(), "valid YAML: {document:?}"))
            .count()
    };
    assert_eq!(read_all(&stream), 49, "the samples hold 49 manifests");

    let mut group = c.benchmark_group("yaml");
    for (name, text) in [("samples_stream", &stream), ("large_stream", &large)] {
        group.throughput(criterion::Throughput::Bytes(text.len() as u64));
        group.bench_function(name, |b| b.iter(|| read_all(black_box(text))));
    }
    group.finish();
}

fn bench_cache(c: &mut Criterion) {
    let typical_json = defaulted_spec(typical_spec_json());
    let typical = decode(&typical_json);
    let cache = ValidationCache::default();
    let key = CacheKey::new(
        *RULES,
        ApiVersion::V1alpha1,
        Some(&typical_json),
        None,
        None,
    );
    cache.get_or_validate(key, || validate(&typical));

    let mut group = c.benchmark_group("cache");
    group.bench_function("hit", |b| {
        b.iter(|| cache.get_or_validate(black_box(key), ValidationResult::default))
    });
    group.bench_function("key_typical", |b| {
        b.iter(|| {
            CacheKey::new(
                *RULES,
                ApiVersion::V1alpha1,
                Some(black_box(&typical_json)),
                None,
                None,
            )
        })
    });
    group.finish();
    assert_eq!(cache.misses(), 1, "cache/hit must only ever hit");
}

fn bench_defaults(c: &mut Criterion) {
    let typical_object = object(typical_spec_json());
    let mut group = c.benchmark_group("defaults");
    group.bench_function("typical", |b| {
        b.iter(|| apply_defaults(black_box(&typical_object)))
    });
    group.finish();
}

/// A policy of 10 rules of the kinds admins write: presence, string
/// tests, sizes, a loop over the health checks, a regex.
/// An AdmissionReview CREATE of the typical object as the apiserver sends it.
fn review_body() -> Vec<u8> {
    let mut object = object(typical_spec_json());
    object["metadata"]["uid"] = json!("6f1c2d4e-8a7b-4c3d-9e2f-1a2b3c4d5e6f");
    object["metadata"]["labels"] = json!({"app.kubernetes.io/name": "web"});
    object["metadata"]["managedFields"] = json!([{
        "manager": "kubectl", "operation": "Apply", "apiVersion": "roost.birb.party/v1alpha1",
        "time": "2025-06-01T12:00:00Z", "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:labels": {"f:app.kubernetes.io/name": {}}},
                     "f:spec": {"f:chart": {"f:name": {}, "f:repository": {"f:url": {}}, "f:version": {}},
                                "f:healthChecks": {}, "f:tenancy": {"f:tenantId": {}}}}
    }]);
    let gvk = json!({"group": "roost.birb.party", "version": "v1alpha1", "kind": "ManagedRoost"});
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0b9a8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d",
            "kind": gvk, "requestKind": gvk,
            "resource": {"group": "roost.birb.party", "version": "v1alpha1", "resource": "managedroosts"},
            "name": "web", "namespace": "demo", "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:ci:deployer",
                         "groups": ["system:serviceaccounts", "system:authenticated"]},
            "object": object, "oldObject": null, "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions", "fieldManager": "kubectl"}
        }
    }))
    .unwrap()
}

fn bench_review(c: &mut Criterion) {
    use roost_keeper::admission::{Admission, Webhook};
    let admission = Admission::new(
        ValidationCache::default(),
        roost_keeper::metrics::Metrics::new(),
    );
    let body = review_body();
    for webhook in [Webhook::Validate, Webhook::Mutate] {
        let reply = admission.review(webhook, &body);
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(admission.review_decoded(webhook, &body), reply);
    }
    let mut group = c.benchmark_group("review");
    group.bench_function("validate_hit", |b| {
        b.iter(|| admission.review(Webhook::Validate, black_box(&body)))
    });
    group.bench_function("validate_hit_decoded", |b| {
        b.iter(|| admission.review_decoded(Webhook::Validate, black_box(&body)))
    });
    group.bench_function("mutate_hit", |b| {
        b.iter(|| admission.review(Webhook::Mutate, black_box(&body)))
    });
    group.finish();
}

fn ten_rule_policy() -> roost_keeper::policy::RoostPolicy {
    let expressions = [
        "has(object.spec.teardownPolicy)",
        "object.spec.chart.name.size() <= 53",
        "object.spec.chart.version.matches('^[0-9]+[.][0-9]+[.][0-9]+$')",
        "object.spec.chart.repository.url.startsWith('https://')",
        "object.spec.healthChecks.all(h, h.name.size() < 40)",
        "size(object.spec.healthChecks) <= 10",
        "!has(object.metadata.labels) || !('forbidden' in object.metadata.labels)",
        "object.metadata.name.lowerAscii() == object.metadata.name",
        "oldObject == null || oldObject.spec.chart.name == object.spec.chart.name",
        "object.spec.healthChecks.exists(h, h.type == 'http' || h.type == 'kubernetes')",
    ];
    let rules: Vec<Value> = expressions
        .iter()
        .enumerate()
        .map(|(i, e)| json!({"code": format!("BENCH_RULE_{i}"), "level": "error", "expression": e, "message": "m"}))
        .collect();
    let mut policy = roost_keeper::policy::RoostPolicy::new(
        "bench",
        serde_json::from_value(json!({"rules": rules})).unwrap(),
    );
    policy.metadata.generation = Some(1);
    policy
}

fn bench_policies(c: &mut Criterion) {
    use roost_keeper::policy::{Known, Labels, PolicySet, compile};
    let taken = std::collections::BTreeMap::new();
    let known = Known { taken: &taken };
    let compiled = compile(&ten_rule_policy(), &known).expect("the bench policy compiles");
    let set = PolicySet::new(vec![Arc::new(compiled)]);
    let typical_object = apply_defaults(&object(typical_spec_json())).object;
    let none = Labels::new();
    let matched = set.matching(&none, &none);
    let now = k8s_openapi::jiff::Timestamp::now();
    let (result, evaluations) = matched.apply(
        &validate_spec_value(typical_object.get("spec"), None),
        &typical_object,
        None,
        now,
    );
    assert!(
        result.valid,
        "the typical object passes the bench policy: {result:?}"
    );
    assert_eq!(evaluations.passed, 10);

    let mut group = c.benchmark_group("policies");
    group.bench_function("builtin_only", |b| {
        b.iter(|| validate_spec_value(black_box(&typical_object).get("spec"), None))
    });
    group.bench_function("ten_custom_rules", |b| {
        b.iter(|| {
            let builtin = validate_spec_value(black_box(&typical_object).get("spec"), None);
            matched.apply(&builtin, &typical_object, None, now)
        })
    });
    // Ten failing rules: enforced, audited, and exempted by an exception.
    let failing = |mode: &str| {
        let rules: Vec<Value> = (0..10)
            .map(|i| {
                json!({"code": format!("BENCH_FAIL_{i}"), "level": "error",
                            "expression": "object.metadata.name == 'nobody'", "message": "m"})
            })
            .collect();
        let policy = roost_keeper::policy::RoostPolicy::new(
            "failing",
            serde_json::from_value(json!({"rules": rules, "mode": mode})).unwrap(),
        );
        PolicySet::new(vec![Arc::new(compile(&policy, &known).expect("compiles"))])
    };
    let exception: roost_keeper::api::roost_policy_exception::RoostPolicyException =
        serde_json::from_value(json!({
            "apiVersion": "roost.birb.party/v1alpha1", "kind": "RoostPolicyException",
            "metadata": {"name": "ex", "namespace": "default"},
            "spec": {"codes": (0..10).map(|i| format!("BENCH_FAIL_{i}")).collect::<Vec<_>>(),
                     "selector": {}, "justification": "bench"}
        }))
        .unwrap();
    let exception = Arc::new(roost_keeper::policy::exception::compile(&exception).unwrap());
    let enforce = failing("Enforce");
    let audit = failing("Audit");
    let cases = [
        (
            "ten_failing_rules_enforce",
            enforce.matching(&none, &none),
            10,
            0,
            0,
        ),
        (
            "ten_failing_rules_audit",
            audit.matching(&none, &none),
            0,
            10,
            0,
        ),
        (
            "ten_failing_rules_exempted",
            enforce
                .matching(&none, &none)
                .with_exceptions(vec![exception]),
            0,
            0,
            10,
        ),
    ];
    let builtin = validate_spec_value(typical_object.get("spec"), None);
    for (name, matched, errors, audited, exempted) in cases {
        let (result, _) = matched.apply(&builtin, &typical_object, None, now);
        assert_eq!(
            (
                result.errors.len(),
                result.audited.len(),
                result.exempted.len()
            ),
            (errors, audited, exempted),
            "{name}"
        );
        group.bench_function(name, |b| {
            b.iter(|| matched.apply(black_box(&builtin), &typical_object, None, now))
        });
    }
    group.finish();
}

/// Issue 21's policies: (name, rules of one policy, the object judged).
fn policy_attacks() -> Vec<(String, Vec<Value>, Value)> {
    let rule = |code: &str, expression: &str| json!({"code": code, "level": "error", "expression": expression, "message": "m"});
    let inline = |lines: usize| {
        let text: Vec<String> = (0..lines).map(|i| format!("key{i}: value")).collect();
        json!({"metadata": {"name": "web"}, "spec": {"chart": {"values": {"inline": text.join("\n")}}}})
    };
    let inline_of = "object.spec.chart.values.inline";
    let duplicates =
        format!("{inline_of}.split('\\n').all(a, {inline_of}.split('\\n').exists_one(b, b == a))");
    let a = "a".repeat(100);
    // Read from the object: the same without it is refused when compiled.
    let replaces = |n: usize| {
        format!(
            "size((object.metadata.name + '{a}'){}) > 0",
            format!(".replace('', '{}')", "b".repeat(100)).repeat(n)
        )
    };
    let made = format!("(object.metadata.name + '{a}').replace('', '{a}').split('')");
    let unnamed = json!({"metadata": {"name": ""}});
    let checks: Vec<Value> = (0..100)
        .map(|i| json!({"name": format!("check-{i}"), "type": "http"}))
        .collect();
    let pairwise = "object.spec.healthChecks.all(a, object.spec.healthChecks.all(b, a == b || a.name != b.name))";
    let mut attacks = Vec::new();
    for lines in [1_000, 3_000, 10_000] {
        attacks.push((
            format!("duplicate_lines_{lines}"),
            vec![rule("NO_DUPLICATES", &duplicates)],
            inline(lines),
        ));
    }
    for n in [3, 4] {
        attacks.push((
            format!("replace_chain_{n}"),
            vec![rule("REPLACES", &replaces(n))],
            unnamed.clone(),
        ));
    }
    attacks.push((
        "loop_over_made_strings".to_owned(),
        vec![rule(
            "MADE",
            &format!("{made}.all(x, {made}.all(y, x == y || true))"),
        )],
        unnamed,
    ));
    attacks.push((
        "hundred_pairwise_rules".to_owned(),
        (0..100)
            .map(|i| rule(&format!("PAIRWISE_{i}"), pairwise))
            .collect(),
        json!({"metadata": {"name": "web"}, "spec": {"healthChecks": checks}}),
    ));
    attacks
}

fn bench_policy_attacks(c: &mut Criterion) {
    use roost_keeper::policy::{Known, Labels, PolicySet, RoostPolicy, compile};
    let taken = std::collections::BTreeMap::new();
    let known = Known { taken: &taken };
    let none = Labels::new();
    let empty = ValidationResult::from_findings(Vec::new());
    let mut group = c.benchmark_group("policy_attacks");
    group.sample_size(10);
    for (name, rules, object) in policy_attacks() {
        let policy = RoostPolicy::new(
            "attack",
            serde_json::from_value(json!({"rules": rules})).unwrap(),
        );
        let set = PolicySet::new(vec![Arc::new(
            compile(&policy, &known).expect("the attack compiles"),
        )]);
        let matched = set.matching(&none, &none);
        let started = std::time::Instant::now();
        let before = NET_BYTES.load(Ordering::Relaxed);
        PEAK_BYTES.store(before, Ordering::Relaxed);
        COUNTING.store(true, Ordering::Relaxed);
        let (result, evaluations) =
            matched.apply(&empty, &object, None, k8s_openapi::jiff::Timestamp::now());
        COUNTING.store(false, Ordering::Relaxed);
        let peak = PEAK_BYTES.load(Ordering::Relaxed) - before;
        println!(
            "policy_attacks/{name}: {:.3} s, peak heap +{:.1} MiB, {evaluations:?}, first error: {}",
            started.elapsed().as_secs_f64(),
            peak as f64 / (1024.0 * 1024.0),
            result.errors.first().map_or("none", |f| f.message.as_str())
        );
        group.bench_function(&name, |b| {
            b.iter(|| {
                matched.apply(
                    &empty,
                    black_box(&object),
                    None,
                    k8s_openapi::jiff::Timestamp::now(),
                )
            })
        });
    }
    group.finish();
}

/// Whole-object conversion (the `/convert` webhook's work per object), both
/// directions, on a typical and a large roost with integer quantities.
fn bench_conversion(c: &mut Criterion) {
    use roost_keeper::api::ApiVersion;
    use roost_keeper::api::convert::convert;
    let mut group = c.benchmark_group("conversion");
    let mut typical = object(defaulted_spec(typical_spec_json()));
    typical["spec"]["tenancy"]["resourceQuota"] = json!({"enabled": true, "hard": {"pods": 10}});
    let large = object(large_spec_json());
    for (name, alpha) in [("typical", typical), ("large", large)] {
        let beta = convert(&alpha, ApiVersion::V1beta1).unwrap();
        group.bench_function(format!("{name}_to_v1beta1"), |b| {
            b.iter(|| convert(black_box(&alpha), ApiVersion::V1beta1))
        });
        group.bench_function(format!("{name}_to_v1alpha1"), |b| {
            b.iter(|| convert(black_box(&beta), ApiVersion::V1alpha1))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    targets = bench_validate, bench_yaml, bench_cache, bench_defaults, bench_review, bench_policies, bench_policy_attacks,
        bench_conversion
}

fn main() {
    // `--list` must print benchmark names only.
    if !std::env::args().any(|arg| arg == "--list") {
        print_memory_figures();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
