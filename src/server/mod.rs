//! `roost-keeper serve`: the admission webhooks over HTTPS (rustls) and
//! `/metrics`, `/healthz`, `/readyz` over plain HTTP, with bounded
//! concurrency, timeouts on slow clients and a graceful shutdown.

pub mod listener;

use crate::admission::cache::ValidationCache;
use crate::admission::{self, Admission, MUTATE_PATH, Reply, VALIDATE_PATH, Webhook};
use crate::metrics::Metrics;
use crate::tls::CertStore;
use crate::tls::secret::CertSecretConfig;
use crate::{Error, Result};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use listener::{ConnectionLimits, Slots};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

/// Largest AdmissionReview body accepted: two 3 MiB objects (UPDATE) plus the envelope.
pub const MAX_BODY_BYTES: usize = 7 * 1024 * 1024;
/// Bodies above this size are decoded off the async workers.
const BLOCKING_BODY_BYTES: usize = 256 * 1024;
/// Bodies up to this size are read without the shared body budget: the
/// connection limit bounds them (1024 × 64 KiB), and the apiserver's usual
/// reviews (a few KiB) never wait behind large ones.
pub const SMALL_BODY_BYTES: usize = 64 * 1024;
/// Default budget for larger bodies held at once: a handful of 7 MiB reviews.
pub const DEFAULT_BODY_BUDGET_BYTES: usize = 48 * 1024 * 1024;
/// Connections the plain HTTP port (metrics, probes) keeps open at once.
const METRICS_MAX_CONNECTIONS: usize = 32;
/// Longest request path quoted in a 404 answer.
const SHOWN_PATH_CHARS: usize = 64;

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
    /// Open connections at once; when all are taken an idle one is closed, else more wait.
    pub max_connections: usize,
    /// Open connections one client address may hold.
    pub max_connections_per_peer: usize,
    /// A connection with no request in flight this long is closed.
    pub idle_timeout: Duration,
    /// Bytes of request bodies above [`SMALL_BODY_BYTES`] held at once.
    pub body_budget_bytes: usize,
    /// Memory budget of the validation cache, in bytes.
    pub validation_cache_bytes: u64,
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
            max_connections_per_peer: 512,
            idle_timeout: Duration::from_secs(60),
            body_budget_bytes: DEFAULT_BODY_BUDGET_BYTES,
            validation_cache_bytes: crate::admission::cache::VALIDATION_CACHE_BYTES,
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
    /// Permits are KiB of request bodies above [`SMALL_BODY_BYTES`].
    body_budget: Arc<Semaphore>,
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

/// File descriptors kept for everything but webhook connections: the metrics
/// port's connections, listeners, the API client, logs, certificate files.
const RESERVED_FILES: u64 = METRICS_MAX_CONNECTIONS as u64 + 96;

/// The soft limit on open files (`/proc/self/limits`), where it can be read.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Lowers `max_connections` so that the webhook's connections cannot use up
/// the process's open files (which would break `/healthz`, the metrics port
/// and the API client too).
fn fit_connections_to_open_files(config: &mut ServeConfig, limit: Option<u64>) {
    let Some(limit) = limit else { return };
    let fits = usize::try_from(limit.saturating_sub(RESERVED_FILES).max(1)).unwrap_or(usize::MAX);
    if config.max_connections > fits {
        tracing::warn!(
            max_connections = config.max_connections,
            open_files_limit = limit,
            lowered_to = fits,
            "--max-connections does not fit the open files limit; lowered"
        );
        config.max_connections = fits;
    }
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
                let material = crate::tls::secret::ensure(client, secret).await?;
                crate::tls::secret::ensure_bundles(client, &material.bundle_pem).await?;
                CertStore::from_pem(
                    material.serving.cert_pem.as_bytes(),
                    material.serving.key_pem.as_bytes(),
                )?
            }
            (TlsSource::Secret(_), None) => {
                return Err(Error::Config("--cert-secret needs a cluster".into()));
            }
        };
        fit_connections_to_open_files(&mut config, open_files_limit());
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
                ValidationCache::new(
                    config.validation_cache_bytes,
                    crate::admission::cache::VALIDATION_TTL,
                ),
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
            body_budget: Arc::new(Semaphore::new(kib(config.body_budget_bytes))),
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
                tokio::spawn(crate::tls::secret::maintain(
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

        let (metrics_stop_tx, metrics_stop_rx) = tokio::sync::watch::channel(false);
        let metrics_router = Router::new()
            .route("/metrics", get(metrics_handler))
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(readyz_handler))
            .with_state(state.clone());
        let metrics_slots = Slots::new(ConnectionLimits {
            max_connections: METRICS_MAX_CONNECTIONS,
            max_per_peer: METRICS_MAX_CONNECTIONS / 2,
            first_request_timeout: config.read_timeout,
            idle_timeout: config.idle_timeout,
            close_grace: config.read_timeout,
        });
        let metrics_builder = http_builder(&config);
        let metrics_server = tokio::spawn(listener::accept_loop(
            metrics_listener,
            metrics_slots,
            metrics_stop_rx,
            config.read_timeout,
            move |tcp, _peer, slot| {
                listener::serve_http(tcp, slot, metrics_builder.clone(), metrics_router.clone())
            },
        ));

        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
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
        let acceptor = tokio_rustls::TlsAcceptor::from(tls_config);
        let slots = Slots::new(ConnectionLimits {
            max_connections: config.max_connections,
            max_per_peer: config.max_connections_per_peer,
            first_request_timeout: config.read_timeout,
            idle_timeout: config.idle_timeout,
            close_grace: config.shutdown_grace,
        });
        let builder = http_builder(&config);
        let handshake_timeout = config.read_timeout;
        tracing::info!(webhook = %webhook_listener.local_addr().map_err(|source| Error::Bind { addr: config.webhook_addr, source })?, "serving admission webhooks over HTTPS");
        listener::accept_loop(
            webhook_listener,
            slots,
            stop_rx,
            config.shutdown_grace,
            move |tcp, peer, slot| {
                // Small HTTP/2 frames must not wait for the peer's delayed ACK (Nagle): ~40 ms at p99.
                if let Err(err) = tcp.set_nodelay(true) {
                    tracing::debug!(%peer, error = %err, "cannot set TCP_NODELAY");
                }
                let (acceptor, builder, router) =
                    (acceptor.clone(), builder.clone(), router.clone());
                async move {
                    let tls =
                        match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
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
                    listener::serve_http(tls, slot, builder, router).await;
                }
            },
        )
        .await;
        reloader.abort();
        if let Some(controller) = controller {
            let _ = controller.await;
        }
        let _ = metrics_stop_tx.send(true);
        if let Err(err) = metrics_server.await {
            tracing::warn!(error = %err, "metrics server task failed");
        }
        tracing::info!("shutdown complete");
        Ok(())
    }
}

