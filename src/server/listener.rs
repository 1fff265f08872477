//! Connection slots for the HTTP listeners: a bounded number of open
//! connections that no idle client can hold.
//!
//! A connection must finish its first request's headers (TLS handshake
//! included) within the read timeout and is closed once it has had no request
//! in flight for the idle timeout, whatever bytes (a partial request line, an
//! HTTP/2 preface, PING answers) it sends meanwhile. A slot is bounded in time,
//! not only in idleness: a request answered 408 (its body did not arrive
//! within the read timeout) closes its connection, and a request still in
//! flight after the request lifetime is answered 503 and closes it too.
//!
//! When every slot is taken, a connection of the peer holding the most slots
//! makes room, the one waiting longest: an idle one is closed (GOAWAY), one
//! with a request body still arriving (stalled) or already closing is dropped
//! at once. Nothing tells the apiserver's connections from an attacker's, so
//! busy-but-stalled sockets cannot keep the apiserver (or `/readyz`'s own
//! handshake) out any more than idle ones. Connections whose requests have
//! arrived whole and are being answered are never taken. One peer may hold
//! at most a share of the slots, and at its share it may only replace its own
//! idle or closing connections.
//!
//! A connection ends with a lingering close: after its own shutdown (TLS
//! close_notify, FIN) it reads and discards what the client still sends, for
//! at most [`LINGER_TIME`] and [`LINGER_BYTES`], so that a client still sending
//! a body the server refused (413) reads the answer rather than a reset.

use crate::metrics::ConnectionLabels;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use hyper::body::{Body as _, Bytes, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use hyper_util::server::conn::auto;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

/// After a connection's own shutdown, how long it goes on reading (and
/// discarding) what the client still sends before closing.
pub const LINGER_TIME: Duration = Duration::from_secs(2);
/// And at most how many bytes it reads so (a refused 7 MiB body and more).
pub const LINGER_BYTES: usize = 8 * 1024 * 1024;
/// A claim waiting for a slot looks again this often for a connection that
/// has become idle or stalled meanwhile (releases wake it at once).
const CLAIM_RECHECK: Duration = Duration::from_millis(100);

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
    /// A request still in flight this long is answered 503 and closes its connection.
    pub request_lifetime: Duration,
}

/// Why a connection ended: the `reason` label of
/// `roost_keeper_connections_closed_total` (bounded: these values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum CloseReason {
    /// Ended without the server asking: the client closed it, asked for it
    /// (`Connection: close`), or it failed.
    Client = 1,
    /// The TLS handshake failed or took longer than the read timeout.
    TlsHandshake,
    /// No first request's headers within the read timeout.
    NoRequest,
    /// No request in flight for the idle timeout.
    Idle,
    /// A request's body did not arrive within the read timeout (answered 408).
    BodyTimeout,
    /// A request was still in flight after the request lifetime (answered 503).
    RequestLifetime,
    /// Idle, closed to make room for a new connection.
    EvictedIdle,
    /// A request body still arriving: dropped to make room.
    EvictedStalled,
    /// The server is shutting down.
    Shutdown,
    /// Not given a slot: every one was busy.
    NoSlot,
    /// Not given a slot: its peer already held its share.
    PeerShare,
    /// A long response (an event stream) the client stopped reading.
    WriteStalled,
}

impl CloseReason {
    const ALL: [CloseReason; 12] = [
        CloseReason::Client,
        CloseReason::TlsHandshake,
        CloseReason::NoRequest,
        CloseReason::Idle,
        CloseReason::BodyTimeout,
        CloseReason::RequestLifetime,
        CloseReason::EvictedIdle,
        CloseReason::EvictedStalled,
        CloseReason::Shutdown,
        CloseReason::NoSlot,
        CloseReason::PeerShare,
        CloseReason::WriteStalled,
    ];

