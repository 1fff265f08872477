//! `roost-keeper validate`: the admission verdict, offline. Reads files,
//! directories and stdin, applies the same defaults the mutating webhook
//! would, and runs the same engine.

use crate::admission::cache::{CacheKey, ValidationCache};
use crate::api::{API_VERSION, KIND};
use crate::defaults::apply_defaults;
use crate::validation::decode::validate_spec_value;
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
    /// A file named on the command line: a regular file or a pipe (`<(...)`).
    Named(PathBuf),
    /// A file found in a directory: regular files only.
    Found(PathBuf),
}

impl Source {
    fn name(&self) -> String {
        match self {
            Source::Stdin => "-".to_owned(),
            Source::Named(p) | Source::Found(p) => p.display().to_string(),
        }
    }
}

/// Expands directories (recursively, `.yaml`, `.yml`, `.json`, sorted, regular
/// files and links to them only); files named explicitly are read whatever
/// their extension.
fn expand(paths: &[PathBuf], errors: &mut Vec<InputError>) -> Vec<Source> {
    let mut sources = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            sources.push(Source::Stdin);
        } else if path.is_dir() {
            walk(path, &mut sources, errors);
        } else {
            sources.push(Source::Named(path.clone()));
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
        ) && std::fs::metadata(&path).is_ok_and(|m| m.is_file())
        {
            sources.push(Source::Found(path));
        }
    }
}

/// Opens a file to read: a found file must be a regular one (opened without
/// blocking, so a pipe swapped in after the directory was listed cannot hang
/// the run); a named one may also be a pipe, as `<(generator)` is.
fn open_file(path: &Path, pipe_allowed: bool) -> Result<std::fs::File, String> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    let is_pipe = std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo());
    if !(pipe_allowed && is_pipe) {
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options
        .open(path)
        .map_err(|e| format!("cannot read: {e}"))?;
    let kind = file
        .metadata()
        .map_err(|e| format!("cannot read: {e}"))?
        .file_type();
    if kind.is_file() || (pipe_allowed && kind.is_fifo()) {
        Ok(file)
    } else {
        Err("not a regular file; give YAML or JSON files, a pipe or - for stdin".to_owned())
    }
}

fn read_source(source: &Source, stdin: &mut dyn Read) -> Result<String, String> {
    let mut bytes = Vec::new();
    let read = match source {
        Source::Stdin => stdin.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes),
        Source::Named(path) => open_file(path, true)?
            .take(MAX_INPUT_BYTES + 1)
            .read_to_end(&mut bytes),
        Source::Found(path) => open_file(path, false)?
            .take(MAX_INPUT_BYTES + 1)
            .read_to_end(&mut bytes),
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

/// A document that could not be read, with where (`:line:column`).
struct ReadError {
    at: String,
    message: String,
}

/// Calls `check` with each document of `text` (and its root's line) as it is
/// read, so only one document is held at a time; stops at the first error.
/// Text starting with `{` is read as a stream of JSON objects, as kubectl
/// does; the rest as YAML the way kubectl reads it (see [`crate::yaml`]).
fn read_documents(text: &str, mut check: impl FnMut(usize, Value)) -> Result<(), ReadError> {
    if text.trim_start().starts_with('{') {
        for value in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
            let value = value.map_err(|err| ReadError {
                at: format!(":{}:{}", err.line(), err.column()),
                message: format!("not valid JSON: {err}"),
            })?;
            check(1, value);
        }
        return Ok(());
    }
    for document in crate::yaml::Documents::new(text) {
        let (line, value) = document.map_err(|err| ReadError {
            at: format!(":{}:{}", err.line, err.column),
            message: format!("not valid YAML: {}", err.message),
        })?;
        check(line, value);
    }
    Ok(())
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
        let mut objects = 0usize;
        let mut documents = 0usize;
        let read = read_documents(&text, |line, document| {
            if document.is_null() {
                return;
            }
            documents += 1;
            for object in list_items(document) {
                if objects == 1 {
                    report.multi_document.push(name.clone());
                }
                check_document(&mut report, &cache, &name, objects, line, object);
                objects += 1;
            }
        });
        if let Err(ReadError { at, message }) = read {
            report.input_errors.push(InputError {
                location: format!("{name}{at}"),
                message,
            });
        } else if documents == 0 {
            // A generator that died leaves an empty stream: that must not pass.
            let message = match source {
                Source::Stdin => Some("no documents on stdin"),
                Source::Named(_) => Some("file holds no YAML documents"),
                Source::Found(_) => None,
            };
            report
                .input_errors
                .extend(message.map(|message| InputError {
                    location: name,
                    message: message.to_owned(),
                }));
        }
    }
    report
}

/// A `kind: List` document stands for its items, moved out one by one.
fn list_items(mut doc: Value) -> Box<dyn Iterator<Item = Value>> {
    if doc.get("kind").and_then(Value::as_str) == Some("List")
        && let Some(Value::Array(items)) = doc.get_mut("items").map(Value::take)
    {
        return Box::new(items.into_iter());
    }
    Box::new(std::iter::once(doc))
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
        let (result, _) = cache.get_or_validate(
            CacheKey::new(
                crate::validation::Registry::global().fingerprint(),
                spec,
                None,
            ),
            || validate_spec_value(spec, None),
        );
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
            format!("{}:{}", printable(&result.source), result.index)
        } else {
            printable(&result.source)
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
        .map(|e| format!("error: {}: {}\n", printable(&e.location), e.message))
        .collect()
}

/// `text` with control characters escaped (`\n`, `\u{1b}`), so a file name
/// cannot break a line of output or send terminal escape sequences.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        let cases = [
            ("plain", "dir/a.yaml", "dir/a.yaml"),
            ("newline", "a\nb.yaml", "a\\nb.yaml"),
            ("escape sequence", "\x1b[31mred.yaml", "\\u{1b}[31mred.yaml"),
            ("non-ASCII kept", "nid-\u{e9}.yaml", "nid-\u{e9}.yaml"),
        ];
        for (name, raw, want) in cases {
            assert_eq!(printable(raw), want, "{name}");
        }
    }

    #[test]
    fn list_documents_expand() {
        let doc = serde_json::json!({"kind": "List", "items": [{"kind": "A"}, {"kind": "B"}]});
        assert_eq!(list_items(doc).count(), 2);
    }
}
