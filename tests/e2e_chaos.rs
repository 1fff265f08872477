//! Chaos end to end on the real control plane, each fault under a stream of
//! writes (`kubectl apply` creating and upgrading ManagedRoosts, and a
//! deployer moving their phase through the status subresource):
//!
//! 1. etcd killed with SIGKILL and restarted: applies fail during the
//!    outage, succeed again afterwards, nothing acknowledged is lost, the
//!    controller catches up and records nothing twice, roost-keeper keeps running.
//! 2. kube-apiserver restarted: the same, and changes made after the restart
//!    reach the status (the controller's watch resumed).
//! 3. the `roost-keeper serve` process (both webhooks, `failurePolicy: Fail`)
//!    killed with SIGKILL: applies fail naming the webhook, and succeed again
//!    within 15 s of a restart on the same port and certificates.
//! 4. a webhook slower than its `timeoutSeconds` (a test proxy holds the
//!    answer): the apply fails with the apiserver's timeout message after
//!    about `timeoutSeconds`, and the apiserver's metrics count it.
//!
//! One test with four phases on one control plane: every fault is
//! cluster-wide (etcd, the apiserver, the cluster-scoped webhook
//! configurations), so the phases could not run side by side anyway, and one
//! plane keeps the file's run time down. Timings are printed (`--nocapture`).

mod common;

use common::cluster::{Env, ok, text};
use roost_keeper::admission::registration::{FailurePolicy, Target, WebhookConfigOptions};
use roost_testcluster::{ServeCommand, ServeProcess, metric_sum, output_with_stdin, scrape};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CHART_V1: &str = "1.0.0";
const CHART_V2: &str = "2.0.0";
const MUTATING_WEBHOOK: &str = "default.managedroost.roost.birb.party";
/// How long the stream's kubectl waits for an answer (its `--request-timeout`,
/// also sent to the apiserver as the request's timeout). Without it, a write
/// during an etcd outage waits until etcd is back.
const STREAM_REQUEST_TIMEOUT: &str = "4s";
/// How long etcd stays dead before it is started again (past the stream's timeout).
const ETCD_DOWN: Duration = Duration::from_secs(8);
/// Bound on applies working again after the webhook process restarts.
const WEBHOOK_RECOVERY: Duration = Duration::from_secs(15);
/// `timeoutSeconds` of the webhooks behind the slow proxy.
const SLOW_WEBHOOK_TIMEOUT_SECONDS: i32 = 1;
/// How long the slow proxy holds the webhook's answer (far past the timeout).
const SLOW_WEBHOOK_HOLD: Duration = Duration::from_secs(10);

#[test]
fn writes_survive_etcd_and_apiserver_restarts_a_killed_webhook_and_a_slow_one() {
    let env = Env::start(FailurePolicy::Fail, FailurePolicy::Fail);
    let mut converged = vec![etcd_killed_and_restarted(&env)];
    converged.push(apiserver_restarted(&env));
    let (webhook, objects) = webhook_process_killed_under_load(&env);
    converged.push(objects);
    slow_webhook_times_out(&env, &webhook);
    assert_untouched_since_converged(&env, &converged);
    assert_metrics_count_each_record_once(&env);
}

// ---------------------------------------------------------------------------
// Phases
// ---------------------------------------------------------------------------

fn etcd_killed_and_restarted(env: &Env) -> Converged {
    let ns = env.namespace("chaos-etcd");
    let stream = WriteStream::start(env, &ns);
    stream.wait_for_success(
        "a full cycle before the fault",
        Write::MarkReady,
        Instant::now(),
    );
    let killed = Instant::now();
    env.plane
        .lock()
        .unwrap()
        .restart_etcd(ETCD_DOWN)
        .expect("etcd restarts");
    let etcd_healthy = Instant::now();
    let recovered =
        stream.wait_for_success("an apply after etcd is back", Write::Create, etcd_healthy);
    stream.wait_for_success(
        "a phase change after etcd is back",
        Write::MarkReady,
        recovered,
    );
    let ops = stream.finish();

    let failed = failed_applies(&ops, killed);
    assert!(
        !failed.is_empty(),
        "applies made while etcd was down failed: {}",
        describe(&ops)
    );
    print_errors("etcd down", &failed);
    eprintln!(
        "chaos etcd: down {:?} (SIGKILL to healthy), first apply after the kill failed {:?} in, \
         an apply succeeded {:?} after etcd was healthy ({:?} after the kill)",
        etcd_healthy - killed,
        failed[0].started - killed,
        recovered - etcd_healthy,
        recovered - killed
    );
    let converged = assert_converged_without_duplicates(env, &ns, &ops);
    assert_server_running(env);
    converged
}

