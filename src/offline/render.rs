//! The output formats of `roost-keeper validate`: text for people, JSON for
//! scripts, SARIF for code-scanning views, JUnit XML for test reports and
//! GitHub Actions workflow commands for annotations on a pull request; and
//! the Report (OpenReports or wgpolicyk8s.io) each roost would get.
//!
//! Findings of policies in Audit mode and findings a RoostPolicyException
//! exempts never make a run fail; every format lists them with `-v` only
//! (text: `AUDIT` and `EXEMPT` lines; JSON: `audited` and `exempted` arrays;
//! SARIF: `note` results with property `mode: Audit`, and results with an
//! accepted external suppression; JUnit: `<system-out>`; GitHub: `::notice`).

use super::{DocumentResult, Located, LocatedExemption, Report, ResultKind};
use crate::api::{EXCEPTION_KIND, POLICY_KIND};
use crate::report::{ReportApi, Subject};
use crate::text::printable;
use crate::validation::Level;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
    Sarif,
    Junit,
    Github,
    // The Report each ManagedRoost would get, as a YAML stream (`render_reports`).
    Report,
}

/// The report in `format`; info, audited and exempted findings only when
/// `verbose`; `-o report` of the default API (see [`render_reports`]). `color` paints
/// the text format's levels; `cwd` is what SARIF's URIs are relative to.
pub fn render(
    report: &Report,
    format: OutputFormat,
    verbose: bool,
    color: bool,
    cwd: &Path,
) -> String {
    match format {
        OutputFormat::Text => render_text(report, verbose, color),
        OutputFormat::Json => render_json(report, verbose),
        OutputFormat::Sarif => render_sarif(report, verbose, cwd),
        OutputFormat::Junit => render_junit(report, verbose),
        OutputFormat::Github => render_github(report, verbose),
        OutputFormat::Report => render_reports(report, ReportApi::default()),
    }
}

/// The Report (of `api`) each ManagedRoost would get from the controller,
/// in input order, as a YAML stream (`---` before each): built by
/// [`crate::report::report`] from the same verdict, named by the roost's
/// `metadata.uid` (its name when it has none) and about the roost in the
/// storage version.
pub fn render_reports(report: &Report, api: ReportApi) -> String {
    let registry = crate::validation::Registry::global();
    let api_version = crate::api::ApiVersion::STORAGE.api_version();
    report
        .results
        .iter()
        .filter(|r| r.kind == ResultKind::ManagedRoost)
        .filter_map(|r| {
            let judged = r.judged.as_deref()?;
            let subject = Subject {
                api_version,
                name: &r.name,
                namespace: &r.namespace,
                uid: &judged.uid,
            };
            let value =
                crate::report::report(api, &subject, &judged.result, &judged.rules, registry);
            Some(format!("---\n{}", super::convert::yaml_text(&value)))
        })
        .collect()
}

/// The results that are not roosts (a RoostPolicy or RoostPolicyException
/// the cluster would refuse), one text line per finding: what `-o report`
/// writes on stderr, since its stream holds Reports only.
pub fn render_refused_policies(report: &Report) -> String {
    let mut out = String::new();
    for result in report
        .results
        .iter()
        .filter(|r| r.kind != ResultKind::ManagedRoost)
    {
        let source = line_start(printable(&result.source));
        for located in &result.findings {
            let finding = &located.finding;
            let _ = writeln!(
                out,
                "{source}{} {}/{} {} {} {}: {}",
                at(located),
                printable(&scope(result)),
                printable(&result.name),
                finding.level.as_str().to_uppercase(),
                printable(&finding.code),
                printable(&finding.field),
                printable(&finding.message)
            );
        }
    }
    out
}

/// What the text output adds after an audited finding's message.
fn audit_note(located: &Located) -> String {
    format!(
        " (Audit mode: {} if enforced)",
        located.finding.level.as_str()
    )
}

/// What the text output adds after an exempted finding's message.
fn exemption_note(exemption: &LocatedExemption) -> String {
    let until = match &exemption.expires_at {
        Some(at) => format!(" until {at}"),
        None => String::new(),
    };
    format!(
        " (exempted by RoostPolicyException {}{until}: {})",
        exemption.exception, exemption.justification
    )
}

fn visible(findings: &[Located], verbose: bool) -> impl Iterator<Item = &Located> {
    findings
        .iter()
        .filter(move |f| verbose || f.finding.level != Level::Info)
}

