//! `roost-keeper validate`: the admission verdict, offline. Reads files,
//! directories and stdin, applies the same defaults the mutating webhook
//! would, and runs the same engine.

use crate::api::{API_VERSION, KIND};
use crate::cache::{CacheKey, ValidationCache};
use crate::defaults::apply_defaults;
use crate::document::validate_spec_value;
use crate::validation::{Finding, Findings, Level, SILENCE_ANNOTATION, silenced_codes};
use serde::Serialize;
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest input read, so a stray huge file cannot exhaust memory.
pub const MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;
/// Code for a ManagedRoost document with another apiVersion.
pub const API_VERSION_UNKNOWN: &str = "API_VERSION_UNKNOWN";

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// The verdict on one ManagedRoost document.
#[derive(Clone, Debug, Serialize)]
pub struct DocumentResult {
    pub source: String,
    pub index: usize,
    pub name: String,
    pub namespace: String,
    pub valid: bool,
    pub findings: Vec<Finding>,
}

/// An input that could not be read or parsed; the others are still checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputError {
    /// `file`, `file:line` or `file:line:column`.
    pub location: String,
    pub message: String,
}

/// Everything one run found.
#[derive(Debug, Default)]
pub struct Report {
    pub results: Vec<DocumentResult>,
    /// Documents of other kinds, skipped.
    pub skipped: usize,
    /// Sources that held more than one document (their lines show `:index`).
    multi_document: Vec<String>,
    pub input_errors: Vec<InputError>,
}

impl Report {
    /// 2 when an input could not be read or parsed, else 1 when any object has errors, else 0.
    pub fn exit_code(&self) -> i32 {
        if !self.input_errors.is_empty() {
            2
        } else if self.results.iter().any(|r| !r.valid) {
            1
        } else {
            0
        }
    }
}

/// One source: a file path or `-` for stdin.
enum Source {
    Stdin,
    File(PathBuf),
}

impl Source {
    fn name(&self) -> String {
        match self {
            Source::Stdin => "-".to_owned(),
            Source::File(p) => p.display().to_string(),
        }
    }
}

/// Expands directories (recursively, `.yaml`, `.yml`, `.json`, sorted); files
/// named explicitly are read whatever their extension.
fn expand(paths: &[PathBuf], errors: &mut Vec<InputError>) -> Vec<Source> {
    let mut sources = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            sources.push(Source::Stdin);
        } else if path.is_dir() {
            walk(path, &mut sources, errors);
        } else {
            sources.push(Source::File(path.clone()));
        }
    }
    sources
}

fn walk(dir: &Path, sources: &mut Vec<Source>, errors: &mut Vec<InputError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => {
            errors.push(InputError {
                location: dir.display().to_string(),
                message: format!("cannot read directory: {err}"),
            });
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        // Symlinked directories are not followed, so a link loop cannot recurse forever.
        let is_real_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
        if is_real_dir {
            walk(&path, sources, errors);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            sources.push(Source::File(path));
        }
    }
}

fn read_source(source: &Source, stdin: &mut dyn Read) -> Result<String, String> {
    let mut bytes = Vec::new();
    let read = match source {
        Source::Stdin => stdin.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes),
        Source::File(path) => std::fs::File::open(path)
            .and_then(|f| f.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes)),
    };
    read.map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(format!(
            "larger than {} MiB; split it",
            MAX_INPUT_BYTES / (1024 * 1024)
        ));
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text; expected YAML or JSON".to_owned())
}

/// Line (1-based) where each YAML document of `text` starts.
fn document_start_lines(text: &str) -> Vec<usize> {
    let mut starts = vec![1];
    for (i, line) in text.lines().enumerate() {
        if i > 0 && (line == "---" || line.starts_with("--- ") || line.starts_with("---\t")) {
            starts.push(i + 2);
        }
    }
    starts
}

/// Parses every YAML (or JSON) document in `text`; stops at the first syntax error.
fn parse_documents(text: &str) -> (Vec<Value>, Option<(String, String)>) {
    use serde::Deserialize;
    let mut docs = Vec::new();
    for document in serde_norway::Deserializer::from_str(text) {
        match Value::deserialize(document) {
            Ok(value) => docs.push(value),
            Err(err) => {
                let at = err
                    .location()
                    .map(|l| format!(":{}:{}", l.line(), l.column()))
                    .unwrap_or_default();
                return (docs, Some((at, format!("not valid YAML: {err}"))));
            }
        }
    }
    (docs, None)
}

/// Checks every source; one shared cache, so identical documents cost one validation.
pub fn check_inputs(paths: &[PathBuf], stdin: &mut dyn Read) -> Report {
    let mut report = Report::default();
    let cache = ValidationCache::default();
    for source in expand(paths, &mut report.input_errors) {
        let name = source.name();
        let text = match read_source(&source, stdin) {
            Ok(text) => text,
            Err(message) => {
                report.input_errors.push(InputError {
                    location: name,
                    message,
                });
                continue;
            }
        };
        let (docs, syntax_error) = parse_documents(&text);
        if let Some((at, message)) = syntax_error {
            report.input_errors.push(InputError {
                location: format!("{name}{at}"),
                message,
            });
        }
        let starts = document_start_lines(&text);
        let objects = docs
            .into_iter()
            .enumerate()
            .filter(|(_, d)| !d.is_null())
            .flat_map(|(i, d)| expand_list(i, d));
        let objects: Vec<(usize, Value)> = objects.collect();
        if objects.len() > 1 {
            report.multi_document.push(name.clone());
        }
        for (index, (doc_number, object)) in objects.into_iter().enumerate() {
            let line = starts.get(doc_number).copied().unwrap_or(1);
            check_document(&mut report, &cache, &name, index, line, object);
        }
    }
    report
}

