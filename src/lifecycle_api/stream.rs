//! `GET /api/v1/stream`: Server-Sent Events over a response a page reads
//! with `fetch` (so it can send the Authorization header). Each stream sees
//! the events of the namespaces its caller may read, re-checked as the
//! access answers expire; the token itself is reviewed again every
//! [`REAUTHENTICATE_EVERY`]. A stream is long by design: what bounds it is
//! the per-user and total limits, the shared ring it reads from (a slow
//! reader is told to resync instead of buffering), and the write-stall
//! watchdog that drops a connection whose client stopped reading.

use super::LifecycleApi;
use super::auth::Identity;
use super::http::{ApiError, StreamSlot, caller, open_stream_slot, readable};
use super::hub::{Resync, StreamEvent};
use crate::connection::ConnectionControl;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::HeaderValue;
use axum::http::{HeaderMap, Request, Uri};
use axum::response::Response;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// A comment line sent when nothing else was: keeps proxies from closing
/// an idle stream and shows the client the stream is alive.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(15);
/// How often a stream's token is reviewed again.
pub const REAUTHENTICATE_EVERY: Duration = Duration::from_secs(60);
/// A stream whose body was not asked for more this long: its client stopped
/// reading (a reading client is polled at least every heartbeat). Its
/// connection is dropped.
pub const WRITE_STALL: Duration = Duration::from_secs(45);

const HEARTBEAT: &[u8] = b": heartbeat\n\n";

#[derive(serde::Deserialize)]
pub struct StreamParams {
    namespace: Option<String>,
}

