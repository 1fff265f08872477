//! Findings, levels and the result of validating one object.

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
}

impl ValidationResult {
    /// Splits findings by level, keeping their order.
    pub fn from_findings(findings: Vec<Finding>) -> Self {
        let mut result = ValidationResult::default();
        for finding in findings {
            match finding.level {
                Level::Error => result.errors.push(finding),
                Level::Warning => result.warnings.push(finding),
                Level::Info => result.info.push(finding),
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
    pub fn push(
        &mut self,
        level: Level,
        code: &str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.0.push(Finding {
            code: code.to_owned(),
            level,
            field: field.into(),
            message: message.into(),
        });
    }

    pub fn error(&mut self, code: &str, field: impl Into<String>, message: impl Into<String>) {
        self.push(Level::Error, code, field, message);
    }

    pub fn warning(&mut self, code: &str, field: impl Into<String>, message: impl Into<String>) {
        self.push(Level::Warning, code, field, message);
    }

    pub fn info(&mut self, code: &str, field: impl Into<String>, message: impl Into<String>) {
        self.push(Level::Info, code, field, message);
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

    fn result() -> ValidationResult {
        let mut findings = Findings::default();
        findings.error("CHART_VERSION_INVALID", "spec.chart.version", "bad");
        findings.push(
            Level::Warning,
            "CHART_VERSION_UNPINNED",
            "spec.chart.version",
            "pin it",
        );
        findings.push(
            Level::Warning,
            "REPO_PLAIN_HTTP",
            "spec.chart.repository.url",
            "use https",
        );
        ValidationResult::from_findings(findings.into_vec())
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