/// `{"results": [...]}` as in RULES.md; info findings only when `verbose`,
/// and then each roost's `audited` and `exempted` arrays too; a result that
/// is not a roost says its `kind`.
fn render_json(report: &Report, verbose: bool) -> String {
    let results: Vec<Value> = report
        .results
        .iter()
        .map(|r| {
            let shown = DocumentResult {
                findings: visible(&r.findings, verbose).cloned().collect(),
                audited: Vec::new(),
                exempted: Vec::new(),
                judged: None,
                ..r.clone()
            };
            let mut value = serde_json::to_value(&shown).unwrap_or_default();
            if let Some(object) = value.as_object_mut() {
                if r.kind != ResultKind::ManagedRoost {
                    object.insert("kind".into(), r.kind.name().into());
                } else if verbose {
                    object.insert(
                        "audited".into(),
                        serde_json::to_value(&r.audited).unwrap_or_default(),
                    );
                    object.insert(
                        "exempted".into(),
                        serde_json::to_value(&r.exempted).unwrap_or_default(),
                    );
                }
            }
            value
        })
        .collect();
    let mut out = serde_json::to_string_pretty(&serde_json::json!({ "results": results }))
        .unwrap_or_else(|_| "{\"results\": []}".to_owned());
    out.push('\n');
    out
}

/// One line per finding, then a summary line.
fn render_text(report: &Report, verbose: bool, color: bool) -> String {
    let mut out = String::new();
    let paint = |level: Level| {
        let label = level.as_str().to_uppercase();
        if !color {
            return label;
        }
        let code = match level {
            Level::Error => "31",
            Level::Warning => "33",
            Level::Info => "36",
        };
        format!("\x1b[{code}m{label}\x1b[0m")
    };
    let (mut errors, mut warnings, mut info) = (0usize, 0usize, 0usize);
    let (mut audited, mut exempted) = (0usize, 0usize);
    for result in &report.results {
        let source = line_start(printable(&result.source));
        for Located { finding, .. } in &result.findings {
            match finding.level {
                Level::Error => errors += 1,
                Level::Warning => warnings += 1,
                Level::Info => info += 1,
            }
        }
        audited += result.audited.len();
        exempted += result.exempted.len();
        // (label, finding, what follows the message)
        let mut shown: Vec<(String, &Located, String)> = visible(&result.findings, verbose)
            .map(|l| (paint(l.finding.level), l, String::new()))
            .collect();
        if verbose {
            shown.extend(
                result
                    .audited
                    .iter()
                    .map(|l| ("AUDIT".to_owned(), l, audit_note(l))),
            );
            shown.extend(
                result
                    .exempted
                    .iter()
                    .map(|e| ("EXEMPT".to_owned(), &e.located, exemption_note(e))),
            );
        }
        // As an editor lists them: by line and column (unknown positions last).
        shown.sort_by_key(|(_, l, _)| (l.line.is_none(), l.line, l.column));
        for (label, located, note) in shown {
            let finding = &located.finding;
            out.push_str(&format!(
                "{source}{} {}/{} {label} {} {}: {}{}\n",
                at(located),
                printable(&scope(result)),
                printable(&result.name),
                printable(&finding.code),
                printable(&finding.field),
                printable(&finding.message),
                printable(&note),
            ));
        }
    }
    out.push_str(&summary(
        report,
        [errors, warnings, info],
        [audited, exempted],
    ));
    out.push('\n');
    out
}

