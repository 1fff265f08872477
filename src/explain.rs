//! `roost-keeper explain`: the contract of every code roost-keeper reports,
//! shipped in the binary (RULES.md says when; this says why, what happens
//! and how to fix it, with a failing and a passing document).
//!
//! The entries live in `explain/entries.rs`, one per code of the table
//! (`validation::codes`, which holds each code's level and summary); tests
//! here prove that every code has one and that each failing example reports
//! its code while the passing one does not.

mod entries;

use crate::validation::checks::nearest;
use crate::validation::{Code, Level};
use std::sync::LazyLock;

/// What one code means, for people (`explain CODE`) and tools (SARIF
/// rules): the prose beside the code's declaration (name, level, summary)
/// in [`crate::validation::codes`].
#[derive(Clone, Copy, Debug)]
pub struct Explanation {
    pub code: Code,
    /// What the rule checks.
    pub checks: &'static str,
    /// Why it matters.
    pub why: &'static str,
    /// What happens by default: admission, status, the offline CLI, and the
    /// defaults the mutating webhook applies that bear on it.
    pub default_behaviour: &'static str,
    /// A complete document that reports the code.
    pub failing: &'static str,
    /// The same document fixed, which does not report it.
    pub passing: &'static str,
    pub fix: &'static str,
}

/// Every explanation, sorted by code.
pub fn explanations() -> &'static [Explanation] {
    // Written by rule group in `entries`, as RULES.md reads; sorted once here.
    static SORTED: LazyLock<Vec<Explanation>> = LazyLock::new(|| {
        let mut all = entries::ENTRIES.to_vec();
        all.sort_by_key(|e| e.code.name());
        all
    });
    &SORTED
}

/// The explanation of `code`, in any letter case.
pub fn explanation(code: &str) -> Option<&'static Explanation> {
    let code = code.trim();
    explanations()
        .iter()
        .find(|e| e.code.name().eq_ignore_ascii_case(code))
}

/// The codes `code` is likely a typo of, nearest first (at most three).
pub fn suggestions(code: &str) -> Vec<&'static str> {
    const MOST: usize = 3;
    let codes: Vec<&'static str> = explanations().iter().map(|e| e.code.name()).collect();
    nearest(code.trim(), &codes, MOST)
}

impl Explanation {
    /// The default level (a RoostPolicy may raise or lower a built-in warning or info).
    pub fn level(&self) -> Level {
        self.code.level()
    }

    /// One line.
    pub fn summary(&self) -> &'static str {
        self.code.summary()
    }

    /// Plain text for a tool to show beside a finding: what, why, default
    /// and fix, without the examples.
    pub fn help_text(&self) -> String {
        format!(
            "{}\n\nWhy: {}\n\nDefault ({}): {}\n\nFix: {}",
            self.checks,
            self.why,
            self.level(),
            self.default_behaviour,
            self.fix
        )
    }

    /// The text `roost-keeper explain CODE` prints; the examples verbatim,
    /// so they can be copied as they are.
    pub fn render(&self) -> String {
        format!(
            "{code} ({level}): {summary}\n\n\
             What it checks:\n{checks}\n\n\
             Why it matters:\n{why}\n\n\
             Default behaviour:\n{default}\n\n\
             Failing example (reports {code}):\n{failing}\n\
             Passing example:\n{passing}\n\
             Fix:\n{fix}\n",
            code = self.code,
            level = self.level(),
            summary = self.summary(),
            checks = indented(self.checks),
            why = indented(self.why),
            default = indented(self.default_behaviour),
            failing = self.failing,
            passing = self.passing,
            fix = indented(self.fix),
        )
    }
}

/// `explain --list`: one line per code, `CODE  level  summary`, aligned.
pub fn render_list() -> String {
    let width = explanations()
        .iter()
        .map(|e| e.code.name().len())
        .max()
        .unwrap_or(0);
    explanations()
        .iter()
        .map(|e| {
            format!(
                "{:width$}  {:7}  {}\n",
                e.code.name(),
                e.level().as_str(),
                e.summary()
            )
        })
        .collect()
}

