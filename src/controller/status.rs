//! The status the controller wants, computed from the object alone: the
//! `Validated` and `Ready` conditions, phase, lifecycle records, teardown.
//! Pure and synchronous: the clock and the validation verdict are inputs.

use super::lifecycle::{add_phase_duration, kind, track_lifecycle};
use super::teardown;
use crate::api::{
    AuditFinding, ExemptionStatus, LifecycleStatus, MAX_STATUS_FINDINGS, ManagedRoost,
    ManagedRoostStatus, Phase, TeardownStatus,
};
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
    /// lastUpdateTime, teardown, lifecycle, auditFindings, exemptions); `None`
    /// when nothing changed.
    pub status: Option<ManagedRoostStatus>,
    pub notes: Vec<Note>,
    /// When to look again without a change (a teardown trigger's time).
    pub next_check: Option<Timestamp>,
}

/// The fields roost-keeper owns, as last observed.
pub fn owned(status: &ManagedRoostStatus) -> ManagedRoostStatus {
    ManagedRoostStatus {
        phase: status.phase,
        conditions: status.conditions.clone(),
        observed_generation: status.observed_generation,
        last_update_time: status.last_update_time.clone(),
        teardown: status.teardown.clone(),
        lifecycle: status.lifecycle.clone(),
        audit_findings: status.audit_findings.clone(),
        exemptions: status.exemptions.clone(),
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

/// The status being planned, with the lifecycle taken out of it and the
/// Events to publish; one method per concern of [`plan`], applied in order.
struct Draft {
    status: ManagedRoostStatus,
    lifecycle: LifecycleStatus,
    notes: Vec<Note>,
    now: Timestamp,
}

impl Draft {
    fn new(mut status: ManagedRoostStatus, now: Timestamp) -> Self {
        let lifecycle = status.lifecycle.take().unwrap_or_default();
        Draft {
            status,
            lifecycle,
            notes: Vec::new(),
            now,
        }
    }

    fn note(&mut self, warning: bool, reason: &'static str, message: String) {
        self.notes.push(Note {
            warning,
            reason,
            message,
        });
    }

    fn record(&mut self, kind: &str, message: String, details: BTreeMap<String, String>) {
        track_lifecycle(&mut self.lifecycle, kind, message, details, self.now);
    }

    /// Moves to `phase` (our own decision): closes the time spent in the old phase.
    fn enter_phase(&mut self, phase: Phase) {
        let lifecycle = &mut self.lifecycle;
        let previous = lifecycle.current_phase.clone();
        if previous.as_deref() == Some(phase.as_str()) {
            return;
        }
        if let (Some(previous), Some(since)) = (&previous, &lifecycle.phase_since) {
            add_phase_duration(lifecycle, previous, since.0, self.now);
        }
        lifecycle.current_phase = Some(phase.as_str().to_owned());
        lifecycle.phase_since = Some(Time(self.now));
        self.status.phase = Some(phase);
        let message = format!(
            "phase {} -> {}",
            previous.as_deref().unwrap_or("(none)"),
            phase.as_str()
        );
        self.note(false, "PhaseChanged", message);
    }

    /// First sight: Created, phase Pending (unless another component set one already).
    fn first_sight(&mut self, observed_phase: Option<Phase>, created: Timestamp) {
        if self.lifecycle.created_at.is_some() {
            return;
        }
        self.lifecycle.created_at = Some(Time(created));
        self.record(
            kind::CREATED,
            "ManagedRoost created".into(),
            BTreeMap::new(),
        );
        self.note(false, kind::CREATED, "ManagedRoost created".into());
        let lifecycle = &mut self.lifecycle;
        match observed_phase {
            Some(phase) => {
                lifecycle.current_phase = Some(phase.as_str().to_owned());
                lifecycle.phase_since = Some(Time(self.now));
            }
            None => {
                lifecycle.phase_since = Some(Time(created));
                lifecycle.current_phase = Some(Phase::Pending.as_str().to_owned());
                self.status.phase = Some(Phase::Pending);
            }
        }
    }

    /// A phase written by another component.
    fn follow_observed_phase(&mut self, observed_phase: Option<Phase>) {
        let Some(phase) = observed_phase else { return };
        let remembered = self
            .lifecycle
            .current_phase
            .as_deref()
            .and_then(parse_phase);
        if remembered == Some(phase) {
            return;
        }
        if let (Some(old), Some(since)) = (remembered, self.lifecycle.phase_since.clone()) {
            add_phase_duration(&mut self.lifecycle, old.as_str(), since.0, self.now);
        }
        let record = phase_record(phase);
        let message = format!(
            "phase {} -> {}",
            remembered.map_or("(none)", Phase::as_str),
            phase.as_str()
        );
        let details = BTreeMap::from([("phase".into(), phase.as_str().into())]);
        self.record(record, message.clone(), details);
        self.note(phase == Phase::Failed, record, message.clone());
        self.note(false, "PhaseChanged", message);
        self.lifecycle.current_phase = Some(phase.as_str().to_owned());
        self.lifecycle.phase_since = Some(Time(self.now));
    }

    /// Validation: Failed on errors; back to Pending once they are fixed.
    /// `was_valid` is the `Validated` condition as last written.
    fn follow_validation(&mut self, result: &ValidationResult, was_valid: Option<bool>) {
        if !result.valid {
            if self.status.phase != Some(Phase::Failed) {
                self.enter_phase(Phase::Failed);
                let message = format!("validation failed: {}", codes(&result.errors));
                self.record(kind::FAILED, message, BTreeMap::new());
            }
            if was_valid != Some(false) {
                let message = format!("{} errors: {}", result.errors.len(), codes(&result.errors));
                self.note(true, "ValidationFailed", message);
            }
            return;
        }
        if was_valid == Some(false) && self.status.phase == Some(Phase::Failed) {
            self.enter_phase(Phase::Pending);
        }
        if !result.warnings.is_empty() && was_valid != Some(true) {
            let message = format!(
                "{} warnings: {}",
                result.warnings.len(),
                codes(&result.warnings)
            );
            self.note(false, "ValidationWarnings", message);
        }
    }

    /// An upgrade: a new chart version.
    fn follow_chart_version(&mut self, version: Option<String>) {
        if self.lifecycle.observed_chart_version == version {
            return;
        }
        if let (Some(old), Some(new)) = (self.lifecycle.observed_chart_version.clone(), &version) {
            let message = format!("chart version {old} -> {new}");
            let details = BTreeMap::from([("from".into(), old), ("to".into(), new.clone())]);
            self.record(kind::UPGRADING, message.clone(), details);
            self.note(false, kind::UPGRADING, message);
        }
        self.lifecycle.observed_chart_version = version;
    }

    /// Health written by a health checker.
    fn follow_health(&mut self, health: Option<&String>) {
        if health == self.lifecycle.observed_health.as_ref() {
            return;
        }
        let record = match health.map(String::as_str) {
            Some("healthy") => Some(kind::HEALTHY),
            Some("unhealthy" | "degraded") => Some(kind::UNHEALTHY),
            _ => None,
        };
        if let Some(record) = record {
            let message = format!("health {}", health.map_or("", String::as_str));
            self.record(record, message.clone(), BTreeMap::new());
            self.note(record == kind::UNHEALTHY, record, message);
        }
        self.lifecycle.observed_health = health.cloned();
    }

    /// Records a teardown trigger that fired (once), and tears down when
    /// no approval is needed or it was given. Returns whether teardown was triggered.
    fn follow_teardown(&mut self, fired: Option<&teardown::Fired>, may_tear_down: bool) -> bool {
        if let (Some(fired), false) = (fired, self.teardown_triggered()) {
            self.status.teardown = Some(TeardownStatus {
                triggered: Some(true),
                trigger_reason: Some(fired.reason.clone()),
                trigger_time: Some(Time(fired.at)),
                ..self.status.teardown.clone().unwrap_or_default()
            });
            self.record(
                kind::TEARDOWN_TRIGGERED,
                fired.reason.clone(),
                BTreeMap::new(),
            );
            let message = format!("teardown triggered: {}", fired.reason);
            self.note(true, kind::TEARDOWN_TRIGGERED, message);
        }
        let triggered = self.teardown_triggered();
        if triggered && may_tear_down && self.status.phase != Some(Phase::TearingDown) {
            self.enter_phase(Phase::TearingDown);
        }
        triggered
    }

    fn teardown_triggered(&self) -> bool {
        self.status
            .teardown
            .as_ref()
            .and_then(|t| t.triggered)
            .unwrap_or(false)
    }

    /// The findings of Audit mode and the exempted ones, listed apart from
    /// the verdict (the conditions do not read them); `rules` names the
    /// policy of each custom rule's code.
    fn list_findings(&mut self, result: &ValidationResult, rules: &[(String, String)]) {
        self.status.audit_findings = result
            .audited
            .iter()
            .take(MAX_STATUS_FINDINGS)
            .map(|f| AuditFinding {
                code: f.code.clone(),
                level: f.level.as_str().to_owned(),
                field: f.field.clone(),
                message: f.message.clone(),
                policy: crate::policy::rule_owner(rules, &f.code).map(str::to_owned),
            })
            .collect();
        self.status.exemptions = result
            .exempted
            .iter()
            .take(MAX_STATUS_FINDINGS)
            .map(|e| ExemptionStatus {
                code: e.finding.code.clone(),
                field: e.finding.field.clone(),
                exception: e.exception.clone(),
                justification: e.justification.clone(),
                expires_at: e.expires_at.clone(),
            })
            .collect();
    }

    /// The `Validated` and `Ready` conditions, and the generation they describe.
    fn set_conditions(&mut self, result: &ValidationResult, generation: Option<i64>) {
        let mut conditions = self.status.conditions.take().unwrap_or_default();
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
        let now = self.now;
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
        let phase = self.status.phase.map_or("Unknown", Phase::as_str);
        let ready = if self.status.phase == Some(Phase::Ready) {
            "True"
        } else {
            "False"
        };
        set_condition(
            &mut conditions,
            condition("Ready", ready, phase, format!("phase is {phase}")),
        );
        self.status.conditions = Some(conditions);
        self.status.observed_generation = generation;
    }

    /// The plan: the status only when it differs from `before`.
    fn finish(self, before: &ManagedRoostStatus, next_check: Option<Timestamp>) -> Plan {
        let mut status = self.status;
        status.lifecycle = Some(self.lifecycle);
        let changed = status != *before;
        if changed {
            status.last_update_time = Some(Time(self.now));
        }
        Plan {
            status: changed.then_some(status),
            notes: self.notes,
            next_check,
        }
    }
}

/// The `Validated` condition as last written: `Some(true)` when it passed.
fn was_valid(status: &ManagedRoostStatus) -> Option<bool> {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Validated")
        .map(|c| c.status == "True")
}

/// Whether a triggered teardown may proceed: no approval needed, or given.
fn may_tear_down(roost: &ManagedRoost) -> bool {
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
    !needs_approval || approved
}

/// Computes the status roost-keeper wants for `roost` at `now`; `rules` are
/// the custom rules that judged it ((policy, code), as
/// [`crate::engine::Judgement::rules`]), naming the policy of an audited finding.
pub fn plan(
    roost: &ManagedRoost,
    result: &ValidationResult,
    rules: &[(String, String)],
    now: Timestamp,
) -> Plan {
    let observed = roost.status.clone().unwrap_or_default();
    let before = owned(&observed);
    let created = roost
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or(now, |t| t.0);
    let chart_version = roost
        .spec
        .chart
        .as_ref()
        .and_then(|c| c.version.as_ref())
        .map(|v| v.as_text().into_owned());
    let evaluation = teardown::evaluate(&roost.spec, roost.status.as_ref(), created, now);

    let mut draft = Draft::new(before.clone(), now);
    draft.first_sight(observed.phase, created);
    draft.follow_observed_phase(observed.phase);
    draft.follow_validation(result, was_valid(&before));
    draft.follow_chart_version(chart_version);
    draft.follow_health(observed.health.as_ref());
    let triggered = draft.follow_teardown(evaluation.fired.as_ref(), may_tear_down(roost));
    draft.set_conditions(result, roost.metadata.generation);
    draft.list_findings(result, rules);
    draft.finish(&before, if triggered { None } else { evaluation.next })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ManagedRoostSpec;
    use crate::controller::lifecycle::event_count;
    use crate::validation::validate;
    use serde_json::{Value, json};

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + second).unwrap()
    }

    fn valid_spec() -> Value {
        json!({"chart": {"name": "web", "version": "1.2.3", "repository": {"url": "https://x.io", "type": "http"}},
               "healthChecks": [{"name": "h", "type": "tcp", "tcp": {"host": "h", "port": 80}}],
               "teardownPolicy": {"triggers": [{"type": "timeout", "timeout": "1h"}]}})
    }

    fn roost(spec: Value) -> ManagedRoost {
        let spec: ManagedRoostSpec = serde_json::from_value(spec).unwrap();
        let mut roost = ManagedRoost::new("web", spec);
        roost.metadata.namespace = Some("ns".into());
        roost.metadata.uid = Some("uid-1".into());
        roost.metadata.generation = Some(1);
        roost.metadata.creation_timestamp = Some(Time(at(0)));
        roost
    }

    /// Runs the planner and stores its status as the apiserver would (our fields replaced).
    fn step(roost: &mut ManagedRoost, now: Timestamp) -> Plan {
        let result = validate(&roost.spec);
        step_with(roost, &result, now)
    }

    /// [`step`] with a given verdict.
    fn step_with(roost: &mut ManagedRoost, result: &ValidationResult, now: Timestamp) -> Plan {
        let rules = [("require-owner".to_owned(), "OWNER_LABEL_MISSING".to_owned())];
        let plan = plan(roost, result, &rules, now);
        if let Some(ours) = &plan.status {
            let current = roost.status.take().unwrap_or_default();
            roost.status = Some(ManagedRoostStatus {
                health: current.health,
                health_checks: current.health_checks,
                helm_release: current.helm_release,
                observability: current.observability,
                last_reconcile_time: current.last_reconcile_time,
                ..ours.clone()
            });
        }
        plan
    }

    fn status(roost: &ManagedRoost) -> &ManagedRoostStatus {
        roost.status.as_ref().unwrap()
    }

    fn condition<'a>(roost: &'a ManagedRoost, kind: &str) -> &'a Condition {
        status(roost)
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == kind)
            .unwrap()
    }

    fn records(roost: &ManagedRoost) -> Vec<String> {
        status(roost)
            .lifecycle
            .iter()
            .flat_map(|l| l.events.iter().flatten())
            .map(|e| e.type_.clone())
            .collect()
    }

    fn reasons(plan: &Plan) -> Vec<&str> {
        plan.notes.iter().map(|n| n.reason).collect()
    }

    #[test]
    fn a_new_object_goes_pending_with_a_created_record_and_then_stays_still() {
        let mut roost = roost(valid_spec());
        let first = step(&mut roost, at(2));
        assert_eq!(status(&roost).phase, Some(Phase::Pending));
        assert_eq!(records(&roost), ["Created"]);
        assert_eq!(reasons(&first), ["Created"]);
        let lifecycle = status(&roost).lifecycle.as_ref().unwrap();
        assert_eq!(
            lifecycle.created_at,
            Some(Time(at(0))),
            "createdAt is the creationTimestamp"
        );
        let validated = condition(&roost, "Validated");
        assert_eq!(
            (validated.status.as_str(), validated.reason.as_str()),
            ("True", "ValidationPassed")
        );
        assert_eq!(validated.observed_generation, Some(1));
        assert_eq!(condition(&roost, "Ready").status, "False");
        assert_eq!(status(&roost).observed_generation, Some(1));
        assert_eq!(first.next_check, Some(at(3600)), "requeue at the timeout");
        let again = step(&mut roost, at(50));
        assert!(again.status.is_none(), "steady state writes nothing");
        assert!(again.notes.is_empty());
    }

    #[test]
    fn validation_errors_fail_the_object_and_a_fix_brings_it_back() {
        let mut spec = valid_spec();
        spec["chart"]["version"] = json!("latest");
        let mut roost = roost(spec);
        let plan = step(&mut roost, at(1));
        assert_eq!(status(&roost).phase, Some(Phase::Failed));
        assert!(records(&roost).contains(&"Failed".to_owned()));
        assert!(plan.notes.iter().any(|n| n.reason == "ValidationFailed"
            && n.warning
            && n.message.contains("CHART_VERSION_INVALID")));
        let validated = condition(&roost, "Validated").clone();
        assert_eq!(
            (validated.status.as_str(), validated.reason.as_str()),
            ("False", "ValidationFailed")
        );
        assert!(validated.message.contains("CHART_VERSION_INVALID"));
        roost.spec.chart.as_mut().unwrap().version = Some("1.2.4".into());
        roost.metadata.generation = Some(2);
        step(&mut roost, at(5));
        assert_eq!(status(&roost).phase, Some(Phase::Pending));
        let fixed = condition(&roost, "Validated");
        assert_eq!(fixed.status, "True");
        assert_eq!(
            fixed.last_transition_time,
            Time(at(5)),
            "the flip moves lastTransitionTime"
        );
        assert_eq!(fixed.observed_generation, Some(2));
        assert!(
            records(&roost).contains(&"Upgrading".to_owned()),
            "a new chart version is an upgrade"
        );
    }

    #[test]
    fn last_transition_time_only_moves_on_a_flip() {
        let mut roost = roost(valid_spec());
        step(&mut roost, at(1));
        roost.spec.chart.as_mut().unwrap().version = Some("^1.2".into());
        step(&mut roost, at(9));
        let validated = condition(&roost, "Validated");
        assert_eq!(validated.reason, "ValidationPassedWithWarnings");
        assert_eq!(
            validated.last_transition_time,
            Time(at(1)),
            "still True: no transition"
        );
    }

    #[test]
    fn phases_written_by_others_are_recorded_with_time_spent() {
        let mut roost = roost(valid_spec());
        step(&mut roost, at(1));
        for (phase, record, second) in [
            (Phase::Deploying, "Installing", 30),
            (Phase::Ready, "Ready", 90),
            (Phase::Failed, "Failed", 100),
            (Phase::TearingDown, "TeardownTriggered", 160),
        ] {
            roost.status.as_mut().unwrap().phase = Some(phase);
            let plan = step(&mut roost, at(second));
            assert_eq!(
                status(&roost).phase,
                Some(phase),
                "the other actor's phase is kept"
            );
            assert_eq!(records(&roost).last().map(String::as_str), Some(record));
            assert!(reasons(&plan).contains(&"PhaseChanged"));
        }
        let durations = status(&roost)
            .lifecycle
            .as_ref()
            .unwrap()
            .phase_durations
            .clone()
            .unwrap();
        assert_eq!(durations["Pending"], "30s", "from creation to Deploying");
        assert_eq!(durations["Deploying"], "1m0s");
        assert_eq!(durations["Ready"], "10s");
        assert_eq!(durations["Failed"], "1m0s");
        assert_eq!(condition(&roost, "Ready").status, "False");
    }

    #[test]
    fn health_changes_are_recorded() {
        let mut roost = roost(valid_spec());
        step(&mut roost, at(1));
        for (health, record) in [
            ("healthy", "Healthy"),
            ("unhealthy", "Unhealthy"),
            ("healthy", "Healthy"),
        ] {
            roost.status.as_mut().unwrap().health = Some(health.into());
            step(&mut roost, at(10));
            assert_eq!(records(&roost).last().map(String::as_str), Some(record));
        }
        assert_eq!(
            event_count(status(&roost).lifecycle.as_ref().unwrap(), "Healthy"),
            2
        );
        assert!(
            step(&mut roost, at(20)).status.is_none(),
            "no change, no record"
        );
    }

    #[test]
    fn a_fired_trigger_tears_down_and_manual_approval_gates_the_phase() {
        let mut spec = valid_spec();
        spec["teardownPolicy"] = json!({"triggers": [{"type": "timeout", "timeout": "10s"}], "requireManualApproval": true});
        let mut roost = roost(spec);
        step(&mut roost, at(1));
        let plan = step(&mut roost, at(10));
        let teardown = status(&roost).teardown.clone().unwrap();
        assert_eq!(teardown.triggered, Some(true));
        assert_eq!(teardown.trigger_time, Some(Time(at(10))));
        assert!(teardown.trigger_reason.unwrap().contains("timeout 10s"));
        assert!(
            plan.notes
                .iter()
                .any(|n| n.reason == "TeardownTriggered" && n.warning)
        );
        assert_eq!(
            status(&roost).phase,
            Some(Phase::Pending),
            "waits for approval"
        );
        assert!(step(&mut roost, at(11)).status.is_none(), "recorded once");
        roost.metadata.annotations =
            Some([(APPROVAL_ANNOTATION.to_owned(), "true".to_owned())].into());
        step(&mut roost, at(12));
        assert_eq!(status(&roost).phase, Some(Phase::TearingDown));
        assert_eq!(
            event_count(
                status(&roost).lifecycle.as_ref().unwrap(),
                "TeardownTriggered"
            ),
            1
        );
    }

    fn finding(
        code: &str,
        level: crate::validation::Level,
        field: &str,
    ) -> crate::validation::Finding {
        crate::validation::Finding {
            code: code.into(),
            level,
            field: field.into(),
            message: format!("{code} at {field}"),
        }
    }

    #[test]
    fn audit_findings_are_listed_and_leave_validated_true() {
        use crate::validation::Level;
        let mut roost = roost(valid_spec());
        let mut result = validate(&roost.spec);
        result.audited = vec![
            finding("OWNER_LABEL_MISSING", Level::Error, "metadata.labels"),
            finding(
                "CHART_VERSION_UNPINNED",
                Level::Warning,
                "spec.chart.version",
            ),
        ];
        step_with(&mut roost, &result, at(1));
        let validated = condition(&roost, "Validated");
        assert_eq!(
            (validated.status.as_str(), validated.reason.as_str()),
            ("True", "ValidationPassed"),
            "audited findings do not change the verdict"
        );
        assert_eq!(status(&roost).phase, Some(Phase::Pending));
        let listed = &status(&roost).audit_findings;
        assert_eq!(listed.len(), 2);
        assert_eq!(
            listed[0],
            AuditFinding {
                code: "OWNER_LABEL_MISSING".into(),
                level: "error".into(),
                field: "metadata.labels".into(),
                message: "OWNER_LABEL_MISSING at metadata.labels".into(),
                policy: Some("require-owner".into()),
            }
        );
        assert_eq!(listed[1].policy, None, "a built-in code has no policy");
        assert!(status(&roost).exemptions.is_empty());
        let text = serde_json::to_value(status(&roost)).unwrap();
        assert!(text.get("exemptions").is_none(), "omitted when empty");
        assert!(
            step_with(&mut roost, &result, at(2)).status.is_none(),
            "the same findings write nothing"
        );
        result.audited.clear();
        step_with(&mut roost, &result, at(3));
        assert!(
            status(&roost).audit_findings.is_empty(),
            "a fixed finding leaves the list"
        );
        let text = serde_json::to_value(status(&roost)).unwrap();
        assert!(text.get("auditFindings").is_none(), "omitted when empty");
    }

    #[test]
    fn exemptions_are_listed_with_their_justification_and_at_most_twenty() {
        use crate::validation::{Exemption, Level};
        let mut roost = roost(valid_spec());
        let mut result = validate(&roost.spec);
        result.exempted = (0..25)
            .map(|i| Exemption {
                finding: finding(
                    "CHART_VERSION_UNPINNED",
                    Level::Warning,
                    &format!("spec.x[{i}]"),
                ),
                exception: "migration".into(),
                justification: "until the chart is pinned".into(),
                expires_at: (i == 0).then(|| "2027-01-01T00:00:00Z".to_owned()),
            })
            .collect();
        step_with(&mut roost, &result, at(1));
        let exemptions = &status(&roost).exemptions;
        assert_eq!(exemptions.len(), MAX_STATUS_FINDINGS);
        assert_eq!(
            exemptions[0],
            ExemptionStatus {
                code: "CHART_VERSION_UNPINNED".into(),
                field: "spec.x[0]".into(),
                exception: "migration".into(),
                justification: "until the chart is pinned".into(),
                expires_at: Some("2027-01-01T00:00:00Z".into()),
            }
        );
        assert_eq!(exemptions[1].expires_at, None);
        let validated = condition(&roost, "Validated");
        assert_eq!(
            validated.reason, "ValidationPassed",
            "exempted warnings are not warnings"
        );
        let text = serde_json::to_value(status(&roost)).unwrap();
        assert_eq!(text["exemptions"][0]["expiresAt"], "2027-01-01T00:00:00Z");
    }
}
