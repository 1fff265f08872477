//! The status the controller wants, computed from the object alone: the
//! `Validated` and `Ready` conditions, phase, lifecycle records, teardown.
//! Pure and synchronous: the clock and the validation verdict are inputs.

use super::lifecycle::{add_phase_duration, kind, track_lifecycle};
use super::teardown;
use crate::api::{LifecycleStatus, ManagedRoost, ManagedRoostStatus, Phase, TeardownStatus};
use crate::validation::ValidationResult;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use std::collections::BTreeMap;

/// Annotation that approves a teardown when `requireManualApproval` is set.
pub const APPROVAL_ANNOTATION: &str = "roost.birb.party/teardown-approved";

/// An Event to publish once the status is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
}

/// What to write and say.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The status fields roost-keeper owns (phase, conditions, observedGeneration,
    /// lastUpdateTime, teardown, lifecycle); `None` when nothing changed.
    pub status: Option<ManagedRoostStatus>,
    pub notes: Vec<Note>,
    /// When to look again without a change (a teardown trigger's time).
    pub next_check: Option<Timestamp>,
}

/// The fields roost-keeper owns, as last observed.
fn owned(status: &ManagedRoostStatus) -> ManagedRoostStatus {
    ManagedRoostStatus {
        phase: status.phase,
        conditions: status.conditions.clone(),
        observed_generation: status.observed_generation,
        last_update_time: status.last_update_time.clone(),
        teardown: status.teardown.clone(),
        lifecycle: status.lifecycle.clone(),
        ..ManagedRoostStatus::default()
    }
}

fn phase_record(phase: Phase) -> &'static str {
    match phase {
        Phase::Pending => kind::CREATED,
        Phase::Deploying => kind::INSTALLING,
        Phase::Ready => kind::READY,
        Phase::Failed => kind::FAILED,
        Phase::TearingDown => kind::TEARDOWN_TRIGGERED,
    }
}

fn parse_phase(text: &str) -> Option<Phase> {
    [
        Phase::Pending,
        Phase::Deploying,
        Phase::Ready,
        Phase::Failed,
        Phase::TearingDown,
    ]
    .into_iter()
    .find(|p| p.as_str() == text)
}

/// Sets a condition; `lastTransitionTime` moves only when the status flips.
fn set_condition(conditions: &mut Vec<Condition>, mut condition: Condition) {
    match conditions.iter_mut().find(|c| c.type_ == condition.type_) {
        Some(existing) => {
            if existing.status == condition.status {
                condition.last_transition_time = existing.last_transition_time.clone();
            }
            *existing = condition;
        }
        None => conditions.push(condition),
    }
}