/// The last line of the text output: what was checked and found.
fn summary(
    report: &Report,
    [errors, warnings, info]: [usize; 3],
    [audited, exempted]: [usize; 2],
) -> String {
    let mut out = String::new();
    let roosts = || {
        report
            .results
            .iter()
            .filter(|r| r.kind == ResultKind::ManagedRoost)
    };
    // Audited and exempted findings are counted when there are any, so a
    // run without policies keeps its summary.
    let set_apart = if audited + exempted > 0 {
        format!(", {audited} audited, {exempted} exempted")
    } else {
        String::new()
    };
    out.push_str(&format!(
        "{} checked, {} invalid: {} {}, {} {}, {} info{set_apart}; {} other {} skipped",
        plural(roosts().count(), "ManagedRoost", "ManagedRoosts"),
        roosts().filter(|r| !r.valid).count(),
        errors,
        if errors == 1 { "error" } else { "errors" },
        warnings,
        if warnings == 1 { "warning" } else { "warnings" },
        info,
        report.skipped,
        if report.skipped == 1 {
            "document"
        } else {
            "documents"
        },
    ));
    if report.policies > 0 {
        let invalid = report
            .results
            .iter()
            .filter(|r| r.kind == ResultKind::RoostPolicy)
            .count();
        out.push_str(&format!(
            "; {} read, {invalid} invalid",
            plural(report.policies, "RoostPolicy", "RoostPolicies")
        ));
    }
    if report.exceptions > 0 {
        let invalid = report
            .results
            .iter()
            .filter(|r| r.kind == ResultKind::RoostPolicyException)
            .count();
        out.push_str(&format!(
            "; {} read, {invalid} invalid",
            plural(
                report.exceptions,
                "RoostPolicyException",
                "RoostPolicyExceptions"
            )
        ));
    }
    if !report.input_errors.is_empty() {
        out.push_str(&format!(
            "; {} unreadable",
            plural(report.input_errors.len(), "input", "inputs")
        ));
    }
    out
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Input errors, one line each (`file:line: message`), for stderr.
pub fn render_input_errors(report: &Report) -> String {
    report
        .input_errors
        .iter()
        .map(|e| {
            format!(
                "error: {}: {}\n",
                printable(&e.location()),
                printable(&e.message)
            )
        })
        .collect()
}

/// A source as the first thing on a line: a (relative) path starting with
/// `:` or white space gets `./`, since the Actions runner takes a line that
/// starts with `::`, after white space too, for a workflow command.
fn line_start(source: String) -> String {
    if source.starts_with(|c: char| c == ':' || c.is_whitespace()) {
        format!("./{source}")
    } else {
        source
    }
}

/// The SARIF level of a finding's level.
fn sarif_level(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warning => "warning",
        Level::Info => "note",
    }
}

/// SARIF 2.1.0: one run, a rule for every code (each explained code, then
/// the custom codes of policies that occur), a result per finding with its
/// file, line and column; unreadable inputs are tool notifications.
fn render_sarif(report: &Report, verbose: bool, cwd: &Path) -> String {
    let mut rules: Vec<Value> = Vec::new();
    let mut rule_index: BTreeMap<String, usize> = BTreeMap::new();
    for explanation in crate::explain::explanations() {
        rule_index.insert(explanation.code.name().to_owned(), rules.len());
        rules.push(json!({
            "id": explanation.code.name(),
            "shortDescription": {"text": explanation.summary()},
            "fullDescription": {"text": explanation.checks},
            "help": {"text": explanation.help_text()},
            "defaultConfiguration": {"level": sarif_level(explanation.level())},
        }));
    }
    let mut results = Vec::new();
    for result in &report.results {
        // (finding, its SARIF level, properties, suppression)
        let mut shown: Vec<(&Located, &str, Option<Value>, Option<Value>)> =
            visible(&result.findings, verbose)
                .map(|l| (l, sarif_level(l.finding.level), None, None))
                .collect();
        if verbose {
            shown.extend(result.audited.iter().map(|l| {
                let properties = json!({"mode": "Audit", "level": l.finding.level.as_str()});
                (l, "note", Some(properties), None)
            }));
            shown.extend(result.exempted.iter().map(|e| {
                let mut properties = json!({"exception": e.exception});
                if let Some(at) = &e.expires_at {
                    properties["expiresAt"] = at.clone().into();
                }
                let suppression = json!({
                    "kind": "external",
                    "state": "accepted",
                    "justification": e.justification,
                });
                (
                    &e.located,
                    sarif_level(e.located.finding.level),
                    Some(properties),
                    Some(suppression),
                )
            }));
        }
        for (located, level, properties, suppression) in shown {
            let finding = &located.finding;
            let index = *rule_index.entry(finding.code.clone()).or_insert_with(|| {
                rules.push(json!({
                    "id": finding.code,
                    "shortDescription": {"text": "A custom rule of a RoostPolicy"},
                    "defaultConfiguration": {"level": sarif_level(finding.level)},
                }));
                rules.len() - 1
            });
            let mut region = serde_json::Map::new();
            if let (Some(line), Some(column)) = (located.line, located.column) {
                region.insert("startLine".into(), json!(line));
                region.insert("startColumn".into(), json!(column));
            }
            let mut physical = json!({"artifactLocation": {"uri": sarif_uri(&result.source, cwd)}});
            if !region.is_empty() {
                physical["region"] = Value::Object(region);
            }
            let mut entry = json!({
                "ruleId": finding.code,
                "ruleIndex": index,
                "level": level,
                "message": {"text": format!("{}: {}", finding.field, finding.message)},
                "locations": [{
                    "physicalLocation": physical,
                    "logicalLocations": [{
                        "fullyQualifiedName": format!("{}/{}", scope(result), result.name),
                        "kind": "object",
                    }],
                }],
            });
            if let Some(properties) = properties {
                entry["properties"] = properties;
            }
            if let Some(suppression) = suppression {
                entry["suppressions"] = json!([suppression]);
            }
            results.push(entry);
        }
    }
    let notifications: Vec<Value> = report
        .input_errors
        .iter()
        .map(|e| {
            json!({
                "level": "error",
                "message": {"text": format!("{}: {}", printable(&e.location()), e.message)},
            })
        })
        .collect();
    let sarif = json!({
        "$schema": "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "roost-keeper",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "invocations": [{
                "executionSuccessful": report.input_errors.is_empty(),
                "toolExecutionNotifications": notifications,
            }],
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    });
    let mut out = serde_json::to_string_pretty(&sarif).unwrap_or_default();
    out.push('\n');
    out
}

