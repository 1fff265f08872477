//! `roost-keeper serve`: the admission webhooks over HTTPS (rustls) and
//! `/metrics`, `/healthz`, `/readyz` over plain HTTP, with bounded
//! concurrency, timeouts on slow clients and a graceful shutdown.

use crate::admission::{self, Admission, MUTATE_PATH, Reply, VALIDATE_PATH, Webhook};
use crate::cache::ValidationCache;
use crate::cert_secret::CertSecretConfig;
use crate::metrics::Metrics;
use crate::tls::CertStore;
use crate::{Error, Result};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::Instrument;

/// Largest AdmissionReview body accepted: two 3 MiB objects (UPDATE) plus the envelope.
pub const MAX_BODY_BYTES: usize = 7 * 1024 * 1024;
/// Bodies above this size are decoded off the async workers.
const BLOCKING_BODY_BYTES: usize = 256 * 1024;

/// Where the serving certificate comes from.
#[derive(Clone, Debug)]
pub enum TlsSource {
    /// PEM files, polled for changes (e.g. a mounted Secret).
    Files { cert: PathBuf, key: PathBuf },
    /// A Secret roost-keeper manages through the API: generated when absent,
    /// rotated, its CA bundle injected into the webhook configurations.
    Secret(CertSecretConfig),
}

/// Everything `serve` needs; tests build it directly.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub webhook_addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    pub tls: TlsSource,
    /// How often certificate files are checked for changes.
    pub cert_reload_interval: Duration,
    /// After SIGTERM, keep serving this long (the apiserver still uses open connections).
    pub shutdown_delay: Duration,
    /// Then wait at most this long for requests in flight.
    pub shutdown_grace: Duration,
    /// Time allowed to read a request (headers and body) and to finish a TLS handshake.
    pub read_timeout: Duration,
    /// Reviews evaluated at once; more wait their turn.
    pub max_concurrent_reviews: usize,
    /// Open connections at once; more wait to be accepted.
    pub max_connections: usize,
    /// Run the status controller beside the webhooks (needs a kubeconfig or in-cluster config).
    pub controller: Option<crate::controller::ControllerConfig>,
    /// Kubeconfig for the controller and the certificate Secret; `None` uses
    /// `KUBECONFIG`, `~/.kube/config` or the in-cluster config.
    pub kubeconfig: Option<PathBuf>,
}

impl ServeConfig {
    /// Defaults around the given certificate files, listening on all interfaces.
    pub fn new(tls_cert_file: PathBuf, tls_key_file: PathBuf) -> Self {
        ServeConfig::with_tls(TlsSource::Files {
            cert: tls_cert_file,
            key: tls_key_file,
        })
    }

    /// Defaults around the given certificate source, listening on all interfaces.
    pub fn with_tls(tls: TlsSource) -> Self {
        let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        ServeConfig {
            webhook_addr: SocketAddr::new(any, 8443),
            metrics_addr: SocketAddr::new(any, 8080),
            tls,
            cert_reload_interval: Duration::from_secs(2),
            shutdown_delay: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(25),
            read_timeout: Duration::from_secs(10),
            max_concurrent_reviews: 256,
            max_connections: 1024,
            controller: None,
            kubeconfig: None,
        }
    }
}

/// Liveness and readiness facts.
#[derive(Debug)]
struct Health {
    shutting_down: AtomicBool,
    /// Where to dial our own HTTPS listener.
    self_dial: SocketAddr,
    /// Set once the controller has listed every ManagedRoost; `None` without a controller.
    controller_synced: Option<Arc<AtomicBool>>,
    /// Whether this replica runs the controller (always, without leader election).
    leading: Arc<AtomicBool>,
    /// Set at the first successful readiness check: later leadership changes
    /// must not take a serving replica out of its Service.
    was_ready: AtomicBool,
}

#[derive(Clone)]
struct AppState {
    admission: Arc<Admission>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    reviews: Arc<Semaphore>,
    read_timeout: Duration,
    /// The serving certificate (its expiry is exported as a metric).
    certs: Arc<CertStore>,
}

/// A bound server, ready to run.
pub struct Server {
    config: ServeConfig,
    webhook_listener: TcpListener,
    metrics_listener: TcpListener,
    state: AppState,
    client: Option<kube::Client>,
}

async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

