//! What the lifecycle API shows of a roost, and the stream events a change
//! makes. Pure: the store hands in the status, the handlers the clock.

use crate::api::duration::parse_go_duration;
use crate::api::{LifecycleEventRecord, ManagedRoostStatus};
use crate::controller::lifecycle;
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Characters kept of any text the API repeats from a status (a condition
/// message, a record's message): a status written by anyone cannot make
/// every list and event large.
pub const MAX_TEXT_CHARS: usize = 1024;
/// Records `lifecycle?last=` may ask for: every record a status keeps.
pub const MAX_RECORDS: usize = lifecycle::MAX_RECORDS;
pub const DEFAULT_RECORDS: usize = 20;
/// Longest `type` a lifecycle query takes (record types are short words).
pub const MAX_TYPE_CHARS: usize = 64;

/// One roost in a list and in every stream event about it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoostSummary {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub generation: Option<i64>,
    pub phase: Option<String>,
    pub health: Option<String>,
    pub validated: Option<Validated>,
    pub chart: Option<Chart>,
    pub counts: BTreeMap<String, i64>,
    pub last_activity: Option<String>,
    pub created_at: Option<String>,
}

/// The `Validated` condition.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Validated {
    pub status: String,
    pub reason: String,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Chart {
    pub name: Option<String>,
    pub version: Option<String>,
}

/// A lifecycle record as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Record {
    #[serde(rename = "type")]
    pub type_: String,
    pub timestamp: String,
    pub message: String,
    pub details: Option<BTreeMap<String, String>>,
}

impl Record {
    fn of(record: &LifecycleEventRecord) -> Self {
        Record {
            type_: short(&record.type_),
            timestamp: record.timestamp.0.to_string(),
            message: short(&record.message),
            details: record.details.as_ref().map(|details| {
                details
                    .iter()
                    .take(MAX_DETAILS)
                    .map(|(k, v)| (short(k), short(v)))
                    .collect()
            }),
        }
    }
}

/// Details kept per record.
const MAX_DETAILS: usize = 16;

fn short(text: &str) -> String {
    crate::text::printable_cut(text, MAX_TEXT_CHARS)
}

/// The identity of a roost the summary is made from: everything but status and spec.
pub struct Identity<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
    pub generation: Option<i64>,
    pub created_at: Option<Timestamp>,
}

/// The summary of a roost from its identity, its spec's chart and its status.
pub fn summary(
    identity: &Identity<'_>,
    spec: Option<&Value>,
    status: Option<&ManagedRoostStatus>,
) -> RoostSummary {
    let lifecycle = status.and_then(|s| s.lifecycle.as_ref());
    let validated = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Validated"))
        .map(|c| Validated {
            status: short(&c.status),
            reason: short(&c.reason),
            message: short(&c.message),
        });
    let chart = spec.and_then(|s| s.get("chart")).map(|chart| {
        let text = |key: &str| {
            chart.get(key).and_then(|v| match v {
                Value::String(s) => Some(short(s)),
                Value::Null => None,
                other => Some(short(&other.to_string())),
            })
        };
        Chart {
            name: text("name"),
            version: text("version"),
        }
    });
    RoostSummary {
        namespace: identity.namespace.to_owned(),
        name: identity.name.to_owned(),
        uid: identity.uid.to_owned(),
        generation: identity.generation,
        phase: status.and_then(|s| s.phase).map(|p| p.as_str().to_owned()),
        health: status.and_then(|s| s.health.as_deref()).map(short),
        validated,
        chart,
        counts: lifecycle
            .and_then(|l| l.event_counts.as_ref())
            .map(|counts| {
                counts
                    .iter()
                    .take(MAX_DETAILS)
                    .map(|(k, v)| (short(k), *v))
                    .collect()
            })
            .unwrap_or_default(),
        last_activity: lifecycle
            .and_then(|l| l.last_activity.as_ref())
            .map(|t| t.0.to_string()),
        created_at: identity.created_at.map(|t| t.to_string()),
    }
}

fn total(counts: &BTreeMap<String, i64>) -> i64 {
    counts.values().fold(0i64, |sum, n| sum.saturating_add(*n))
}

