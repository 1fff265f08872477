//! Prometheus metrics. Labels are bounded: webhook, operation, allowed,
//! cache name, operation kind; never object names or uids.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdmissionLabels {
    pub webhook: &'static str,
    pub operation: &'static str,
    pub allowed: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabel {
    pub webhook: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabel {
    pub cache: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabel {
    pub operation: &'static str,
}

/// A kind of failure (bounded: one per error variant).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabel {
    pub error: &'static str,
}

/// Whether a policy compiled.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReadyLabel {
    pub ready: &'static str,
}

/// Outcome of one evaluation (pass, fail, error).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

/// A listener (`webhook`, `metrics`) and why one of its connections ended
/// (bounded: [`crate::server::listener::CloseReason::label`]).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectionLabels {
    pub listener: &'static str,
    pub reason: &'static str,
}

/// A webhook and where a review ran out of time (`queued`, `evaluating`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReviewTimeoutLabels {
    pub webhook: &'static str,
    pub stage: &'static str,
}

/// Which way a converted object went and whether its review succeeded.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConversionLabels {
    pub direction: &'static str,
    pub result: &'static str,
}

/// A lifecycle record type (bounded: the known record types).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabel {
    pub r#type: &'static str,
}

fn latency_histogram() -> Histogram {
    // 100µs .. ~6.6s: past the webhooks' 5 s timeout, so a slow p99 stays visible.
    Histogram::new(exponential_buckets(0.0001, 2.0, 17))
}

/// A lifecycle API route (a path template, not the path) and the answer's status code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LifecycleApiLabels {
    pub route: &'static str,
    pub code: u16,
}

/// Why something happened (a bounded list per metric).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

