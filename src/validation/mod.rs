//! The validation engine: every rule of RULES.md, pure and synchronous.
//!
//! Rules are grouped one file per part of the spec. The registry runs them in
//! a fixed order, so the same object always yields the same findings in the
//! same order.

pub mod chart;
pub mod checks;
pub mod finding;
pub mod health;
pub mod observability;
pub mod target;
pub mod teardown;
pub mod tenancy;

pub use finding::{Finding, Findings, Level, ValidationResult, shown};

use crate::api::ManagedRoostSpec;
use std::sync::LazyLock;

/// Bumped whenever a rule changes what it reports; part of every cache key.
pub const RULESET_VERSION: u32 = 1;

/// What a rule sees: the object's spec and, on UPDATE, the old spec.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    pub spec: &'a ManagedRoostSpec,
    pub old: Option<&'a ManagedRoostSpec>,
}

/// One rule: a pure check that may report findings with the codes it declares.
pub trait Rule: Send + Sync {
    /// Short name, `group/what`.
    fn name(&self) -> &'static str;
    /// Every code the rule can report.
    fn codes(&self) -> &'static [&'static str];
    fn check(&self, input: Input<'_>, out: &mut Findings);
}

/// A rule written as a plain function.
pub struct FnRule {
    pub name: &'static str,
    pub codes: &'static [&'static str],
    pub check: fn(Input<'_>, &mut Findings),
}

impl Rule for FnRule {
    fn name(&self) -> &'static str {
        self.name
    }
    fn codes(&self) -> &'static [&'static str] {
        self.codes
    }
    fn check(&self, input: Input<'_>, out: &mut Findings) {
        (self.check)(input, out)
    }
}

/// Every rule, in the order findings are reported.
pub struct Registry {
    rules: Vec<&'static dyn Rule>,
}

impl Registry {
    fn with_all_rules() -> Self {
        let groups: [&'static [FnRule]; 6] = [
            chart::RULES,
            health::RULES,
            teardown::RULES,
            tenancy::RULES,
            observability::RULES,
            target::RULES,
        ];
        let rules = groups
            .into_iter()
            .flatten()
            .map(|rule| rule as &'static dyn Rule)
            .collect();
        Registry { rules }
    }

    /// The registry holding every rule of RULES.md.
    pub fn global() -> &'static Registry {
        static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::with_all_rules);
        &REGISTRY
    }

    pub fn rules(&self) -> &[&'static dyn Rule] {
        &self.rules
    }

    /// Every code any rule can report, in registry order, without repeats.
    pub fn codes(&self) -> Vec<&'static str> {
        let mut codes: Vec<&'static str> = Vec::new();
        for code in self.rules.iter().flat_map(|r| r.codes()) {
            if !codes.contains(code) {
                codes.push(code);
            }
        }
        codes
    }

    /// Runs every rule on `input`.
    pub fn run(&self, input: Input<'_>) -> ValidationResult {
        let mut out = Findings::default();
        for rule in &self.rules {
            rule.check(input, &mut out);
        }
        ValidationResult::from_findings(out.into_vec())
    }
}

/// Validates a (defaulted) spec on CREATE.
pub fn validate(spec: &ManagedRoostSpec) -> ValidationResult {
    Registry::global().run(Input { spec, old: None })
}

/// Validates a (defaulted) spec on UPDATE, comparing with the old spec.
pub fn validate_update(spec: &ManagedRoostSpec, old: &ManagedRoostSpec) -> ValidationResult {
    Registry::global().run(Input {
        spec,
        old: Some(old),
    })
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use serde_json::Value;

    /// Decodes a spec written as JSON (test tables write specs inline).
    pub fn spec(value: Value) -> ManagedRoostSpec {
        serde_json::from_value(value).expect("test spec decodes")
    }

    /// Runs one group's rules and returns `(code, field)` pairs.
    pub fn run_group(
        rules: &[FnRule],
        spec: &ManagedRoostSpec,
        old: Option<&ManagedRoostSpec>,
    ) -> Vec<(String, String)> {
        let mut out = Findings::default();
        for rule in rules {
            rule.check(Input { spec, old }, &mut out);
        }
        out.into_vec()
            .into_iter()
            .map(|f| (f.code, f.field))
            .collect()
    }

    /// A table case: the spec, the `(code, field)` expected to fire, and
    /// whether it must be absent (near miss) instead.
    pub struct Case {
        pub name: &'static str,
        pub spec: Value,
        pub old: Option<Value>,
        pub code: &'static str,
        pub field: &'static str,
        pub fires: bool,
    }

    pub fn fires(name: &'static str, code: &'static str, field: &'static str, spec: Value) -> Case {
        Case {
            name,
            spec,
            old: None,
            code,
            field,
            fires: true,
        }
    }

    pub fn silent(name: &'static str, code: &'static str, spec: Value) -> Case {
        Case {
            name,
            spec,
            old: None,
            code,
            field: "",
            fires: false,
        }
    }

    /// Runs a table: a firing case must report `code` at `field`; a near miss must not report `code`.
    pub fn run_table(rules: &[FnRule], cases: Vec<Case>) {
        for case in cases {
            let spec = spec(case.spec);
            let old = case.old.map(super::test_support::spec);
            let got = run_group(rules, &spec, old.as_ref());
            if case.fires {
                assert!(
                    got.iter().any(|(c, f)| c == case.code && f == case.field),
                    "case {:?}: expected {} at {}, got {:?}",
                    case.name,
                    case.code,
                    case.field,
                    got
                );
            } else {
                assert!(
                    got.iter().all(|(c, _)| c != case.code),
                    "case {:?}: {} must not fire, got {:?}",
                    case.name,
                    case.code,
                    got
                );
            }
        }
    }

    /// Every code a group declares has a firing case and a near miss in its table.
    pub fn assert_table_covers(rules: &[FnRule], cases_codes: &[(&str, bool)]) {
        for rule in rules {
            for code in rule.codes {
                assert!(
                    cases_codes.iter().any(|(c, fires)| c == code && *fires),
                    "{code} has no firing case"
                );
                assert!(
                    cases_codes.iter().any(|(c, fires)| c == code && !*fires),
                    "{code} has no near-miss case"
                );
            }
        }
    }
}