/// The stream events one change of a roost makes: `(event name, data)`.
/// `before` is `None` for a roost not seen yet; `status` is the new one.
pub fn changes(
    before: Option<&RoostSummary>,
    after: &RoostSummary,
    status: Option<&ManagedRoostStatus>,
) -> Vec<(&'static str, Value)> {
    let Some(before) = before else {
        return vec![("roost", json!({ "roost": after }))];
    };
    let mut events = Vec::new();
    // Records made since: the count grew by that many (counts never shrink);
    // at most the records the status still holds.
    let added = usize::try_from(total(&after.counts) - total(&before.counts)).unwrap_or(0);
    let records = status
        .and_then(|s| s.lifecycle.as_ref())
        .and_then(|l| l.events.as_deref())
        .unwrap_or_default();
    for record in &records[records.len().saturating_sub(added)..] {
        events.push((
            "lifecycle",
            json!({ "roost": after, "record": Record::of(record) }),
        ));
    }
    if before.phase != after.phase {
        events.push((
            "phase",
            json!({ "roost": after, "from": before.phase, "to": after.phase }),
        ));
    }
    if before.health != after.health {
        events.push((
            "health",
            json!({ "roost": after, "from": before.health, "to": after.health }),
        ));
    }
    let status_of = |s: &RoostSummary| s.validated.as_ref().map(|v| v.status.clone());
    if status_of(before) != status_of(after) {
        events.push((
            "validated",
            json!({ "roost": after, "from": status_of(before), "to": status_of(after) }),
        ));
    }
    if events.is_empty() && before != after {
        events.push(("roost", json!({ "roost": after })));
    }
    events
}

/// The design's lifecycle queries.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LifecycleQuery {
    /// How many of the most recent records (at most [`MAX_RECORDS`]).
    pub last: usize,
    /// Only records of this type.
    pub type_: Option<String>,
    /// With `type_`: whether such a record was made within this long before now.
    pub within: Option<String>,
}

/// Why a lifecycle query cannot be answered.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("last must be a whole number from 0 to {MAX_RECORDS}")]
    Last,
    #[error("type must be at most {MAX_TYPE_CHARS} characters")]
    Type,
    #[error("within must be a positive Go duration such as 5m or 1h30m")]
    Within,
    #[error("within needs type: which record type to look for")]
    WithinWithoutType,
}

impl LifecycleQuery {
    /// The query from its parameters as written.
    pub fn parse(
        last: Option<&str>,
        type_: Option<&str>,
        within: Option<&str>,
    ) -> Result<Self, QueryError> {
        let last = match last {
            None => DEFAULT_RECORDS,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| *n <= MAX_RECORDS)
                .ok_or(QueryError::Last)?,
        };
        if type_.is_some_and(|t| t.chars().count() > MAX_TYPE_CHARS) {
            return Err(QueryError::Type);
        }
        if let Some(within) = within {
            if type_.is_none() {
                return Err(QueryError::WithinWithoutType);
            }
            if !parse_go_duration(within).is_ok_and(|d| d.as_nanos() > 0) {
                return Err(QueryError::Within);
            }
        }
        Ok(LifecycleQuery {
            last,
            type_: type_.map(str::to_owned),
            within: within.map(str::to_owned),
        })
    }
}

/// One roost's lifecycle, answered.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleView {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub counts: BTreeMap<String, i64>,
    /// Oldest first.
    pub records: Vec<Record>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred: Option<Occurred>,
    pub phase_durations: BTreeMap<String, String>,
    pub current_phase: Option<String>,
    pub phase_since: Option<String>,
    pub created_at: Option<String>,
}

/// Whether a record of a type was made within a time before now.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Occurred {
    #[serde(rename = "type")]
    pub type_: String,
    pub within: String,
    pub occurred: bool,
    /// The most recent such record's time, when there is one.
    pub at: Option<String>,
}

