//! Policy reports: the leader writes one OpenReports `Report` (or a
//! wgpolicyk8s.io `PolicyReport`) per ManagedRoost, built by
//! [`crate::report::report`], by server-side apply and only when its content
//! changed. The report is owned by its roost, so the garbage collector
//! deletes it with the roost. Whether the cluster serves the chosen API is
//! discovered at start and every [`RECHECK`]: without it reports are off
//! (one log line, `roost_keeper_reports_enabled` 0), and installing its CRD
//! later turns them on.

use super::FIELD_MANAGER;
use crate::api::ApiVersion;
use crate::error::ErrorChain;
use crate::metrics::{Metrics, ResultLabel};
use crate::report::{ReportApi, Subject};
use crate::validation::{Registry, ValidationResult};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Api, Client};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// How often the cluster is asked again whether it serves the report API.
pub const RECHECK: Duration = Duration::from_secs(60);

/// Longest wait for one discovery answer.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Most roosts whose last report is remembered.
const WRITTEN_CAPACITY: u64 = 100_000;

/// The report writer of one controller run (one leadership).
pub struct Reports {
    client: Client,
    api: ReportApi,
    resource: ApiResource,
    metrics: Arc<Metrics>,
    /// Whether the cluster served the API when last asked.
    enabled: AtomicBool,
    /// Whether discovery ran before (the first "off" is logged, not each recheck).
    asked: AtomicBool,
    /// Bumped each time reports turn on, so every roost is reconciled again.
    turned_on: watch::Sender<u64>,
    /// uid -> hash of the report last written.
    written: moka::sync::Cache<String, u64>,
}

/// What one reconcile did about its report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Reports are off.
    Off,
    /// The report was already written with this content.
    Unchanged,
    Written,
    /// The write failed (logged and counted); try again later.
    Failed,
}

impl Reports {
    pub fn new(client: Client, api: ReportApi, metrics: Arc<Metrics>) -> Self {
        let gvk = GroupVersionKind::gvk(api.group(), api.version(), api.kind());
        metrics.reports_enabled.set(0);
        Reports {
            client,
            api,
            resource: ApiResource::from_gvk_with_plural(&gvk, api.plural()),
            metrics,
            enabled: AtomicBool::new(false),
            asked: AtomicBool::new(false),
            turned_on: watch::Sender::new(0),
            written: moka::sync::Cache::builder()
                .max_capacity(WRITTEN_CAPACITY)
                .build(),
        }
    }

    /// Wakes each time reports turn on.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.turned_on.subscribe()
    }

    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::SeqCst)
    }

    /// Asks the cluster whether it serves the report API, and turns reports
    /// on or off accordingly (a log line on every change).
    pub async fn discover(&self) {
        // Bounded: the controller waits for the first answer before it starts.
        let served = tokio::time::timeout(DISCOVERY_TIMEOUT, served(&self.client, self.api))
            .await
            .unwrap_or_else(|_| Err(format!("discovery took over {DISCOVERY_TIMEOUT:?}")));
        let asked_before = self.asked.swap(true, Ordering::SeqCst);
        let was = self.enabled.swap(served.is_ok(), Ordering::SeqCst);
        self.metrics.reports_enabled.set(i64::from(served.is_ok()));
        match (&served, was) {
            (Ok(()), false) => {
                // Whatever was remembered may have been lost with the CRD.
                self.written.invalidate_all();
                tracing::info!(api = %self.api.api_version(), kind = self.api.kind(), "policy reports on");
                self.turned_on.send_modify(|n| *n += 1);
            }
            (Err(why), true) => {
                tracing::warn!(api = %self.api.api_version(), kind = self.api.kind(), why = %why, "policy reports off: the cluster no longer serves their API");
            }
            (Err(why), false) if !asked_before => {
                tracing::warn!(api = %self.api.api_version(), kind = self.api.kind(), why = %why, recheck_seconds = RECHECK.as_secs(), "policy reports off: the cluster does not serve their API (install its CRD; checked again periodically)");
            }
            _ => {}
        }
    }

    /// Discovers again every [`RECHECK`] until the task is dropped.
    pub async fn keep_discovering(self: Arc<Self>) {
        loop {
            tokio::time::sleep(RECHECK).await;
            self.discover().await;
        }
    }

    /// Writes the report on the roost `subject` when reports are on and its
    /// content differs from the last one written.
    pub async fn write(
        &self,
        subject: &Subject<'_>,
        result: &ValidationResult,
        rules: &[(String, String)],
        registry: &Registry,
    ) -> Outcome {
        if !self.enabled() {
            return Outcome::Off;
        }
        let report = crate::report::report(self.api, subject, result, rules, registry);
        let hash = xxhash_rust::xxh3::xxh3_64(&serde_json::to_vec(&report).unwrap_or_default());
        if self.written.get(subject.uid) == Some(hash) {
            return Outcome::Unchanged;
        }
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), subject.namespace, &self.resource);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        match api
            .patch(subject.uid, &params, &Patch::Apply(&report))
            .await
        {
            Ok(_) => {
                self.written.insert(subject.uid.to_owned(), hash);
                self.count("ok");
                Outcome::Written
            }
            Err(err) => {
                self.count("error");
                tracing::warn!(
                    namespace = subject.namespace,
                    name = subject.name,
                    kind = self.api.kind(),
                    error = %ErrorChain(&err),
                    "policy report not written; retrying later"
                );
                Outcome::Failed
            }
        }
    }

    /// This run of the controller ends (leadership lost, shutdown): reports
    /// are no longer written by this replica.
    pub fn stop(&self) {
        self.enabled.store(false, Ordering::SeqCst);
        self.metrics.reports_enabled.set(0);
    }

    /// Forgets a deleted roost (its report goes with it: garbage collection).
    pub fn forget(&self, uid: &str) {
        self.written.invalidate(uid);
    }

    fn count(&self, result: &'static str) {
        self.metrics
            .report_writes
            .get_or_create(&ResultLabel { result })
            .inc();
    }
}