fn apiserver_restarted(env: &Env) -> Converged {
    let ns = env.namespace("chaos-apiserver");
    let stream = WriteStream::start(env, &ns);
    stream.wait_for_success(
        "a full cycle before the fault",
        Write::MarkReady,
        Instant::now(),
    );
    let stopping = Instant::now();
    env.plane
        .lock()
        .unwrap()
        .restart_apiserver()
        .expect("the apiserver restarts");
    let ready = Instant::now();
    let recovered = stream.wait_for_success("an apply after the restart", Write::Create, ready);
    // The deployer's phase change after the restart reaches the status only through a resumed watch.
    stream.wait_for_success(
        "a phase change after the restart",
        Write::MarkReady,
        recovered,
    );
    let ops = stream.finish();

    let failed = failed_applies(&ops, stopping);
    assert!(
        !failed.is_empty(),
        "applies made while the apiserver was down failed: {}",
        describe(&ops)
    );
    print_errors("apiserver down", &failed);
    eprintln!(
        "chaos apiserver: restart took {:?} (SIGTERM to ready), an apply succeeded {:?} after ready",
        ready - stopping,
        recovered - ready
    );
    let converged = assert_converged_without_duplicates(env, &ns, &ops);
    assert_server_running(env);
    converged
}

fn webhook_process_killed_under_load(env: &Env) -> (ServeProcess, Converged) {
    let mut webhook = start_webhook_process();
    register_webhooks(
        env,
        &format!("https://127.0.0.1:{}", webhook.webhook.port()),
        &webhook.ca_pem(),
        None,
    );
    wait_until_served_by(env, &webhook);
    let ns = env.namespace("chaos-webhook");
    let stream = WriteStream::start(env, &ns);
    stream.wait_for_success("an apply before the kill", Write::Upgrade, Instant::now());

    webhook.kill();
    let killed = Instant::now();
    let refused = stream.wait_for_failure("an apply fails while the webhook is gone", killed);
    webhook.restart().expect("serve starts again");
    let restarted = Instant::now();
    let recovered = stream.wait_for_success(
        "an apply after the webhook restarts",
        Write::Create,
        restarted,
    );
    let ops = stream.finish();

    print_errors("webhook killed", &failed_applies(&ops, killed));
    let message = refused.error.as_deref().unwrap_or_default();
    assert!(
        message.contains(&format!("failed calling webhook \"{MUTATING_WEBHOOK}\"")),
        "names the webhook it failed calling: {message}"
    );
    assert!(message.contains("connection refused"), "{message}");
    eprintln!(
        "chaos webhook: first refusal {:?} after SIGKILL; an apply succeeded {:?} after the process was started again",
        refused.finished - killed,
        recovered - restarted
    );
    assert!(
        recovered - restarted < WEBHOOK_RECOVERY,
        "applies work again {:?} after the restart",
        recovered - restarted
    );
    let converged = assert_converged_without_duplicates(env, &ns, &ops);
    (webhook, converged)
}