impl Server {
    /// Loads the certificate and binds both ports (port 0 picks a free one).
    pub async fn bind(mut config: ServeConfig) -> Result<Server> {
        let needs_cluster =
            config.controller.is_some() || matches!(config.tls, TlsSource::Secret(_));
        let client = if needs_cluster {
            Some(kube_client(config.kubeconfig.as_deref()).await?)
        } else {
            None
        };
        if let (Some(lease), Some(client)) = (
            config
                .controller
                .as_mut()
                .and_then(|c| c.leader_election.as_mut()),
            &client,
        ) {
            if lease.namespace.is_empty() {
                lease.namespace = client.default_namespace().to_owned();
            }
            lease.validate()?;
        }
        let certs = match (&config.tls, &client) {
            (TlsSource::Files { cert, key }, _) => CertStore::load(cert, key)?,
            (TlsSource::Secret(secret), Some(client)) => {
                let material = crate::cert_secret::ensure(client, secret).await?;
                crate::cert_secret::ensure_bundles(client, &material.bundle_pem).await?;
                CertStore::from_pem(
                    material.serving.cert_pem.as_bytes(),
                    material.serving.key_pem.as_bytes(),
                )?
            }
            (TlsSource::Secret(_), None) => {
                return Err(Error::Config("--cert-secret needs a cluster".into()));
            }
        };
        let webhook_listener = bind(config.webhook_addr).await?;
        let metrics_listener = bind(config.metrics_addr).await?;
        let webhook_addr = webhook_listener
            .local_addr()
            .map_err(|source| Error::Bind {
                addr: config.webhook_addr,
                source,
            })?;
        let self_dial = if webhook_addr.ip().is_unspecified() {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), webhook_addr.port())
        } else {
            webhook_addr
        };
        let metrics = Metrics::new();
        let state = AppState {
            admission: Arc::new(Admission::new(
                ValidationCache::default(),
                Arc::clone(&metrics),
            )),
            metrics,
            health: Arc::new(Health {
                shutting_down: AtomicBool::new(false),
                self_dial,
                controller_synced: config
                    .controller
                    .as_ref()
                    .map(|_| Arc::new(AtomicBool::new(false))),
                // Without leader election the controller always runs.
                leading: Arc::new(AtomicBool::new(
                    config
                        .controller
                        .as_ref()
                        .is_some_and(|c| c.leader_election.is_none()),
                )),
                was_ready: AtomicBool::new(false),
            }),
            reviews: Arc::new(Semaphore::new(config.max_concurrent_reviews.max(1))),
            read_timeout: config.read_timeout,
            certs,
        };
        Ok(Server {
            config,
            webhook_listener,
            metrics_listener,
            state,
            client,
        })
    }

    pub fn webhook_addr(&self) -> SocketAddr {
        self.webhook_listener
            .local_addr()
            .unwrap_or(self.config.webhook_addr)
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_listener
            .local_addr()
            .unwrap_or(self.config.metrics_addr)
    }

    /// Serves until `shutdown` completes, then: not ready, keep serving for
    /// the shutdown delay, stop accepting, finish requests in flight within
    /// the grace period.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let Server {
            config,
            webhook_listener,
            metrics_listener,
            state,
            client,
        } = self;
        let certs = Arc::clone(&state.certs);
        let reloader = match (&config.tls, &client) {
            (TlsSource::Secret(secret), Some(client)) => {
                tokio::spawn(crate::cert_secret::maintain(
                    client.clone(),
                    secret.clone(),
                    Arc::clone(&certs),
                    state.metrics.certificate_errors.clone(),
                ))
            }
            _ => certs.spawn_reloader(
                config.cert_reload_interval,
                state.metrics.certificate_errors.clone(),
            ),
        };
        let tls_config = certs.server_config()?;

        let (metrics_stop_tx, metrics_stop_rx) = tokio::sync::oneshot::channel::<()>();
        let metrics_router = Router::new()
            .route("/metrics", get(metrics_handler))
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(readyz_handler))
            .with_state(state.clone());
        let metrics_server = tokio::spawn(async move {
            let stop = async {
                let _ = metrics_stop_rx.await;
            };
            axum::serve(metrics_listener, metrics_router)
                .with_graceful_shutdown(stop)
                .await
        });

        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        let controller = match (client, &config.controller, &state.health.controller_synced) {
            (Some(client), Some(controller_config), Some(synced)) => {
                let mut stopping = stop_rx.clone();
                let stop = async move {
                    let _ = stopping.wait_for(|stop| *stop).await;
                };
                Some(tokio::spawn(run_controller(
                    client,
                    controller_config.clone(),
                    Arc::clone(&state.metrics),
                    Arc::clone(synced),
                    Arc::clone(&state.health.leading),
                    stop,
                )))
            }
            _ => None,
        };
        let health = Arc::clone(&state.health);
        let delay = config.shutdown_delay;
        tokio::spawn(async move {
            shutdown.await;
            health.shutting_down.store(true, Ordering::SeqCst);
            tracing::info!(
                delay_seconds = delay.as_secs_f64(),
                "shutdown requested: not ready, still serving"
            );
            tokio::time::sleep(delay).await;
            let _ = stop_tx.send(true);
        });

        let router = webhook_router(state);
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let acceptor = tokio_rustls::TlsAcceptor::from(tls_config);
        let connections = Arc::new(Semaphore::new(config.max_connections.max(1)));
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(config.read_timeout);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(Duration::from_secs(30));
        tracing::info!(webhook = %webhook_listener.local_addr().map_err(|source| Error::Bind { addr: config.webhook_addr, source })?, "serving admission webhooks over HTTPS");

        loop {
            let permit = tokio::select! {
                permit = Arc::clone(&connections).acquire_owned() => permit.expect("semaphore is never closed"),
                _ = stop_rx.changed() => break,
            };
            let (tcp, peer) = tokio::select! {
                accepted = webhook_listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = stop_rx.changed() => break,
            };
            // Small HTTP/2 frames must not wait for the peer's delayed ACK (Nagle): ~40 ms at p99.
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(%peer, error = %err, "cannot set TCP_NODELAY");
            }
            let acceptor = acceptor.clone();
            let service = TowerToHyperService::new(router.clone());
            let watcher = graceful.watcher();
            let builder = builder.clone();
            let handshake_timeout = config.read_timeout;
            tokio::spawn(async move {
                let _permit = permit;
                let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await
                {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(err)) => {
                        tracing::debug!(%peer, error = %err, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
                let connection = builder
                    .serve_connection_with_upgrades(TokioIo::new(tls), service)
                    .into_owned();
                if let Err(err) = watcher.watch(connection).await {
                    tracing::debug!(%peer, error = %err, "connection ended with an error");
                }
            });
        }
        drop(webhook_listener);
        tracing::info!(
            connections = graceful.count(),
            "stopped accepting; finishing requests in flight"
        );
        if tokio::time::timeout(config.shutdown_grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("grace period over; closing the remaining connections");
        }
        reloader.abort();
        if let Some(controller) = controller {
            let _ = controller.await;
        }
        let _ = metrics_stop_tx.send(());
        match metrics_server.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "metrics server stopped with an error"),
            Err(err) => tracing::warn!(error = %err, "metrics server task failed"),
        }
        tracing::info!("shutdown complete");
        Ok(())
    }
}