    pub fn label(self) -> &'static str {
        match self {
            CloseReason::Client => "client",
            CloseReason::TlsHandshake => "tls_handshake",
            CloseReason::NoRequest => "no_request",
            CloseReason::Idle => "idle",
            CloseReason::BodyTimeout => "body_timeout",
            CloseReason::RequestLifetime => "request_lifetime",
            CloseReason::EvictedIdle => "evicted_idle",
            CloseReason::EvictedStalled => "evicted_stalled",
            CloseReason::Shutdown => "shutdown",
            CloseReason::NoSlot => "no_slot",
            CloseReason::PeerShare => "peer_share",
            CloseReason::WriteStalled => "write_stalled",
        }
    }

    fn from_u8(value: u8) -> Option<CloseReason> {
        CloseReason::ALL.into_iter().find(|r| *r as u8 == value)
    }
}

/// Counts connections as they end, for one listener.
#[derive(Clone, Debug, Default)]
pub struct ClosedCounter {
    pub listener: &'static str,
    pub family: Family<ConnectionLabels, Counter>,
}

impl ClosedCounter {
    fn count(&self, reason: CloseReason) {
        self.family
            .get_or_create(&ConnectionLabels {
                listener: self.listener,
                reason: reason.label(),
            })
            .inc();
    }
}

/// What one connection is doing, shared between its task and the slot table.
#[derive(Debug)]
pub struct Activity {
    in_flight: AtomicUsize,
    /// Milliseconds since the table's epoch when the last request ended (or the connection opened).
    idle_since_ms: AtomicU64,
    served_any: AtomicBool,
    /// Requests whose body is still arriving.
    reading: AtomicUsize,
    /// Milliseconds since the epoch when `reading` last rose from 0.
    reading_since_ms: AtomicU64,
    /// Asked to close gracefully (HTTP/2 GOAWAY, HTTP/1.1 no keep-alive); `close` wakes its task.
    closing: AtomicBool,
    close: Notify,
    /// Asked to close now, whatever is in flight; `drop_now` wakes its task.
    dropping: AtomicBool,
    drop_now: Notify,
    /// Why it was asked to close ([`CloseReason`] as `u8`; 0: not asked).
    reason: AtomicU8,
}

/// Held while a request's body is still arriving.
struct Reading {
    activity: Arc<Activity>,
}

impl Drop for Reading {
    fn drop(&mut self) {
        self.activity.reading.fetch_sub(1, Ordering::SeqCst);
    }
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
    closed: ClosedCounter,
}

/// One claimed slot; released when dropped.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<Slots>,
    id: u64,
    activity: Arc<Activity>,
}

impl Slot {
    /// Records why the connection is ending (a failed TLS handshake) unless a reason is already known.
    pub fn ending_because(&self, reason: CloseReason) {
        self.activity.note_reason(reason);
    }

