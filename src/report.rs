//! Policy reports: a verdict as an OpenReports `Report`
//! (`openreports.io/v1alpha1`) or a `PolicyReport` of its predecessor
//! (`wgpolicyk8s.io/v1alpha2`), the ecosystem's shared format. Pure: the
//! controller writes what [`report`] gives for each roost, `validate -o
//! report` prints it.

use crate::validation::codes;
use crate::validation::{Exemption, Finding, Level, Registry, ValidationResult};
use serde_json::{Map, Value, json};

/// The `source` of every result.
pub const SOURCE: &str = "roost-keeper";
/// Most results in one report; the summary still counts every one.
pub const MAX_RESULTS: usize = 200;
/// The label every report roost-keeper writes carries (value [`SOURCE`]).
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// Which report API to write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum ReportApi {
    /// `openreports.io/v1alpha1` `Report`.
    #[default]
    #[value(name = "openreports.io")]
    OpenReports,
    /// `wgpolicyk8s.io/v1alpha2` `PolicyReport`.
    #[value(name = "wgpolicyk8s.io")]
    WgPolicy,
}

impl ReportApi {
    pub fn group(self) -> &'static str {
        match self {
            ReportApi::OpenReports => "openreports.io",
            ReportApi::WgPolicy => "wgpolicyk8s.io",
        }
    }

    pub fn version(self) -> &'static str {
        match self {
            ReportApi::OpenReports => "v1alpha1",
            ReportApi::WgPolicy => "v1alpha2",
        }
    }

    pub fn kind(self) -> &'static str {
        match self {
            ReportApi::OpenReports => "Report",
            ReportApi::WgPolicy => "PolicyReport",
        }
    }

    /// The resource's plural, as discovery lists it.
    pub fn plural(self) -> &'static str {
        match self {
            ReportApi::OpenReports => "reports",
            ReportApi::WgPolicy => "policyreports",
        }
    }

    pub fn api_version(self) -> String {
        format!("{}/{}", self.group(), self.version())
    }
}

/// The roost a report is about.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    /// Its `apiVersion` as the report names it (the storage version).
    pub api_version: &'a str,
    pub name: &'a str,
    pub namespace: &'a str,
    /// Also the report's name: one report per roost, whatever it is renamed to.
    pub uid: &'a str,
}

