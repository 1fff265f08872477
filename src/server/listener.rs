//! Connection slots for the HTTP listeners: a bounded number of open
//! connections that no idle client can hold.
//!
//! A connection must finish its first request's headers (TLS handshake
//! included) within the read timeout and is closed once it has had no request
//! in flight for the idle timeout, whatever bytes (a partial request line, an
//! HTTP/2 preface, PING answers) it sends meanwhile. When every slot is taken,
//! the idle connection of the peer holding the most slots is closed to make
//! room, so idle sockets cannot keep the apiserver (or `/readyz`'s own
//! handshake) out. One peer may hold at most a share of the slots.

use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::conn::auto;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

/// How long connections may stay and how many there may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open connections at once.
    pub max_connections: usize,
    /// Open connections one peer address may hold.
    pub max_per_peer: usize,
    /// From accept to the end of the first request's headers.
    pub first_request_timeout: Duration,
    /// A connection with no request in flight this long is closed.
    pub idle_timeout: Duration,
    /// After a connection is asked to close, how long its requests in flight may still take.
    pub close_grace: Duration,
}

/// What one connection is doing, shared between its task and the slot table.
#[derive(Debug)]
pub struct Activity {
    in_flight: AtomicUsize,
    /// Milliseconds since the table's epoch when the last request ended (or the connection opened).
    idle_since_ms: AtomicU64,
    served_any: AtomicBool,
    closing: AtomicBool,
    close: Notify,
}

/// Held while a request is being answered.
pub struct Busy {
    activity: Arc<Activity>,
    epoch: Instant,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.activity
            .idle_since_ms
            .store(millis_since(self.epoch), Ordering::SeqCst);
        self.activity.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn millis_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[derive(Debug)]
struct Entry {
    peer: IpAddr,
    activity: Arc<Activity>,
}

#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    open: HashMap<u64, Entry>,
    per_peer: HashMap<IpAddr, usize>,
}

/// The open connections of one listener.
#[derive(Debug)]
pub struct Slots {
    limits: ConnectionLimits,
    epoch: Instant,
    table: Mutex<Table>,
    /// Woken whenever a slot is released.
    released: Notify,
}

/// One claimed slot; released when dropped.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<Slots>,
    id: u64,
    activity: Arc<Activity>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut table = self.slots.lock();
        if let Some(entry) = table.open.remove(&self.id)
            && let Some(count) = table.per_peer.get_mut(&entry.peer)
        {
            *count -= 1;
            if *count == 0 {
                table.per_peer.remove(&entry.peer);
            }
        }
        drop(table);
        self.slots.released.notify_waiters();
    }
}

impl Activity {
    /// Marks a request in flight until the returned guard is dropped.
    fn begin_request(self: &Arc<Self>, epoch: Instant) -> Busy {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.served_any.store(true, Ordering::SeqCst);
        Busy {
            activity: Arc::clone(self),
            epoch,
        }
    }
}

/// Why a connection was not given a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Every slot is taken by a connection with a request in flight.
    Full,
    /// The peer already holds its share.
    PeerFull,
}

impl Slots {
    pub fn new(limits: ConnectionLimits) -> Arc<Slots> {
        Arc::new(Slots {
            limits: ConnectionLimits {
                max_connections: limits.max_connections.max(1),
                max_per_peer: limits.max_per_peer.max(1),
                ..limits
            },
            epoch: Instant::now(),
            table: Mutex::new(Table::default()),
            released: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // A panic while holding the lock leaves the table consistent (no partial updates).
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().open.len()
    }

    /// A slot for `peer` now, or why not and whether an idle connection was
    /// asked to close to make room.
    fn try_claim(self: &Arc<Self>, peer: IpAddr) -> Result<Slot, (Refusal, bool)> {
        let mut table = self.lock();
        let held = table.per_peer.get(&peer).copied().unwrap_or(0);
        if held >= self.limits.max_per_peer {
            return Err((Refusal::PeerFull, self.close_idle(&table, Some(peer))));
        }
        if table.open.len() >= self.limits.max_connections {
            return Err((Refusal::Full, self.close_idle(&table, None)));
        }
        let id = table.next_id;
        table.next_id += 1;
        let activity = Arc::new(Activity {
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(millis_since(self.epoch)),
            served_any: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            close: Notify::new(),
        });
        table.open.insert(
            id,
            Entry {
                peer,
                activity: Arc::clone(&activity),
            },
        );
        *table.per_peer.entry(peer).or_insert(0) += 1;
        Ok(Slot {
            slots: Arc::clone(self),
            id,
            activity,
        })
    }

    /// Asks one idle connection to close: of `peer` if given, else of the
    /// peer holding the most slots; the one idle longest. False when none is idle.
    fn close_idle(&self, table: &Table, peer: Option<IpAddr>) -> bool {
        let idle = |e: &&Entry| {
            e.activity.in_flight.load(Ordering::SeqCst) == 0
                && !e.activity.closing.load(Ordering::SeqCst)
        };
        let target = table
            .open
            .values()
            .filter(idle)
            .filter(|e| peer.is_none_or(|p| e.peer == p))
            .max_by_key(|e| {
                (
                    table.per_peer.get(&e.peer).copied().unwrap_or(0),
                    u64::MAX - e.activity.idle_since_ms.load(Ordering::SeqCst),
                )
            });
        match target {
            Some(entry) => {
                entry.activity.closing.store(true, Ordering::SeqCst);
                entry.activity.close.notify_one();
                true
            }
            None => false,
        }
    }

    /// A slot for `peer`, waiting at most `wait` for one to be released. A
    /// peer at its share waits only when one of its idle connections is closing.
    pub async fn claim(self: &Arc<Self>, peer: IpAddr, wait: Duration) -> Result<Slot, Refusal> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            let (refusal, room_coming) = match self.try_claim(peer) {
                Ok(slot) => return Ok(slot),
                Err(refused) => refused,
            };
            if refusal == Refusal::PeerFull && !room_coming {
                return Err(refusal);
            }
            if tokio::time::timeout_at(deadline, released).await.is_err() {
                return Err(refusal);
            }
        }
    }