fn codes(findings: &[crate::validation::Finding]) -> String {
    findings
        .iter()
        .map(|f| f.code.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Moves to `phase` (our own decision): closes the time spent in the old phase.
fn enter_phase(
    lifecycle: &mut LifecycleStatus,
    status: &mut ManagedRoostStatus,
    phase: Phase,
    now: Timestamp,
    notes: &mut Vec<Note>,
) {
    let previous = lifecycle.current_phase.clone();
    if previous.as_deref() == Some(phase.as_str()) {
        return;
    }
    if let (Some(previous), Some(since)) = (&previous, &lifecycle.phase_since) {
        add_phase_duration(lifecycle, previous, since.0, now);
    }
    lifecycle.current_phase = Some(phase.as_str().to_owned());
    lifecycle.phase_since = Some(Time(now));
    status.phase = Some(phase);
    notes.push(Note {
        warning: false,
        reason: "PhaseChanged",
        message: format!(
            "phase {} -> {}",
            previous.as_deref().unwrap_or("(none)"),
            phase.as_str()
        ),
    });
}

/// Computes the status roost-keeper wants for `roost` at `now`.
pub fn plan(roost: &ManagedRoost, result: &ValidationResult, now: Timestamp) -> Plan {
    let observed = roost.status.clone().unwrap_or_default();
    let before = owned(&observed);
    let mut status = before.clone();
    let mut lifecycle = status.lifecycle.take().unwrap_or_default();
    let mut notes = Vec::new();
    let created = roost
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or(now, |t| t.0);

    // First sight: Created, phase Pending (unless another component set one already).
    if lifecycle.created_at.is_none() {
        lifecycle.created_at = Some(Time(created));
        track_lifecycle(
            &mut lifecycle,
            kind::CREATED,
            "ManagedRoost created",
            BTreeMap::new(),
            now,
        );
        notes.push(Note {
            warning: false,
            reason: kind::CREATED,
            message: "ManagedRoost created".into(),
        });
        match observed.phase {
            Some(phase) => {
                lifecycle.current_phase = Some(phase.as_str().to_owned());
                lifecycle.phase_since = Some(Time(now));
            }
            None => {
                lifecycle.phase_since = Some(Time(created));
                lifecycle.current_phase = Some(Phase::Pending.as_str().to_owned());
                status.phase = Some(Phase::Pending);
            }
        }
    }

    // A phase written by another component.
    if let Some(phase) = observed.phase {
        let remembered = lifecycle.current_phase.as_deref().and_then(parse_phase);
        if remembered != Some(phase) {
            if let (Some(old), Some(since)) = (remembered, lifecycle.phase_since.clone()) {
                add_phase_duration(&mut lifecycle, old.as_str(), since.0, now);
            }
            let record = phase_record(phase);
            let message = format!(
                "phase {} -> {}",
                remembered.map_or("(none)", Phase::as_str),
                phase.as_str()
            );
            track_lifecycle(
                &mut lifecycle,
                record,
                message.clone(),
                BTreeMap::from([("phase".into(), phase.as_str().into())]),
                now,
            );
            notes.push(Note {
                warning: phase == Phase::Failed,
                reason: record,
                message: message.clone(),
            });
            notes.push(Note {
                warning: false,
                reason: "PhaseChanged",
                message,
            });
            lifecycle.current_phase = Some(phase.as_str().to_owned());
            lifecycle.phase_since = Some(Time(now));
        }
    }

    // Validation: Failed on errors; back to Pending once they are fixed.
    let was_valid = before
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Validated")
        .map(|c| c.status == "True");
    if !result.valid {
        if status.phase != Some(Phase::Failed) {
            enter_phase(&mut lifecycle, &mut status, Phase::Failed, now, &mut notes);
            let message = format!("validation failed: {}", codes(&result.errors));
            track_lifecycle(&mut lifecycle, kind::FAILED, message, BTreeMap::new(), now);
        }
        if was_valid != Some(false) {
            notes.push(Note {
                warning: true,
                reason: "ValidationFailed",
                message: format!("{} errors: {}", result.errors.len(), codes(&result.errors)),
            });
        }
    } else {
        if was_valid == Some(false) && status.phase == Some(Phase::Failed) {
            enter_phase(&mut lifecycle, &mut status, Phase::Pending, now, &mut notes);
        }
        if !result.warnings.is_empty() && was_valid != Some(true) {
            notes.push(Note {
                warning: false,
                reason: "ValidationWarnings",
                message: format!(
                    "{} warnings: {}",
                    result.warnings.len(),
                    codes(&result.warnings)
                ),
            });
        }
    }

    // An upgrade: a new chart version.
    let version = roost
        .spec
        .chart
        .as_ref()
        .and_then(|c| c.version.as_ref())
        .map(|v| v.as_text().into_owned());
    if lifecycle.observed_chart_version != version {
        if let (Some(old), Some(new)) = (lifecycle.observed_chart_version.clone(), &version) {
            let message = format!("chart version {old} -> {new}");
            track_lifecycle(
                &mut lifecycle,
                kind::UPGRADING,
                message.clone(),
                BTreeMap::from([("from".into(), old), ("to".into(), new.clone())]),
                now,
            );
            notes.push(Note {
                warning: false,
                reason: kind::UPGRADING,
                message,
            });
        }
        lifecycle.observed_chart_version = version;
    }

    // Health written by a health checker.
    if observed.health != lifecycle.observed_health {
        let record = match observed.health.as_deref() {
            Some("healthy") => Some(kind::HEALTHY),
            Some("unhealthy" | "degraded") => Some(kind::UNHEALTHY),
            _ => None,
        };
        if let Some(record) = record {
            let message = format!("health {}", observed.health.as_deref().unwrap_or_default());
            track_lifecycle(
                &mut lifecycle,
                record,
                message.clone(),
                BTreeMap::new(),
                now,
            );
            notes.push(Note {
                warning: record == kind::UNHEALTHY,
                reason: record,
                message,
            });
        }
        lifecycle.observed_health = observed.health.clone();
    }

    // Teardown triggers.
    let evaluation = teardown::evaluate(&roost.spec, roost.status.as_ref(), created, now);
    let already = status
        .teardown
        .as_ref()
        .and_then(|t| t.triggered)
        .unwrap_or(false);
    if let (Some(fired), false) = (&evaluation.fired, already) {
        status.teardown = Some(TeardownStatus {
            triggered: Some(true),
            trigger_reason: Some(fired.reason.clone()),
            trigger_time: Some(Time(fired.at)),
            ..status.teardown.clone().unwrap_or_default()
        });
        track_lifecycle(
            &mut lifecycle,
            kind::TEARDOWN_TRIGGERED,
            fired.reason.clone(),
            BTreeMap::new(),
            now,
        );
        notes.push(Note {
            warning: true,
            reason: kind::TEARDOWN_TRIGGERED,
            message: format!("teardown triggered: {}", fired.reason),
        });
    }
    let triggered = status
        .teardown
        .as_ref()
        .and_then(|t| t.triggered)
        .unwrap_or(false);
    let needs_approval = roost
        .spec
        .teardown_policy
        .as_ref()
        .and_then(|p| p.require_manual_approval)
        .unwrap_or(false);
    let approved = roost
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(APPROVAL_ANNOTATION))
        .is_some_and(|v| v == "true");
    if triggered && (!needs_approval || approved) && status.phase != Some(Phase::TearingDown) {
        enter_phase(
            &mut lifecycle,
            &mut status,
            Phase::TearingDown,
            now,
            &mut notes,
        );
    }

    // Conditions.
    let generation = roost.metadata.generation;
    let mut conditions = status.conditions.take().unwrap_or_default();
    let (validated, reason, message) = if !result.valid {
        (
            "False",
            "ValidationFailed",
            format!("errors: {}", codes(&result.errors)),
        )
    } else if !result.warnings.is_empty() {
        (
            "True",
            "ValidationPassedWithWarnings",
            format!("warnings: {}", codes(&result.warnings)),
        )
    } else {
        (
            "True",
            "ValidationPassed",
            "no errors or warnings".to_owned(),
        )
    };
    let condition = |type_: &str, status: &str, reason: &str, message: String| Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message,
        observed_generation: generation,
        last_transition_time: Time(now),
    };
    set_condition(
        &mut conditions,
        condition("Validated", validated, reason, message),
    );
    let phase = status.phase.map_or("Unknown", Phase::as_str);
    let ready = if status.phase == Some(Phase::Ready) {
        "True"
    } else {
        "False"
    };
    set_condition(
        &mut conditions,
        condition("Ready", ready, phase, format!("phase is {phase}")),
    );
    status.conditions = Some(conditions);
    status.observed_generation = generation;
    status.lifecycle = Some(lifecycle);

    let changed = status != before;
    if changed {
        status.last_update_time = Some(Time(now));
    }
    Plan {
        status: changed.then_some(status),
        notes,
        next_check: if triggered { None } else { evaluation.next },
    }
}