/// The report on `subject` from its verdict `result`: a result per finding
/// (audited ones `scored: false`, exempted ones `skip`), a `pass` per
/// built-in rule group of `registry` and per custom rule in `rules`
/// ((policy, code), as [`crate::engine::Judgement::rules`]) without a
/// finding, and the summary; owned by the roost, so it goes with it.
pub fn report(
    api: ReportApi,
    subject: &Subject<'_>,
    result: &ValidationResult,
    rules: &[(String, String)],
    registry: &Registry,
) -> Value {
    let groups = registry.groups();
    let group_of = |code: &str| {
        groups
            .iter()
            .find(|(_, codes)| codes.contains(&code))
            .map(|(group, _)| *group)
    };
    let policy_of = |code: &str| -> (String, String) {
        match crate::policy::rule_owner(rules, code) {
            Some(policy) => (policy.to_owned(), "RoostPolicy".to_owned()),
            None => {
                let group = group_of(code).unwrap_or(SOURCE);
                (group.to_owned(), group.to_owned())
            }
        }
    };
    let mut results: Vec<Value> = Vec::new();
    let finding_result = |finding: &Finding, outcome: &str, scored: bool| {
        let (policy, category) = policy_of(&finding.code);
        let mut properties = Map::new();
        properties.insert("field".into(), finding.field.clone().into());
        properties.insert("level".into(), finding.level.as_str().into());
        let mut entry = json!({
            "source": SOURCE,
            "policy": policy,
            "rule": finding.code,
            "category": category,
            "result": outcome,
            "severity": severity(finding.level),
            "message": finding.message,
            "properties": properties,
        });
        if !scored {
            entry["scored"] = false.into();
            entry["properties"]["mode"] = "Audit".into();
        }
        entry
    };
    for finding in &result.errors {
        let outcome = if finding.code == codes::POLICY_EVALUATION_ERROR.name() {
            "error"
        } else {
            "fail"
        };
        results.push(finding_result(finding, outcome, true));
    }
    for finding in &result.warnings {
        results.push(finding_result(finding, "warn", true));
    }
    for finding in &result.info {
        results.push(finding_result(finding, "pass", true));
    }
    for finding in &result.audited {
        results.push(finding_result(finding, "fail", false));
    }
    for Exemption {
        finding,
        exception,
        justification,
        expires_at,
    } in &result.exempted
    {
        let mut entry = finding_result(finding, "skip", true);
        entry["properties"]["exception"] = exception.clone().into();
        entry["properties"]["justification"] = justification.clone().into();
        if let Some(at) = expires_at {
            entry["properties"]["expiresAt"] = at.clone().into();
        }
        results.push(entry);
    }
    let found = |code: &str| {
        result.all().any(|f| f.code == code)
            || result.audited.iter().any(|f| f.code == code)
            || result.exempted.iter().any(|e| e.finding.code == code)
    };
    for (group, codes) in &groups {
        if !codes.iter().any(|c| found(c)) {
            results.push(json!({
                "source": SOURCE, "policy": group, "rule": group, "category": group,
                "result": "pass", "message": format!("every {group} rule passes"),
            }));
        }
    }
    for (policy, code) in rules {
        if !found(code) {
            results.push(json!({
                "source": SOURCE, "policy": policy, "rule": code, "category": "RoostPolicy",
                "result": "pass", "message": format!("{code} passes"),
            }));
        }
    }
    let mut summary = json!({"pass": 0, "fail": 0, "warn": 0, "error": 0, "skip": 0});
    for entry in &results {
        if let Some(count) = entry["result"].as_str().and_then(|r| summary.get_mut(r)) {
            *count = (count.as_u64().unwrap_or(0) + 1).into();
        }
    }
    results.truncate(MAX_RESULTS);
    let mut report = json!({
        "apiVersion": api.api_version(),
        "kind": api.kind(),
        "metadata": {
            "name": subject.uid,
            "namespace": subject.namespace,
            "labels": {MANAGED_BY: SOURCE},
            "ownerReferences": [{
                "apiVersion": subject.api_version,
                "kind": crate::api::KIND,
                "name": subject.name,
                "uid": subject.uid,
            }],
        },
        "scope": {
            "apiVersion": subject.api_version,
            "kind": crate::api::KIND,
            "name": subject.name,
            "namespace": subject.namespace,
            "uid": subject.uid,
        },
        "source": SOURCE,
        "summary": summary,
        "results": results,
    });
    if api == ReportApi::WgPolicy {
        // A PolicyReport has no top-level `source` (only its results do);
        // server-side apply refuses a field its schema does not declare.
        if let Some(object) = report.as_object_mut() {
            object.remove("source");
        }
    }
    report
}

