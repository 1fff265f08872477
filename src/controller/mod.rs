//! The status controller: watches ManagedRoosts and keeps their status true
//! (conditions, phase, lifecycle history, teardown) with server-side apply
//! on the status subresource, and tells `kubectl describe` through Events.

pub mod leader;
pub mod lifecycle;
pub mod policy_status;
pub mod reports;
pub mod status;
pub mod stored;
pub mod teardown;

use crate::api::{ApiVersion, KIND, ManagedRoost, ManagedRoostStatus};
use crate::engine::Engine;
use crate::error::ErrorChain;
use crate::metrics::{CacheLabel, ErrorLabel, Metrics, OperationLabel, TypeLabel};
use crate::validation::ValidationResult;
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::{Controller, WatchStreamExt, reflector, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use status::{Note, Plan};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use stored::StoredRoost;
use tracing::Instrument;

/// Field manager of every status write.
pub const FIELD_MANAGER: &str = "roost-keeper";
/// How long the last status written is remembered per object.
pub const STATUS_CACHE_TTL: Duration = Duration::from_secs(30);

/// Errors of one reconcile; the controller retries with backoff.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("status write failed")]
    StatusWrite(#[source] kube::Error),
    #[error("object has no name or uid")]
    Unidentified,
    #[error(transparent)]
    Undecodable(#[from] stored::StatusUndecodable),
    #[error("judging the object failed")]
    Judging(#[source] tokio::task::JoinError),
}

impl ReconcileError {
    /// The metric label of each kind of failure (bounded: one per variant).
    pub fn label(&self) -> &'static str {
        match self {
            ReconcileError::StatusWrite(_) => "status_write",
            ReconcileError::Unidentified => "unidentified",
            ReconcileError::Undecodable(_) => "status_undecodable",
            ReconcileError::Judging(_) => "judging",
        }
    }
}

/// What `serve` needs to run the controller.
#[derive(Clone, Debug, Default)]
pub struct ControllerConfig {
    /// Watch one namespace instead of all.
    pub watch_namespace: Option<String>,
    /// Run the controller only while holding this Lease (one replica of
    /// many); `None` runs it unconditionally. An empty namespace means the
    /// client's default namespace (the pod's own in a cluster).
    pub leader_election: Option<crate::controller::leader::LeaseConfig>,
    /// Write a policy report per roost in this API (when the cluster serves
    /// it); `None`, no reports.
    pub reports: Option<crate::report::ReportApi>,
}

/// Shared by every reconcile.
pub struct Context {
    client: Client,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    /// uid -> hash of the status last written, so a lagging watch never causes a second write.
    written: moka::sync::Cache<String, u64>,
    /// The rules and the RoostPolicies in force.
    engine: Engine,
    /// The policy reports' writer, when reports are configured.
    reports: Option<Arc<reports::Reports>>,
}

impl Context {
    /// `instance` names this replica in the Events it publishes.
    fn new(
        client: Client,
        metrics: Arc<Metrics>,
        engine: Engine,
        instance: Option<String>,
    ) -> Self {
        let reporter = Reporter {
            controller: "roost-keeper".into(),
            instance,
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            written: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(STATUS_CACHE_TTL)
                .build(),
            engine,
            reports: None,
        }
    }

    async fn write_status(
        &self,
        roost: &ManagedRoost,
        status: &ManagedRoostStatus,
    ) -> Result<(), ReconcileError> {
        let (Some(name), Some(namespace)) = (
            roost.meta().name.as_deref(),
            roost.meta().namespace.as_deref(),
        ) else {
            return Err(ReconcileError::Unidentified);
        };
        // The storage version: the status is the same in both, and the
        // apiserver then converts nothing.
        let api: Api<StoredRoost> = Api::namespaced(self.client.clone(), namespace);
        let patch = serde_json::json!({
            "apiVersion": ApiVersion::STORAGE.api_version(), "kind": KIND, "status": status
        });
        let span = tracing::info_span!("api.status_update", namespace, name);
        let started = Instant::now();
        // Not forced: a field another component owns with another value is a conflict, retried later.
        let result = api
            .patch_status(
                name,
                &PatchParams::apply(FIELD_MANAGER),
                &Patch::Apply(&patch),
            )
            .instrument(span)
            .await;
        let elapsed = started.elapsed().as_secs_f64();
        self.metrics.status_update_duration.observe(elapsed);
        self.metrics
            .operation_duration
            .get_or_create(&OperationLabel {
                operation: "status_update",
            })
            .observe(elapsed);
        match result {
            Ok(_) => {
                self.metrics.status_updates.inc();
                Ok(())
            }
            Err(err) => {
                self.metrics.status_update_errors.inc();
                Err(ReconcileError::StatusWrite(err))
            }
        }
    }

    fn record_lifecycle(&self, kinds: &[String]) {
        for kind in kinds {
            self.metrics.lifecycle_events.inc();
            let kind = known_kind(kind);
            self.metrics
                .lifecycle_events_by_type
                .get_or_create(&TypeLabel { r#type: kind })
                .inc();
        }
    }

    /// Publishes `notes` as Events about the object `metadata` describes.
    async fn publish(&self, metadata: &ObjectMeta, notes: &[Note]) {
        let reference = StoredRoost::reference(metadata);
        for note in notes {
            let event = Event {
                type_: if note.warning {
                    EventType::Warning
                } else {
                    EventType::Normal
                },
                reason: note.reason.to_owned(),
                note: Some(note.message.clone()),
                action: "Reconcile".to_owned(),
                secondary: None,
            };
            let mut pause = PUBLISH_FIRST_PAUSE;
            for attempt in 1..=PUBLISH_ATTEMPTS {
                match self.recorder.publish(&event, &reference).await {
                    Ok(()) => break,
                    Err(err) if attempt < PUBLISH_ATTEMPTS && is_transient(&err) => {
                        tracing::debug!(error = %err, reason = note.reason, attempt, "cannot publish event yet; retrying");
                        tokio::time::sleep(pause).await;
                        pause *= 2;
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, reason = note.reason, "cannot publish event");
                        break;
                    }
                }
            }
        }
    }
}

/// Attempts to publish one Event: its status write has already succeeded,
/// so no later reconcile would plan the note again. With the pauses doubling
/// from [`PUBLISH_FIRST_PAUSE`], they span about 16 s: an apiserver or etcd
/// restart, not a long outage.
const PUBLISH_ATTEMPTS: u32 = 7;
const PUBLISH_FIRST_PAUSE: Duration = Duration::from_millis(250);

/// Whether a failed request may succeed if sent again: the apiserver could
/// not be reached, was overloaded (429) or failed (5xx). A refusal (4xx) is final.
fn is_transient(err: &kube::Error) -> bool {
    match err {
        kube::Error::Api(status) => status.code == 429 || status.code >= 500,
        _ => true,
    }
}

/// Lifecycle types as bounded label values.
fn known_kind(kind: &str) -> &'static str {
    use lifecycle::kind::*;
    [
        CREATED,
        INSTALLING,
        READY,
        UPGRADING,
        HEALTHY,
        UNHEALTHY,
        FAILED,
        TEARDOWN_TRIGGERED,
        "Deleted",
    ]
    .into_iter()
    .find(|k| *k == kind)
    .unwrap_or("Other")
}

/// Types of lifecycle records `plan` added (count differences).
fn new_records(before: Option<&ManagedRoostStatus>, after: &ManagedRoostStatus) -> Vec<String> {
    let counts = |s: Option<&ManagedRoostStatus>| {
        s.and_then(|s| s.lifecycle.as_ref())
            .and_then(|l| l.event_counts.clone())
            .unwrap_or_default()
    };
    let (old, new) = (counts(before), counts(Some(after)));
    new.iter()
        .flat_map(|(kind, n)| {
            std::iter::repeat_n(
                kind.clone(),
                usize::try_from(n - old.get(kind).copied().unwrap_or(0)).unwrap_or(0),
            )
        })
        .collect()
}

fn status_hash(status: &ManagedRoostStatus) -> u64 {
    let mut without_time = status.clone();
    without_time.last_update_time = None;
    xxhash_rust::xxh3::xxh3_64(&serde_json::to_vec(&without_time).unwrap_or_default())
}

/// Whether this object asked for debug logs of its handling.
fn wants_debug(roost: &ManagedRoost) -> bool {
    roost
        .spec
        .observability
        .as_ref()
        .and_then(|o| o.logging.as_ref())
        .and_then(|l| l.level.as_deref())
        == Some("debug")
}

async fn reconcile(stored: Arc<StoredRoost>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    let now = Timestamp::now();
    let judge = {
        let ctx = Arc::clone(&ctx);
        move || stored.decode(&ctx.engine, now)
    };
    // Custom rules may take up to the review's CEL budget: off the async workers.
    let decoded = if ctx.engine.policies.has_rules() {
        tokio::task::spawn_blocking(judge)
            .await
            .map_err(ReconcileError::Judging)?
    } else {
        judge()
    };
    let stored::Decoded {
        roost,
        result,
        evaluations,
        policy_time,
        rules,
        next_expiry,
    } = decoded?;
    if evaluations != Default::default() {
        ctx.metrics.observe_policies(evaluations, policy_time);
    }
    if wants_debug(&roost) {
        // The object asked for debug logs of its handling (spec.observability.logging.level).
        let _counted = crate::telemetry::DebugObject::begin();
        let span = tracing::info_span!(crate::telemetry::DEBUG_SPAN, name = %roost.name_any());
        reconcile_object(&roost, &result, &rules, next_expiry, &ctx, started, now)
            .instrument(span)
            .await
    } else {
        reconcile_object(&roost, &result, &rules, next_expiry, &ctx, started, now).await
    }
}

/// How long a failed report write waits for its retry (unless a change comes first).
const REPORT_RETRY: Duration = Duration::from_secs(30);

/// The earliest of the times given, if any.
fn earliest(times: impl IntoIterator<Item = Option<Timestamp>>) -> Option<Timestamp> {
    times.into_iter().flatten().min()
}

/// Exemptions in `after` that `before` did not list.
fn new_exemptions(before: Option<&ManagedRoostStatus>, after: &ManagedRoostStatus) -> u64 {
    let old = before.map(|s| s.exemptions.as_slice()).unwrap_or_default();
    let fresh = after
        .exemptions
        .iter()
        .filter(|e| {
            !old.iter()
                .any(|o| o.code == e.code && o.field == e.field && o.exception == e.exception)
        })
        .count();
    u64::try_from(fresh).unwrap_or(u64::MAX)
}

/// `next_expiry` is when an exception selecting the roost expires: its
/// verdict changes then, so the roost is reconciled again at that time.
async fn reconcile_object(
    roost: &ManagedRoost,
    result: &ValidationResult,
    rules: &[(String, String)],
    next_expiry: Option<Timestamp>,
    ctx: &Context,
    started: Instant,
    now: Timestamp,
) -> Result<Action, ReconcileError> {
    let uid = roost.uid().ok_or(ReconcileError::Unidentified)?;
    let Plan {
        status,
        notes,
        next_check,
    } = status::plan(roost, result, rules, now);
    tracing::debug!(
        valid = result.valid,
        errors = result.errors.len(),
        warnings = result.warnings.len(),
        change = status.is_some(),
        ?next_check,
        "planned"
    );
    if let Some(status) = status {
        let hash = status_hash(&status);
        let label = CacheLabel { cache: "status" };
        if ctx.written.get(&uid) == Some(hash) {
            // We wrote exactly this already; the watch has not caught up.
            ctx.metrics.cache_hits.get_or_create(&label).inc();
        } else {
            ctx.metrics.cache_misses.get_or_create(&label).inc();
            ctx.write_status(roost, &status).await?;
            ctx.written.insert(uid.clone(), hash);
            ctx.metrics
                .cache_size
                .get_or_create(&label)
                .set(i64::try_from(ctx.written.entry_count()).unwrap_or(i64::MAX));
            ctx.record_lifecycle(&new_records(roost.status.as_ref(), &status));
            ctx.metrics
                .findings_exempted
                .inc_by(new_exemptions(roost.status.as_ref(), &status));
            ctx.publish(&roost.metadata, &notes).await;
            tracing::debug!(phase = ?status.phase, ?notes, elapsed_ms = started.elapsed().as_secs_f64() * 1e3, "status written");
        }
    } else {
        tracing::debug!(
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "status unchanged"
        );
    }
    let mut retry_report = None;
    if let Some(reports) = &ctx.reports {
        let (name, namespace) = (roost.name_any(), roost.namespace().unwrap_or_default());
        let subject = reports::subject(&name, &namespace, &uid);
        // A failure is logged and counted; the status is written either way.
        if reports
            .write(&subject, result, rules, &ctx.engine.registry)
            .await
            == reports::Outcome::Failed
        {
            retry_report = Some(Timestamp::now() + REPORT_RETRY);
        }
    }
    Ok(match earliest([next_check, next_expiry, retry_report]) {
        Some(at) => {
            let wait = (at.as_nanosecond() - Timestamp::now().as_nanosecond()).max(0);
            Action::requeue(
                Duration::from_nanos(u64::try_from(wait).unwrap_or(0)) + Duration::from_millis(5),
            )
        }
        None => Action::await_change(),
    })
}

fn error_policy(roost: Arc<StoredRoost>, error: &ReconcileError, ctx: Arc<Context>) -> Action {
    ctx.metrics
        .reconcile_errors
        .get_or_create(&ErrorLabel {
            error: error.label(),
        })
        .inc();
    let (name, namespace) = (roost.name_any(), roost.namespace().unwrap_or_default());
    if let ReconcileError::Undecodable(_) = error {
        // Retrying cannot help until the object changes.
        tracing::warn!(%name, %namespace, error = %ErrorChain(error), "cannot reconcile until the status is fixed");
        return Action::await_change();
    }
    tracing::warn!(%name, %namespace, error = %ErrorChain(error), "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(2))
}

/// Records a deletion: an Event, metrics, caches cleared. No finalizer, so a
/// stopped controller never blocks deletion.
async fn on_deleted(ctx: &Context, roost: &StoredRoost) {
    if let Some(uid) = roost.uid() {
        ctx.written.invalidate(&uid);
        if let Some(reports) = &ctx.reports {
            reports.forget(&uid);
        }
    }
    ctx.record_lifecycle(&["Deleted".to_owned()]);
    ctx.publish(
        &roost.metadata,
        &[Note {
            warning: false,
            reason: "Deleted",
            message: "ManagedRoost deleted".into(),
        }],
    )
    .await;
}

/// Runs the controller until `shutdown`; `synced` turns true after the first full list.
pub async fn run(
    client: Client,
    config: ControllerConfig,
    metrics: Arc<Metrics>,
    engine: Engine,
    synced: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let api: Api<StoredRoost> = match &config.watch_namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let instance = config.leader_election.as_ref().map(|l| l.identity.clone());
    let policies = Arc::clone(&engine.policies);
    let reports = match config.reports {
        Some(api) => {
            let reports = Arc::new(reports::Reports::new(
                client.clone(),
                api,
                Arc::clone(&metrics),
            ));
            reports.discover().await;
            Some(reports)
        }
        None => {
            tracing::info!("policy reports off (--reports off)");
            metrics.reports_enabled.set(0);
            None
        }
    };
    let mut context = Context::new(client.clone(), metrics, engine.clone(), instance);
    context.reports = reports.clone();
    let ctx = Arc::new(context);
    let rediscovery = reports
        .as_ref()
        .map(|r| tokio::spawn(Arc::clone(r).keep_discovering()));
    // Reports turning on (their CRD installed) writes every roost's report.
    let reports_on = match &reports {
        Some(reports) => futures::stream::unfold(reports.subscribe(), |mut on| async {
            on.changed().await.ok()?;
            Some(((), on))
        })
        .boxed(),
        None => futures::stream::pending().boxed(),
    };
    let (reader, writer) = reflector::store::<StoredRoost>();
    let policy_status = tokio::spawn(policy_status::keep_current(client, engine, reader.clone()));
    // A change of the policies (or of a namespace's labels) re-judges every roost.
    let policy_changes = futures::stream::unfold(policies.subscribe(), |mut changes| async {
        changes.changed().await.ok()?;
        Some(((), changes))
    });
    let deletions = Arc::clone(&ctx);
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(StoredRoost::trim)
        .reflect(writer)
        .then(move |event| {
            let ctx = Arc::clone(&deletions);
            let synced = Arc::clone(&synced);
            async move {
                match &event {
                    Ok(watcher::Event::Delete(roost)) => on_deleted(&ctx, roost).await,
                    Ok(watcher::Event::InitDone) if !synced.swap(true, Ordering::SeqCst) => {
                        tracing::info!("controller: first list complete");
                    }
                    _ => {}
                }
                event
            }
        })
        .applied_objects();
    Controller::for_stream(stream, reader)
        .reconcile_all_on(futures::stream::select(policy_changes, reports_on))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|_| std::future::ready(()))
        .await;
    policy_status.abort();
    if let Some(rediscovery) = rediscovery {
        rediscovery.abort();
    }
    if let Some(reports) = &reports {
        reports.stop();
    }
}

/// Runs the controller: always, or, with leader election, only while
/// holding the lease.
pub async fn run_with_election(
    client: Client,
    config: ControllerConfig,
    metrics: Arc<Metrics>,
    engine: Engine,
    synced: Arc<AtomicBool>,
    leading: Arc<AtomicBool>,
    stop: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let Some(lease) = config.leader_election.clone() else {
        metrics.leader.set(1);
        run(client, config, metrics, engine, synced, stop).await;
        return;
    };
    let lead = {
        let (client, metrics) = (client.clone(), Arc::clone(&metrics));
        move |leader_stop: leader::Stop| {
            metrics.leader.set(1);
            let run = run(
                client.clone(),
                config.clone(),
                Arc::clone(&metrics),
                engine.clone(),
                Arc::clone(&synced),
                leader_stop,
            );
            let metrics = Arc::clone(&metrics);
            async move {
                run.await;
                metrics.leader.set(0);
            }
        }
    };
    if let Err(err) = leader::run(client, lease, leading, stop, lead).await {
        tracing::error!(error = %err, "status controller not started");
    }
}

#[cfg(test)]
mod tests {
    //! The I/O edge of a reconcile, against a mocked apiserver (tower-test).
    use super::*;
    use http::{Request, Response};
    use kube::client::Body;

    fn roost() -> ManagedRoost {
        let spec = serde_json::from_value(serde_json::json!({
            "chart": {"name": "web", "version": "1.2.3", "repository": {"url": "https://x.io", "type": "http"}},
            "healthChecks": [{"name": "h", "type": "tcp", "tcp": {"host": "h", "port": 80}}],
            "teardownPolicy": {"triggers": [{"type": "timeout", "timeout": "1h"}]}
        }))
        .unwrap();
        let mut roost = ManagedRoost::new("web", spec);
        roost.metadata.namespace = Some("team-a".into());
        roost.metadata.uid = Some("uid-1".into());
        roost.metadata.generation = Some(1);
        roost.metadata.creation_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::now()),
        );
        roost
    }

    fn stored(roost: &ManagedRoost) -> Arc<StoredRoost> {
        Arc::new(StoredRoost::from_typed(roost).unwrap())
    }

    fn context() -> (
        Arc<Context>,
        tower_test::mock::Handle<Request<Body>, Response<Body>>,
    ) {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(service, "default");
        (
            Arc::new(Context::new(
                client,
                Metrics::new(),
                Engine::default(),
                None,
            )),
            handle,
        )
    }

    #[tokio::test]
    async fn failed_reconciles_are_counted_by_kind_and_retried() {
        let (ctx, _handle) = context();
        let object = stored(&roost());
        let unidentified = error_policy(
            Arc::clone(&object),
            &ReconcileError::Unidentified,
            Arc::clone(&ctx),
        );
        error_policy(
            Arc::clone(&object),
            &ReconcileError::Unidentified,
            Arc::clone(&ctx),
        );
        let mut wire = serde_json::to_value(roost()).unwrap();
        wire["status"] = serde_json::json!({"lifecycle": {"events": "not a list"}});
        let broken: StoredRoost = serde_json::from_value(wire).unwrap();
        let undecodable = broken
            .decode(&crate::engine::Engine::default(), Timestamp::UNIX_EPOCH)
            .err()
            .expect("the status does not decode");
        let await_change = error_policy(object, &undecodable.into(), Arc::clone(&ctx));
        assert_eq!(unidentified, Action::requeue(Duration::from_secs(2)));
        assert_eq!(await_change, Action::await_change());
        let exposition = ctx.metrics.encode();
        for line in [
            "roost_keeper_controller_reconcile_errors_total{error=\"unidentified\"} 2",
            "roost_keeper_controller_reconcile_errors_total{error=\"status_undecodable\"} 1",
        ] {
            assert!(exposition.contains(line), "{line} not in:\n{exposition}");
        }
    }

    #[tokio::test]
    async fn first_reconcile_applies_status_then_publishes_events_and_requeues_at_the_trigger() {
        let (ctx, mut handle) = context();
        let object = roost();
        let server = tokio::spawn(async move {
            let (request, respond) = handle.next_request().await.expect("a status write");
            assert_eq!(request.method(), http::Method::PATCH);
            let uri = request.uri().to_string();
            assert!(
                uri.starts_with(
                    "/apis/roost.birb.party/v1beta1/namespaces/team-a/managedroosts/web/status?"
                ),
                "{uri}"
            );
            assert!(uri.contains("fieldManager=roost-keeper"), "{uri}");
            assert!(!uri.contains("force=true"), "never forced: {uri}");
            assert_eq!(
                request.headers()["content-type"],
                "application/apply-patch+yaml"
            );
            let body = request.into_body().collect_bytes().await.unwrap();
            let patch: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(patch["status"]["phase"], "Pending");
            assert_eq!(patch["status"]["lifecycle"]["events"][0]["type"], "Created");
            assert!(
                patch["status"].get("health").is_none(),
                "only our fields are applied"
            );
            respond.send_response(
                Response::builder()
                    .body(Body::from(serde_json::to_vec(&roost()).unwrap()))
                    .unwrap(),
            );
            let mut reasons = Vec::new();
            while let Ok(Some((request, respond))) =
                tokio::time::timeout(Duration::from_secs(2), handle.next_request()).await
            {
                assert_eq!(request.method(), http::Method::POST);
                let body = request.into_body().collect_bytes().await.unwrap();
                let event: serde_json::Value = serde_json::from_slice(&body).unwrap();
                reasons.push(event["reason"].as_str().unwrap().to_owned());
                respond.send_response(Response::builder().body(Body::from(body.to_vec())).unwrap());
            }
            reasons
        });
        let action = reconcile(stored(&object), Arc::clone(&ctx)).await.unwrap();
        let reasons = server.await.unwrap();
        assert_eq!(reasons, ["Created"]);
        let requeue = format!("{action:?}");
        assert!(
            requeue.contains("requeue_after: Some(3599")
                || requeue.contains("requeue_after: Some(3600"),
            "{requeue}"
        );
        assert_eq!(ctx.metrics.status_updates.get(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_event_that_meets_an_unavailable_apiserver_is_published_once_it_answers() {
        let (ctx, mut handle) = context();
        let server = tokio::spawn(async move {
            let (_, respond) = handle.next_request().await.expect("a status write");
            respond.send_response(
                Response::builder()
                    .body(Body::from(serde_json::to_vec(&roost()).unwrap()))
                    .unwrap(),
            );
            let unavailable = serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "ServiceUnavailable", "code": 503, "message": "etcd is down"});
            let mut answered = Vec::new();
            for code in [503, 503, 201] {
                let (request, respond) =
                    tokio::time::timeout(Duration::from_secs(60), handle.next_request())
                        .await
                        .ok()
                        .flatten()
                        .expect("the Event is sent again");
                assert_eq!(request.method(), http::Method::POST);
                let body = request.into_body().collect_bytes().await.unwrap();
                let reply = if code == 201 {
                    body.to_vec()
                } else {
                    serde_json::to_vec(&unavailable).unwrap()
                };
                respond.send_response(
                    Response::builder()
                        .status(code)
                        .body(Body::from(reply))
                        .unwrap(),
                );
                answered.push(code);
            }
            let more = tokio::time::timeout(Duration::from_secs(60), handle.next_request()).await;
            (answered, more.is_err())
        });
        reconcile(stored(&roost()), Arc::clone(&ctx)).await.unwrap();
        let (answered, quiet) = server.await.unwrap();
        assert_eq!(answered, [503, 503, 201]);
        assert!(quiet, "nothing is sent once the Event is published");
    }

    /// Answers every request (the status write, then Events) with its own
    /// body, until none comes for a second.
    async fn answer_all(mut handle: tower_test::mock::Handle<Request<Body>, Response<Body>>) {
        let mut first = true;
        while let Ok(Some((request, respond))) =
            tokio::time::timeout(Duration::from_secs(1), handle.next_request()).await
        {
            let body = request.into_body().collect_bytes().await.unwrap();
            let reply = if first {
                serde_json::to_vec(&roost()).unwrap()
            } else {
                body.to_vec()
            };
            first = false;
            respond.send_response(Response::builder().body(Body::from(reply)).unwrap());
        }
    }

    #[tokio::test]
    async fn an_exception_that_expires_requeues_the_roost_at_its_expiry() {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let engine = Engine::default();
        let expires = Timestamp::now() + Duration::from_secs(600);
        let exception: crate::api::roost_policy_exception::RoostPolicyException =
            serde_json::from_value(serde_json::json!({
                "apiVersion": "roost.birb.party/v1alpha1", "kind": "RoostPolicyException",
                "metadata": {"name": "pinning-later", "namespace": "team-a"},
                "spec": {"codes": ["CHART_VERSION_UNPINNED"], "roosts": ["web"],
                         "justification": "until the release", "expiresAt": expires.to_string()}
            }))
            .unwrap();
        let compiled = crate::policy::exception::compile(&exception).unwrap();
        engine.policies.replace_exceptions(vec![Arc::new(compiled)]);
        let ctx = Arc::new(Context::new(
            Client::new(service, "default"),
            Metrics::new(),
            engine,
            None,
        ));
        let mut object = roost();
        object.spec.chart.as_mut().unwrap().version = Some("^1.2".into());
        let server = tokio::spawn(answer_all(handle));
        let action = reconcile(stored(&object), Arc::clone(&ctx)).await.unwrap();
        server.await.unwrap();
        // The teardown timeout is an hour away; the exception expires first.
        let requeue = format!("{action:?}");
        assert!(
            requeue.contains("requeue_after: Some(599")
                || requeue.contains("requeue_after: Some(600"),
            "{requeue}"
        );
        assert_eq!(
            ctx.metrics.findings_exempted.get(),
            1,
            "the exempted finding written into status is counted"
        );
    }

    #[test]
    fn only_unreachable_overloaded_or_failing_apiservers_are_retried() {
        let api = |code: u16| {
            kube::Error::Api(Box::new(kube::core::Status {
                code,
                ..kube::core::Status::default()
            }))
        };
        assert!(is_transient(&api(503)) && is_transient(&api(429)) && is_transient(&api(500)));
        assert!(!is_transient(&api(403)) && !is_transient(&api(422)));
    }

    #[tokio::test]
    async fn steady_state_makes_no_request() {
        let (ctx, mut handle) = context();
        let mut object = roost();
        let planned = status::plan(
            &object,
            &crate::validation::validate(&object.spec),
            &[],
            Timestamp::now(),
        )
        .status
        .unwrap();
        object.status = Some(planned);
        let watch = tokio::spawn(async move {
            tokio::time::timeout(Duration::from_millis(300), handle.next_request())
                .await
                .is_err()
        });
        reconcile(stored(&object), Arc::clone(&ctx)).await.unwrap();
        assert!(watch.await.unwrap(), "no request in steady state");
        assert_eq!(ctx.metrics.status_updates.get(), 0);
    }

    #[tokio::test]
    async fn a_conflict_is_an_error_that_is_retried() {
        let (ctx, mut handle) = context();
        let server = tokio::spawn(async move {
            let (_, respond) = handle.next_request().await.unwrap();
            let status = serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict", "code": 409, "message": "conflict"});
            respond.send_response(
                Response::builder()
                    .status(409)
                    .body(Body::from(serde_json::to_vec(&status).unwrap()))
                    .unwrap(),
            );
        });
        let err = reconcile(stored(&roost()), Arc::clone(&ctx))
            .await
            .unwrap_err();
        server.await.unwrap();
        assert!(matches!(err, ReconcileError::StatusWrite(_)), "{err}");
        assert_eq!(ctx.metrics.status_update_errors.get(), 1);
        let retry = format!("{:?}", error_policy(stored(&roost()), &err, ctx));
        assert!(retry.contains("requeue_after: Some(2s)"), "{retry}");
    }

    #[tokio::test]
    async fn an_undecodable_status_makes_no_request_and_waits_for_a_change() {
        let (ctx, mut handle) = context();
        let mut wire = serde_json::to_value(roost()).unwrap();
        wire["status"] = serde_json::json!({"lifecycle": {"events": "not a list"}});
        let object: Arc<StoredRoost> = Arc::new(serde_json::from_value(wire).unwrap());
        let watch = tokio::spawn(async move {
            tokio::time::timeout(Duration::from_millis(300), handle.next_request())
                .await
                .is_err()
        });
        let err = reconcile(Arc::clone(&object), Arc::clone(&ctx))
            .await
            .unwrap_err();
        assert!(matches!(err, ReconcileError::Undecodable(_)), "{err}");
        assert!(watch.await.unwrap(), "no request for an undecodable object");
        let action = format!("{:?}", error_policy(object, &err, ctx));
        assert!(action.contains("requeue_after: None"), "{action}");
    }
}