    /// Asks every connection to close (server shutdown).
    pub fn close_all(&self) {
        for entry in self.lock().open.values() {
            entry.activity.closing.store(true, Ordering::SeqCst);
            entry.activity.close.notify_one();
        }
    }

    /// Resolves when no connection is open.
    pub async fn drained(&self) {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if self.open() == 0 {
                return;
            }
            released.await;
        }
    }

    /// When this connection should be closed for idleness, if it is idle now.
    fn idle_deadline(&self, activity: &Activity) -> Option<tokio::time::Instant> {
        if activity.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let allowed = if activity.served_any.load(Ordering::SeqCst) {
            self.limits.idle_timeout
        } else {
            self.limits.first_request_timeout
        };
        let since = Duration::from_millis(activity.idle_since_ms.load(Ordering::SeqCst));
        Some(tokio::time::Instant::from_std(self.epoch + since + allowed))
    }
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Accepts connections on `listener` until `stop` turns true, serving each
/// with `serve` on a claimed slot; then asks every connection to close and
/// waits for them at most `grace`.
pub async fn accept_loop<F, Fut>(
    listener: TcpListener,
    slots: Arc<Slots>,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
    serve: F,
) where
    F: Fn(TcpStream, SocketAddr, Slot) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        let slot = tokio::select! {
            slot = slots.claim(peer.ip(), slots.limits.first_request_timeout) => slot,
            () = stopped(&mut stop) => break,
        };
        match slot {
            Ok(slot) => {
                tokio::spawn(serve(tcp, peer, slot));
            }
            Err(refusal) => {
                tracing::debug!(%peer, ?refusal, "no connection slot; closing");
            }
        }
    }
    drop(listener);
    tracing::debug!(
        connections = slots.open(),
        "stopped accepting; closing connections"
    );
    slots.close_all();
    if tokio::time::timeout(grace, slots.drained()).await.is_err() {
        tracing::warn!("grace period over; closing the remaining connections");
    }
}

/// Serves HTTP on one connection until it ends, is idle too long or is asked to close.
pub async fn serve_http<I, S>(
    io: I,
    slot: Slot,
    builder: auto::Builder<hyper_util::rt::TokioExecutor>,
    service: S,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: tower::Service<
            hyper::Request<Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let activity = Arc::clone(&slot.activity);
    let epoch = slot.slots.epoch;
    let tracked = {
        let activity = Arc::clone(&activity);
        hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let busy = activity.begin_request(epoch);
            let call = tower::ServiceExt::oneshot(service.clone(), request);
            async move {
                let response = call.await;
                drop(busy);
                response
            }
        })
    };
    let connection = builder.serve_connection(TokioIo::new(io), tracked);
    tokio::pin!(connection);
    let slots = Arc::clone(&slot.slots);
    let closing = async {
        loop {
            let close = activity.close.notified();
            match slots.idle_deadline(&activity) {
                Some(deadline) => {
                    tokio::select! {
                        _ = close => return,
                        _ = tokio::time::sleep_until(deadline) => {
                            if slots.idle_deadline(&activity).is_some_and(|d| d <= tokio::time::Instant::now()) {
                                return;
                            }
                        }
                    }
                }
                None => {
                    // A request is in flight: look again once an idle period could have passed.
                    let recheck = slots
                        .limits
                        .first_request_timeout
                        .min(slots.limits.idle_timeout);
                    tokio::select! {
                        _ = close => return,
                        _ = tokio::time::sleep(recheck) => {}
                    }
                }
            }
        }
    };
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(err) = result {
                tracing::debug!(error = %err, "connection ended with an error");
            }
            return;
        }
        _ = closing => {}
    }
    activity.closing.store(true, Ordering::SeqCst);
    connection.as_mut().graceful_shutdown();
    if tokio::time::timeout(slots.limits.close_grace, connection)
        .await
        .is_err()
    {
        tracing::debug!("connection did not close in time; dropped");
    }
    drop(slot);
}