fn slow_webhook_times_out(env: &Env, webhook: &ServeProcess) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let proxy_port = start_slow_proxy(&runtime, webhook.webhook.port());
    register_webhooks(
        env,
        &format!("https://127.0.0.1:{proxy_port}"),
        &webhook.ca_pem(),
        Some(SLOW_WEBHOOK_TIMEOUT_SECONDS),
    );
    let ns = env.namespace("chaos-slow");
    let manifest = manifest(&ns, "slow", CHART_V1);
    // The apiserver picks the new configuration up asynchronously: until then the apply goes straight through.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = env.kubectl_stdin(&["apply", "--dry-run=server", "-f", "-"], &manifest);
        if !out.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the proxy never sat in front of the webhooks"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let apiserver_before = env.kubectl(&["get", "--raw", "/metrics"]);
    ok(&apiserver_before);
    let answered_before = admission_requests(webhook, "mutate");
    let started = Instant::now();
    let out = env.kubectl_stdin(&["apply", "-f", "-"], &manifest);
    let took = started.elapsed();
    let apiserver_after = env.kubectl(&["get", "--raw", "/metrics"]);
    ok(&apiserver_after);

    let message = text(&out.stderr);
    eprintln!(
        "chaos slow webhook: apply failed after {took:?}: {}",
        message.trim()
    );
    assert!(
        !out.status.success(),
        "an answer past timeoutSeconds fails the apply (Fail)"
    );
    assert!(
        message.contains(&format!("failed calling webhook \"{MUTATING_WEBHOOK}\"")),
        "{message}"
    );
    assert!(message.contains("context deadline exceeded"), "{message}");
    assert!(
        took < SLOW_WEBHOOK_HOLD / 2,
        "the apiserver gave up after timeoutSeconds, not when the answer came ({took:?})"
    );
    let rejections = |metrics: &Output| {
        metric_sum(
            &text(&metrics.stdout),
            "apiserver_admission_webhook_rejection_count",
            &[
                &format!("name=\"{MUTATING_WEBHOOK}\""),
                "error_type=\"calling_webhook_error\"",
            ],
        )
    };
    let failed_calls = |metrics: &Output| {
        metric_sum(
            &text(&metrics.stdout),
            "apiserver_admission_webhook_request_total",
            &[
                &format!("name=\"{MUTATING_WEBHOOK}\""),
                "code=\"503\"",
                "rejected=\"true\"",
            ],
        )
    };
    eprintln!(
        "chaos slow webhook: apiserver rejection_count{{error_type=\"calling_webhook_error\"}} {} -> {}, \
         request_total{{code=\"503\",rejected=\"true\"}} {} -> {}",
        rejections(&apiserver_before),
        rejections(&apiserver_after),
        failed_calls(&apiserver_before),
        failed_calls(&apiserver_after)
    );
    assert_eq!(
        rejections(&apiserver_after) - rejections(&apiserver_before),
        1.0,
        "the apiserver counts the timeout as a calling_webhook_error rejection"
    );
    assert_eq!(
        failed_calls(&apiserver_after) - failed_calls(&apiserver_before),
        1.0,
        "and as a webhook request answered 503"
    );
    // roost-keeper did answer (the proxy dropped it): its own metrics cannot see the timeout.
    let answered_after = admission_requests(webhook, "mutate");
    eprintln!(
        "chaos slow webhook: roost-keeper mutate reviews answered {answered_before} -> {answered_after}"
    );
    assert_eq!(
        answered_after - answered_before,
        1.0,
        "roost-keeper answered the review the apiserver gave up on"
    );
}

// ---------------------------------------------------------------------------
// The write stream
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Write {
    /// `kubectl apply` of a new object at CHART_V1.
    Create,
    /// `kubectl apply` of the previous object at CHART_V2.
    Upgrade,
    /// A deployer's status patch Pending -> Ready of the object before that
    /// (a JSON patch that tests for Pending, so it applies only after the
    /// controller recorded the object).
    MarkReady,
}

#[derive(Clone, Debug)]
struct Op {
    write: Write,
    object: String,
    started: Instant,
    finished: Instant,
    /// kubectl's standard error when it failed.
    error: Option<String>,
}

/// Writes in a loop on a thread: iteration `i` creates `roost-i`, upgrades
/// `roost-(i-1)` and marks `roost-(i-2)` Ready.
struct WriteStream {
    stop: Arc<AtomicBool>,
    ops: Arc<Mutex<Vec<Op>>>,
    handle: std::thread::JoinHandle<()>,
}

fn object_name(i: usize) -> String {
    format!("roost-{i}")
}

fn manifest(ns: &str, name: &str, version: &str) -> String {
    json!({
        "apiVersion": "roost.birb.party/v1alpha1",
        "kind": "ManagedRoost",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "chart": {"name": "nginx", "version": version, "repository": {"url": "https://charts.example.org/stable"}},
            "teardownPolicy": {"triggers": [{"type": "timeout", "timeout": "24h"}]}
        }
    })
    .to_string()
}

