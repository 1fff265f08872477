//! The stream's events, numbered, fanned out to every open stream and kept
//! for a while so a client can resume with `Last-Event-ID`.
//!
//! One broadcast ring is shared by all streams: a client that falls more
//! than [`LIVE_CAPACITY`] events behind loses its place (no per-client
//! buffer grows) and is told to resync. The last [`REPLAY_CAPACITY`] events
//! are also kept for resumption; an id from another replica or an earlier
//! process (another epoch), or older than what is kept, gets a resync too:
//! never a silent gap.

use axum::body::Bytes;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::broadcast;

/// Events a stream may fall behind before it is told to resync.
pub const LIVE_CAPACITY: usize = 1024;
/// Events kept for `Last-Event-ID`.
pub const REPLAY_CAPACITY: usize = 1024;

/// One event, encoded once for every stream.
#[derive(Debug)]
pub struct StreamEvent {
    pub seq: u64,
    /// The namespace whose readers may see it.
    pub namespace: String,
    /// The SSE frame: `id`, `event`, `data` and the blank line.
    pub frame: Bytes,
}

/// Why a stream must list again before it can trust what follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resync {
    /// The client read too slowly and events it never saw were dropped.
    Lagged,
    /// The `Last-Event-ID` is not one of this process's ids (another replica, a restart).
    UnknownEventId,
    /// The `Last-Event-ID` is older than the events kept.
    Expired,
}

impl Resync {
    pub fn as_str(self) -> &'static str {
        match self {
            Resync::Lagged => "lagged",
            Resync::UnknownEventId => "unknown_event_id",
            Resync::Expired => "expired",
        }
    }

    /// The SSE frame telling the client to list again (no id: it is not an event to resume from).
    pub fn frame(self) -> Bytes {
        Bytes::from(format!(
            "event: resync\ndata: {{\"reason\":\"{}\"}}\n\n",
            self.as_str()
        ))
    }
}

/// Where a new stream starts.
pub struct Subscription {
    /// Events after the client's `Last-Event-ID`, to send first.
    pub replay: Vec<Arc<StreamEvent>>,
    /// Set when the client must list again first.
    pub resync: Option<Resync>,
    pub live: broadcast::Receiver<Arc<StreamEvent>>,
}

struct Kept {
    next_seq: u64,
    recent: VecDeque<Arc<StreamEvent>>,
}

/// The numbering, the replay buffer and the fan-out.
pub struct Hub {
    /// Distinguishes this process's ids from any other's.
    epoch: String,
    kept: Mutex<Kept>,
    sender: broadcast::Sender<Arc<StreamEvent>>,
}

