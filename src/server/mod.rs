//! `roost-keeper serve`: binds the ports and runs, side by side, the
//! admission webhooks over HTTPS ([`crate::admission::http`] on
//! [`listener`]'s connection slots), the metrics and probe port ([`ops`]),
//! certificate upkeep and the status controller; then shuts down gracefully.

pub mod defaults;
pub mod listener;
mod ops;
mod policies;

use crate::admission::Admission;
use crate::admission::cache::ValidationCache;
use crate::admission::http::{self, HttpLimits, WebhookState};
use crate::engine::Engine;
use crate::lifecycle_api::LifecycleApiConfig;
use crate::metrics::Metrics;
use crate::tls::CertStore;
use crate::tls::secret::CertSecretConfig;
use crate::validation::Registry;
use crate::{Error, Result};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use listener::{CloseReason, ClosedCounter, ConnectionLimits, Slots};
use ops::{Health, OpsState};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

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
    /// A review's wait for its turn and its evaluation together: past it the
    /// webhook answers 503 (still waiting) or 504 (still evaluating).
    pub review_timeout: Duration,
    /// Open connections at once; when all are taken an idle or stalled one makes room, else more wait.
    pub max_connections: usize,
    /// Open connections one client address may hold.
    pub max_connections_per_peer: usize,
    /// A connection with no request in flight this long is closed.
    pub idle_timeout: Duration,
    /// Bytes of request bodies above [`http::SMALL_BODY_BYTES`] held at once.
    pub body_budget_bytes: usize,
    /// Memory budget of the validation cache, in bytes.
    pub validation_cache_bytes: u64,
    /// Run the status controller beside the webhooks (needs a kubeconfig or in-cluster config).
    pub controller: Option<crate::controller::ControllerConfig>,
    /// Kubeconfig for the controller and the certificate Secret; `None` uses
    /// `KUBECONFIG`, `~/.kube/config` or the in-cluster config.
    pub kubeconfig: Option<PathBuf>,
    /// The compiled-in rules: the built-in ones, or an embedder's
    /// ([`Registry::with_rule`]); RoostPolicies apply on top.
    pub registry: Arc<Registry>,
    /// The lifecycle API and dashboard on their own HTTPS port (needs a cluster).
    pub lifecycle_api: Option<LifecycleApiConfig>,
}

impl ServeConfig {
    /// Defaults around the given certificate files, listening on all interfaces.
    pub fn new(tls_cert_file: PathBuf, tls_key_file: PathBuf) -> Self {
        ServeConfig::with_tls(TlsSource::Files {
            cert: tls_cert_file,
            key: tls_key_file,
        })
    }

    /// The `serve` flags' defaults ([`defaults`]) around the given certificate source.
    pub fn with_tls(tls: TlsSource) -> Self {
        ServeConfig {
            webhook_addr: SocketAddr::new(defaults::BIND_ADDRESS, defaults::WEBHOOK_PORT),
            metrics_addr: SocketAddr::new(defaults::BIND_ADDRESS, defaults::METRICS_PORT),
            tls,
            cert_reload_interval: defaults::duration(defaults::CERT_RELOAD_INTERVAL),
            shutdown_delay: defaults::duration(defaults::SHUTDOWN_DELAY),
            shutdown_grace: defaults::duration(defaults::SHUTDOWN_GRACE),
            read_timeout: defaults::duration(defaults::READ_TIMEOUT),
            max_concurrent_reviews: defaults::MAX_CONCURRENT_REVIEWS,
            review_timeout: defaults::duration(defaults::REVIEW_TIMEOUT),
            max_connections: defaults::MAX_CONNECTIONS,
            max_connections_per_peer: defaults::MAX_CONNECTIONS_PER_PEER,
            idle_timeout: defaults::duration(defaults::IDLE_TIMEOUT),
            body_budget_bytes: defaults::BODY_BUDGET_BYTES,
            validation_cache_bytes: defaults::VALIDATION_CACHE_BYTES,
            controller: None,
            kubeconfig: None,
            registry: Arc::new(Registry::builtin()),
            lifecycle_api: None,
        }
    }
}

/// Connections the plain HTTP port (metrics, probes) keeps open at once.
const METRICS_MAX_CONNECTIONS: usize = 32;

/// How long a request may be in flight before the listener answers it 503
/// and closes its connection: the body's read timeout and the review's
/// deadline, which the webhook routes enforce themselves, and a second more.
/// A backstop: a slot is bounded in time whatever a handler does.
fn request_lifetime(config: &ServeConfig) -> Duration {
    config.read_timeout + config.review_timeout + Duration::from_secs(1)
}

