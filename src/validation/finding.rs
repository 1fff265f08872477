//! Findings, levels and the result of validating one object.

use super::codes::{self, Code};
use serde::{Deserialize, Serialize};
use std::fmt;

/// How much a finding matters (RULES.md, "Levels").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warning,
    Info,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Info => "info",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem: a stable code, its level, the JSON path and a one-line fix.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Finding {
    pub code: String,
    pub level: Level,
    pub field: String,
    pub message: String,
}

impl Finding {
    /// A finding of `code` at its level.
    pub fn new(code: Code, field: impl Into<String>, message: impl Into<String>) -> Self {
        Finding {
            code: code.name().to_owned(),
            level: code.level(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// The form shown to kubectl as an admission warning: `field: message [CODE]`.
    pub fn as_warning_line(&self) -> String {
        format!("{}: {} [{}]", self.field, self.message, self.code)
    }
}

/// The verdict on one object: errors deny, warnings are shown, info is recorded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationResult {
    pub valid: bool,
    pub errors: Vec<Finding>,
    pub warnings: Vec<Finding>,
    pub info: Vec<Finding>,
    /// Findings of RoostPolicies (or rules) in Audit mode, at the level
    /// enforcing them would give: no effect on the verdict; listed in
    /// status, Reports and `validate -v`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audited: Vec<Finding>,
    /// Findings a RoostPolicyException exempts: no effect on the verdict.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exempted: Vec<Exemption>,
}

/// A finding left out of the verdict by a RoostPolicyException.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Exemption {
    /// The finding as it would have counted.
    pub finding: Finding,
    /// The exception's name (in the roost's namespace).
    pub exception: String,
    /// Its justification, cut to [`MAX_MESSAGE_CHARS`].
    pub justification: String,
    /// When it stops applying (RFC 3339), if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// Findings listed per level; the rest are counted in one
/// [`codes::TOO_MANY_FINDINGS`] finding, so no object makes a denial, a warning list, a status or a cached
/// verdict grow with it.
pub const MAX_FINDINGS_PER_LEVEL: usize = 100;
/// Longest message kept, in characters.
pub const MAX_MESSAGE_CHARS: usize = 300;
/// Longest field path kept, in characters.
pub const MAX_FIELD_CHARS: usize = 200;

/// `text` cut to `max` characters, ending in `…` when cut.
fn cut(mut text: String, max: usize) -> String {
    if let Some((at, _)) = text.char_indices().nth(max) {
        text.truncate(at);
        text.push('…');
    }
    text
}

/// At most [`MAX_FINDINGS_PER_LEVEL`] findings, each cut as the verdict's
/// are (audited findings live in caches and statuses too).
pub(crate) fn bounded(mut findings: Vec<Finding>) -> Vec<Finding> {
    findings.truncate(MAX_FINDINGS_PER_LEVEL);
    findings.into_iter().map(Finding::cut).collect()
}

/// At most [`MAX_FINDINGS_PER_LEVEL`] exemptions, cut likewise.
pub(crate) fn bounded_exemptions(mut exemptions: Vec<Exemption>) -> Vec<Exemption> {
    exemptions.truncate(MAX_FINDINGS_PER_LEVEL);
    for exemption in &mut exemptions {
        exemption.finding = exemption.finding.clone().cut();
        exemption.justification = cut(
            std::mem::take(&mut exemption.justification),
            MAX_MESSAGE_CHARS,
        );
    }
    exemptions
}

impl Finding {
    /// The finding with its message and field cut to their longest.
    fn cut(mut self) -> Finding {
        self.message = cut(self.message, MAX_MESSAGE_CHARS);
        self.field = cut(self.field, MAX_FIELD_CHARS);
        self
    }
}

impl ValidationResult {
    /// Splits findings by level, keeping their order: at most
    /// [`MAX_FINDINGS_PER_LEVEL`] of each, then one finding counting the rest
    /// (at the highest level left out, so an object with errors stays invalid).
    pub fn from_findings(findings: Vec<Finding>) -> Self {
        let mut result = ValidationResult::default();
        let mut left_out = [0usize; 3];
        for finding in findings {
            let list = match finding.level {
                Level::Error => &mut result.errors,
                Level::Warning => &mut result.warnings,
                Level::Info => &mut result.info,
            };
            if list.len() >= MAX_FINDINGS_PER_LEVEL {
                left_out[finding.level as usize] += 1;
                continue;
            }
            list.push(finding.cut());
        }
        let levels = [Level::Error, Level::Warning, Level::Info];
        if let Some(&level) = levels.iter().find(|l| left_out[**l as usize] > 0) {
            let [errors, warnings, info] = left_out;
            let summary = Finding {
                code: codes::TOO_MANY_FINDINGS.name().to_owned(),
                level,
                field: "spec".to_owned(),
                message: format!(
                    "{} more findings not listed ({errors} errors, {warnings} warnings, {info} info); fix those listed and check again",
                    errors + warnings + info
                ),
            };
            match level {
                Level::Error => result.errors.push(summary),
                Level::Warning => result.warnings.push(summary),
                Level::Info => result.info.push(summary),
            }
        }
        result.valid = result.errors.is_empty();
        // Results live in the cache: keep no spare capacity.
        result.errors.shrink_to_fit();
        result.warnings.shrink_to_fit();
        result.info.shrink_to_fit();
        result
    }

    /// Every finding: errors, then warnings, then info.
    pub fn all(&self) -> impl Iterator<Item = &Finding> {
        self.errors
            .iter()
            .chain(self.warnings.iter())
            .chain(self.info.iter())
    }

    /// Codes of all findings, in order (handy for status messages and tests).
    pub fn codes(&self) -> Vec<&str> {
        self.all().map(|f| f.code.as_str()).collect()
    }

    /// The result without the warnings and info findings whose code is in
    /// `silenced` (errors always stay: they cannot be silenced).
    pub fn silenced(&self, silenced: &[&str]) -> ValidationResult {
        let keep = |f: &&Finding| !silenced.contains(&f.code.as_str());
        ValidationResult {
            valid: self.valid,
            errors: self.errors.clone(),
            warnings: self.warnings.iter().filter(keep).cloned().collect(),
            info: self.info.iter().filter(keep).cloned().collect(),
            audited: self.audited.clone(),
            exempted: self.exempted.clone(),
        }
    }
}

/// Annotation on a ManagedRoost naming warning codes to leave out of its
/// admission warnings, its `Validated` condition and `validate` output:
/// `roost.birb.party/silence-warnings: "CHART_VERSION_UNPINNED, REPO_PLAIN_HTTP"`.
pub const SILENCE_ANNOTATION: &str = "roost.birb.party/silence-warnings";

/// The codes a silence annotation's value lists (comma or space separated).
pub fn silenced_codes(annotation: Option<&str>) -> Vec<&str> {
    annotation
        .unwrap_or_default()
        .split([',', ' ', '\n', '\t'])
        .filter(|code| !code.is_empty())
        .collect()
}

/// Collects findings while rules run.
#[derive(Debug, Default)]
pub struct Findings(Vec<Finding>);

impl Findings {
    /// Reports a finding of `code`, at the level the code declares.
    pub fn report(&mut self, code: Code, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(Finding::new(code, field, message));
    }

    pub fn into_vec(self) -> Vec<Finding> {
        self.0
    }
}

/// Quotes a user value for a message, cut short so one line stays readable.
/// Never call it with a secret.
pub fn shown(value: &str) -> String {
    shown_max(value, 40)
}

/// [`shown`] with a chosen length, for messages that must stay short.
pub fn shown_max(value: &str, max: usize) -> String {
    let mut out: String = value.chars().take(max).collect();
    if value.chars().count() > max {
        out.push('…');
    }
    format!("{out:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const E: Code = Code::new("E", Level::Error, "an error");
    const W: Code = Code::new("W", Level::Warning, "a warning");
    const I: Code = Code::new("I", Level::Info, "a note");
    const REPO_PLAIN_HTTP: Code = Code::new("REPO_PLAIN_HTTP", Level::Warning, "plain http");

    fn result() -> ValidationResult {
        let mut findings = Findings::default();
        findings.report(codes::CHART_VERSION_INVALID, "spec.chart.version", "bad");
        findings.report(
            codes::CHART_VERSION_UNPINNED,
            "spec.chart.version",
            "pin it",
        );
        findings.report(REPO_PLAIN_HTTP, "spec.chart.repository.url", "use https");
        ValidationResult::from_findings(findings.into_vec())
    }

    #[test]
    fn findings_are_capped_per_level_and_counted() {
        let mut findings = Findings::default();
        for i in 0..250 {
            findings.report(E, format!("spec.e[{i}]"), "x".repeat(1000));
            findings.report(W, format!("spec.w[{i}]"), "w");
        }
        findings.report(I, "spec", "i");
        let result = ValidationResult::from_findings(findings.into_vec());
        assert!(!result.valid);
        assert_eq!(result.errors.len(), MAX_FINDINGS_PER_LEVEL + 1);
        assert_eq!(result.warnings.len(), MAX_FINDINGS_PER_LEVEL);
        assert_eq!(result.info.len(), 1);
        assert_eq!(result.errors[99].field, "spec.e[99]");
        let summary = &result.errors[MAX_FINDINGS_PER_LEVEL];
        assert_eq!(
            (summary.code.as_str(), summary.level),
            (codes::TOO_MANY_FINDINGS.name(), Level::Error)
        );
        assert!(
            summary
                .message
                .starts_with("300 more findings not listed (150 errors, 150 warnings, 0 info)"),
            "{}",
            summary.message
        );
        assert!(result.errors[0].message.chars().count() <= MAX_MESSAGE_CHARS + 1);
        assert!(result.errors[0].message.ends_with('…'));
    }

    #[test]
    fn warnings_left_out_are_counted_by_a_warning() {
        let mut findings = Findings::default();
        for i in 0..101 {
            findings.report(W, format!("spec.w[{i}]"), "w");
        }
        let result = ValidationResult::from_findings(findings.into_vec());
        assert!(result.valid);
        assert_eq!(
            result.warnings.last().unwrap().code,
            codes::TOO_MANY_FINDINGS.name()
        );
        assert_eq!(result.warnings.len(), MAX_FINDINGS_PER_LEVEL + 1);
    }

    #[test]
    fn silencing_drops_the_listed_warnings_only() {
        let silenced = result().silenced(&["CHART_VERSION_UNPINNED"]);
        assert_eq!(
            silenced.codes(),
            ["CHART_VERSION_INVALID", "REPO_PLAIN_HTTP"]
        );
        assert!(!silenced.valid);
    }

    #[test]
    fn errors_cannot_be_silenced() {
        let silenced = result().silenced(&["CHART_VERSION_INVALID", "REPO_PLAIN_HTTP"]);
        assert_eq!(
            silenced.codes(),
            ["CHART_VERSION_INVALID", "CHART_VERSION_UNPINNED"]
        );
        assert!(!silenced.valid);
    }

    #[test]
    fn the_annotation_lists_codes_separated_by_commas_or_spaces() {
        assert_eq!(
            silenced_codes(Some(" CHART_VERSION_UNPINNED,REPO_PLAIN_HTTP  X\n")),
            ["CHART_VERSION_UNPINNED", "REPO_PLAIN_HTTP", "X"]
        );
        assert!(silenced_codes(None).is_empty());
        assert!(silenced_codes(Some(" , ")).is_empty());
    }
}
