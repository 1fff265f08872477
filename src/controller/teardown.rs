//! Teardown triggers that can be judged from the object alone: `timeout`
//! (creation + timeout), `schedule` (the first cron time after creation) and
//! `failure_count` (a health check's failureCount reaching the count).
//! Pure: the caller passes the clock.

use crate::api::duration::parse_go_duration;
use crate::api::schedule::Schedule;
use crate::api::{ManagedRoostSpec, ManagedRoostStatus};
use k8s_openapi::jiff::Timestamp;

/// A trigger that has fired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fired {
    pub reason: String,
    pub at: Timestamp,
}

/// What the triggers say at `now`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evaluation {
    /// The first trigger (in spec order) that has fired.
    pub fired: Option<Fired>,
    /// The earliest future time a trigger will fire, for an exact requeue.
    pub next: Option<Timestamp>,
}

/// Evaluates every trigger the object alone can decide.
pub fn evaluate(
    spec: &ManagedRoostSpec,
    status: Option<&ManagedRoostStatus>,
    created: Timestamp,
    now: Timestamp,
) -> Evaluation {
    let mut evaluation = Evaluation::default();
    let triggers = spec
        .teardown_policy
        .iter()
        .flat_map(|p| p.triggers.iter().flatten());
    for trigger in triggers {
        let due = match trigger.type_.as_deref() {
            Some("timeout") => trigger
                .timeout
                .as_ref()
                .and_then(|t| parse_go_duration(&t.as_text()).ok())
                .and_then(|d| {
                    created
                        .checked_add(k8s_openapi::jiff::SignedDuration::from_nanos(d.as_nanos()))
                        .ok()
                })
                .map(|at| {
                    (
                        at,
                        format!(
                            "timeout {} after creation",
                            trigger
                                .timeout
                                .as_ref()
                                .map(|t| t.as_text())
                                .unwrap_or_default()
                        ),
                    )
                }),
            Some("schedule") => trigger.schedule.as_deref().and_then(|s| {
                Schedule::parse(s)?
                    .next_after(created)
                    .map(|at| (at, format!("schedule {s:?}")))
            }),
            Some("failure_count") => {
                let count = trigger
                    .failure_count
                    .as_ref()
                    .and_then(|c| c.as_i64())
                    .filter(|c| *c >= 1);
                let failing = status
                    .into_iter()
                    .flat_map(|s| s.health_checks.iter().flatten())
                    .find(|h| count.is_some_and(|c| h.failure_count.unwrap_or(0) >= c));
                failing.map(|h| {
                    (
                        now,
                        format!(
                            "health check {:?} failed {} times",
                            h.name,
                            h.failure_count.unwrap_or(0)
                        ),
                    )
                })
            }
            _ => None,
        };
        let Some((at, reason)) = due else { continue };
        if at <= now {
            if evaluation.fired.is_none() {
                evaluation.fired = Some(Fired { reason, at });
            }
        } else if evaluation.next.is_none_or(|n| at < n) {
            evaluation.next = Some(at);
        }
    }
    evaluation
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + second).unwrap()
    }

    fn spec(triggers: serde_json::Value) -> ManagedRoostSpec {
        serde_json::from_value(json!({"teardownPolicy": {"triggers": triggers}})).unwrap()
    }

    #[test]
    fn timeout_fires_at_creation_plus_timeout() {
        let spec = spec(json!([{"type": "timeout", "timeout": "90s"}]));
        assert_eq!(
            evaluate(&spec, None, at(0), at(89)),
            Evaluation {
                fired: None,
                next: Some(at(90))
            }
        );
        let fired = evaluate(&spec, None, at(0), at(90)).fired.unwrap();
        assert_eq!(fired.at, at(90));
        assert!(fired.reason.contains("timeout 90s"), "{}", fired.reason);
    }

    #[test]
    fn schedule_fires_at_the_next_cron_time_after_creation() {
        let created = Timestamp::from_second(1_800_000_030).unwrap(); // 30 s into a minute
        let spec = spec(json!([{"type": "schedule", "schedule": "* * * * *"}]));
        let next = evaluate(&spec, None, created, created).next.unwrap();
        assert_eq!(next.as_second() % 60, 0);
        assert!(next > created && next.as_second() - created.as_second() <= 60);
        assert!(evaluate(&spec, None, created, next).fired.is_some());
    }

    #[test]
    fn failure_count_fires_when_a_check_reaches_it() {
        let spec = spec(json!([{"type": "failure_count", "failureCount": 3}]));
        let status = |n: i64| -> ManagedRoostStatus {
            serde_json::from_value(json!({"healthChecks": [{"name": "web", "failureCount": n}]}))
                .unwrap()
        };
        assert_eq!(
            evaluate(&spec, Some(&status(2)), at(0), at(5)),
            Evaluation::default()
        );
        let fired = evaluate(&spec, Some(&status(3)), at(0), at(5))
            .fired
            .unwrap();
        assert_eq!(fired.at, at(5));
    }

    #[test]
    fn earliest_next_time_and_first_fired_trigger() {
        let spec = spec(json!([
            {"type": "timeout", "timeout": "1h"},
            {"type": "timeout", "timeout": "10m"},
            {"type": "webhook", "webhook": {"url": "https://x"}},
            {"type": "timeout", "timeout": "bogus"}
        ]));
        assert_eq!(evaluate(&spec, None, at(0), at(1)).next, Some(at(600)));
        let later = evaluate(&spec, None, at(0), at(4000));
        assert!(
            later.fired.unwrap().reason.contains("1h"),
            "first in spec order"
        );
    }
}