/// A bound server, ready to run.
pub struct Server {
    config: ServeConfig,
    webhook_listener: TcpListener,
    metrics_listener: TcpListener,
    lifecycle_listener: Option<TcpListener>,
    webhooks: WebhookState,
    ops: OpsState,
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

fn local_addr(listener: &TcpListener, configured: SocketAddr) -> Result<SocketAddr> {
    listener.local_addr().map_err(|source| Error::Bind {
        addr: configured,
        source,
    })
}

/// A client when the controller or the certificate Secret needs the cluster;
/// the lease namespace defaults to the client's.
async fn cluster_client(config: &mut ServeConfig) -> Result<Option<kube::Client>> {
    let needs_cluster = config.controller.is_some()
        || config.lifecycle_api.is_some()
        || matches!(config.tls, TlsSource::Secret(_));
    if !needs_cluster {
        return Ok(None);
    }
    let client = kube_client(config.kubeconfig.as_deref()).await?;
    if let Some(lease) = config
        .controller
        .as_mut()
        .and_then(|c| c.leader_election.as_mut())
    {
        if lease.namespace.is_empty() {
            lease.namespace = client.default_namespace().to_owned();
        }
        lease.validate()?;
    }
    Ok(Some(client))
}

/// The serving certificate: from files, or from the managed Secret (created
/// if absent, its CA bundle injected before anything is served).
async fn load_certificate(
    tls: &TlsSource,
    client: Option<&kube::Client>,
) -> Result<Arc<CertStore>> {
    match (tls, client) {
        (TlsSource::Files { cert, key }, _) => CertStore::load(cert, key),
        (TlsSource::Secret(secret), Some(client)) => {
            let material = crate::tls::secret::ensure(client, secret).await?;
            crate::tls::bundle::ensure_bundles(client, &material.bundle_pem, &secret.names).await?;
            CertStore::from_pem(
                material.serving.cert_pem.as_bytes(),
                material.serving.key_pem.as_bytes(),
            )
        }
        (TlsSource::Secret(_), None) => Err(Error::Config("--cert-secret needs a cluster".into())),
    }
}

impl Server {
    /// Loads the certificate and binds both ports (port 0 picks a free one).
    pub async fn bind(mut config: ServeConfig) -> Result<Server> {
        let client = cluster_client(&mut config).await?;
        let certs = load_certificate(&config.tls, client.as_ref()).await?;
        fit_connections_to_open_files(&mut config, open_files_limit());
        let webhook_listener = bind(config.webhook_addr).await?;
        let metrics_listener = bind(config.metrics_addr).await?;
        let lifecycle_listener = match &config.lifecycle_api {
            Some(api) => Some(bind(api.addr).await?),
            None => None,
        };
        let webhook_addr = local_addr(&webhook_listener, config.webhook_addr)?;
        let self_dial = if webhook_addr.ip().is_unspecified() {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), webhook_addr.port())
        } else {
            webhook_addr
        };
        let metrics = Metrics::new();
        let engine = Engine::new(Arc::clone(&config.registry));
        let admission = Arc::new(Admission::with_engine(
            ValidationCache::new(
                config.validation_cache_bytes,
                crate::admission::cache::VALIDATION_TTL,
            ),
            Arc::clone(&metrics),
            engine.clone(),
        ));
        let webhooks = WebhookState::new(
            Arc::clone(&admission) as Arc<dyn crate::admission::Reviewer>,
            Arc::clone(&metrics),
            HttpLimits {
                max_concurrent_reviews: config.max_concurrent_reviews,
                body_budget_bytes: config.body_budget_bytes,
                read_timeout: config.read_timeout,
            },
        )
        .with_review_timeout(config.review_timeout);
        let ops = OpsState {
            admission,
            engine,
            metrics,
            health: Arc::new(Health::new(self_dial, config.controller.as_ref())),
            certs,
        };
        Ok(Server {
            config,
            webhook_listener,
            metrics_listener,
            lifecycle_listener,
            webhooks,
            ops,
            client,
        })
    }

    /// The same server with its webhooks answered by `reviewer` (an
    /// embedder's, or the load benchmark's baseline that judges nothing).
    pub fn with_reviewer(self, reviewer: Arc<dyn crate::admission::Reviewer>) -> Server {
        Server {
            webhooks: self.webhooks.with_reviewer(reviewer),
            ..self
        }
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

    /// The lifecycle API's address, when it is served.
    pub fn lifecycle_api_addr(&self) -> Option<SocketAddr> {
        self.lifecycle_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` completes, then: not ready, keep serving for
    /// the shutdown delay, stop accepting, finish requests in flight within
    /// the grace period.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let Server {
            config,
            webhook_listener,
            metrics_listener,
            lifecycle_listener,
            webhooks,
            ops,
            client,
        } = self;
        let upkeep = spawn_certificate_upkeep(&config, client.as_ref(), &ops);
        let watch_namespace = config
            .controller
            .as_ref()
            .and_then(|c| c.watch_namespace.clone());
        let watches = spawn_policy_watches(client.as_ref(), watch_namespace, &ops);
        let tls_config = ops.certs.server_config()?;
        let (metrics_stop, metrics_port) = spawn_ops_port(&config, metrics_listener, ops.clone());
        let (stop_tx, stop_rx) = watch::channel(false);
        let lifecycle_api = spawn_lifecycle_api(
            &config,
            lifecycle_listener,
            client.as_ref(),
            &ops,
            &tls_config,
            stop_rx.clone(),
        );
        let controller = spawn_controller(&config, client, &ops, stop_rx.clone());
        spawn_shutdown_delay(
            shutdown,
            Arc::clone(&ops.health),
            config.shutdown_delay,
            stop_tx,
        );
        tracing::info!(webhook = %local_addr(&webhook_listener, config.webhook_addr)?, "serving admission webhooks over HTTPS");
        let closed = ClosedCounter {
            listener: "webhook",
            family: ops.metrics.connections_closed.clone(),
        };
        serve_webhooks(
            &config,
            webhook_listener,
            tls_config,
            webhooks,
            closed,
            stop_rx,
        )
        .await;
        upkeep.abort();
        watches.iter().for_each(JoinHandle::abort);
        for task in lifecycle_api.into_iter().flatten() {
            task.abort();
        }
        if let Some(controller) = controller {
            let _ = controller.await;
        }
        let _ = metrics_stop.send(true);
        if let Err(err) = metrics_port.await {
            tracing::warn!(error = %err, "metrics server task failed");
        }
        tracing::info!("shutdown complete");
        Ok(())
    }
}

/// Keeps the serving certificate fresh: the managed Secret's rotation, or
/// file reloads.
fn spawn_certificate_upkeep(
    config: &ServeConfig,
    client: Option<&kube::Client>,
    ops: &OpsState,
) -> JoinHandle<()> {
    let errors = ops.metrics.certificate_errors.clone();
    match (&config.tls, client) {
        (TlsSource::Secret(secret), Some(client)) => tokio::spawn(crate::tls::secret::maintain(
            client.clone(),
            secret.clone(),
            Arc::clone(&ops.certs),
            errors,
        )),
        _ => ops
            .certs
            .spawn_reloader(config.cert_reload_interval, errors),
    }
}

/// With a cluster, follows RoostPolicies, Namespaces and
/// RoostPolicyExceptions (of `watch_namespace` alone when it is set) on every replica.
fn spawn_policy_watches(
    client: Option<&kube::Client>,
    watch_namespace: Option<String>,
    ops: &OpsState,
) -> Vec<JoinHandle<()>> {
    let Some(client) = client else {
        return Vec::new();
    };
    vec![
        tokio::spawn(policies::follow_policies(
            client.clone(),
            Arc::clone(&ops.engine.policies),
            Arc::clone(&ops.metrics),
        )),
        tokio::spawn(policies::follow_namespaces(
            client.clone(),
            Arc::clone(&ops.engine.policies),
        )),
        tokio::spawn(policies::follow_exceptions(
            client.clone(),
            watch_namespace,
            Arc::clone(&ops.engine.policies),
        )),
    ]
}

/// The plain HTTP port (metrics and probes) on its own few connection slots;
/// it stops when the returned sender says so.
fn spawn_ops_port(
    config: &ServeConfig,
    listener: TcpListener,
    ops: OpsState,
) -> (watch::Sender<bool>, JoinHandle<()>) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let closed = ClosedCounter {
        listener: "metrics",
        family: ops.metrics.connections_closed.clone(),
    };
    let router = ops::router(ops);
    let slots = Slots::new(
        ConnectionLimits {
            max_connections: METRICS_MAX_CONNECTIONS,
            max_per_peer: METRICS_MAX_CONNECTIONS / 2,
            first_request_timeout: config.read_timeout,
            idle_timeout: config.idle_timeout,
            close_grace: config.read_timeout,
            request_lifetime: request_lifetime(config),
        },
        closed,
    );
    let builder = http_builder(config);
    let task = tokio::spawn(listener::accept_loop(
        listener,
        slots,
        stop_rx,
        config.read_timeout,
        move |tcp, _peer, slot| listener::serve_http(tcp, slot, builder.clone(), router.clone()),
    ));
    (stop_tx, task)
}

/// The status controller, when configured; it stops with the webhooks.
fn spawn_controller(
    config: &ServeConfig,
    client: Option<kube::Client>,
    ops: &OpsState,
    mut stop: watch::Receiver<bool>,
) -> Option<JoinHandle<()>> {
    let (client, controller_config, synced) =
        match (client, &config.controller, &ops.health.controller_synced) {
            (Some(client), Some(controller_config), Some(synced)) => {
                (client, controller_config.clone(), Arc::clone(synced))
            }
            _ => return None,
        };
    let stopped = async move {
        let _ = stop.wait_for(|stop| *stop).await;
    };
    Some(tokio::spawn(crate::controller::run_with_election(
        client,
        controller_config,
        Arc::clone(&ops.metrics),
        ops.engine.clone(),
        synced,
        Arc::clone(&ops.health.leading),
        stopped,
    )))
}

/// On `shutdown`: not ready at once, still serving for `delay` (the
/// apiserver keeps using open connections), then tells the webhooks to stop.
fn spawn_shutdown_delay(
    shutdown: impl Future<Output = ()> + Send + 'static,
    health: Arc<Health>,
    delay: Duration,
    stop: watch::Sender<bool>,
) {
    tokio::spawn(async move {
        shutdown.await;
        health.shutting_down.store(true, Ordering::SeqCst);
        tracing::info!(
            delay_seconds = delay.as_secs_f64(),
            "shutdown requested: not ready, still serving"
        );
        tokio::time::sleep(delay).await;
        let _ = stop.send(true);
    });
}

/// The webhooks over TLS until `stop`, then requests in flight get the grace period.
async fn serve_webhooks(
    config: &ServeConfig,
    webhook_listener: TcpListener,
    tls_config: Arc<rustls::ServerConfig>,
    webhooks: WebhookState,
    closed: ClosedCounter,
    stop: watch::Receiver<bool>,
) {
    let limits = ConnectionLimits {
        max_connections: config.max_connections,
        max_per_peer: config.max_connections_per_peer,
        first_request_timeout: config.read_timeout,
        idle_timeout: config.idle_timeout,
        close_grace: config.shutdown_grace,
        request_lifetime: request_lifetime(config),
    };
    serve_tls(
        config,
        webhook_listener,
        tls_config,
        http::router(webhooks),
        Slots::new(limits, closed),
        None,
        stop,
    )
    .await;
}

/// Send buffer of a lifecycle API connection. The kernel would otherwise
/// grow it to megabytes, which a client that reads slowly fills with old
/// events before the stream notices it fell behind; small, backpressure
/// reaches the stream within about a hundred events and it sends `resync`.
const LIFECYCLE_API_SEND_BUFFER: usize = 64 * 1024;

/// Serves `router` over TLS on `listener`'s connection slots until `stop`,
/// each connection's send buffer capped at `send_buffer` when given.
async fn serve_tls(
    config: &ServeConfig,
    listener: TcpListener,
    tls_config: Arc<rustls::ServerConfig>,
    router: axum::Router,
    slots: Arc<Slots>,
    send_buffer: Option<usize>,
    stop: watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls_config);
    let builder = http_builder(config);
    let handshake_timeout = config.read_timeout;
    listener::accept_loop(
        listener,
        slots,
        stop,
        config.shutdown_grace,
        move |tcp, peer, slot| {
            // Small HTTP/2 frames must not wait for the peer's delayed ACK (Nagle): ~40 ms at p99.
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(%peer, error = %err, "cannot set TCP_NODELAY");
            }
            if let Some(bytes) = send_buffer
                && let Err(err) = socket2::SockRef::from(&tcp).set_send_buffer_size(bytes)
            {
                tracing::debug!(%peer, error = %err, "cannot set SO_SNDBUF");
            }
            let (acceptor, builder, router) = (acceptor.clone(), builder.clone(), router.clone());
            async move {
                let handshake = tokio::time::timeout(handshake_timeout, acceptor.accept(tcp));
                let handshake = tokio::select! {
                    handshake = handshake => handshake,
                    // Made room for another connection, or shutting down.
                    () = slot.asked_to_close() => return,
                };
                let tls = match handshake {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(err)) => {
                        tracing::debug!(%peer, error = %err, "TLS handshake failed");
                        slot.ending_because(CloseReason::TlsHandshake);
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        slot.ending_because(CloseReason::TlsHandshake);
                        return;
                    }
                };
                listener::serve_http(tls, slot, builder, router).await;
            }
        },
    )
    .await;
}

/// Connections the lifecycle API's port keeps open at once: every stream
/// it allows, and room for the reads beside them.
fn lifecycle_api_connections(api: &LifecycleApiConfig) -> usize {
    api.max_streams + 64
}

/// The lifecycle API, when configured: its own watch of the roosts (every
/// replica), and its port over TLS with the webhooks' certificate. Streams
/// are long: its connections have no request lifetime, only the stream limits.
fn spawn_lifecycle_api(
    config: &ServeConfig,
    listener: Option<TcpListener>,
    client: Option<&kube::Client>,
    ops: &OpsState,
    tls_config: &Arc<rustls::ServerConfig>,
    stop: watch::Receiver<bool>,
) -> Option<[JoinHandle<()>; 2]> {
    use crate::lifecycle_api::{LifecycleApi, auth::Authorizer, hub::Hub, store};
    let (Some(api_config), Some(listener), Some(client)) =
        (&config.lifecycle_api, listener, client)
    else {
        return None;
    };
    let roosts: kube::Api<crate::controller::stored::StoredRoost> =
        match &api_config.watch_namespace {
            Some(namespace) => kube::Api::namespaced(client.clone(), namespace),
            None => kube::Api::all(client.clone()),
        };
    let roost_store = Arc::new(store::RoostStore::new(Hub::new(
        crate::lifecycle_api::epoch(),
    )));
    let watch = tokio::spawn(store::follow(roosts, Arc::clone(&roost_store)));
    let api = Arc::new(LifecycleApi::new(
        api_config.clone(),
        roost_store,
        Authorizer::new(client.clone(), api_config.audiences.clone()),
        ops.engine.clone(),
        Arc::clone(&ops.metrics),
        stop.clone(),
    ));
    let max_connections = lifecycle_api_connections(api_config);
    let slots = Slots::new(
        ConnectionLimits {
            max_connections,
            max_per_peer: max_connections,
            first_request_timeout: config.read_timeout,
            idle_timeout: config.idle_timeout,
            close_grace: config.read_timeout,
            request_lifetime: request_lifetime(config),
        },
        ClosedCounter {
            listener: "lifecycle_api",
            family: ops.metrics.connections_closed.clone(),
        },
    );
    let addr = listener.local_addr().unwrap_or(api_config.addr);
    tracing::info!(%addr, "serving the lifecycle API and dashboard over HTTPS");
    let (config, tls_config) = (config.clone(), Arc::clone(tls_config));
    let serving = tokio::spawn(async move {
        serve_tls(
            &config,
            listener,
            tls_config,
            crate::lifecycle_api::http::router(api),
            slots,
            Some(LIFECYCLE_API_SEND_BUFFER),
            stop,
        )
        .await;
    });
    Some([watch, serving])
}

/// HTTP/1.1 and HTTP/2 with the server's timeouts (idle connections are closed by [`listener`]).
fn http_builder(config: &ServeConfig) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.read_timeout);
    // hyper's HTTP/2 defaults (1 MiB windows, 200 streams) answered reviews as
    // fast as 4/8 MiB windows and 1000 streams (BENCHMARKS.md, "Admission hot
    // path"); larger windows would only let a connection buffer more unread body.
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(30));
    builder
}

/// A client for the cluster: `kubeconfig`, else `KUBECONFIG`, `~/.kube/config`
/// or the in-cluster config.
pub async fn kube_client(kubeconfig: Option<&std::path::Path>) -> Result<kube::Client> {
    let unusable = |source: crate::error::BoxError| Error::ClusterConfig {
        at: kubeconfig.map(std::path::Path::to_path_buf),
        source,
    };
    let config = match kubeconfig {
        Some(path) => {
            let kubeconfig =
                kube::config::Kubeconfig::read_from(path).map_err(|e| unusable(e.into()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .map_err(|e| unusable(e.into()))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| unusable(e.into()))?,
    };
    kube::Client::try_from(config).map_err(|e| unusable(e.into()))
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
