//! The plain HTTP port: `/metrics`, `/healthz` and `/readyz`.

use crate::admission::Admission;
use crate::controller::ControllerConfig;
use crate::metrics::Metrics;
use crate::tls::CertStore;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Liveness and readiness facts.
#[derive(Debug)]
pub(super) struct Health {
    pub(super) shutting_down: AtomicBool,
    /// Where to dial our own HTTPS listener.
    self_dial: SocketAddr,
    /// Set once the controller has listed every ManagedRoost; `None` without a controller.
    pub(super) controller_synced: Option<Arc<AtomicBool>>,
    /// Whether this replica runs the controller (always, without leader election).
    pub(super) leading: Arc<AtomicBool>,
    /// Set at the first successful readiness check: later leadership changes
    /// must not take a serving replica out of its Service.
    was_ready: AtomicBool,
}

impl Health {
    pub(super) fn new(self_dial: SocketAddr, controller: Option<&ControllerConfig>) -> Self {
        Health {
            shutting_down: AtomicBool::new(false),
            self_dial,
            controller_synced: controller.map(|_| Arc::new(AtomicBool::new(false))),
            // Without leader election the controller always runs.
            leading: Arc::new(AtomicBool::new(
                controller.is_some_and(|c| c.leader_election.is_none()),
            )),
            was_ready: AtomicBool::new(false),
        }
    }
}

/// What the port's handlers read.
#[derive(Clone)]
pub(super) struct OpsState {
    pub(super) admission: Arc<Admission>,
    /// The rules and the policies in force (fed by the watches).
    pub(super) engine: crate::engine::Engine,
    pub(super) metrics: Arc<Metrics>,
    pub(super) health: Arc<Health>,
    /// The serving certificate (its expiry is exported as a metric).
    pub(super) certs: Arc<CertStore>,
}

pub(super) fn router(state: OpsState) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz_handler))
        .with_state(state)
}

async fn metrics_handler(State(state): State<OpsState>) -> Response {
    state.admission.record_cache_size();
    state
        .metrics
        .serving_certificate_expiry
        .set(state.certs.not_after());
    state.metrics.observe_exceptions(
        &state.engine.policies.exceptions(),
        k8s_openapi::jiff::Timestamp::now(),
    );
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

/// Ready when not shutting down and our own HTTPS listener completes a TLS handshake.
async fn readyz_handler(State(state): State<OpsState>) -> Response {
    let health = &state.health;
    if health.shutting_down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    // At start-up a replica running the controller is ready once it has listed everything.
    if health
        .controller_synced
        .as_ref()
        .is_some_and(|s| !s.load(Ordering::SeqCst))
        && health.leading.load(Ordering::SeqCst)
        && !health.was_ready.load(Ordering::SeqCst)
    {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "controller has not listed ManagedRoosts yet",
        )
            .into_response();
    }
    match tokio::time::timeout(
        Duration::from_secs(2),
        crate::tls::self_dial(health.self_dial),
    )
    .await
    {
        Ok(Ok(())) => {
            health.was_ready.store(true, Ordering::SeqCst);
            (StatusCode::OK, "ok").into_response()
        }
        Ok(Err(err)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("HTTPS listener not answering: {err}"),
        )
            .into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "HTTPS listener not answering: timeout",
        )
            .into_response(),
    }
}