impl Hub {
    /// `epoch` must differ between processes (a random or time-based token).
    pub fn new(epoch: String) -> Self {
        Hub {
            epoch,
            kept: Mutex::new(Kept {
                next_seq: 1,
                recent: VecDeque::with_capacity(REPLAY_CAPACITY),
            }),
            sender: broadcast::channel(LIVE_CAPACITY).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Kept> {
        self.kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn id(&self, seq: u64) -> String {
        format!("{}-{seq}", self.epoch)
    }

    /// The id of the last event published: a client that listed now and
    /// resumes from it misses nothing.
    pub fn last_id(&self) -> String {
        self.id(self.lock().next_seq - 1)
    }

    /// Numbers, encodes and sends one event (`data` is one line of JSON).
    pub fn publish(&self, name: &str, namespace: &str, data: &serde_json::Value) {
        let mut kept = self.lock();
        let seq = kept.next_seq;
        kept.next_seq += 1;
        let frame = Bytes::from(format!(
            "id: {}\nevent: {name}\ndata: {data}\n\n",
            self.id(seq)
        ));
        let event = Arc::new(StreamEvent {
            seq,
            namespace: namespace.to_owned(),
            frame,
        });
        if kept.recent.len() == REPLAY_CAPACITY {
            kept.recent.pop_front();
        }
        kept.recent.push_back(Arc::clone(&event));
        // Sent under the lock, so a subscriber sees each event once: in its replay or live.
        let _ = self.sender.send(event);
    }

    /// A new stream, resuming after `last_event_id` when given.
    pub fn subscribe(&self, last_event_id: Option<&str>) -> Subscription {
        let kept = self.lock();
        let live = self.sender.subscribe();
        let Some(id) = last_event_id else {
            return Subscription {
                replay: Vec::new(),
                resync: None,
                live,
            };
        };
        let seq = id
            .strip_prefix(self.epoch.as_str())
            .and_then(|rest| rest.strip_prefix('-'))
            .and_then(|seq| seq.parse::<u64>().ok())
            .filter(|seq| *seq < kept.next_seq);
        let (replay, resync) = match seq {
            None => (Vec::new(), Some(Resync::UnknownEventId)),
            Some(seq) => {
                let oldest = kept.recent.front().map_or(kept.next_seq, |e| e.seq);
                if seq + 1 < oldest {
                    (Vec::new(), Some(Resync::Expired))
                } else {
                    let replay = kept
                        .recent
                        .iter()
                        .filter(|e| e.seq > seq)
                        .cloned()
                        .collect();
                    (replay, None)
                }
            }
        };
        Subscription {
            replay,
            resync,
            live,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn frames(events: &[Arc<StreamEvent>]) -> Vec<String> {
        events
            .iter()
            .map(|e| String::from_utf8_lossy(&e.frame).into_owned())
            .collect()
    }

    #[test]
    fn events_are_numbered_and_framed_as_sse() {
        let hub = Hub::new("e1".into());
        assert_eq!(hub.last_id(), "e1-0");
        let mut sub = hub.subscribe(None);
        hub.publish("phase", "ns", &json!({"to": "Ready"}));
        let event = sub.live.try_recv().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&event.frame),
            "id: e1-1\nevent: phase\ndata: {\"to\":\"Ready\"}\n\n"
        );
        assert_eq!(event.namespace, "ns");
        assert_eq!(hub.last_id(), "e1-1");
    }

    #[test]
    fn a_known_id_resumes_with_what_followed_it() {
        let hub = Hub::new("e1".into());
        for n in 0..5 {
            hub.publish("roost", "ns", &json!({"n": n}));
        }
        let sub = hub.subscribe(Some("e1-3"));
        assert_eq!(sub.resync, None);
        let replayed = frames(&sub.replay);
        assert_eq!(replayed.len(), 2);
        assert!(replayed[0].starts_with("id: e1-4\n"), "{replayed:?}");
        // Up to date: nothing to replay, nothing to resync.
        let sub = hub.subscribe(Some("e1-5"));
        assert!(sub.replay.is_empty() && sub.resync.is_none());
        let sub = hub.subscribe(Some("e1-0"));
        assert_eq!((sub.replay.len(), sub.resync), (5, None));
    }

    #[test]
    fn another_process_id_or_a_forgotten_one_asks_for_a_resync() {
        let hub = Hub::new("e2".into());
        for n in 0..(REPLAY_CAPACITY + 10) {
            hub.publish("roost", "ns", &json!({"n": n}));
        }
        for foreign in ["e1-3", "garbage", "e2-", "e2-x", "e2-99999999", "e2-3-4"] {
            let sub = hub.subscribe(Some(foreign));
            assert_eq!(sub.resync, Some(Resync::UnknownEventId), "{foreign}");
            assert!(sub.replay.is_empty());
        }
        let sub = hub.subscribe(Some("e2-3"));
        assert_eq!(sub.resync, Some(Resync::Expired));
        // The oldest kept event's predecessor is still resumable.
        let sub = hub.subscribe(Some("e2-10"));
        assert_eq!((sub.replay.len(), sub.resync), (REPLAY_CAPACITY, None));
    }

    #[test]
    fn a_stream_that_falls_behind_is_told_so_and_nothing_is_kept_for_it() {
        let hub = Hub::new("e1".into());
        let mut sub = hub.subscribe(None);
        for n in 0..(LIVE_CAPACITY + 5) {
            hub.publish("roost", "ns", &json!({"n": n}));
        }
        assert!(matches!(
            sub.live.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(5))
        ));
        assert!(sub.live.try_recv().is_ok());
        assert_eq!(hub.lock().recent.len(), REPLAY_CAPACITY);
    }

    #[test]
    fn the_resync_frame_names_its_reason_and_has_no_id() {
        assert_eq!(
            Resync::Lagged.frame(),
            Bytes::from_static(b"event: resync\ndata: {\"reason\":\"lagged\"}\n\n")
        );
    }
}