/// Answers `query` on a roost's status at `now`.
pub fn lifecycle_view(
    summary: &RoostSummary,
    status: Option<&ManagedRoostStatus>,
    query: &LifecycleQuery,
    now: Timestamp,
) -> LifecycleView {
    let empty = Default::default();
    let lifecycle = status.and_then(|s| s.lifecycle.as_ref()).unwrap_or(&empty);
    let mut records: Vec<Record> = lifecycle
        .events
        .iter()
        .flatten()
        .rev()
        .filter(|r| query.type_.as_ref().is_none_or(|t| &r.type_ == t))
        .take(query.last)
        .map(Record::of)
        .collect();
    records.reverse();
    let occurred = query
        .type_
        .as_ref()
        .zip(query.within.as_ref())
        .map(|(type_, within)| {
            let seconds = parse_go_duration(within)
                .map(|d| d.as_nanos() / 1_000_000_000)
                .unwrap_or(0);
            let last = lifecycle::recent_events(lifecycle, MAX_RECORDS)
                .into_iter()
                .find(|r| &r.type_ == type_);
            Occurred {
                type_: short(type_),
                within: within.clone(),
                occurred: lifecycle::is_event_recent(lifecycle, type_, seconds, now),
                at: last.map(|r| r.timestamp.0.to_string()),
            }
        });
    LifecycleView {
        namespace: summary.namespace.clone(),
        name: summary.name.clone(),
        uid: summary.uid.clone(),
        counts: summary.counts.clone(),
        records,
        occurred,
        phase_durations: lifecycle
            .phase_durations
            .iter()
            .flatten()
            .take(MAX_DETAILS)
            .map(|(k, v)| (short(k), short(v)))
            .collect(),
        current_phase: lifecycle.current_phase.as_deref().map(short),
        phase_since: lifecycle.phase_since.as_ref().map(|t| t.0.to_string()),
        created_at: summary.created_at.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{LifecycleStatus, Phase};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + second).unwrap()
    }

    fn identity() -> Identity<'static> {
        Identity {
            namespace: "team-a",
            name: "web",
            uid: "u1",
            generation: Some(2),
            created_at: Some(at(0)),
        }
    }

    fn status(records: &[(&str, i64)], phase: Phase, validated: &str) -> ManagedRoostStatus {
        let mut lifecycle = LifecycleStatus::default();
        for (kind, second) in records {
            lifecycle::track_lifecycle(
                &mut lifecycle,
                kind,
                format!("{kind} at {second}"),
                BTreeMap::new(),
                at(*second),
            );
        }
        lifecycle::add_phase_duration(&mut lifecycle, "Pending", at(0), at(90));
        ManagedRoostStatus {
            phase: Some(phase),
            health: Some("healthy".into()),
            conditions: Some(vec![Condition {
                type_: "Validated".into(),
                status: validated.into(),
                reason: "Checked".into(),
                message: "m".repeat(5000),
                last_transition_time: Time(at(0)),
                observed_generation: None,
            }]),
            lifecycle: Some(lifecycle),
            ..Default::default()
        }
    }

    #[test]
    fn a_summary_carries_phase_health_validated_chart_and_counts() {
        let spec = json!({"chart": {"name": "web", "version": 3}});
        let status = status(&[("Created", 1), ("Ready", 2)], Phase::Ready, "True");
        let summary = summary(&identity(), Some(&spec), Some(&status));
        assert_eq!(summary.phase.as_deref(), Some("Ready"));
        assert_eq!(summary.health.as_deref(), Some("healthy"));
        let validated = summary.validated.unwrap();
        assert_eq!(validated.status, "True");
        assert_eq!(validated.message.chars().count(), MAX_TEXT_CHARS + 1);
        assert!(validated.message.ends_with('…'));
        assert_eq!(
            summary.chart,
            Some(Chart {
                name: Some("web".into()),
                version: Some("3".into())
            })
        );
        assert_eq!(summary.counts["Created"], 1);
        assert_eq!(summary.last_activity, Some(at(2).to_string()));
        let bare = super::summary(&identity(), None, None);
        assert_eq!((bare.phase, bare.validated, bare.chart), (None, None, None));
    }

    #[test]
    fn a_change_makes_one_event_per_new_record_and_per_changed_field() {
        let old = status(&[("Created", 1)], Phase::Pending, "True");
        let new = status(
            &[("Created", 1), ("Installing", 2), ("Ready", 3)],
            Phase::Ready,
            "False",
        );
        let before = summary(&identity(), None, Some(&old));
        let after = summary(&identity(), None, Some(&new));
        let events = changes(Some(&before), &after, Some(&new));
        let names: Vec<&str> = events.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["lifecycle", "lifecycle", "phase", "validated"]);
        assert_eq!(events[0].1["record"]["type"], "Installing");
        assert_eq!(events[1].1["record"]["type"], "Ready");
        assert_eq!(events[2].1["from"], "Pending");
        assert_eq!(events[2].1["to"], "Ready");
        assert_eq!(events[3].1["to"], "False");
        assert_eq!(events[3].1["roost"]["name"], "web");
        // Nothing changed: nothing to tell.
        assert!(changes(Some(&after), &after, Some(&new)).is_empty());
        // A first sight is one `roost` event, whatever its history.
        let first = changes(None, &after, Some(&new));
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].0, "roost");
        // Another change of the summary (a new generation) is a `roost` event.
        let mut newer = after.clone();
        newer.generation = Some(3);
        assert_eq!(changes(Some(&after), &newer, Some(&new))[0].0, "roost");
    }

    #[test]
    fn more_new_records_than_kept_yield_the_kept_ones() {
        let old = status(&[], Phase::Pending, "True");
        let many: Vec<(&str, i64)> = (0..80).map(|i| ("Healthy", i)).collect();
        let new = status(&many, Phase::Pending, "True");
        let events = changes(
            Some(&summary(&identity(), None, Some(&old))),
            &summary(&identity(), None, Some(&new)),
            Some(&new),
        );
        assert_eq!(events.len(), lifecycle::MAX_RECORDS);
    }

    #[test]
    fn queries_parse_within_bounds() {
        assert_eq!(
            LifecycleQuery::parse(None, None, None).unwrap().last,
            DEFAULT_RECORDS
        );
        assert_eq!(
            LifecycleQuery::parse(Some("51"), None, None),
            Err(QueryError::Last)
        );
        assert_eq!(
            LifecycleQuery::parse(Some("-1"), None, None),
            Err(QueryError::Last)
        );
        assert_eq!(
            LifecycleQuery::parse(None, Some(&"x".repeat(65)), None),
            Err(QueryError::Type)
        );
        assert_eq!(
            LifecycleQuery::parse(None, None, Some("5m")),
            Err(QueryError::WithinWithoutType)
        );
        for bad in ["5", "0s", "-5m", "soon"] {
            assert_eq!(
                LifecycleQuery::parse(None, Some("Failed"), Some(bad)),
                Err(QueryError::Within),
                "{bad}"
            );
        }
        assert!(LifecycleQuery::parse(Some("0"), Some("Failed"), Some("5m")).is_ok());
    }

    #[test]
    fn the_lifecycle_view_answers_the_designs_queries() {
        let status = status(
            &[
                ("Created", 0),
                ("Unhealthy", 100),
                ("Healthy", 200),
                ("Unhealthy", 280),
            ],
            Phase::Ready,
            "True",
        );
        let summary = summary(&identity(), None, Some(&status));
        let query = LifecycleQuery::parse(Some("1"), Some("Unhealthy"), Some("5m")).unwrap();
        let view = lifecycle_view(&summary, Some(&status), &query, at(300));
        assert_eq!(view.counts["Unhealthy"], 2);
        assert_eq!(view.records.len(), 1);
        assert_eq!(view.records[0].message, "Unhealthy at 280");
        let occurred = view.occurred.unwrap();
        assert!(occurred.occurred);
        assert_eq!(occurred.at, Some(at(280).to_string()));
        assert_eq!(view.phase_durations["Pending"], "1m30s");
        // Not within a minute of 400.
        let query = LifecycleQuery::parse(None, Some("Unhealthy"), Some("1m")).unwrap();
        let view = lifecycle_view(&summary, Some(&status), &query, at(400));
        assert!(!view.occurred.unwrap().occurred);
        assert_eq!(
            view.records.len(),
            2,
            "every Unhealthy record, oldest first"
        );
        assert_eq!(view.records[0].message, "Unhealthy at 100");
        // No type: the last records of every type, and no `occurred`.
        let view = lifecycle_view(
            &summary,
            Some(&status),
            &LifecycleQuery::parse(Some("3"), None, None).unwrap(),
            at(400),
        );
        assert_eq!(view.records.len(), 3);
        assert_eq!(view.records[2].type_, "Unhealthy");
        assert!(view.occurred.is_none());
    }
}