fn webhook_router(state: AppState) -> Router {
    Router::new()
        .route(VALIDATE_PATH, post(|s, r| admit(s, r, Webhook::Validate)))
        .route(MUTATE_PATH, post(|s, r| admit(s, r, Webhook::Mutate)))
        .fallback(not_found)
        .with_state(state)
}

async fn not_found(request: Request) -> Response {
    let reply = admission::transport_refusal(
        404,
        "NotFound",
        format!("no webhook at {}", request.uri().path()),
        None,
    );
    json_reply(reply)
}

fn json_reply(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(reply.body)).into_response()
}

/// Reads the body within the size and time limits.
async fn read_body(
    request: Request,
    limit: usize,
    timeout: Duration,
) -> std::result::Result<axum::body::Bytes, Reply> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large(limit));
    }
    let body = http_body_util::Limited::new(request.into_body(), limit);
    match tokio::time::timeout(timeout, body.collect()).await {
        Err(_) => Err(admission::transport_refusal(
            408,
            "Timeout",
            format!(
                "request body not received within {}s",
                timeout.as_secs_f64()
            ),
            None,
        )),
        Ok(Err(err))
            if err
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large(limit))
        }
        Ok(Err(err)) => Err(admission::transport_refusal(
            400,
            "BadRequest",
            format!("cannot read the request body: {err}"),
            None,
        )),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