/// HTTP/1.1 and HTTP/2 with the server's timeouts (idle connections are closed by [`connections`]).
fn http_builder(config: &ServeConfig) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(30));
    builder
}

/// Whole KiB covering `bytes` (semaphore permits of the body budget).
fn kib(bytes: usize) -> usize {
    bytes.div_ceil(1024)
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
        format!(
            "no webhook at {}; the webhooks are {VALIDATE_PATH} and {MUTATE_PATH}",
            crate::validation::finding::shown_max(request.uri().path(), SHOWN_PATH_CHARS)
        ),
        None,
    );
    json_reply(reply)
}

fn json_reply(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(reply.body)).into_response()
}

/// A request body and its share of the body budget (released when dropped).
struct Body {
    bytes: axum::body::Bytes,
    _budget: Option<OwnedSemaphorePermit>,
}

/// Reads the body within the size and time limits. Beyond
/// [`SMALL_BODY_BYTES`] every KiB is taken from the shared budget first (all
/// of a declared length at once), so slow or large senders together cannot
/// hold more than the budget. Waiting for the budget takes at most a quarter
/// of the read timeout: a request that cannot be buffered soon is refused
/// (503) rather than kept waiting behind senders that may be stalling.
async fn read_body(
    request: Request,
    limit: usize,
    timeout: Duration,
    budget: &Arc<Semaphore>,
) -> std::result::Result<Body, Reply> {
    let deadline = tokio::time::Instant::now() + timeout;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large(limit));
    }
    let mut held: Option<OwnedSemaphorePermit> = None;
    let reserve = async |bytes: usize, held: &mut Option<OwnedSemaphorePermit>| {
        let needed = kib(bytes.saturating_sub(SMALL_BODY_BYTES));
        let have = held.as_ref().map_or(0, |p| p.num_permits());
        if needed <= have {
            return Ok(());
        }
        let more = u32::try_from(needed - have).unwrap_or(u32::MAX);
        let wait_until = deadline.min(tokio::time::Instant::now() + timeout / 4);
        match tokio::time::timeout_at(wait_until, Arc::clone(budget).acquire_many_owned(more)).await
        {
            Ok(Ok(permit)) => {
                match held {
                    Some(held) => held.merge(permit),
                    None => *held = Some(permit),
                }
                Ok(())
            }
            _ => Err(admission::transport_refusal(
                503,
                "ServiceUnavailable",
                "too many large request bodies are being read at once; retry".to_owned(),
                None,
            )),
        }
    };
    if let Some(len) = declared {
        reserve(len as usize, &mut held).await?;
    }
    let mut body = request.into_body();
    let mut bytes =
        Vec::with_capacity(declared.map_or(0, |len| len as usize).min(SMALL_BODY_BYTES));
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => {
                return Err(admission::transport_refusal(
                    408,
                    "Timeout",
                    format!(
                        "request body not received within {}s",
                        timeout.as_secs_f64()
                    ),
                    None,
                ));
            }
            Ok(None) => break,
            Ok(Some(Err(err))) => {
                return Err(admission::transport_refusal(
                    400,
                    "BadRequest",
                    format!("cannot read the request body: {err}"),
                    None,
                ));
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let total = bytes.len() + data.len();
        if total > limit {
            return Err(too_large(limit));
        }
        reserve(total, &mut held).await?;
        bytes.extend_from_slice(&data);
    }
    Ok(Body {
        bytes: bytes.into(),
        _budget: held,
    })
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
        let reply = match read_body(
            request,
            MAX_BODY_BYTES,
            state.read_timeout,
            &state.body_budget,
        )
        .await
        {
            Err(reply) => reply,
            Ok(Body {
                bytes: body,
                _budget,
            }) => {
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
        move |leader_stop: crate::controller::leader::Stop| {
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
    if let Err(err) = crate::controller::leader::run(client, lease, leading, stop, lead).await {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_connections_leave_room_for_everything_else() {
        let mut config = ServeConfig::new("c".into(), "k".into());
        fit_connections_to_open_files(&mut config, Some(1024));
        assert_eq!(config.max_connections, 1024 - RESERVED_FILES as usize);
        let mut config = ServeConfig::new("c".into(), "k".into());
        fit_connections_to_open_files(&mut config, Some(1 << 20));
        assert_eq!(config.max_connections, 1024);
        fit_connections_to_open_files(&mut config, None);
        assert_eq!(config.max_connections, 1024);
    }

    #[test]
    fn the_open_files_limit_is_read() {
        assert!(open_files_limit().is_some_and(|n| n > 0));
    }
}