/// A source as a SARIF URI: relative to `cwd` where it lies below it (code
/// scanning views resolve such URIs against the checkout), else a `file:`
/// URI; percent-encoded either way. Stdin stays `-`.
fn sarif_uri(source: &str, cwd: &Path) -> String {
    if source == "-" {
        return source.to_owned();
    }
    let path = Path::new(source);
    let relative = if path.is_absolute() {
        match path.strip_prefix(cwd) {
            Ok(inner) => inner,
            Err(_) => {
                return format!("file://{}", percent_encode(source));
            }
        }
    } else {
        path.strip_prefix(".").unwrap_or(path)
    };
    percent_encode(&relative.to_string_lossy())
}

/// `text` with every byte outside a URI path's unreserved characters and `/` percent-encoded.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// JUnit XML: a `<testsuite>` per file, a `<testcase>` per object, a
/// `<failure>` per error, warnings (and info with `-v`) as `<system-out>`;
/// an unreadable input is a test case with an `<error>`.
fn render_junit(report: &Report, verbose: bool) -> String {
    let mut suites: BTreeMap<&str, Vec<&DocumentResult>> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    for result in &report.results {
        if !suites.contains_key(result.source.as_str()) {
            order.push(&result.source);
        }
        suites.entry(&result.source).or_default().push(result);
    }
    let total_failures = report.results.iter().filter(|r| !r.valid).count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"roost-keeper validate\" tests=\"{}\" failures=\"{total_failures}\" errors=\"{}\">",
        report.results.len() + report.input_errors.len(),
        report.input_errors.len(),
    );
    for source in order {
        let results = &suites[source];
        let failures = results.iter().filter(|r| !r.valid).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" file=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\">",
            xml_text(source),
            xml_text(source),
            results.len(),
        );
        for result in results {
            let _ = writeln!(
                out,
                "    <testcase name=\"{}/{}\" classname=\"{}\">",
                xml_text(&scope(result)),
                xml_text(&result.name),
                xml_text(source),
            );
            let mut shown = String::new();
            for located in visible(&result.findings, verbose) {
                let finding = &located.finding;
                let line = format!(
                    "{}{} {} {} {}: {}",
                    source,
                    at(located),
                    finding.level.as_str().to_uppercase(),
                    finding.code,
                    finding.field,
                    finding.message
                );
                if finding.level == Level::Error {
                    let _ = writeln!(
                        out,
                        "      <failure type=\"{}\" message=\"{}: {}\">{}</failure>",
                        xml_text(&finding.code),
                        xml_text(&finding.field),
                        xml_text(&finding.message),
                        xml_text(&line),
                    );
                } else {
                    shown.push_str(&line);
                    shown.push('\n');
                }
            }
            if verbose {
                let set_apart = result
                    .audited
                    .iter()
                    .map(|l| ("AUDIT", l, audit_note(l)))
                    .chain(
                        result
                            .exempted
                            .iter()
                            .map(|e| ("EXEMPT", &e.located, exemption_note(e))),
                    );
                for (label, located, note) in set_apart {
                    let finding = &located.finding;
                    let _ = writeln!(
                        shown,
                        "{source}{} {label} {} {}: {}{note}",
                        at(located),
                        finding.code,
                        finding.field,
                        finding.message
                    );
                }
            }
            if !shown.is_empty() {
                let _ = writeln!(out, "      <system-out>{}</system-out>", xml_text(&shown));
            }
            out.push_str("    </testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    if !report.input_errors.is_empty() {
        let _ = writeln!(
            out,
            "  <testsuite name=\"unreadable inputs\" tests=\"{0}\" failures=\"0\" errors=\"{0}\">",
            report.input_errors.len()
        );
        for error in &report.input_errors {
            let _ = writeln!(
                out,
                "    <testcase name=\"{0}\" classname=\"{0}\">\n      <error type=\"INPUT_UNREADABLE\" message=\"{1}\">{1}</error>\n    </testcase>",
                xml_text(&error.location()),
                xml_text(&error.message),
            );
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// `text` escaped for XML content and attribute values; characters XML 1.0
/// cannot carry at all (most control characters) are written as `\u{..}`.
fn xml_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            c if c.is_control() || c == '\u{fffe}' || c == '\u{ffff}' => {
                out.push_str(&c.escape_unicode().to_string());
            }
            c => out.push(c),
        }
    }
    out
}