    /// Resolves once the connection is asked to close or to drop (to make
    /// room, or at shutdown): for what runs before HTTP, the TLS handshake.
    pub async fn asked_to_close(&self) {
        let activity = &self.activity;
        loop {
            let close = activity.close.notified();
            let drop_now = activity.drop_now.notified();
            if activity.closing.load(Ordering::SeqCst) {
                return;
            }
            tokio::select! {
                () = close => {}
                () = drop_now => {}
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let reason = CloseReason::from_u8(self.activity.reason.load(Ordering::SeqCst))
            .unwrap_or(CloseReason::Client);
        self.slots.closed.count(reason);
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
    fn new(now_ms: u64) -> Activity {
        Activity {
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(now_ms),
            served_any: AtomicBool::new(false),
            reading: AtomicUsize::new(0),
            reading_since_ms: AtomicU64::new(now_ms),
            closing: AtomicBool::new(false),
            close: Notify::new(),
            dropping: AtomicBool::new(false),
            drop_now: Notify::new(),
            reason: AtomicU8::new(0),
        }
    }

    /// Marks a request in flight until the returned guard is dropped.
    fn begin_request(self: &Arc<Self>, epoch: Instant) -> Busy {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.served_any.store(true, Ordering::SeqCst);
        Busy {
            activity: Arc::clone(self),
            epoch,
        }
    }

    /// Marks a request body as arriving until the returned guard is dropped.
    fn begin_reading(self: &Arc<Self>, epoch: Instant) -> Reading {
        if self.reading.fetch_add(1, Ordering::SeqCst) == 0 {
            self.reading_since_ms
                .store(millis_since(epoch), Ordering::SeqCst);
        }
        Reading {
            activity: Arc::clone(self),
        }
    }

    /// Records `reason` unless one is already known.
    fn note_reason(&self, reason: CloseReason) {
        let _ = self
            .reason
            .compare_exchange(0, reason as u8, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Asks the connection to close gracefully: requests in flight may finish.
    fn ask_close(&self, reason: CloseReason) {
        self.note_reason(reason);
        self.closing.store(true, Ordering::SeqCst);
        self.close.notify_one();
    }

    /// Asks the connection to close now, dropping what is in flight.
    fn ask_drop(&self, reason: CloseReason) {
        self.note_reason(reason);
        self.closing.store(true, Ordering::SeqCst);
        self.dropping.store(true, Ordering::SeqCst);
        self.drop_now.notify_one();
    }
}

/// Why a connection was not given a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotDenied {
    /// Every slot is taken, and none can be freed at once.
    Full,
    /// The peer already holds its share.
    PeerFull,
}

impl Slots {
    pub fn new(limits: ConnectionLimits, closed: ClosedCounter) -> Arc<Slots> {
        Arc::new(Slots {
            limits: ConnectionLimits {
                max_connections: limits.max_connections.max(1),
                max_per_peer: limits.max_per_peer.max(1),
                ..limits
            },
            epoch: Instant::now(),
            table: Mutex::new(Table::default()),
            released: Notify::new(),
            closed,
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

    /// A slot for `peer` now, or why not and whether a connection was asked
    /// to close to make room.
    fn try_claim(self: &Arc<Self>, peer: IpAddr) -> Result<Slot, (SlotDenied, bool)> {
        let mut table = self.lock();
        let held = table.per_peer.get(&peer).copied().unwrap_or(0);
        if held >= self.limits.max_per_peer {
            return Err((SlotDenied::PeerFull, self.make_room(&table, Some(peer))));
        }
        if table.open.len() >= self.limits.max_connections {
            return Err((SlotDenied::Full, self.make_room(&table, None)));
        }
        let id = table.next_id;
        table.next_id += 1;
        let activity = Arc::new(Activity::new(millis_since(self.epoch)));
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

    /// Asks one connection to go, to make room: of `peer` if given (then
    /// only an idle or closing one), else of the peer holding the most
    /// slots (an idle, closing or stalled one); the one waiting longest. An
    /// idle connection is closed gracefully, a stalled or closing one dropped.
    /// False when no connection may go.
    fn make_room(&self, table: &Table, peer: Option<IpAddr>) -> bool {
        let now = millis_since(self.epoch);
        // (drop rather than close, waiting since) for a connection that may go.
        let may_go = |e: &Entry| -> Option<(bool, u64)> {
            let a = &e.activity;
            if a.dropping.load(Ordering::SeqCst) {
                return None;
            }
            let closing = a.closing.load(Ordering::SeqCst);
            let idle = a.in_flight.load(Ordering::SeqCst) == 0;
            if peer.is_none() && a.reading.load(Ordering::SeqCst) > 0 {
                return Some((true, a.reading_since_ms.load(Ordering::SeqCst)));
            }
            idle.then(|| (closing, a.idle_since_ms.load(Ordering::SeqCst)))
        };
        let target = table
            .open
            .values()
            .filter(|e| peer.is_none_or(|p| e.peer == p))
            .filter_map(|e| may_go(e).map(|(drop, since)| (e, drop, since)))
            .max_by_key(|(e, _, since)| {
                (
                    table.per_peer.get(&e.peer).copied().unwrap_or(0),
                    now.saturating_sub(*since),
                )
            });
        match target {
            Some((entry, true, _)) => {
                entry.activity.ask_drop(CloseReason::EvictedStalled);
                true
            }
            Some((entry, false, _)) => {
                entry.activity.ask_close(CloseReason::EvictedIdle);
                true
            }
            None => false,
        }
    }

    /// A slot for `peer`, waiting at most `wait` for one to be released. A
    /// peer at its share waits only when one of its connections is going.
    pub async fn claim(self: &Arc<Self>, peer: IpAddr, wait: Duration) -> Result<Slot, SlotDenied> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            let (denied, room_coming) = match self.try_claim(peer) {
                Ok(slot) => return Ok(slot),
                Err(refused) => refused,
            };
            if denied == SlotDenied::PeerFull && !room_coming {
                return Err(denied);
            }
            let recheck = deadline.min(tokio::time::Instant::now() + CLAIM_RECHECK);
            tokio::select! {
                () = released => {}
                () = tokio::time::sleep_until(recheck) => {
                    if recheck >= deadline {
                        return Err(denied);
                    }
                }
            }
        }
    }

    /// Asks every connection to close (server shutdown).
    pub fn close_all(&self) {
        for entry in self.lock().open.values() {
            entry.activity.ask_close(CloseReason::Shutdown);
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
            Err(denied) => {
                tracing::debug!(%peer, ?denied, "no connection slot; closing");
                slots.closed.count(match denied {
                    SlotDenied::Full => CloseReason::NoSlot,
                    SlotDenied::PeerFull => CloseReason::PeerShare,
                });
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

/// A request body that tells its connection while it is still arriving.
struct TrackedBody {
    inner: Incoming,
    reading: Option<Reading>,
}

impl hyper::body::Body for TrackedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) || this.inner.is_end_stream() {
            this.reading = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps its request counted in flight until it is
/// sent (or dropped).
struct RespondingBody {
    inner: axum::body::Body,
    busy: Option<Busy>,
}

impl hyper::body::Body for RespondingBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            this.busy = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A connection's socket with a lingering close: [`AsyncWrite::poll_shutdown`]
/// shuts the socket's sending side (TLS close_notify, FIN), then reads and
/// discards what the client still sends until it closes, for at most
/// [`LINGER_TIME`] and [`LINGER_BYTES`]. Closing a socket with unread input
/// makes the kernel answer with a reset, which can destroy the response the
/// client has not read yet (a 413 sent while the client is still sending).
struct Lingering<I> {
    io: I,
    linger: Option<Linger>,
}

struct Linger {
    shut: bool,
    until: Pin<Box<tokio::time::Sleep>>,
    bytes_left: usize,
}

impl<I: AsyncRead + Unpin> AsyncRead for Lingering<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Lingering<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let linger = this.linger.get_or_insert_with(|| Linger {
            shut: false,
            until: Box::pin(tokio::time::sleep(LINGER_TIME)),
            bytes_left: LINGER_BYTES,
        });
        if !linger.shut {
            ready!(Pin::new(&mut this.io).poll_shutdown(cx))?;
            linger.shut = true;
        }
        let mut scratch = [0u8; 8192];
        loop {
            if linger.bytes_left == 0 || linger.until.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match ready!(Pin::new(&mut this.io).poll_read(cx, &mut buf)) {
                Ok(()) if !buf.filled().is_empty() => {
                    linger.bytes_left = linger.bytes_left.saturating_sub(buf.filled().len());
                }
                // The client closed (or failed): nothing left to wait for.
                Ok(()) | Err(_) => return Poll::Ready(Ok(())),
            }
        }
    }
}

/// The answer to a request still in flight after the request lifetime.
fn too_long(lifetime: Duration) -> axum::response::Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "request still in flight after {}s; closing the connection",
            lifetime.as_secs_f64()
        ),
    )
        .into_response()
}

/// Resolves when the connection should close gracefully: it was asked to, or
/// it has been idle too long (the reason is then recorded).
async fn close_requested(slots: &Slots, activity: &Activity) {
    loop {
        let close = activity.close.notified();
        if activity.closing.load(Ordering::SeqCst) {
            return;
        }
        match slots.idle_deadline(activity) {
            Some(deadline) => {
                tokio::select! {
                    _ = close => return,
                    _ = tokio::time::sleep_until(deadline) => {
                        if slots.idle_deadline(activity).is_some_and(|d| d <= tokio::time::Instant::now()) {
                            activity.note_reason(if activity.served_any.load(Ordering::SeqCst) {
                                CloseReason::Idle
                            } else {
                                CloseReason::NoRequest
                            });
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
}

/// What answers the requests of one connection (the axum router).
pub trait HttpService:
    tower::Service<
        hyper::Request<axum::body::Body>,
        Response = axum::response::Response,
        Error = std::convert::Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static
{
}

impl<S> HttpService for S where
    S: tower::Service<
            hyper::Request<axum::body::Body>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + 'static
{
}

/// Serves HTTP on one connection until it ends, is idle too long or is asked
/// to close; its slot is released once the socket is closed.
pub async fn serve_http<I, S>(
    io: I,
    slot: Slot,
    builder: auto::Builder<hyper_util::rt::TokioExecutor>,
    service: S,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: HttpService,
{
    serve_connection(io, &slot, builder, service).await;
    drop(slot);
}

async fn serve_connection<I, S>(
    io: I,
    slot: &Slot,
    builder: auto::Builder<hyper_util::rt::TokioExecutor>,
    service: S,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: HttpService,
{
    let (activity, slots) = (&slot.activity, &slot.slots);
    let (epoch, lifetime) = (slots.epoch, slots.limits.request_lifetime);
    // `service`, keeping `activity` informed: requests in flight, bodies still
    // arriving; a 408 or a request past its lifetime asks the connection to close.
    // One per connection, handed to each of its requests (an Arc's clone).
    let control = {
        let weak = Arc::downgrade(activity);
        crate::connection::ConnectionControl::new(move || {
            if let Some(activity) = weak.upgrade() {
                activity.ask_drop(CloseReason::WriteStalled);
            }
        })
    };
    let tracked = {
        let activity = Arc::clone(activity);
        hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let busy = activity.begin_request(epoch);
            let mut request = request.map(|inner| {
                let reading = (!inner.is_end_stream()).then(|| activity.begin_reading(epoch));
                axum::body::Body::new(TrackedBody { inner, reading })
            });
            request.extensions_mut().insert(control.clone());
            let call = tower::ServiceExt::oneshot(service.clone(), request);
            let activity = Arc::clone(&activity);
            async move {
                let response = match tokio::time::timeout(lifetime, call).await {
                    Ok(Ok(response)) => response,
                    Ok(Err(never)) => match never {},
                    Err(_) => {
                        activity.ask_close(CloseReason::RequestLifetime);
                        too_long(lifetime)
                    }
                };
                // RFC 9110 §15.5.9: a 408 leaves the connection unusable; and a
                // client whose bodies never arrive must not keep its slot by
                // opening stream after stream.
                if response.status() == StatusCode::REQUEST_TIMEOUT {
                    activity.ask_close(CloseReason::BodyTimeout);
                }
                // In flight until its body is sent: a streamed response is not idle.
                let response = response.map(|inner| {
                    axum::body::Body::new(RespondingBody {
                        inner,
                        busy: Some(busy),
                    })
                });
                Ok::<_, std::convert::Infallible>(response)
            }
        })
    };
    let io = Lingering { io, linger: None };
    let connection = builder.serve_connection(TokioIo::new(io), tracked);
    tokio::pin!(connection);
    let drop_now = activity.drop_now.notified();
    tokio::pin!(drop_now);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(err) = result {
                tracing::debug!(error = %err, "connection ended with an error");
            }
            return;
        }
        () = drop_now.as_mut() => return,
        () = close_requested(slots, activity) => {}
    }
    activity.closing.store(true, Ordering::SeqCst);
    connection.as_mut().graceful_shutdown();
    tokio::select! {
        ended = tokio::time::timeout(slots.limits.close_grace, connection.as_mut()) => {
            if ended.is_err() {
                tracing::debug!("connection did not close in time; dropped");
            }
        }
        () = drop_now.as_mut() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn limits(max_connections: usize, max_per_peer: usize) -> ConnectionLimits {
        ConnectionLimits {
            max_connections,
            max_per_peer,
            first_request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            close_grace: Duration::from_secs(30),
            request_lifetime: Duration::from_secs(60),
        }
    }

    fn peer(n: u8) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, n))
    }

    fn counted(closed: &ClosedCounter, reason: CloseReason) -> u64 {
        closed
            .family
            .get_or_create(&ConnectionLabels {
                listener: closed.listener,
                reason: reason.label(),
            })
            .get()
    }

    #[test]
    fn at_capacity_the_busiest_peers_longest_stalled_connection_makes_room() {
        let slots = Slots::new(limits(4, 3), ClosedCounter::default());
        let (a1, a2, a3) = (
            slots.try_claim(peer(2)).unwrap(),
            slots.try_claim(peer(2)).unwrap(),
            slots.try_claim(peer(2)).unwrap(),
        );
        let b1 = slots.try_claim(peer(3)).unwrap();
        // Every connection has a request in flight; b1's and a2's bodies are still arriving.
        let busy: Vec<Busy> = [&a1, &a2, &a3, &b1]
            .iter()
            .map(|s| s.activity.begin_request(slots.epoch))
            .collect();
        let _b1_reading = b1.activity.begin_reading(slots.epoch);
        let _a2_reading = a2.activity.begin_reading(slots.epoch);
        // Peer 2 is at its share: it may replace only its idle or closing connections.
        assert_eq!(
            slots.try_claim(peer(2)).unwrap_err(),
            (SlotDenied::PeerFull, false)
        );
        // A newcomer: the stalled connection of the peer holding the most slots is dropped.
        assert_eq!(
            slots.try_claim(peer(9)).unwrap_err(),
            (SlotDenied::Full, true)
        );
        let dropping = |s: &Slot| s.activity.dropping.load(Ordering::SeqCst);
        assert!(dropping(&a2));
        assert!(!dropping(&a1) && !dropping(&a3) && !dropping(&b1));
        // The next newcomer takes the other stalled one; then none may go.
        assert_eq!(
            slots.try_claim(peer(9)).unwrap_err(),
            (SlotDenied::Full, true)
        );
        assert!(dropping(&b1));
        assert_eq!(
            slots.try_claim(peer(9)).unwrap_err(),
            (SlotDenied::Full, false)
        );
        // A connection whose requests have all arrived is never taken; once idle, it is closed gracefully.
        drop(busy);
        assert_eq!(
            slots.try_claim(peer(9)).unwrap_err(),
            (SlotDenied::Full, true)
        );
        let closing = [&a1, &a3]
            .iter()
            .filter(|s| s.activity.closing.load(Ordering::SeqCst))
            .count();
        assert_eq!(closing, 1);
        assert!(!dropping(&a1) && !dropping(&a3));
    }

    /// A listener on a free loopback port whose every request is answered by `service`.
    async fn serve<S>(limits: ConnectionLimits, closed: ClosedCounter, service: S) -> SocketAddr
    where
        S: HttpService,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let slots = Slots::new(limits, closed);
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(async move {
            accept_loop(
                listener,
                slots,
                stopped,
                Duration::ZERO,
                move |tcp, _, slot| {
                    let builder = auto::Builder::new(hyper_util::rt::TokioExecutor::new());
                    serve_http(tcp, slot, builder, service.clone())
                },
            )
            .await;
            drop(stop);
        });
        addr
    }

    #[tokio::test]
    async fn a_request_in_flight_past_its_lifetime_is_answered_and_closes_its_connection() {
        let closed = ClosedCounter {
            listener: "test",
            family: Family::default(),
        };
        let never = tower::service_fn(|_: hyper::Request<axum::body::Body>| {
            std::future::pending::<Result<axum::response::Response, std::convert::Infallible>>()
        });
        let addr = serve(
            ConnectionLimits {
                request_lifetime: Duration::from_millis(500),
                ..limits(4, 4)
            },
            closed.clone(),
            never,
        )
        .await;
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut reply = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut reply)).await;
        assert!(read.is_ok(), "the connection stayed open");
        let reply = String::from_utf8_lossy(&reply);
        assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
        for _ in 0..100 {
            if counted(&closed, CloseReason::RequestLifetime) == 1 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the close was not counted as request_lifetime");
    }
}