fn indented(text: &str) -> String {
    text.lines()
        .map(|line| format!("  {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offline;
    use crate::validation::codes::{self, TARGET_NAMESPACE_IMMUTABLE, TENANT_ID_IMMUTABLE};
    use crate::validation::decode::validate_spec_value;
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    /// Codes that only an UPDATE reports: their failing document is the
    /// update, their passing one the object as stored.
    const UPDATE_ONLY: [Code; 2] = [TENANT_ID_IMMUTABLE, TARGET_NAMESPACE_IMMUTABLE];

    #[test]
    fn every_code_of_the_table_has_one_entry() {
        let written: Vec<&str> = entries::ENTRIES.iter().map(|e| e.code.name()).collect();
        let unique: BTreeSet<&str> = written.iter().copied().collect();
        assert_eq!(written.len(), unique.len(), "a code with two entries");
        let declared: BTreeSet<&str> = codes::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(unique, declared, "entries and the table of codes differ");
    }

    /// The built-in rules report only codes of the table, at the table's
    /// level, over every example document (firing and not).
    #[test]
    fn rules_report_only_codes_of_the_table_at_its_level() {
        let mut seen = BTreeSet::new();
        for e in explanations() {
            for document in [e.failing, e.passing] {
                let documents = crate::yaml::Documents::new(document);
                for document in documents.flatten() {
                    if document.value["kind"] != crate::api::KIND {
                        continue;
                    }
                    let spec = &document.value["spec"];
                    for finding in validate_spec_value(Some(spec), None).all() {
                        let code = codes::lookup(&finding.code);
                        assert!(code.is_some(), "{} is not in the table", finding.code);
                        if code != Some(codes::TOO_MANY_FINDINGS) {
                            assert_eq!(
                                code.map(Code::level),
                                Some(finding.level),
                                "{}",
                                finding.code
                            );
                        }
                        seen.insert(finding.code.clone());
                    }
                }
            }
        }
        // The examples exercise the rules: most codes fire somewhere.
        assert!(seen.len() > 60, "{seen:?}");
    }

    #[test]
    fn entries_are_sorted_complete_and_one_line_summaries() {
        let codes: Vec<&str> = explanations().iter().map(|e| e.code.name()).collect();
        let mut sorted = codes.clone();
        sorted.sort_unstable();
        assert_eq!(codes, sorted);
        for e in explanations() {
            let texts = [e.summary(), e.checks, e.why, e.default_behaviour, e.fix];
            assert!(texts.iter().all(|t| !t.trim().is_empty()), "{}", e.code);
            assert!(!e.summary().contains('\n'), "{}", e.code);
            assert_ne!(e.failing, e.passing, "{}", e.code);
        }
    }

    /// Every (code, level) `validate` reports for `document`, a file's text.
    fn reported(document: &str) -> Vec<(String, Level)> {
        let mut stdin = document.as_bytes();
        let report = offline::check_inputs(&[PathBuf::from("-")], &mut stdin);
        assert!(
            report.input_errors.is_empty(),
            "{:?}\n{document}",
            report.input_errors
        );
        assert!(!report.results.is_empty(), "nothing checked:\n{document}");
        report
            .results
            .iter()
            .flat_map(|r| &r.findings)
            .map(|f| (f.finding.code.clone(), f.finding.level))
            .collect()
    }

    fn spec_of(document: &str) -> serde_json::Value {
        let document = crate::yaml::Documents::new(document)
            .next()
            .expect("one document")
            .expect("valid YAML");
        document.value["spec"].clone()
    }

    /// Codes reported when the object stored as `old` is updated to `new`.
    fn reported_on_update(new: &str, old: &str) -> Vec<(String, Level)> {
        let result = validate_spec_value(Some(&spec_of(new)), Some(&spec_of(old)));
        result.all().map(|f| (f.code.clone(), f.level)).collect()
    }

    #[test]
    fn failing_examples_report_their_code_and_passing_ones_do_not() {
        let mut wrong = Vec::new();
        for e in explanations() {
            let (failing, passing) = if UPDATE_ONLY.contains(&e.code) {
                (
                    reported_on_update(e.failing, e.passing),
                    reported_on_update(e.passing, e.passing),
                )
            } else {
                (reported(e.failing), reported(e.passing))
            };
            if !failing
                .iter()
                .any(|(c, l)| c == e.code.name() && *l == e.level())
            {
                wrong.push(format!("{}: failing example reports {failing:?}", e.code));
            }
            if failing.iter().any(|(_, l)| *l == Level::Error) != (e.level() == Level::Error) {
                wrong.push(format!(
                    "{}: failing example should have errors only for an error code: {failing:?}",
                    e.code
                ));
            }
            if passing
                .iter()
                .any(|(c, l)| c == e.code.name() || *l == Level::Error)
            {
                wrong.push(format!("{}: passing example reports {passing:?}", e.code));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn lookup_ignores_case_and_typos_get_the_nearest_codes() {
        let found = explanation("chart_version_missing").expect("found");
        assert_eq!(found.code, codes::CHART_VERSION_MISSING);
        assert!(explanation("CHART_VERSION").is_none());
        assert_eq!(
            suggestions("CHART_VERSOIN_MISSING"),
            ["CHART_VERSION_MISSING"]
        );
        assert!(suggestions("SOMETHING_ELSE_ENTIRELY_XYZ").is_empty());
    }

    #[test]
    fn render_shows_every_part_and_the_list_one_line_per_code() {
        let e = explanation("CHART_VERSION_MISSING").expect("found");
        let text = e.render();
        for part in [e.summary(), e.failing, e.passing] {
            assert!(text.contains(part), "{part}\n---\n{text}");
        }
        for part in [e.checks, e.why, e.default_behaviour, e.fix] {
            assert!(text.contains(&indented(part)), "{part}\n---\n{text}");
        }
        assert!(e.help_text().contains(e.fix));
        let list = render_list();
        assert_eq!(list.lines().count(), explanations().len());
        assert!(list.lines().any(|l| l.starts_with("CHART_VERSION_MISSING ")
            && l.contains(" error ")
            && l.ends_with(e.summary())));
    }
}