/// GitHub Actions workflow commands: `::error file=…,line=…,col=…,title=CODE::message`
/// per finding (`::warning`, `::notice` for info), so each shows on the
/// pull request at its line.
fn render_github(report: &Report, verbose: bool) -> String {
    let mut out = String::new();
    for result in &report.results {
        let mut shown: Vec<(&str, &Located, String)> = visible(&result.findings, verbose)
            .map(|l| {
                let command = match l.finding.level {
                    Level::Error => "error",
                    Level::Warning => "warning",
                    Level::Info => "notice",
                };
                (command, l, String::new())
            })
            .collect();
        if verbose {
            shown.extend(result.audited.iter().map(|l| ("notice", l, audit_note(l))));
            shown.extend(
                result
                    .exempted
                    .iter()
                    .map(|e| ("notice", &e.located, exemption_note(e))),
            );
        }
        for (command, located, note) in shown {
            let finding = &located.finding;
            let mut properties =
                format!("file={}", github_property(annotated_file(&result.source)));
            if let (Some(line), Some(column)) = (located.line, located.column) {
                let _ = write!(properties, ",line={line},col={column}");
            }
            let _ = writeln!(
                out,
                "::{command} {properties},title={}::{}",
                github_property(&finding.code),
                github_data(&format!(
                    "{}/{} {}: {}{note}",
                    scope(result),
                    result.name,
                    finding.field,
                    finding.message
                )),
            );
        }
    }
    for error in &report.input_errors {
        // Stdin is no file to annotate: the message names it.
        let properties = match (error.source.as_str(), error.at) {
            ("-", _) => String::new(),
            (source, None) => format!("file={},", github_property(annotated_file(source))),
            (source, Some((line, column))) => format!(
                "file={},line={line},col={column},",
                github_property(annotated_file(source))
            ),
        };
        let _ = writeln!(
            out,
            "::error {properties}title=INPUT_UNREADABLE::{}",
            github_data(&format!(
                "{}: {}",
                printable(&error.location()),
                error.message
            ))
        );
    }
    out
}

/// A source as an annotation names it: relative to the checkout, without `./`.
fn annotated_file(source: &str) -> &str {
    source.strip_prefix("./").unwrap_or(source)
}

/// A workflow command's message: `%`, CR and LF escaped as the runner reads
/// them; every other character [`printable`] escapes as there (`\u{1b}`),
/// since the runner has no escape for them and would pass them on raw.
fn github_data(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c => crate::text::push_printable(&mut out, c),
        }
    }
    out
}

/// A workflow command's property value: the message escapes plus `:` and `,`.
fn github_property(text: &str) -> String {
    github_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// Where a cluster-scoped RoostPolicy shows its kind, a roost shows its
/// namespace, and a RoostPolicyException both (`RoostPolicyException/NS`).
fn scope(result: &DocumentResult) -> std::borrow::Cow<'_, str> {
    match result.kind {
        ResultKind::ManagedRoost => result.namespace.as_str().into(),
        ResultKind::RoostPolicy => POLICY_KIND.into(),
        ResultKind::RoostPolicyException => format!("{EXCEPTION_KIND}/{}", result.namespace).into(),
    }
}

/// `:line:column`, or nothing where the position is unknown.
fn at(located: &Located) -> String {
    match (located.line, located.column) {
        (Some(line), Some(column)) => format!(":{line}:{column}"),
        _ => String::new(),
    }
}