/// Every metric the process exports, registered in one registry.
pub struct Metrics {
    registry: Registry,
    pub validation_operations: Counter,
    pub validation_failures: Counter,
    pub validation_duration: Histogram,
    pub cache_hits: Family<CacheLabel, Counter>,
    pub cache_misses: Family<CacheLabel, Counter>,
    pub cache_size: Family<CacheLabel, Gauge>,
    pub admission_requests: Family<AdmissionLabels, Counter>,
    pub admission_duration: Family<WebhookLabel, Histogram>,
    pub operation_duration: Family<OperationLabel, Histogram>,
    /// Reviews refused for want of time: waiting for a turn, or evaluating past `--review-timeout`.
    pub review_timeouts: Family<ReviewTimeoutLabels, Counter>,
    /// Connections ended, by listener and reason (given no slot included).
    pub connections_closed: Family<ConnectionLabels, Counter>,
    /// Objects in the ConversionReviews answered, by direction and result.
    pub conversions: Family<ConversionLabels, Counter>,
    /// Time to answer one ConversionReview, body read included.
    pub conversion_duration: Histogram,
    pub status_updates: Counter,
    pub status_update_duration: Histogram,
    pub status_update_errors: Counter,
    /// Reconciles that failed, by [`crate::controller::ReconcileError::label`].
    pub reconcile_errors: Family<ErrorLabel, Counter>,
    pub lifecycle_events: Counter,
    pub lifecycle_events_by_type: Family<TypeLabel, Counter>,
    /// 1 while this replica holds the controller lease (or runs the controller without election).
    pub leader: Gauge,
    /// notAfter of the serving certificate presented now (Unix seconds).
    pub serving_certificate_expiry: Gauge,
    /// Certificate upkeep that failed (reload, rotation, Secret, caBundle injection).
    pub certificate_errors: Counter,
    /// RoostPolicies known, by whether they compiled.
    pub policies: Family<ReadyLabel, Gauge>,
    /// Custom rule evaluations, by result (pass, fail, error, over_budget).
    pub policy_evaluations: Family<ResultLabel, Counter>,
    /// Time to judge one object that policies match (the built-in rules, then the policies).
    pub policy_evaluation_duration: Histogram,
    /// RoostPolicyExceptions in force, by state (active, expired) at the scrape.
    pub policy_exceptions: Family<StateLabel, Gauge>,
    /// Exempted findings the controller newly wrote into a status.
    pub findings_exempted: Counter,
    /// 1 while the controller writes policy reports.
    pub reports_enabled: Gauge,
    /// Policy report writes, by result (ok, error).
    pub report_writes: Family<ResultLabel, Counter>,
    /// Lifecycle API answers, by route template and status code.
    pub lifecycle_api_requests: Family<LifecycleApiLabels, Counter>,
    /// Lifecycle event streams open now.
    pub lifecycle_api_streams: Gauge,
    /// Events sent on lifecycle streams (each stream's copy counted).
    pub lifecycle_api_stream_events: Counter,
    /// Resync events sent, by reason (lagged, unknown_event_id, expired).
    pub lifecycle_api_resyncs: Family<ReasonLabel, Counter>,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut metrics = Metrics {
            validation_operations: Counter::default(),
            validation_failures: Counter::default(),
            validation_duration: latency_histogram(),
            cache_hits: Family::default(),
            cache_misses: Family::default(),
            cache_size: Family::default(),
            admission_requests: Family::default(),
            admission_duration: Family::new_with_constructor(latency_histogram),
            operation_duration: Family::new_with_constructor(latency_histogram),
            review_timeouts: Family::default(),
            connections_closed: Family::default(),
            conversions: Family::default(),
            conversion_duration: latency_histogram(),
            status_updates: Counter::default(),
            status_update_duration: latency_histogram(),
            status_update_errors: Counter::default(),
            reconcile_errors: Family::default(),
            lifecycle_events: Counter::default(),
            lifecycle_events_by_type: Family::default(),
            leader: Gauge::default(),
            serving_certificate_expiry: Gauge::default(),
            certificate_errors: Counter::default(),
            policies: Family::default(),
            policy_evaluations: Family::default(),
            policy_evaluation_duration: latency_histogram(),
            policy_exceptions: Family::default(),
            findings_exempted: Counter::default(),
            reports_enabled: Gauge::default(),
            report_writes: Family::default(),
            lifecycle_api_requests: Family::default(),
            lifecycle_api_streams: Gauge::default(),
            lifecycle_api_stream_events: Counter::default(),
            lifecycle_api_resyncs: Family::default(),
            registry: Registry::default(),
        };
        let mut registry = Registry::default();
        metrics.register_validation(&mut registry);
        metrics.register_admission(&mut registry);
        metrics.register_conversion(&mut registry);
        metrics.register_certificates(&mut registry);
        metrics.register_controller(&mut registry);
        metrics.register_policies(&mut registry);
        metrics.register_lifecycle_api(&mut registry);
        metrics.registry = registry;
        Arc::new(metrics)
    }

    // prometheus-client appends `_total` to counters.

    /// The validation engine and its cache, shared by the webhooks and the controller.
    fn register_validation(&self, registry: &mut Registry) {
        registry.register(
            "roost_keeper_api_validation_operations",
            "Validations performed (cache hits included)",
            self.validation_operations.clone(),
        );
        registry.register(
            "roost_keeper_api_validation_failures",
            "Validations that found errors",
            self.validation_failures.clone(),
        );
        registry.register(
            "roost_keeper_api_validation_duration_seconds",
            "Time to validate one object, cache lookup included",
            self.validation_duration.clone(),
        );
        registry.register(
            "roost_keeper_api_cache_hits",
            "Cache hits",
            self.cache_hits.clone(),
        );
        registry.register(
            "roost_keeper_api_cache_misses",
            "Cache misses",
            self.cache_misses.clone(),
        );
        registry.register(
            "roost_keeper_api_cache_size",
            "Entries held by a cache",
            self.cache_size.clone(),
        );
    }

    /// The admission webhooks.
    fn register_admission(&self, registry: &mut Registry) {
        registry.register(
            "roost_keeper_admission_requests",
            "AdmissionReview requests answered",
            self.admission_requests.clone(),
        );
        registry.register(
            "roost_keeper_admission_duration_seconds",
            "Time to answer an AdmissionReview, body read included",
            self.admission_duration.clone(),
        );
        registry.register(
            "roost_keeper_api_operation_duration_seconds",
            "Time spent per API operation (validate, status_update)",
            self.operation_duration.clone(),
        );
        registry.register(
            "roost_keeper_admission_review_timeouts",
            "Reviews refused for want of time, by webhook and stage (queued: no turn within --review-timeout, 503; evaluating: still running at --review-timeout, 504)",
            self.review_timeouts.clone(),
        );
        registry.register(
            "roost_keeper_connections_closed",
            "Connections ended, by listener (webhook, metrics) and reason",
            self.connections_closed.clone(),
        );
    }

    /// The CRD's conversion webhook.
    fn register_conversion(&self, registry: &mut Registry) {
        registry.register(
            "roost_keeper_conversions",
            "ManagedRoosts in the ConversionReviews answered, by direction (v1alpha1_to_v1beta1, v1beta1_to_v1alpha1, same, unknown) and result (ok: converted; error: their review was answered with a Failure)",
            self.conversions.clone(),
        );
        registry.register(
            "roost_keeper_conversion_duration_seconds",
            "Time to answer a ConversionReview, body read included",
            self.conversion_duration.clone(),
        );
    }

    /// Counts one ConversionReview's objects (`direction` label, count) and its time.
    pub fn observe_conversion(
        &self,
        objects: impl Iterator<Item = (&'static str, u64)>,
        converted: bool,
        elapsed: Duration,
    ) {
        let result = if converted { "ok" } else { "error" };
        for (direction, count) in objects {
            self.conversions
                .get_or_create(&ConversionLabels { direction, result })
                .inc_by(count);
        }
        self.conversion_duration.observe(elapsed.as_secs_f64());
    }

    /// The serving certificate and its upkeep.
    fn register_certificates(&self, registry: &mut Registry) {
        registry.register(
            "roost_keeper_serving_certificate_expiry_timestamp_seconds",
            "notAfter of the serving certificate presented now (Unix seconds)",
            self.serving_certificate_expiry.clone(),
        );
        registry.register(
            "roost_keeper_certificate_errors",
            "Certificate upkeep that failed: reload, rotation, Secret, caBundle injection",
            self.certificate_errors.clone(),
        );
    }

    /// RoostPolicies.
    fn register_policies(&self, registry: &mut Registry) {
        registry.register(
            "roost_keeper_policies",
            "RoostPolicies known, by whether they compiled",
            self.policies.clone(),
        );
        registry.register(
            "roost_keeper_policy_evaluations",
            "Custom rule evaluations, by result (pass, fail, error, over_budget)",
            self.policy_evaluations.clone(),
        );
        registry.register(
            "roost_keeper_policy_evaluation_duration_seconds",
            "Time to judge one object that policies match (the built-in rules, then the policies)",
            self.policy_evaluation_duration.clone(),
        );
        registry.register(
            "roost_keeper_policy_exceptions",
            "RoostPolicyExceptions in force, by state at the scrape (active; expired: past expiresAt)",
            self.policy_exceptions.clone(),
        );
        registry.register(
            "roost_keeper_findings_exempted",
            "Findings a RoostPolicyException exempted, as the controller wrote them into status",
            self.findings_exempted.clone(),
        );
    }

    /// Counts the exceptions in force by whether they apply at `now`.
    pub fn observe_exceptions(
        &self,
        exceptions: &[Arc<crate::policy::exception::CompiledException>],
        now: k8s_openapi::jiff::Timestamp,
    ) {
        let active = exceptions.iter().filter(|e| e.active_at(now)).count();
        let expired = exceptions.len() - active;
        for (state, count) in [("active", active), ("expired", expired)] {
            self.policy_exceptions
                .get_or_create(&StateLabel { state })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
    }

    /// Counts one application of policies.
    pub fn observe_policies(&self, evaluations: crate::policy::Evaluations, elapsed: Duration) {
        for (result, count) in [
            ("pass", evaluations.passed),
            ("fail", evaluations.failed),
            ("error", evaluations.errors),
            ("over_budget", evaluations.over_budget),
        ] {
            if count > 0 {
                self.policy_evaluations
                    .get_or_create(&ResultLabel { result })
                    .inc_by(count);
            }
        }
        self.policy_evaluation_duration
            .observe(elapsed.as_secs_f64());
    }

    /// The status controller.
    fn register_controller(&self, registry: &mut Registry) {
        registry.register(
            "roost_keeper_leader",
            "1 while this replica runs the status controller (holds the lease)",
            self.leader.clone(),
        );
        registry.register(
            "roost_keeper_api_status_updates",
            "Status writes",
            self.status_updates.clone(),
        );
        registry.register(
            "roost_keeper_api_status_update_duration_seconds",
            "Time of one status write",
            self.status_update_duration.clone(),
        );
        registry.register(
            "roost_keeper_api_status_update_errors",
            "Status writes that failed (conflicts included)",
            self.status_update_errors.clone(),
        );
        registry.register(
            "roost_keeper_controller_reconcile_errors",
            "Reconciles that failed, by kind of failure (status_write, unidentified, status_undecodable)",
            self.reconcile_errors.clone(),
        );
        registry.register(
            "roost_keeper_api_lifecycle_events",
            "Lifecycle records made",
            self.lifecycle_events.clone(),
        );
        registry.register(
            "roost_keeper_api_lifecycle_events_by_type",
            "Lifecycle records made, by type",
            self.lifecycle_events_by_type.clone(),
        );
        registry.register(
            "roost_keeper_reports_enabled",
            "1 while the controller writes policy reports (the chosen API is served), else 0",
            self.reports_enabled.clone(),
        );
        registry.register(
            "roost_keeper_report_writes",
            "Policy report writes, by result (ok, error)",
            self.report_writes.clone(),
        );
    }

    /// The lifecycle API's port.
    fn register_lifecycle_api(&self, registry: &mut Registry) {
        registry.register(
            "roost_keeper_lifecycle_api_requests",
            "Lifecycle API answers, by route template and status code",
            self.lifecycle_api_requests.clone(),
        );
        registry.register(
            "roost_keeper_lifecycle_api_streams",
            "Lifecycle event streams open now",
            self.lifecycle_api_streams.clone(),
        );
        registry.register(
            "roost_keeper_lifecycle_api_stream_events",
            "Events sent on lifecycle event streams (one per stream that sent it)",
            self.lifecycle_api_stream_events.clone(),
        );
        registry.register(
            "roost_keeper_lifecycle_api_resyncs",
            "Resync events sent on lifecycle event streams, by reason (lagged, unknown_event_id, expired)",
            self.lifecycle_api_resyncs.clone(),
        );
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn observe_admission(
        &self,
        webhook: &'static str,
        operation: &'static str,
        allowed: bool,
        elapsed: Duration,
    ) {
        let allowed = if allowed { "true" } else { "false" };
        self.admission_requests
            .get_or_create(&AdmissionLabels {
                webhook,
                operation,
                allowed,
            })
            .inc();
        self.admission_duration
            .get_or_create(&WebhookLabel { webhook })
            .observe(elapsed.as_secs_f64());
    }
}
