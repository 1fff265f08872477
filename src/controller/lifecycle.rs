//! Lifecycle history kept in `status.lifecycle`: at most [`MAX_RECORDS`]
//! records (oldest dropped), counts by type that trimming never reduces,
//! time spent per phase. Pure: the caller passes the clock.

use crate::api::duration::{format_go_duration, parse_go_duration};
use crate::api::{LifecycleEventRecord, LifecycleStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use std::collections::BTreeMap;

/// Records kept in `status.lifecycle.events`.
pub const MAX_RECORDS: usize = 50;

/// Lifecycle record types.
pub mod kind {
    pub const CREATED: &str = "Created";
    pub const INSTALLING: &str = "Installing";
    pub const READY: &str = "Ready";
    pub const UPGRADING: &str = "Upgrading";
    pub const HEALTHY: &str = "Healthy";
    pub const UNHEALTHY: &str = "Unhealthy";
    pub const FAILED: &str = "Failed";
    pub const TEARDOWN_TRIGGERED: &str = "TeardownTriggered";
}

/// Appends a record, trims to [`MAX_RECORDS`], counts it and stamps `lastActivity`.
pub fn track_lifecycle(
    lifecycle: &mut LifecycleStatus,
    kind: &str,
    message: impl Into<String>,
    details: BTreeMap<String, String>,
    now: Timestamp,
) {
    let events = lifecycle.events.get_or_insert_with(Vec::new);
    events.push(LifecycleEventRecord {
        type_: kind.to_owned(),
        timestamp: Time(now),
        message: message.into(),
        details: (!details.is_empty()).then_some(details),
    });
    if events.len() > MAX_RECORDS {
        let excess = events.len() - MAX_RECORDS;
        events.drain(..excess);
    }
    *lifecycle
        .event_counts
        .get_or_insert_with(BTreeMap::new)
        .entry(kind.to_owned())
        .or_insert(0) += 1;
    lifecycle.last_activity = Some(Time(now));
}

/// Records of `kind` since creation (not reduced by trimming).
pub fn event_count(lifecycle: &LifecycleStatus, kind: &str) -> i64 {
    lifecycle
        .event_counts
        .as_ref()
        .and_then(|c| c.get(kind))
        .copied()
        .unwrap_or(0)
}

/// The `n` most recent records, newest first.
pub fn recent_events(lifecycle: &LifecycleStatus, n: usize) -> Vec<&LifecycleEventRecord> {
    lifecycle.events.iter().flatten().rev().take(n).collect()
}

/// Whether a record of `kind` was made within `within_seconds` before `now`.
pub fn is_event_recent(
    lifecycle: &LifecycleStatus,
    kind: &str,
    within_seconds: i64,
    now: Timestamp,
) -> bool {
    lifecycle
        .events
        .iter()
        .flatten()
        .rev()
        .filter(|e| e.type_ == kind)
        .any(|e| now.as_second() - e.timestamp.0.as_second() <= within_seconds)
}

/// Adds `now - since` to the time spent in `phase`.
pub fn add_phase_duration(
    lifecycle: &mut LifecycleStatus,
    phase: &str,
    since: Timestamp,
    now: Timestamp,
) {
    let spent = i64::try_from(now.as_nanosecond() - since.as_nanosecond())
        .unwrap_or(i64::MAX)
        .max(0);
    let durations = lifecycle.phase_durations.get_or_insert_with(BTreeMap::new);
    let before = durations
        .get(phase)
        .and_then(|d| parse_go_duration(d).ok())
        .map_or(0, |d| d.as_nanos());
    durations.insert(
        phase.to_owned(),
        format_go_duration(before.saturating_add(spent)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + second).unwrap()
    }

    #[test]
    fn trims_at_fifty_and_keeps_counts() {
        let mut lifecycle = LifecycleStatus::default();
        for i in 0..120 {
            let kind = if i % 2 == 0 {
                kind::HEALTHY
            } else {
                kind::UNHEALTHY
            };
            track_lifecycle(
                &mut lifecycle,
                kind,
                format!("record {i}"),
                BTreeMap::new(),
                at(i),
            );
        }
        let events = lifecycle.events.as_ref().unwrap();
        assert_eq!(events.len(), MAX_RECORDS);
        assert_eq!(events[0].message, "record 70", "oldest dropped");
        assert_eq!(events[49].message, "record 119");
        assert_eq!(event_count(&lifecycle, kind::HEALTHY), 60);
        assert_eq!(event_count(&lifecycle, kind::UNHEALTHY), 60);
        assert_eq!(lifecycle.last_activity, Some(Time(at(119))));
        let recent: Vec<&str> = recent_events(&lifecycle, 2)
            .iter()
            .map(|e| e.message.as_str())
            .collect();
        assert_eq!(recent, ["record 119", "record 118"]);
    }

    #[test]
    fn recency() {
        let mut lifecycle = LifecycleStatus::default();
        track_lifecycle(
            &mut lifecycle,
            kind::CREATED,
            "created",
            BTreeMap::new(),
            at(0),
        );
        assert!(is_event_recent(&lifecycle, kind::CREATED, 10, at(10)));
        assert!(!is_event_recent(&lifecycle, kind::CREATED, 10, at(11)));
        assert!(!is_event_recent(&lifecycle, kind::READY, 10, at(1)));
    }

    #[test]
    fn phase_durations_accumulate() {
        let mut lifecycle = LifecycleStatus::default();
        add_phase_duration(&mut lifecycle, "Pending", at(0), at(90));
        add_phase_duration(&mut lifecycle, "Pending", at(100), at(130));
        assert_eq!(lifecycle.phase_durations.unwrap()["Pending"], "2m0s");
    }
}