/// Opens a stream (checks, limits, then the body).
pub async fn open(
    State(api): State<Arc<LifecycleApi>>,
    headers: HeaderMap,
    uri: Uri,
    Query(params): Query<StreamParams>,
    request: Request<Body>,
) -> Result<Response, ApiError> {
    let who = caller(&api, &headers, &uri).await?;
    // A namespace asked for by name must be readable (403 otherwise); without
    // one, each event is checked as it comes.
    readable(&api, &who, params.namespace.as_deref()).await?;
    let token = super::auth::bearer(headers.get(axum::http::header::AUTHORIZATION))?.to_owned();
    let slot = open_stream_slot(&api, &who)?;
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let subscription = api.store.hub.subscribe(last_event_id.as_deref());
    let mut pending: VecDeque<Pending> = VecDeque::new();
    if let Some(resync) = subscription.resync {
        pending.push_back(Pending::Resync(resync));
    }
    pending.extend(subscription.replay.into_iter().map(Pending::Event));
    let polled = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    if let Some(control) = request.extensions().get::<ConnectionControl>().cloned() {
        tokio::spawn(watch_for_stall(
            Arc::downgrade(&polled),
            started,
            WRITE_STALL,
            move || control.drop_stalled(),
        ));
    }
    let state = Stream {
        api: Arc::clone(&api),
        who,
        token,
        namespace: params.namespace,
        pending,
        live: subscription.live,
        heartbeat: tokio::time::interval_at(
            tokio::time::Instant::now() + HEARTBEAT_EVERY,
            HEARTBEAT_EVERY,
        ),
        reviewed: Instant::now(),
        polled,
        started,
        _slot: slot,
    };
    let body = futures::stream::unfold(state, |mut state| async move {
        let frame = state.next_frame().await?;
        Some((Ok::<_, std::convert::Infallible>(frame), state))
    });
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        axum::http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    // Tells nginx-style proxies not to buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

enum Pending {
    Resync(Resync),
    Event(Arc<StreamEvent>),
}

struct Stream {
    api: Arc<LifecycleApi>,
    who: Arc<Identity>,
    /// Kept to review it again, in memory only.
    token: String,
    /// The namespace asked for, if any.
    namespace: Option<String>,
    pending: VecDeque<Pending>,
    live: broadcast::Receiver<Arc<StreamEvent>>,
    heartbeat: tokio::time::Interval,
    /// When the token was last reviewed.
    reviewed: Instant,
    /// Milliseconds since `started` at the last poll (the watchdog reads it).
    polled: Arc<AtomicU64>,
    started: Instant,
    _slot: StreamSlot,
}

impl Stream {
    /// The next frame to send; `None` ends the stream.
    async fn next_frame(&mut self) -> Option<Bytes> {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.polled.store(now, Ordering::Relaxed);
        loop {
            match self.pending.pop_front() {
                Some(Pending::Resync(resync)) => return Some(self.resync(resync)),
                Some(Pending::Event(event)) => {
                    if self.shows(&event).await? {
                        return Some(self.sent(event.frame.clone()));
                    }
                    continue;
                }
                None => {}
            }
            let mut stopping = self.api.stopping.clone();
            if *stopping.borrow_and_update() {
                return None;
            }
            tokio::select! {
                received = self.live.recv() => match received {
                    Ok(event) => {
                        if self.shows(&event).await? {
                            return Some(self.sent(event.frame.clone()));
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        return Some(self.resync(Resync::Lagged));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = self.heartbeat.tick() => {
                    if self.reviewed.elapsed() >= REAUTHENTICATE_EVERY {
                        self.reauthenticate().await?;
                    }
                    return Some(Bytes::from_static(HEARTBEAT));
                }
                // The flag only ever turns true.
                _ = stopping.changed() => return None,
            }
        }
    }

    fn sent(&self, frame: Bytes) -> Bytes {
        self.api.metrics.lifecycle_api_stream_events.inc();
        frame
    }

    fn resync(&self, resync: Resync) -> Bytes {
        self.api
            .metrics
            .lifecycle_api_resyncs
            .get_or_create(&crate::metrics::ReasonLabel {
                reason: resync.as_str(),
            })
            .inc();
        resync.frame()
    }

    /// Whether the caller may see `event`; `None` ends the stream (the
    /// cluster could not say).
    async fn shows(&mut self, event: &StreamEvent) -> Option<bool> {
        if self
            .namespace
            .as_ref()
            .is_some_and(|ns| *ns != event.namespace)
        {
            return Some(false);
        }
        let auth = &self.api.auth;
        // Cached answers: a revoked binding stops the events within the cache's
        // lifetime, and a namespace made readable later starts them.
        match auth.may_read(&self.who, "").await {
            Ok(true) => Some(true),
            Ok(false) => auth.may_read(&self.who, &event.namespace).await.ok(),
            Err(_) => None,
        }
    }

    /// Reviews the token again; `None` (the stream ends) when it is no longer accepted.
    async fn reauthenticate(&mut self) -> Option<()> {
        self.reviewed = Instant::now();
        self.api.auth.authenticate(&self.token).await.ok().map(drop)
    }
}

/// Calls `on_stall` (drops the connection) when the stream has not been
/// polled for `stall`; ends with the stream.
async fn watch_for_stall(
    polled: std::sync::Weak<AtomicU64>,
    started: Instant,
    stall: Duration,
    on_stall: impl FnOnce(),
) {
    let mut every = tokio::time::interval(stall / 3);
    loop {
        every.tick().await;
        let Some(polled) = polled.upgrade() else {
            return;
        };
        let last = Duration::from_millis(polled.load(Ordering::Relaxed));
        if started.elapsed().saturating_sub(last) > stall {
            tracing::debug!("lifecycle API: a stream's client stopped reading; connection dropped");
            on_stall();
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// An attacker opens a stream and never reads: its connection is dropped.
    #[tokio::test]
    async fn a_stream_nobody_reads_is_dropped_and_a_read_one_is_not() {
        let stall = Duration::from_millis(300);
        let started = Instant::now();
        let (stalled, read) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (dropped_stalled, dropped_read) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let flag = |f: &Arc<AtomicBool>| {
            let f = Arc::clone(f);
            move || f.store(true, Ordering::SeqCst)
        };
        let watchers = [
            tokio::spawn(watch_for_stall(
                Arc::downgrade(&stalled),
                started,
                stall,
                flag(&dropped_stalled),
            )),
            tokio::spawn(watch_for_stall(
                Arc::downgrade(&read),
                started,
                stall,
                flag(&dropped_read),
            )),
        ];
        // The read stream is polled every 50 ms for a second.
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            read.store(
                u64::try_from(started.elapsed().as_millis()).unwrap(),
                Ordering::Relaxed,
            );
        }
        assert!(
            dropped_stalled.load(Ordering::SeqCst),
            "the unread stream was dropped"
        );
        assert!(
            !dropped_read.load(Ordering::SeqCst),
            "the read stream was left alone"
        );
        assert!(watchers[0].is_finished());
        // A stream that ended takes its watchdog with it.
        drop(read);
        tokio::time::sleep(stall).await;
        assert!(watchers[1].is_finished());
        assert!(!dropped_read.load(Ordering::SeqCst));
    }
}