/// A `kind: List` document stands for its items.
fn expand_list(doc_number: usize, doc: Value) -> Vec<(usize, Value)> {
    if doc.get("kind").and_then(Value::as_str) == Some("List")
        && let Some(Value::Array(items)) = doc.get("items")
    {
        return items
            .iter()
            .map(|item| (doc_number, item.clone()))
            .collect();
    }
    vec![(doc_number, doc)]
}

fn check_document(
    report: &mut Report,
    cache: &ValidationCache,
    source: &str,
    index: usize,
    line: usize,
    object: Value,
) {
    let Some(map) = object.as_object() else {
        report.input_errors.push(InputError {
            location: format!("{source}:{line}"),
            message: format!(
                "document {index} is not a Kubernetes object (expected a YAML mapping)"
            ),
        });
        return;
    };
    if map.get("kind").and_then(Value::as_str) != Some(KIND) {
        report.skipped += 1;
        return;
    }
    let metadata = map.get("metadata");
    let text = |key: &str| {
        metadata
            .and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let name = text("name").unwrap_or_default();
    let namespace = text("namespace").unwrap_or_else(|| "default".to_owned());
    let api_version = map.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let (valid, findings) = if api_version != API_VERSION {
        let mut out = Findings::default();
        out.error(
            API_VERSION_UNKNOWN,
            "apiVersion",
            format!(
                "apiVersion {} is not served; use {API_VERSION}",
                crate::validation::shown(api_version)
            ),
        );
        (false, out.into_vec())
    } else {
        let defaulted = apply_defaults(&object).object;
        let spec = defaulted.get("spec");
        let (result, _) = cache.get_or_validate(CacheKey::new(spec, None), || {
            validate_spec_value(spec, None)
        });
        let silence = silenced_codes(
            metadata
                .and_then(|m| m.pointer("/annotations"))
                .and_then(|a| a.get(SILENCE_ANNOTATION))
                .and_then(Value::as_str),
        );
        let result = result.silenced(&silence);
        (result.valid, result.all().cloned().collect())
    };
    report.results.push(DocumentResult {
        source: source.to_owned(),
        index,
        name,
        namespace,
        valid,
        findings,
    });
}

fn visible(findings: &[Finding], verbose: bool) -> impl Iterator<Item = &Finding> {
    findings
        .iter()
        .filter(move |f| verbose || f.level != Level::Info)
}

/// `{"results": [...]}` as in RULES.md; info findings only when `verbose`.
pub fn render_json(report: &Report, verbose: bool) -> String {
    let results: Vec<DocumentResult> = report
        .results
        .iter()
        .map(|r| DocumentResult {
            findings: visible(&r.findings, verbose).cloned().collect(),
            ..r.clone()
        })
        .collect();
    let mut out = serde_json::to_string_pretty(&serde_json::json!({ "results": results }))
        .unwrap_or_else(|_| "{\"results\": []}".to_owned());
    out.push('\n');
    out
}

/// One line per finding, then a summary line.
pub fn render_text(report: &Report, verbose: bool, color: bool) -> String {
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
    let (mut errors, mut warnings, mut info) = (0, 0, 0);
    for result in &report.results {
        let source = if report.multi_document.contains(&result.source) {
            format!("{}:{}", result.source, result.index)
        } else {
            result.source.clone()
        };
        for finding in &result.findings {
            match finding.level {
                Level::Error => errors += 1,
                Level::Warning => warnings += 1,
                Level::Info => info += 1,
            }
        }
        for finding in visible(&result.findings, verbose) {
            out.push_str(&format!(
                "{source} {}/{} {} {} {}: {}\n",
                result.namespace,
                result.name,
                paint(finding.level),
                finding.code,
                finding.field,
                finding.message
            ));
        }
    }
    let invalid = report.results.iter().filter(|r| !r.valid).count();
    out.push_str(&format!(
        "{} checked, {} invalid: {} {}, {} {}, {} info; {} other {} skipped",
        plural(report.results.len(), "ManagedRoost", "ManagedRoosts"),
        invalid,
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
    if !report.input_errors.is_empty() {
        out.push_str(&format!(
            "; {} unreadable",
            plural(report.input_errors.len(), "input", "inputs")
        ));
    }
    out.push('\n');
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
        .map(|e| format!("error: {}: {}\n", e.location, e.message))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_lines() {
        let text = "a: 1\n---\nb: 2\n--- # c\nc: 3\n";
        assert_eq!(document_start_lines(text), vec![1, 3, 5]);
    }

    #[test]
    fn list_documents_expand() {
        let doc = serde_json::json!({"kind": "List", "items": [{"kind": "A"}, {"kind": "B"}]});
        assert_eq!(expand_list(3, doc).len(), 2);
    }
}
