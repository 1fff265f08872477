//! The lifecycle API: on its own HTTPS port of `serve` (off unless
//! `--lifecycle-api-addr` is given), a JSON read API of the roosts and
//! their lifecycles (http.rs), an event stream of their changes
//! (stream.rs, fed by hub.rs), its OpenAPI description (openapi.rs) and the
//! dashboard page (page.rs). Every replica serves it from its own watch
//! (store.rs); what a caller sees is the cluster's decision (auth.rs).

pub mod auth;
pub mod http;
pub mod hub;
pub mod openapi;
pub mod page;
pub mod store;
pub mod stream;
pub mod view;

use crate::engine::Engine;
use crate::metrics::Metrics;
use auth::Authorizer;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use store::RoostStore;
use tokio::sync::{Semaphore, watch};

/// What `serve --lifecycle-api-addr` configures.
#[derive(Clone, Debug)]
pub struct LifecycleApiConfig {
    pub addr: SocketAddr,
    /// Audiences a token must be issued for; empty: the apiserver's own.
    pub audiences: Vec<String>,
    /// Origins besides the page's own that may call the API (`https://host:port`).
    pub allowed_origins: Vec<String>,
    /// Event streams open at once, in total.
    pub max_streams: usize,
    /// Event streams one user may hold open at once.
    pub max_streams_per_identity: usize,
    /// Watch roosts in this namespace only (`--watch-namespace`).
    pub watch_namespace: Option<String>,
}

/// Event streams served at once, and to one user (the flags' defaults).
pub const DEFAULT_MAX_STREAMS: usize = 256;
pub const DEFAULT_MAX_STREAMS_PER_IDENTITY: usize = 8;

impl LifecycleApiConfig {
    /// The flags' defaults on `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        LifecycleApiConfig {
            addr,
            audiences: Vec::new(),
            allowed_origins: Vec::new(),
            max_streams: DEFAULT_MAX_STREAMS,
            max_streams_per_identity: DEFAULT_MAX_STREAMS_PER_IDENTITY,
            watch_namespace: None,
        }
    }
}

/// Findings worked out at once (each may run custom rules up to the review's CEL budget).
pub const MAX_JUDGING: usize = 4;

/// Everything the API's handlers share.
pub struct LifecycleApi {
    pub config: LifecycleApiConfig,
    pub store: Arc<RoostStore>,
    pub auth: Authorizer,
    pub engine: Engine,
    pub metrics: Arc<Metrics>,
    judging: Semaphore,
    /// Open streams per user.
    streams: Mutex<HashMap<String, usize>>,
    /// True once the server stops: streams end.
    stopping: watch::Receiver<bool>,
}

impl LifecycleApi {
    pub fn new(
        config: LifecycleApiConfig,
        store: Arc<RoostStore>,
        auth: Authorizer,
        engine: Engine,
        metrics: Arc<Metrics>,
        stopping: watch::Receiver<bool>,
    ) -> Self {
        LifecycleApi {
            config,
            store,
            auth,
            engine,
            metrics,
            judging: Semaphore::new(MAX_JUDGING),
            streams: Mutex::new(HashMap::new()),
            stopping,
        }
    }
}

/// A random token that tells this process's event ids from any other's.
pub fn epoch() -> String {
    let mut bytes = [0u8; 8];
    let random = ring::rand::SystemRandom::new();
    if ring::rand::SecureRandom::fill(&random, &mut bytes).is_err() {
        // No randomness: the clock tells processes apart well enough.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        return format!("{nanos:x}");
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