/// Whether `api`'s kind is listed in its group version's discovery document.
async fn served(client: &Client, api: ReportApi) -> Result<(), String> {
    match client.list_api_group_resources(&api.api_version()).await {
        Ok(list)
            if list
                .resources
                .iter()
                .any(|r| r.name == api.plural() && r.kind == api.kind()) =>
        {
            Ok(())
        }
        Ok(_) => Err(format!("{} serves no {}", api.api_version(), api.kind())),
        Err(kube::Error::Api(status)) if status.code == 404 => {
            Err(format!("{} is not served", api.api_version()))
        }
        Err(err) => Err(format!("discovery failed: {}", ErrorChain(&err))),
    }
}

/// The report's subject: `roost` as the storage version names it.
pub fn subject<'a>(name: &'a str, namespace: &'a str, uid: &'a str) -> Subject<'a> {
    Subject {
        api_version: ApiVersion::STORAGE.api_version(),
        name,
        namespace,
        uid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Request, Response};
    use kube::client::Body;
    use serde_json::Value;

    fn verdict() -> ValidationResult {
        let mut result = ValidationResult {
            valid: true,
            ..ValidationResult::default()
        };
        result.warnings.push(crate::validation::Finding {
            code: "CHART_VERSION_UNPINNED".into(),
            level: crate::validation::Level::Warning,
            field: "spec.chart.version".into(),
            message: "pin it".into(),
        });
        result
    }

    /// Writes the same report twice and a changed one, answering with
    /// `codes` in turn; returns the requests' URIs and bodies.
    async fn writes(codes: &[u16]) -> (Vec<Outcome>, Vec<(String, Value)>, Arc<Metrics>) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let metrics = Metrics::new();
        let reports = Reports::new(
            Client::new(service, "default"),
            ReportApi::OpenReports,
            Arc::clone(&metrics),
        );
        reports.enabled.store(true, Ordering::SeqCst);
        let codes = codes.to_vec();
        let server = tokio::spawn(async move {
            let mut seen = Vec::new();
            for code in codes {
                let Ok(Some((request, respond))) =
                    tokio::time::timeout(Duration::from_secs(1), handle.next_request()).await
                else {
                    break;
                };
                let uri = request.uri().to_string();
                let body = request.into_body().collect_bytes().await.unwrap();
                let report: Value = serde_json::from_slice(&body).unwrap();
                seen.push((uri, report));
                let reply = if code == 200 {
                    body.to_vec()
                } else {
                    serde_json::to_vec(&serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "InternalError", "code": code, "message": "etcd is down"})).unwrap()
                };
                respond.send_response(
                    Response::builder()
                        .status(code)
                        .body(Body::from(reply))
                        .unwrap(),
                );
            }
            let quiet = tokio::time::timeout(Duration::from_millis(200), handle.next_request())
                .await
                .is_err();
            (seen, quiet)
        });
        let registry = Registry::builtin();
        let subject = subject("web", "team-a", "uid-1");
        let mut outcomes = Vec::new();
        let result = verdict();
        outcomes.push(reports.write(&subject, &result, &[], &registry).await);
        outcomes.push(reports.write(&subject, &result, &[], &registry).await);
        let mut fixed = verdict();
        fixed.warnings.clear();
        outcomes.push(reports.write(&subject, &fixed, &[], &registry).await);
        let (seen, quiet) = server.await.unwrap();
        assert!(quiet, "no request beyond those answered");
        (outcomes, seen, metrics)
    }

    #[tokio::test]
    async fn a_report_is_applied_once_per_content() {
        let (outcomes, seen, metrics) = writes(&[200, 200]).await;
        assert_eq!(
            outcomes,
            [Outcome::Written, Outcome::Unchanged, Outcome::Written]
        );
        assert_eq!(seen.len(), 2, "the same content is not written twice");
        let (uri, report) = &seen[0];
        assert!(
            uri.starts_with("/apis/openreports.io/v1alpha1/namespaces/team-a/reports/uid-1?"),
            "{uri}"
        );
        assert!(
            uri.contains("fieldManager=roost-keeper") && uri.contains("force=true"),
            "{uri}"
        );
        assert_eq!(report["kind"], "Report");
        assert_eq!(report["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        assert_eq!(report["summary"]["warn"], 1);
        assert_eq!(seen[1].1["summary"]["warn"], 0);
        let exposition = metrics.encode();
        assert!(
            exposition.contains("roost_keeper_report_writes_total{result=\"ok\"} 2"),
            "{exposition}"
        );
    }

    #[tokio::test]
    async fn a_failed_write_is_counted_and_tried_again() {
        let (outcomes, seen, metrics) = writes(&[500, 200, 200]).await;
        assert_eq!(
            outcomes,
            [Outcome::Failed, Outcome::Written, Outcome::Written],
            "a failure is not remembered as written"
        );
        assert_eq!(seen.len(), 3);
        let exposition = metrics.encode();
        assert!(
            exposition.contains("roost_keeper_report_writes_total{result=\"error\"} 1"),
            "{exposition}"
        );
    }

    #[tokio::test]
    async fn nothing_is_written_while_reports_are_off() {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let reports = Reports::new(
            Client::new(service, "default"),
            ReportApi::WgPolicy,
            Metrics::new(),
        );
        let outcome = reports
            .write(
                &subject("web", "team-a", "uid-1"),
                &verdict(),
                &[],
                &Registry::builtin(),
            )
            .await;
        assert_eq!(outcome, Outcome::Off);
        assert!(
            tokio::time::timeout(Duration::from_millis(100), handle.next_request())
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn discovery_turns_reports_on_when_the_kind_is_served_and_off_when_not() {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let metrics = Metrics::new();
        let reports = Reports::new(
            Client::new(service, "default"),
            ReportApi::OpenReports,
            Arc::clone(&metrics),
        );
        let on = reports.subscribe();
        let server = tokio::spawn(async move {
            let answers = [
                (
                    404,
                    serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}),
                ),
                (
                    200,
                    serde_json::json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "openreports.io/v1alpha1",
                    "resources": [{"name": "reports", "singularName": "report", "namespaced": true, "kind": "Report", "verbs": ["get", "patch"]}]}),
                ),
            ];
            for (code, body) in answers {
                let (request, respond) = handle.next_request().await.unwrap();
                assert_eq!(request.uri().path(), "/apis/openreports.io/v1alpha1");
                respond.send_response(
                    Response::builder()
                        .status(code)
                        .body(Body::from(serde_json::to_vec(&body).unwrap()))
                        .unwrap(),
                );
            }
        });
        reports.discover().await;
        assert!(!reports.enabled());
        assert!(metrics.encode().contains("roost_keeper_reports_enabled 0"));
        reports.discover().await;
        server.await.unwrap();
        assert!(reports.enabled());
        assert!(metrics.encode().contains("roost_keeper_reports_enabled 1"));
        assert!(on.has_changed().unwrap(), "every roost is reconciled again");
    }
}