fn too_large(limit: usize) -> Reply {
    admission::transport_refusal(
        413,
        "RequestEntityTooLarge",
        format!("AdmissionReview larger than {} MiB", limit / (1024 * 1024)),
        None,
    )
}

async fn admit(State(state): State<AppState>, request: Request, webhook: Webhook) -> Response {
    let started = Instant::now();
    let span = tracing::info_span!(
        "admission",
        webhook = webhook.label(),
        uid = tracing::field::Empty,
        operation = tracing::field::Empty,
        namespace = tracing::field::Empty,
        name = tracing::field::Empty,
        allowed = tracing::field::Empty,
        mutated = tracing::field::Empty,
        errors = tracing::field::Empty,
        warnings = tracing::field::Empty,
        dry_run = tracing::field::Empty,
    );
    async move {
        let reply = match read_body(request, MAX_BODY_BYTES, state.read_timeout).await {
            Err(reply) => reply,
            Ok(body) => {
                // Backpressure: wait for a slot rather than failing.
                let _slot = state
                    .reviews
                    .acquire()
                    .await
                    .expect("semaphore is never closed");
                if body.len() > BLOCKING_BODY_BYTES {
                    let admission = Arc::clone(&state.admission);
                    tokio::task::spawn_blocking(move || admission.review(webhook, &body))
                        .await
                        .unwrap_or_else(|e| {
                            admission::transport_refusal(
                                500,
                                "InternalError",
                                format!("review failed: {e}"),
                                None,
                            )
                        })
                } else {
                    state.admission.review(webhook, &body)
                }
            }
        };
        let s = &reply.summary;
        let span = tracing::Span::current();
        span.record("uid", s.uid.as_str());
        span.record("operation", s.operation);
        span.record("namespace", s.namespace.as_str());
        span.record("name", s.name.as_str());
        span.record("allowed", s.allowed);
        span.record("mutated", s.mutated);
        span.record("errors", s.errors);
        span.record("warnings", s.warnings);
        span.record("dry_run", s.dry_run);
        let elapsed = started.elapsed();
        state.metrics.observe_admission(
            webhook.label(),
            s.operation,
            s.allowed && reply.status == 200,
            elapsed,
        );
        tracing::info!(
            status = reply.status,
            elapsed_ms = elapsed.as_secs_f64() * 1e3,
            "admission review answered"
        );
        json_reply(reply)
    }
    .instrument(span)
    .await
}

async fn metrics_handler(State(state): State<AppState>) -> Response {
    state.admission.record_cache_size();
    state
        .metrics
        .serving_certificate_expiry
        .set(state.certs.not_after());
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
async fn readyz_handler(State(state): State<AppState>) -> Response {
    if state.health.shutting_down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let health = &state.health;
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
        crate::tls::self_dial(state.health.self_dial),
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

/// Runs the status controller: always, or only while holding the lease.
async fn run_controller(
    client: kube::Client,
    config: crate::controller::ControllerConfig,
    metrics: Arc<Metrics>,
    synced: Arc<AtomicBool>,
    leading: Arc<AtomicBool>,
    stop: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let Some(lease) = config.leader_election.clone() else {
        metrics.leader.set(1);
        crate::controller::run(client, config, metrics, synced, stop).await;
        return;
    };
    let lead = {
        let (client, metrics) = (client.clone(), Arc::clone(&metrics));
        move |leader_stop: crate::leader::Stop| {
            metrics.leader.set(1);
            let run = crate::controller::run(
                client.clone(),
                config.clone(),
                Arc::clone(&metrics),
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
    if let Err(err) = crate::leader::run(client, lease, leading, stop, lead).await {
        tracing::error!(error = %err, "status controller not started");
    }
}

/// A client for the cluster: `kubeconfig`, else `KUBECONFIG`, `~/.kube/config`
/// or the in-cluster config.
pub async fn kube_client(kubeconfig: Option<&std::path::Path>) -> Result<kube::Client> {
    let unusable =
        |e: &dyn std::fmt::Display| Error::Config(format!("no usable cluster config: {e}"));
    let config = match kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| unusable(&format!("{}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .map_err(|e| unusable(&e))?
        }
        None => kube::Config::infer().await.map_err(|e| unusable(&e))?,
    };
    kube::Client::try_from(config).map_err(|e| unusable(&e))
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