fn severity(level: Level) -> &'static str {
    match level {
        Level::Error => "high",
        Level::Warning => "medium",
        Level::Info => "info",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(code: &str, level: Level) -> Finding {
        Finding {
            code: code.into(),
            level,
            field: "spec.chart".into(),
            message: "m".into(),
        }
    }

    fn subject() -> Subject<'static> {
        Subject {
            api_version: "roost.birb.party/v1beta1",
            name: "web",
            namespace: "team-a",
            uid: "0b5e-uid",
        }
    }

    fn outcomes(report: &Value) -> Vec<(String, String, String)> {
        report["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["policy"].as_str().unwrap().to_owned(),
                    r["rule"].as_str().unwrap().to_owned(),
                    r["result"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn every_finding_and_every_clean_group_and_rule_is_a_result() {
        let registry = Registry::builtin();
        let mut result = ValidationResult::from_findings(vec![
            finding("CHART_VERSION_MISSING", Level::Error),
            finding("NO_HEALTH_CHECKS", Level::Warning),
            finding("PROD_OWNER", Level::Error),
        ]);
        result.audited = vec![finding("AUDITED_RULE", Level::Error)];
        result.exempted = vec![Exemption {
            finding: finding("EXEMPT_RULE", Level::Warning),
            exception: "ex".into(),
            justification: "migration".into(),
            expires_at: Some("2026-12-31T00:00:00Z".into()),
        }];
        let rules: Vec<(String, String)> =
            ["PROD_OWNER", "AUDITED_RULE", "EXEMPT_RULE", "CLEAN_RULE"]
                .iter()
                .map(|c| ("prod".to_owned(), (*c).to_owned()))
                .collect();
        let report = report(
            ReportApi::OpenReports,
            &subject(),
            &result,
            &rules,
            &registry,
        );
        assert_eq!(report["apiVersion"], "openreports.io/v1alpha1");
        assert_eq!(report["kind"], "Report");
        assert_eq!(report["metadata"]["name"], "0b5e-uid");
        assert_eq!(report["metadata"]["ownerReferences"][0]["uid"], "0b5e-uid");
        assert_eq!(report["scope"]["name"], "web");
        let got = outcomes(&report);
        let has = |policy: &str, rule: &str, outcome: &str| {
            got.contains(&(policy.to_owned(), rule.to_owned(), outcome.to_owned()))
        };
        assert!(has("chart", "CHART_VERSION_MISSING", "fail"), "{got:?}");
        assert!(has("health", "NO_HEALTH_CHECKS", "warn"), "{got:?}");
        assert!(has("prod", "PROD_OWNER", "fail"), "{got:?}");
        assert!(has("prod", "AUDITED_RULE", "fail"), "{got:?}");
        assert!(has("prod", "EXEMPT_RULE", "skip"), "{got:?}");
        assert!(has("prod", "CLEAN_RULE", "pass"), "{got:?}");
        assert!(has("teardown", "teardown", "pass"), "{got:?}");
        // A group with a finding has no pass result.
        assert!(!has("chart", "chart", "pass"), "{got:?}");
        assert!(!has("health", "health", "pass"), "{got:?}");
        let audited = &report["results"][3];
        assert_eq!(audited["rule"], "AUDITED_RULE");
        assert_eq!(audited["scored"], false);
        let exempted = &report["results"][4];
        assert_eq!(exempted["properties"]["exception"], "ex");
        assert_eq!(exempted["properties"]["justification"], "migration");
        let summary = &report["summary"];
        assert_eq!(summary["fail"], 3);
        assert_eq!(summary["warn"], 1);
        assert_eq!(summary["skip"], 1);
        let groups = registry.groups().len() as u64;
        assert_eq!(summary["pass"], groups - 2 + 1);

        let wg = super::report(ReportApi::WgPolicy, &subject(), &result, &rules, &registry);
        assert_eq!(wg["apiVersion"], "wgpolicyk8s.io/v1alpha2");
        assert_eq!(wg["kind"], "PolicyReport");
        assert_eq!(wg["results"], report["results"]);
        assert_eq!(report["source"], SOURCE);
        assert!(
            wg.get("source").is_none(),
            "a PolicyReport's schema has no top-level source"
        );
    }

    #[test]
    fn results_are_capped_and_the_summary_counts_them_all() {
        let findings = (0..150)
            .map(|i| finding(&format!("RULE_{i}"), Level::Warning))
            .chain((0..150).map(|i| finding(&format!("INFO_{i}"), Level::Info)))
            .collect();
        let mut result = ValidationResult::from_findings(findings);
        result.audited = (0..100)
            .map(|i| finding(&format!("AUDIT_{i}"), Level::Error))
            .collect();
        let report = report(
            ReportApi::OpenReports,
            &subject(),
            &result,
            &[],
            &Registry::builtin(),
        );
        assert_eq!(report["results"].as_array().unwrap().len(), MAX_RESULTS);
        let summary = &report["summary"];
        let total: u64 = ["pass", "fail", "warn", "error", "skip"]
            .iter()
            .map(|k| summary[k].as_u64().unwrap())
            .sum();
        assert!(total > MAX_RESULTS as u64, "{summary}");
        assert_eq!(summary["fail"], 100);
    }

    #[test]
    fn an_evaluation_error_is_an_error_result() {
        let result =
            ValidationResult::from_findings(vec![finding("POLICY_EVALUATION_ERROR", Level::Error)]);
        let report = report(
            ReportApi::OpenReports,
            &subject(),
            &result,
            &[],
            &Registry::builtin(),
        );
        assert_eq!(report["results"][0]["result"], "error");
        assert_eq!(report["summary"]["error"], 1);
    }
}