impl WriteStream {
    fn start(env: &Env, ns: &str) -> WriteStream {
        let (kubectl, kubeconfig) = {
            let plane = env.plane.lock().unwrap();
            (plane.bin.join("kubectl"), plane.kubeconfig.clone())
        };
        let stop = Arc::new(AtomicBool::new(false));
        let ops: Arc<Mutex<Vec<Op>>> = Arc::default();
        let (stopping, recorded, ns) = (Arc::clone(&stop), Arc::clone(&ops), ns.to_owned());
        let handle = std::thread::spawn(move || {
            let run = |write: Write, object: String| {
                let mut command = Command::new(&kubectl);
                command
                    .arg("--kubeconfig")
                    .arg(&kubeconfig)
                    .arg(format!("--request-timeout={STREAM_REQUEST_TIMEOUT}"));
                let started = Instant::now();
                let out = match write {
                    Write::Create | Write::Upgrade => {
                        let version = if write == Write::Create { CHART_V1 } else { CHART_V2 };
                        command.args(["apply", "-f", "-"]);
                        output_with_stdin(&mut command, manifest(&ns, &object, version).as_bytes())
                    }
                    Write::MarkReady => command
                        .args(["patch", "roost", &object, "-n", &ns])
                        .args(["--subresource=status", "--type=json", "--field-manager=deployer"])
                        .arg("-p")
                        .arg(r#"[{"op":"test","path":"/status/phase","value":"Pending"},{"op":"replace","path":"/status/phase","value":"Ready"}]"#)
                        .output(),
                }
                .unwrap();
                let error = (!out.status.success()).then(|| text(&out.stderr).trim().to_owned());
                recorded.lock().unwrap().push(Op {
                    write,
                    object,
                    started,
                    finished: Instant::now(),
                    error,
                });
            };
            let mut i = 0;
            while !stopping.load(Ordering::SeqCst) {
                run(Write::Create, object_name(i));
                if i >= 1 {
                    run(Write::Upgrade, object_name(i - 1));
                }
                if i >= 2 {
                    run(Write::MarkReady, object_name(i - 2));
                }
                i += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        WriteStream { stop, ops, handle }
    }

    /// Polls the writes so far until `found` returns something (60 s at most).
    fn wait<T>(&self, what: &str, found: impl Fn(&[Op]) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(hit) = found(&self.ops.lock().unwrap()) {
                return hit;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within 60 s; writes: {}",
                describe(&self.ops.lock().unwrap())
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// When the first successful `write` started at or after `since` finished.
    fn wait_for_success(&self, what: &str, write: Write, since: Instant) -> Instant {
        self.wait(what, |ops| {
            ops.iter()
                .find(|o| o.write == write && o.started >= since && o.error.is_none())
                .map(|o| o.finished)
        })
    }

    /// The first apply started at or after `since` that failed.
    fn wait_for_failure(&self, what: &str, since: Instant) -> Op {
        self.wait(what, |ops| failed_applies(ops, since).first().cloned())
    }

    fn finish(self) -> Vec<Op> {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().unwrap();
        Arc::try_unwrap(self.ops).unwrap().into_inner().unwrap()
    }
}

/// Applies (create or upgrade) started at or after `since` that failed.
fn failed_applies(ops: &[Op], since: Instant) -> Vec<Op> {
    ops.iter()
        .filter(|o| o.write != Write::MarkReady && o.started >= since && o.error.is_some())
        .cloned()
        .collect()
}

/// Counts and the distinct failure messages, for assertion messages.
fn describe(ops: &[Op]) -> String {
    let ok = ops.iter().filter(|o| o.error.is_none()).count();
    let errors: BTreeSet<&str> = ops.iter().filter_map(|o| o.error.as_deref()).collect();
    format!("{ok} succeeded, {} failed: {errors:#?}", ops.len() - ok)
}

/// Prints each distinct kubectl message once (object names replaced), with how often it came.
fn print_errors(fault: &str, failed: &[Op]) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for op in failed {
        let message = op
            .error
            .as_deref()
            .unwrap_or_default()
            .replace(&op.object, "<name>");
        *seen.entry(message).or_default() += 1;
    }
    for (message, times) in seen {
        eprintln!("chaos {fault}: kubectl printed ({times}x): {message}");
    }
}

// ---------------------------------------------------------------------------
// What the objects must look like afterwards
// ---------------------------------------------------------------------------

fn lifecycle_count(object: &Value, kind: &str) -> i64 {
    object["status"]["lifecycle"]["eventCounts"][kind]
        .as_i64()
        .unwrap_or(0)
}

/// The controller has seen the object's current spec and status.
fn caught_up(object: &Value) -> bool {
    let generation = &object["metadata"]["generation"];
    let status = &object["status"];
    let validated = status["conditions"].as_array().is_some_and(|conditions| {
        conditions.iter().any(|c| {
            c["type"] == "Validated"
                && c["status"] == "True"
                && &c["observedGeneration"] == generation
        })
    });
    validated
        && &status["observedGeneration"] == generation
        && status["lifecycle"]["observedChartVersion"] == object["spec"]["chart"]["version"]
        && status["lifecycle"]["currentPhase"] == status["phase"]
}

/// Waits until the controller caught up with every object in `ns`, then
/// checks that every acknowledged write is there and every lifecycle record
/// was made exactly as often as it should be.
fn assert_converged_without_duplicates(env: &Env, ns: &str, ops: &[Op]) -> Converged {
    let deadline = Instant::now() + Duration::from_secs(60);
    let objects: BTreeMap<String, Value> = loop {
        let out = env.kubectl(&["get", "roost", "-n", ns, "-o", "json"]);
        ok(&out);
        let list: Value = serde_json::from_slice(&out.stdout).unwrap();
        let items = list["items"].as_array().cloned().unwrap_or_default();
        let behind: Vec<&Value> = items.iter().filter(|o| !caught_up(o)).collect();
        if behind.is_empty() {
            break items
                .into_iter()
                .map(|o| (o["metadata"]["name"].as_str().unwrap().to_owned(), o))
                .collect();
        }
        assert!(
            Instant::now() < deadline,
            "the controller never caught up with {} objects, e.g. {}",
            behind.len(),
            behind[0]
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let acknowledged: Vec<&Op> = ops.iter().filter(|o| o.error.is_none()).collect();
    let lost: BTreeSet<&str> = acknowledged
        .iter()
        .filter(|o| !objects.contains_key(&o.object))
        .map(|o| o.object.as_str())
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged writes to objects that are gone: {lost:?}"
    );
    for op in acknowledged {
        let (name, object) = (&op.object, &objects[&op.object]);
        match op.write {
            Write::Create => {}
            Write::Upgrade => assert_eq!(
                object["spec"]["chart"]["version"], CHART_V2,
                "{name}'s upgrade was lost"
            ),
            Write::MarkReady => assert_eq!(
                object["status"]["phase"], "Ready",
                "{name}'s phase change was lost"
            ),
        }
    }
    let mut records = 0;
    for (name, object) in &objects {
        assert_eq!(
            lifecycle_count(object, "Created"),
            1,
            "{name}: one creation record: {object}"
        );
        let ready = i64::from(object["status"]["phase"] == "Ready");
        assert_eq!(
            lifecycle_count(object, "Ready"),
            ready,
            "{name}: Ready recorded once if Ready: {object}"
        );
        assert!(
            lifecycle_count(object, "Upgrading") <= 1,
            "{name}: one upgrade at most: {object}"
        );
        let events = object["status"]["lifecycle"]["events"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut by_type: BTreeMap<String, i64> = BTreeMap::new();
        for event in &events {
            *by_type
                .entry(event["type"].as_str().unwrap_or_default().to_owned())
                .or_default() += 1;
        }
        let counts: BTreeMap<String, i64> =
            serde_json::from_value(object["status"]["lifecycle"]["eventCounts"].clone())
                .unwrap_or_default();
        assert_eq!(
            by_type, counts,
            "{name}: records and counts agree: {object}"
        );
        records += events.len();
    }
    let events = env.kubectl(&["get", "events.events.k8s.io", "-n", ns, "-o", "json"]);
    ok(&events);
    let events: Value = serde_json::from_slice(&events.stdout).unwrap();
    let mut created_events: BTreeMap<String, i64> = BTreeMap::new();
    for event in events["items"].as_array().into_iter().flatten() {
        if event["reason"] == "Created" {
            let occurrences = event["series"]["count"].as_i64().unwrap_or(1);
            *created_events
                .entry(
                    event["regarding"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
                .or_default() += occurrences;
        }
    }
    let twice: BTreeMap<&String, &i64> = created_events.iter().filter(|(_, n)| **n > 1).collect();
    let missing: Vec<&String> = objects
        .keys()
        .filter(|name| !created_events.contains_key(*name))
        .collect();
    eprintln!(
        "chaos {ns}: Created Events: {} objects have one, {} more than one, {} none",
        created_events.len() - twice.len(),
        twice.len(),
        missing.len()
    );
    assert!(
        twice.is_empty(),
        "Created Events published more than once: {twice:?}"
    );
    eprintln!(
        "chaos {ns}: {} objects, {records} lifecycle records, {}",
        objects.len(),
        describe(ops)
    );
    Converged {
        ns: ns.to_owned(),
        objects,
    }
}

/// Objects of one phase as they were once the controller caught up.
struct Converged {
    ns: String,
    objects: BTreeMap<String, Value>,
}

/// Later faults (a relist after a restart, a stale cache) must not make the
/// controller rewrite the status of objects it had already caught up with.
fn assert_untouched_since_converged(env: &Env, phases: &[Converged]) {
    for Converged { ns, objects } in phases {
        let out = env.kubectl(&["get", "roost", "-n", ns, "-o", "json"]);
        ok(&out);
        let list: Value = serde_json::from_slice(&out.stdout).unwrap();
        for now in list["items"].as_array().into_iter().flatten() {
            let name = now["metadata"]["name"].as_str().unwrap_or_default();
            let then = &objects[name];
            assert_eq!(
                now["status"], then["status"],
                "{ns}/{name}: status rewritten after it had converged (resourceVersion {} -> {})",
                then["metadata"]["resourceVersion"], now["metadata"]["resourceVersion"]
            );
        }
    }
}

/// roost-keeper's `roost_keeper_api_lifecycle_events_by_type` equals the
/// records in the objects' status (none deleted, none trimmed in this test):
/// no record was counted twice, e.g. by a write repeated from a stale view.
fn assert_metrics_count_each_record_once(env: &Env) {
    let out = env.kubectl(&["get", "roost", "-A", "-o", "json"]);
    ok(&out);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut recorded: BTreeMap<String, i64> = BTreeMap::new();
    for object in list["items"].as_array().into_iter().flatten() {
        let counts: BTreeMap<String, i64> =
            serde_json::from_value(object["status"]["lifecycle"]["eventCounts"].clone())
                .unwrap_or_default();
        for (kind, n) in counts {
            *recorded.entry(kind).or_default() += n;
        }
    }
    let metrics = scrape(env.metrics);
    let prefix = "roost_keeper_api_lifecycle_events_by_type_total{type=\"";
    let counted: BTreeMap<String, i64> = metrics
        .lines()
        .filter_map(|line| {
            let (kind, value) = line.strip_prefix(prefix)?.split_once("\"} ")?;
            Some((kind.to_owned(), value.parse::<f64>().ok()? as i64))
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    eprintln!(
        "chaos: lifecycle records in status {recorded:?}, counted by roost-keeper {counted:?}"
    );
    assert_eq!(
        counted, recorded,
        "roost-keeper counts each lifecycle record once"
    );
}

fn assert_server_running(env: &Env) {
    assert!(env.server_running(), "roost-keeper's server task returned");
    assert_eq!(env.http_status("/healthz"), 200);
}

// ---------------------------------------------------------------------------
// Webhooks
// ---------------------------------------------------------------------------

/// Points both webhook configurations (`failurePolicy: Fail`) at `url`,
/// optionally with another `timeoutSeconds`.
fn register_webhooks(env: &Env, url: &str, ca_pem: &str, timeout_seconds: Option<i32>) {
    let (mut validating, mut mutating) =
        roost_keeper::admission::registration::build(&WebhookConfigOptions {
            target: Target::Url(url.to_owned()),
            ca_bundle: Some(ca_pem.as_bytes().to_vec()),
            namespace: "roost-system".into(),
            validate_failure_policy: FailurePolicy::Fail,
            mutate_failure_policy: FailurePolicy::Fail,
            selection: Default::default(),
        });
    if let Some(seconds) = timeout_seconds {
        for webhook in validating.webhooks.iter_mut().flatten() {
            webhook.timeout_seconds = Some(seconds);
        }
        for webhook in mutating.webhooks.iter_mut().flatten() {
            webhook.timeout_seconds = Some(seconds);
        }
    }
    let list = json!({"apiVersion": "v1", "kind": "List", "items": [validating, mutating]});
    ok(&env.kubectl_stdin(&["apply", "-f", "-"], &list.to_string()));
}

/// Waits until the apiserver sends reviews to `webhook` (it picks new configurations up asynchronously).
fn wait_until_served_by(env: &Env, webhook: &ServeProcess) {
    let probe = manifest("default", "probe", CHART_V1);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let before =
            admission_requests(webhook, "mutate") + admission_requests(webhook, "validate");
        env.kubectl_stdin(&["apply", "--dry-run=server", "-f", "-"], &probe);
        let after = admission_requests(webhook, "mutate") + admission_requests(webhook, "validate");
        if after >= before + 2.0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the apiserver never called the webhook process"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `roost-keeper serve` as a process (webhooks only; the controller runs in the Env).
fn start_webhook_process() -> ServeProcess {
    ServeCommand::new(env!("CARGO_BIN_EXE_roost-keeper"))
        .spawn()
        .expect("serve starts")
}

/// Reviews roost-keeper answered on `webhook` (validate or mutate), from its /metrics.
fn admission_requests(webhook: &ServeProcess, name: &str) -> f64 {
    metric_sum(
        &webhook.metrics_text(),
        "roost_keeper_admission_requests_total",
        &[&format!("webhook=\"{name}\"")],
    )
}

// ---------------------------------------------------------------------------
// The slow proxy
// ---------------------------------------------------------------------------

/// A TCP proxy to `upstream` that passes the TLS handshake through but
/// holds each chunk the server sends after the client's first
/// application-data record for SLOW_WEBHOOK_HOLD: the webhook answers, the apiserver does not
/// hear it in time. Returns its port.
fn start_slow_proxy(runtime: &tokio::runtime::Runtime, upstream: u16) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    runtime.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        while let Ok((inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(outbound) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    return;
                };
                relay_holding_answers(inbound, outbound).await;
            });
        }
    });
    port
}

async fn relay_holding_answers(inbound: tokio::net::TcpStream, outbound: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut client_read, mut client_write) = inbound.into_split();
    let (mut server_read, mut server_write) = outbound.into_split();
    let request_sent = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&request_sent);
    let to_server = tokio::spawn(async move {
        let mut records = TlsRecords::default();
        let mut buffer = vec![0; 16 * 1024];
        while let Ok(n) = client_read.read(&mut buffer).await {
            if n == 0 {
                break;
            }
            if records.feed(&buffer[..n]) {
                seen.store(true, Ordering::SeqCst);
            }
            if server_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
    });
    let mut buffer = vec![0; 16 * 1024];
    while let Ok(n) = server_read.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        // Every chunk, not just the first: a kept-alive (HTTP/2) connection carries later answers too.
        if request_sent.load(Ordering::SeqCst) {
            tokio::time::sleep(SLOW_WEBHOOK_HOLD).await;
        }
        if client_write.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    to_server.abort();
}

/// Follows TLS record framing (cleartext headers) of one direction.
#[derive(Default)]
struct TlsRecords {
    header: Vec<u8>,
    body_left: usize,
}

impl TlsRecords {
    /// Feeds bytes; true once an application-data record (type 23) began.
    /// Under TLS 1.3 the client's first such record is its Finished, after
    /// which the server sends nothing the client needs before the answer.
    fn feed(&mut self, mut bytes: &[u8]) -> bool {
        let mut application_data = false;
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let skip = self.body_left.min(bytes.len());
                self.body_left -= skip;
                bytes = &bytes[skip..];
                continue;
            }
            let take = (5 - self.header.len()).min(bytes.len());
            self.header.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.header.len() == 5 {
                application_data |= self.header[0] == 23;
                self.body_left = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                self.header.clear();
            }
        }
        application_data
    }
}
