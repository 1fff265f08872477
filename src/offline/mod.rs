//! `roost-keeper validate`: the admission verdict, offline. Reads files,
//! directories and stdin, applies the same defaults the mutating webhook
//! would, and runs the same engine.
//!
//! With policies (`--policy`, or RoostPolicy documents among the inputs),
//! every input is read first, since a policy or a Namespace may come after
//! the roosts it concerns; then the policies are compiled as the cluster
//! would admit them, and each roost gets the webhook's verdict: policy
//! defaults, built-in defaults, built-in rules, overrides and custom rules,
//! then its silence annotation.
//!
//! RoostPolicyExceptions (with `--policy` or among the inputs) are compiled
//! as the cluster would admit them and exempt findings while they have not
//! expired at the run's `now` (`--now`, else the system clock).

use crate::api::convert::converted;
use crate::api::roost_policy_exception::RoostPolicyException;
use crate::api::strict::{Refused, RefusedField};
use crate::api::{ApiVersion, KIND};
use crate::api::{EXCEPTION_KIND, POLICY_KIND};
use crate::cache::{CacheKey, ValidationCache};
use crate::engine::{Case, Engine, PolicyCase, defaulted};
use crate::policy::exception::{self, CompiledException};
use crate::policy::{
    self, CompiledPolicy, Known, Labels, NAMESPACE_NAME_LABEL, PolicySet, RoostPolicy,
};
use crate::validation::codes;
use crate::validation::decode::decode_spec;
use crate::validation::{Exemption, ValidationResult};
use crate::validation::{Finding, Findings, Level, SILENCE_ANNOTATION};
use crate::yaml::Positions;
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub mod convert;
mod render;

use crate::text::printable;
pub use render::{
    OutputFormat, render, render_input_errors, render_refused_policies, render_reports,
};

/// Largest input read, so a stray huge file cannot exhaust memory.
pub const MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;

/// What a result is about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ResultKind {
    #[default]
    ManagedRoost,
    /// A RoostPolicy that the cluster would refuse (cluster-scoped: no namespace).
    RoostPolicy,
    /// A RoostPolicyException that the cluster would refuse (in its namespace).
    RoostPolicyException,
}

impl ResultKind {
    /// The kind's name, as `kind` in the JSON output of a result that is not a roost.
    pub fn name(self) -> &'static str {
        match self {
            ResultKind::ManagedRoost => KIND,
            ResultKind::RoostPolicy => POLICY_KIND,
            ResultKind::RoostPolicyException => EXCEPTION_KIND,
        }
    }
}

/// A finding and where its field is written in the input: the node the
/// field names, or its nearest written parent (1-based; `None` where the
/// input gives no positions).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Located {
    #[serde(flatten)]
    pub finding: Finding,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl Located {
    fn at(finding: Finding, positions: Option<&Positions>) -> Self {
        let position = positions.map(|p| p.locate(&finding.field));
        Located {
            finding,
            line: position.map(|p| p.line),
            column: position.map(|p| p.column),
        }
    }
}

/// A finding a RoostPolicyException exempts, where its field is written,
/// with the exception's name, justification and expiry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LocatedExemption {
    #[serde(flatten)]
    pub located: Located,
    pub exception: String,
    pub justification: String,
    #[serde(rename = "expiresAt", skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// What a roost's Report is made of: its verdict (refusals included, fields
/// named as the storage version names them), the custom rules that ran and
/// the roost's identity.
#[derive(Clone, Debug)]
pub struct Judged {
    pub result: ValidationResult,
    /// (policy, code) of every custom rule that ran, as [`crate::engine::Judgement::rules`].
    pub rules: Vec<(String, String)>,
    /// `metadata.uid` when the document has one, else its name (see [`report_uid`]).
    pub uid: String,
}

/// The verdict on one ManagedRoost document, or on a RoostPolicy or
/// RoostPolicyException that fails admission.
#[derive(Clone, Debug, Serialize)]
pub struct DocumentResult {
    pub source: String,
    pub index: usize,
    pub name: String,
    pub namespace: String,
    pub valid: bool,
    pub findings: Vec<Located>,
    /// Not in the JSON output as such (`kind` is written for results that
    /// are not roosts): a RoostPolicy result has an empty namespace and
    /// POLICY_INVALID or API_VERSION_UNKNOWN findings, a RoostPolicyException
    /// result its namespace and EXCEPTION_INVALID findings.
    #[serde(skip)]
    pub kind: ResultKind,
    /// Findings of policies (or rules) in Audit mode: no effect on `valid`;
    /// shown with `-v`.
    #[serde(skip)]
    pub audited: Vec<Located>,
    /// Findings exempted by a RoostPolicyException in force: no effect on
    /// `valid`; shown with `-v`.
    #[serde(skip)]
    pub exempted: Vec<LocatedExemption>,
    /// A roost's verdict as its Report takes it (`-o report`).
    #[serde(skip)]
    pub judged: Option<Box<Judged>>,
}

/// An input that could not be read or parsed; the others are still checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputError {
    /// The file, directory or `-`.
    pub source: String,
    /// Line and column (1-based) where the text is wrong, for a parse error.
    pub at: Option<(usize, usize)>,
    pub message: String,
}

impl InputError {
    fn new(source: String, message: impl Into<String>) -> Self {
        InputError {
            source,
            at: None,
            message: message.into(),
        }
    }

    /// `file` or `file:line:column`.
    pub fn location(&self) -> String {
        match self.at {
            Some((line, column)) => format!("{}:{line}:{column}", self.source),
            None => self.source.clone(),
        }
    }
}

/// Everything one run found.
#[derive(Debug, Default)]
pub struct Report {
    pub results: Vec<DocumentResult>,
    /// Documents of other kinds, skipped (Namespaces too: they only give labels).
    pub skipped: usize,
    /// RoostPolicy documents read (a policy given twice, identical, counts once).
    pub policies: usize,
    /// RoostPolicyException documents read (one given twice, identical, counts once).
    pub exceptions: usize,
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
            errors.push(InputError::new(
                dir.display().to_string(),
                format!("cannot read directory: {err}"),
            ));
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

/// A document that could not be read, with where (line, column).
struct ReadError {
    at: (usize, usize),
    message: String,
}

/// Calls `check` with each document of `text` and its nodes' positions as
/// it is read, so only one document is held at a time; stops at the first
/// error. Text starting with `{` is read as a stream of JSON objects, as
/// kubectl does; the rest as YAML the way kubectl reads it (see [`crate::yaml`]).
fn read_documents(
    text: &str,
    mut check: impl FnMut(Value, Option<Positions>),
) -> Result<(), ReadError> {
    if text.trim_start().starts_with('{') {
        let values = serde_json::Deserializer::from_str(text).into_iter::<Value>();
        for (at, value) in values.enumerate() {
            let value = value.map_err(|err| ReadError {
                // serde_json says column 0 at the end of a line; positions here are 1-based.
                at: (err.line(), err.column().max(1)),
                message: format!("not valid JSON: {err}"),
            })?;
            // JSON is YAML's flow style, so the YAML reader gives the
            // positions: of the first object of a stream only (the second has
            // no `---`), and only of a kind that gets findings, as this
            // second pass costs more than the JSON parse itself.
            let positions = (at == 0 && gets_findings(&value))
                .then(|| crate::yaml::Documents::new(text).next()?.ok())
                .flatten()
                .map(|document| document.positions);
            check(value, positions);
        }
        return Ok(());
    }
    for document in crate::yaml::Documents::new(text) {
        let document = document.map_err(|err| ReadError {
            at: (err.line, err.column),
            message: format!("not valid YAML: {}", err.message),
        })?;
        check(document.value, Some(document.positions));
    }
    Ok(())
}

/// Whether a document's kind can get findings (a `kind: List` through its items).
fn gets_findings(document: &Value) -> bool {
    matches!(
        document.get("kind").and_then(Value::as_str),
        Some(KIND | POLICY_KIND | EXCEPTION_KIND | "List")
    )
}

/// Checks every source; one shared cache, so identical documents cost one validation.
pub fn check_inputs(paths: &[PathBuf], stdin: &mut dyn Read) -> Report {
    check_inputs_with_policies(paths, &[], stdin)
}

/// Which list a source was named in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// `-f`: ManagedRoosts are checked; RoostPolicies and Namespaces are used too.
    Objects,
    /// `--policy`: RoostPolicies, RoostPolicyExceptions and Namespaces are
    /// used; no roost is checked.
    Policies,
}

/// A document kept until every input is read.
enum Pending {
    Roost {
        source: String,
        index: usize,
        object: Value,
        positions: Option<Positions>,
    },
    Policy {
        source: String,
        index: usize,
        object: Value,
        positions: Option<Positions>,
    },
    Exception {
        source: String,
        index: usize,
        object: Value,
        positions: Option<Positions>,
    },
}

/// What every input together says about policies and namespaces.
#[derive(Default)]
struct Collected {
    pending: Vec<Pending>,
    /// Labels of the namespaces given as Namespace documents (the last one of a name wins).
    namespaces: BTreeMap<String, Labels>,
}

/// Checks every source of `paths` (`-f`), with the RoostPolicies,
/// RoostPolicyExceptions and Namespaces of `policy_paths` (`--policy`) and
/// of `paths`, at the system clock's time. Results come in input order: the
/// policy inputs first, then the others.
pub fn check_inputs_with_policies(
    paths: &[PathBuf],
    policy_paths: &[PathBuf],
    stdin: &mut dyn Read,
) -> Report {
    check_inputs_at(paths, policy_paths, Timestamp::now(), stdin)
}

/// As [`check_inputs_with_policies`], judging exceptions' expiry at `now`.
pub fn check_inputs_at(
    paths: &[PathBuf],
    policy_paths: &[PathBuf],
    now: Timestamp,
    stdin: &mut dyn Read,
) -> Report {
    let mut report = Report::default();
    let mut collected = Collected::default();
    for (role, paths) in [(Role::Policies, policy_paths), (Role::Objects, paths)] {
        for source in expand(paths, &mut report.input_errors) {
            read_input(&mut report, &mut collected, role, source, stdin);
        }
    }
    let Collected {
        pending,
        namespaces,
    } = collected;
    let (set, mut problems) = compile_policies(&pending, &mut report);
    let (exceptions, exception_problems) = compile_exceptions(&pending, &mut report);
    problems.extend(exception_problems);
    let engine = Engine::default();
    engine.policies.replace(set, BTreeMap::new());
    engine.policies.replace_exceptions(exceptions);
    engine
        .policies
        .namespaces_listed(namespaces.into_iter().collect());
    let judging = Judging {
        engine,
        cache: ValidationCache::default(),
        now,
    };
    for (at, pending) in pending.into_iter().enumerate() {
        match pending {
            Pending::Roost {
                source,
                index,
                object,
                positions,
            } => check_roost(
                &mut report,
                &judging,
                Document {
                    source,
                    index,
                    object,
                    positions,
                },
            ),
            Pending::Policy {
                source,
                index,
                object,
                positions,
            } => {
                if let Some(findings) = problems.remove(&at) {
                    report.results.push(refused(
                        Document {
                            source,
                            index,
                            object,
                            positions,
                        },
                        String::new(),
                        findings,
                        ResultKind::RoostPolicy,
                    ));
                }
            }
            Pending::Exception {
                source,
                index,
                object,
                positions,
            } => {
                if let Some(findings) = problems.remove(&at) {
                    let namespace = exception_namespace(&object);
                    report.results.push(refused(
                        Document {
                            source,
                            index,
                            object,
                            positions,
                        },
                        namespace,
                        findings,
                        ResultKind::RoostPolicyException,
                    ));
                }
            }
        }
    }
    report
}

/// The result of a RoostPolicy or RoostPolicyException the cluster would refuse.
fn refused(
    document: Document,
    namespace: String,
    findings: Vec<Finding>,
    kind: ResultKind,
) -> DocumentResult {
    DocumentResult {
        source: document.source,
        index: document.index,
        name: metadata_text(&document.object, "name").unwrap_or_default(),
        namespace,
        valid: false,
        findings: findings
            .into_iter()
            .map(|f| Located::at(f, document.positions.as_ref()))
            .collect(),
        kind,
        audited: Vec::new(),
        exempted: Vec::new(),
        judged: None,
    }
}

/// Reads one source, keeping its ManagedRoosts and RoostPolicies for later
/// and its Namespaces' labels.
fn read_input(
    report: &mut Report,
    collected: &mut Collected,
    role: Role,
    source: Source,
    stdin: &mut dyn Read,
) {
    let name = source.name();
    let text = match read_source(&source, stdin) {
        Ok(text) => text,
        Err(message) => {
            report.input_errors.push(InputError::new(name, message));
            return;
        }
    };
    let mut objects = 0usize;
    let mut documents = 0usize;
    let read = read_documents(&text, |document, positions| {
        if document.is_null() {
            return;
        }
        documents += 1;
        for (object, positions) in list_items(document, positions) {
            let at = Document {
                source: name.clone(),
                index: objects,
                object,
                positions,
            };
            classify(report, collected, role, at);
            objects += 1;
        }
    });
    if let Err(ReadError { at, message }) = read {
        report.input_errors.push(InputError {
            source: name,
            at: Some(at),
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
            .extend(message.map(|message| InputError::new(name, message)));
    }
}

/// A `kind: List` document stands for its items, moved out one by one.
fn list_items(
    mut doc: Value,
    positions: Option<Positions>,
) -> Box<dyn Iterator<Item = (Value, Option<Positions>)>> {
    if doc.get("kind").and_then(Value::as_str) == Some("List")
        && let Some(Value::Array(items)) = doc.get_mut("items").map(Value::take)
    {
        let item_positions = positions.and_then(|p| p.child("items").cloned());
        return Box::new(items.into_iter().enumerate().map(move |(at, item)| {
            let positions = item_positions.as_ref().and_then(|p| p.item(at)).cloned();
            (item, positions)
        }));
    }
    Box::new(std::iter::once((doc, positions)))
}

/// One object read: where it came from, its index in its source, its nodes' positions.
struct Document {
    source: String,
    index: usize,
    object: Value,
    positions: Option<Positions>,
}

/// Sorts one document: a ManagedRoost (from `-f`), a RoostPolicy or a
/// RoostPolicyException is kept,
/// a Namespace gives its labels, anything else is skipped.
fn classify(report: &mut Report, collected: &mut Collected, role: Role, document: Document) {
    let Document {
        source,
        index,
        object,
        positions,
    } = document;
    let Some(map) = object.as_object() else {
        report.input_errors.push(InputError {
            source,
            at: positions.map(|p| (p.at.line, p.at.column)),
            message: format!(
                "document {index} is not a Kubernetes object (expected a YAML mapping)"
            ),
        });
        return;
    };
    match map.get("kind").and_then(Value::as_str) {
        Some(KIND) if role == Role::Objects => collected.pending.push(Pending::Roost {
            source,
            index,
            object,
            positions,
        }),
        Some(POLICY_KIND) => collected.pending.push(Pending::Policy {
            source,
            index,
            object,
            positions,
        }),
        Some(EXCEPTION_KIND) => collected.pending.push(Pending::Exception {
            source,
            index,
            object,
            positions,
        }),
        Some("Namespace") => {
            if let Some((name, labels)) = namespace_labels(&object) {
                collected.namespaces.insert(name, labels);
            }
            report.skipped += 1;
        }
        _ => report.skipped += 1,
    }
}

/// A Namespace document's name and labels, with the name label the
/// apiserver sets on every namespace (it wins over a written one).
fn namespace_labels(object: &Value) -> Option<(String, Labels)> {
    if object.get("apiVersion").and_then(Value::as_str) != Some("v1") {
        return None;
    }
    let name = metadata_text(object, "name").filter(|n| !n.is_empty())?;
    let mut labels = policy::labels_of(object);
    labels.insert(NAMESPACE_NAME_LABEL.to_owned(), name.clone());
    Some((name, labels))
}

fn metadata_text(object: &Value, key: &str) -> Option<String> {
    object
        .get("metadata")
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// `API_VERSION_UNKNOWN` unless `object`'s apiVersion is `wanted`, the one
/// its kind is served in.
fn served_api_version(object: &Value, wanted: &str) -> Result<(), Vec<Finding>> {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    if api_version == wanted {
        return Ok(());
    }
    let mut out = Findings::default();
    out.report(
        codes::API_VERSION_UNKNOWN,
        "apiVersion",
        format!(
            "apiVersion {} is not served; use {wanted}",
            crate::validation::shown(api_version)
        ),
    );
    Err(out.into_vec())
}

/// A RoostPolicy document as the apiserver would store it, or why not.
fn decode_policy(object: &Value) -> Result<RoostPolicy, Vec<Finding>> {
    let wanted = <RoostPolicy as kube::Resource>::api_version(&());
    served_api_version(object, &wanted)?;
    // As the RoostPolicy webhook says it (the message quotes no value), at
    // the field that does not decode, with the closest choice for an enum.
    let policy = serde_path_to_error::deserialize::<_, RoostPolicy>(object).map_err(|err| {
        let field = match err.path().to_string() {
            path if path.is_empty() || path == "." => "spec".to_owned(),
            path => path,
        };
        let hint = unknown_variant_hint(&err.inner().to_string());
        vec![policy::invalid(
            field,
            format!(
                "does not decode as a RoostPolicy: {}{hint}",
                crate::text::describe_json_error(err.inner())
            ),
        )]
    })?;
    if policy.metadata.name.as_deref().unwrap_or("").is_empty() {
        return Err(vec![policy::invalid(
            "metadata.name",
            "a RoostPolicy needs a name",
        )]);
    }
    Ok(policy)
}

/// `; did you mean "warning"?` for serde's "unknown variant `warnng`,
/// expected one of `error`, `warning`, ..." when the value is close to a
/// choice; the value itself is not repeated.
fn unknown_variant_hint(message: &str) -> String {
    let Some(rest) = message.strip_prefix("unknown variant `") else {
        return String::new();
    };
    let Some((written, expected)) = rest.split_once('`') else {
        return String::new();
    };
    let choices: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    match crate::validation::checks::closest(written, &choices) {
        Some(choice) => format!("; did you mean {choice:?}?"),
        None => String::new(),
    }
}

/// Compiles the RoostPolicy documents as the cluster would admit them: in
/// name order, each checked against the custom codes of the policies before
/// it. Returns the set of those that compiled and, by position in `pending`,
/// the problems of those that did not. A policy given twice with the same
/// spec counts once; with another spec, the later one is refused.
fn compile_policies(
    pending: &[Pending],
    report: &mut Report,
) -> (PolicySet, BTreeMap<usize, Vec<Finding>>) {
    let mut problems = BTreeMap::new();
    let mut by_name: BTreeMap<String, (usize, RoostPolicy)> = BTreeMap::new();
    for (at, entry) in pending.iter().enumerate() {
        let Pending::Policy { object, .. } = entry else {
            continue;
        };
        let policy = match decode_policy(object) {
            Ok(policy) => policy,
            Err(findings) => {
                report.policies += 1;
                problems.insert(at, findings);
                continue;
            }
        };
        let name = policy.metadata.name.clone().unwrap_or_default();
        match by_name.get(&name) {
            Some((_, earlier)) if earlier.spec == policy.spec => {}
            Some((earlier, _)) => {
                report.policies += 1;
                let shown = shown_at(pending, *earlier);
                problems.insert(
                    at,
                    vec![policy::invalid(
                        "metadata.name",
                        format!(
                            "another RoostPolicy {name} with a different spec is given earlier ({shown}); a cluster holds one policy of a name"
                        ),
                    )],
                );
            }
            None => {
                report.policies += 1;
                by_name.insert(name, (at, policy));
            }
        }
    }
    let mut taken: BTreeMap<String, String> = BTreeMap::new();
    let mut compiled: Vec<Arc<CompiledPolicy>> = Vec::new();
    // The caps on what is in force, in name order as the server applies them.
    let mut capacity = policy::Capacity::default();
    for (name, (at, policy)) in by_name {
        let known = Known { taken: &taken };
        match policy::compile(&policy, &known) {
            Ok(policy) => {
                if let Err(full) = capacity.admit(policy.rule_count()) {
                    problems.insert(at, vec![policy::invalid("spec.rules", full)]);
                    continue;
                }
                for code in policy.codes() {
                    taken.insert(code.to_owned(), name.clone());
                }
                compiled.push(Arc::new(policy));
            }
            Err(findings) => {
                problems.insert(at, findings);
            }
        }
    }
    (PolicySet::new(compiled), problems)
}

/// Where the document at `at` of `pending` was given (`source:index`), as
/// a message about a later one names it.
fn shown_at(pending: &[Pending], at: usize) -> String {
    match pending.get(at) {
        Some(
            Pending::Policy { source, index, .. }
            | Pending::Roost { source, index, .. }
            | Pending::Exception { source, index, .. },
        ) => format!("{}:{index}", printable(source)),
        None => String::new(),
    }
}

/// An exception's namespace: `metadata.namespace`, else `default`, as for a roost.
fn exception_namespace(object: &Value) -> String {
    metadata_text(object, "namespace")
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".to_owned())
}

/// A RoostPolicyException document as the apiserver would store it (in
/// `default` when it names no namespace), or why not.
fn decode_exception(object: &Value) -> Result<RoostPolicyException, Vec<Finding>> {
    let invalid = |field: &str, message: String| vec![exception::invalid(field, message)];
    let wanted = <RoostPolicyException as kube::Resource>::api_version(&());
    served_api_version(object, &wanted)?;
    let mut exception = serde_path_to_error::deserialize::<_, RoostPolicyException>(object)
        .map_err(|err| {
            let field = match err.path().to_string() {
                path if path.is_empty() || path == "." => "spec".to_owned(),
                path => path,
            };
            invalid(
                &field,
                format!(
                    "does not decode as a RoostPolicyException: {}",
                    crate::text::describe_json_error(err.inner())
                ),
            )
        })?;
    if exception.metadata.name.as_deref().unwrap_or("").is_empty() {
        return Err(invalid(
            "metadata.name",
            "a RoostPolicyException needs a name".to_owned(),
        ));
    }
    exception.metadata.namespace = Some(exception_namespace(object));
    Ok(exception)
}

/// Compiles the RoostPolicyException documents as the cluster would admit
/// them. Returns those that compiled (expired ones too: expiry is judged per
/// roost at the run's `now`) and, by position in `pending`, the problems of
/// those that did not. One given twice (namespace and name) with the same
/// spec counts once; with another spec, the later one is refused; past
/// [`exception::MAX_EXCEPTIONS_IN_FORCE`], the rest are refused.
fn compile_exceptions(
    pending: &[Pending],
    report: &mut Report,
) -> (Vec<Arc<CompiledException>>, BTreeMap<usize, Vec<Finding>>) {
    let mut problems = BTreeMap::new();
    let mut seen: BTreeMap<(String, String), (usize, RoostPolicyException)> = BTreeMap::new();
    let mut compiled = Vec::new();
    for (at, entry) in pending.iter().enumerate() {
        let Pending::Exception { object, .. } = entry else {
            continue;
        };
        let decoded = match decode_exception(object) {
            Ok(decoded) => decoded,
            Err(findings) => {
                report.exceptions += 1;
                problems.insert(at, findings);
                continue;
            }
        };
        let key = (
            decoded.metadata.namespace.clone().unwrap_or_default(),
            decoded.metadata.name.clone().unwrap_or_default(),
        );
        if let Some((earlier, first)) = seen.get(&key) {
            if first.spec != decoded.spec {
                report.exceptions += 1;
                let shown = shown_at(pending, *earlier);
                problems.insert(
                    at,
                    vec![exception::invalid(
                        "metadata.name",
                        format!(
                            "another RoostPolicyException {}/{} with a different spec is given earlier ({shown}); a namespace holds one exception of a name",
                            key.0, key.1
                        ),
                    )],
                );
            }
            continue;
        }
        report.exceptions += 1;
        match exception::compile(&decoded) {
            Ok(_) if compiled.len() >= exception::MAX_EXCEPTIONS_IN_FORCE => {
                let message = format!(
                    "at most {} RoostPolicyExceptions are in force at once",
                    exception::MAX_EXCEPTIONS_IN_FORCE
                );
                problems.insert(at, vec![exception::invalid("metadata.name", message)]);
            }
            Ok(ready) => compiled.push(Arc::new(ready)),
            Err(findings) => {
                problems.insert(at, findings);
            }
        }
        seen.insert(key, (at, decoded));
    }
    (compiled, problems)
}

/// What every roost of one run is judged with: the engine holding the
/// policies and the Namespaces' labels read, a verdict cache (identical
/// objects are judged once), and the time of the run.
struct Judging {
    engine: Engine,
    cache: ValidationCache,
    now: Timestamp,
}

/// The webhooks' verdict on one ManagedRoost: the matching policies'
/// defaults, the built-in defaults, the built-in rules, then the policies'
/// overrides and rules, then the silence annotation.
fn check_roost(report: &mut Report, judging: &Judging, document: Document) {
    let Document {
        source,
        index,
        object,
        positions,
    } = document;
    let name = metadata_text(&object, "name").unwrap_or_default();
    let namespace = metadata_text(&object, "namespace").unwrap_or_else(|| "default".to_owned());
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut audited = Vec::new();
    let mut exempted = Vec::new();
    let mut rules = Vec::new();
    let mut written = None;
    let (valid, findings) = match ApiVersion::from_api_version(api_version) {
        None => {
            let mut out = Findings::default();
            out.report(
                codes::API_VERSION_UNKNOWN,
                "apiVersion",
                format!(
                    "apiVersion {} is not served; use one of {}",
                    crate::validation::shown(api_version),
                    ApiVersion::served_list()
                ),
            );
            (false, out.into_vec())
        }
        Some(version) => {
            written = Some(version);
            let refused = refusal_findings(&object, version);
            let (result, ran) = judge_roost(judging, &namespace, &object, version);
            rules = ran;
            let same = |a: &Finding, b: &Finding| a.code == b.code && a.field == b.field;
            // A field and code is said once: a type the engine's decoder
            // already calls SCHEMA_INVALID by the engine; a block the
            // apiserver refuses (an error, before any webhook) by the
            // refusal, also for the engine's finding inside that block
            // (WEBHOOK_TRIGGER_URL_MISSING at `webhook.url`).
            let refused: Vec<Finding> = refused
                .into_iter()
                .filter(|r| !result.errors.iter().any(|e| same(e, r)))
                .collect();
            let covered = |r: &Finding, f: &Finding| {
                r.code == f.code
                    && f.field
                        .strip_prefix(&r.field)
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
            };
            let judged = result
                .all()
                .filter(|f| !refused.iter().any(|r| covered(r, f)));
            let judged: Vec<Finding> = judged.cloned().collect();
            let valid = result.valid && refused.is_empty();
            audited = result.audited.clone();
            exempted = result.exempted.clone();
            (valid, refused.into_iter().chain(judged).collect())
        }
    };
    let uid = report_uid(&object, &name);
    let mut verdict = ValidationResult::from_findings(findings.clone());
    verdict.valid = valid;
    verdict.audited.clone_from(&audited);
    verdict.exempted.clone_from(&exempted);
    if written == Some(ApiVersion::V1alpha1) {
        // The cluster stores and reports roosts in the storage version.
        verdict = crate::engine::named_in(verdict, ApiVersion::STORAGE);
    }
    report.results.push(DocumentResult {
        source,
        index,
        name,
        namespace,
        valid,
        findings: findings
            .into_iter()
            .map(|f| Located::at(f, positions.as_ref()))
            .collect(),
        kind: ResultKind::ManagedRoost,
        audited: audited
            .into_iter()
            .map(|f| Located::at(f, positions.as_ref()))
            .collect(),
        exempted: exempted
            .into_iter()
            .map(
                |Exemption {
                     finding,
                     exception,
                     justification,
                     expires_at,
                 }| LocatedExemption {
                    located: Located::at(finding, positions.as_ref()),
                    exception,
                    justification,
                    expires_at,
                },
            )
            .collect(),
        judged: Some(Box::new(Judged {
            result: verdict,
            rules,
            uid,
        })),
    });
}

/// What names a roost's Report: its `metadata.uid` when the document has
/// one (as the cluster names it), else its name, since an object not yet
/// applied has no uid.
pub fn report_uid(object: &Value, name: &str) -> String {
    metadata_text(object, "uid")
        .filter(|uid| !uid.is_empty())
        .unwrap_or_else(|| name.to_owned())
}

/// What the apiserver would refuse the object for by its CRD schema (of the
/// object's version), before any webhook: undeclared fields (UNKNOWN_FIELD;
/// kubectl's strict field validation), scalars of another type
/// (SCHEMA_INVALID) and, in v1beta1, a health check's or trigger's block
/// that its type does not allow or lacks (the CRD's CEL rules, an error
/// whatever the code's level at admission).
fn refusal_findings(object: &Value, version: ApiVersion) -> Vec<Finding> {
    let mut found = schema_refusals(object);
    if let (ApiVersion::V1beta1, Some(spec)) = (version, object.get("spec")) {
        let unions = crate::api::v1beta1::union_refusals(spec);
        found.extend(unions.into_iter().filter_map(|(field, name, message)| {
            // Every code the unions name is in the table (a test in codes.rs).
            let code = codes::lookup(name)?;
            Some(Finding {
                level: Level::Error,
                ..Finding::new(
                    code,
                    field,
                    format!("{message}; the v1beta1 schema refuses it before any webhook"),
                )
            })
        }));
    }
    found
}

/// The CRD schema's refusals: undeclared fields and scalars of another type.
fn schema_refusals(object: &Value) -> Vec<Finding> {
    crate::api::strict::refusals(object)
        .into_iter()
        .map(|RefusedField { field, refused }| match refused {
            Refused::Unknown { suggestion } => {
                let hint = match suggestion {
                    Some(known) => format!(" did you mean {known:?}?"),
                    None => String::new(),
                };
                Finding::new(
                    codes::UNKNOWN_FIELD,
                    field,
                    format!(
                        "unknown field;{hint} kubectl apply refuses fields the ManagedRoost schema does not declare"
                    ),
                )
            }
            Refused::WrongType { declared, written } => Finding::new(
                codes::SCHEMA_INVALID,
                field,
                format!(
                    "expected {}, got {}; the apiserver's schema refuses it: {}",
                    with_article(declared),
                    with_article(written),
                    match (declared, written) {
                        ("string", "integer" | "number" | "boolean") => "quote the value",
                        (_, "string") => "remove the quotes",
                        _ => "fix the value's type",
                    }
                ),
            ),
        })
        .collect()
}

/// `an integer`, `a string`, `an integer or a string`.
fn with_article(json_type: &str) -> String {
    json_type
        .split(" or ")
        .map(|t| match t {
            "integer" | "array" | "object" => format!("an {t}"),
            _ => format!("a {t}"),
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

/// The webhooks' verdict on a ManagedRoost written in `version`: the
/// mutating webhook's defaults, then the validating webhook's verdict on the
/// object they give (labels defaulting added may select other policies);
/// with the custom rules that ran, (policy, code), as the engine's
/// [`crate::engine::Judgement::rules`] gives them.
fn judge_roost(
    judging: &Judging,
    namespace: &str,
    object: &Value,
    version: ApiVersion,
) -> (ValidationResult, Vec<(String, String)>) {
    let Judging { engine, cache, now } = judging;
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut object = defaulted(
        object,
        version,
        &engine.matching(namespace, name, &policy::labels_of(object)),
    )
    .object;
    let matched = engine.matching(namespace, name, &policy::labels_of(&object));
    if !matched.is_empty()
        && let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut)
    {
        // The apiserver sets the namespace before admission; rules may read it.
        metadata
            .entry("namespace")
            .or_insert_with(|| Value::String(namespace.to_owned()));
    }
    // The rules read the spec in the hub's shape.
    let hub = converted(&object, version, ApiVersion::V1alpha1);
    let spec = hub.get("spec");
    let silence = object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(SILENCE_ANNOTATION))
        .and_then(Value::as_str);
    let rules = engine.registry.fingerprint();
    let key = if matched.is_empty() {
        CacheKey::new(rules, version, spec, None, silence)
    } else {
        CacheKey::with_policies(rules, version, &object, None, matched.fingerprint())
    };
    // The rules that run are those of the matched policies, whatever the
    // verdict: the same list the engine's Judgement gives (a cache hit
    // skips judging, not matching).
    let rules: Vec<(String, String)> = matched
        .rules()
        .map(|(policy, code)| (policy.to_owned(), code.to_owned()))
        .collect();
    let (result, _) = cache.get_or_validate(key, || {
        engine
            .judge(&Case {
                version,
                spec: &decode_spec(spec),
                old_spec: None,
                policies: (!matched.is_empty()).then_some(PolicyCase {
                    matched: &matched,
                    object: &object,
                    old_object: None,
                }),
                silence,
                now: *now,
            })
            .result
    });
    (Arc::unwrap_or_clone(result), rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        crate::yaml::Documents::new(text)
            .next()
            .expect("one document")
            .expect("valid YAML")
            .value
    }

    #[test]
    fn every_example_policy_compiles_and_isolation_stays_on() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policies");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert_eq!(files.len(), 3, "{files:?}");
        let mut compiled = Vec::new();
        for file in &files {
            let policy = decode_policy(&yaml(&std::fs::read_to_string(file).unwrap()))
                .unwrap_or_else(|f| panic!("{}: {f:?}", file.display()));
            let taken = BTreeMap::new();
            let known = Known { taken: &taken };
            let policy = policy::compile(&policy, &known)
                .unwrap_or_else(|f| panic!("{}: {f:?}", file.display()));
            compiled.push(Arc::new(policy));
        }
        let set = PolicySet::new(compiled);
        let matched = set.matching(&policy::default_namespace_labels("x"), &Labels::new());
        let roost = |isolation: Value| {
            serde_json::json!({"metadata": {"name": "r"},
                               "spec": {"tenancy": {"tenantId": "acme", "namespaceIsolation": isolation}}})
        };
        let on = roost(serde_json::json!({"enabled": true, "prefix": "acme-"}));
        let cases = [
            ("create", on.clone(), None, true),
            ("unchanged", on.clone(), Some(&on), true),
            (
                "turned off",
                roost(serde_json::json!({"enabled": false, "prefix": "acme-"})),
                Some(&on),
                false,
            ),
            (
                "prefix changed",
                roost(serde_json::json!({"enabled": true, "prefix": "other-"})),
                Some(&on),
                false,
            ),
            (
                "tenancy dropped",
                serde_json::json!({"spec": {}}),
                Some(&on),
                false,
            ),
            (
                "enabled later",
                on.clone(),
                Some(&roost(serde_json::json!({"prefix": "acme-"}))),
                true,
            ),
            (
                "never isolated",
                serde_json::json!({"spec": {}}),
                Some(&serde_json::json!({"spec": {}})),
                true,
            ),
        ];
        let empty = crate::validation::ValidationResult::from_findings(Vec::new());
        for (name, object, old, passes) in cases {
            let (result, evaluations) = matched.apply(
                &empty,
                &object,
                old,
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            );
            assert_eq!(evaluations.errors, 0, "{name}: {result:?}");
            assert_eq!(result.valid, passes, "{name}: {result:?}");
            if !passes {
                assert_eq!(result.codes(), ["TENANT_ISOLATION_LOCKED"], "{name}");
            }
        }
    }

    #[test]
    fn policies_compile_in_name_order_whatever_the_input_order() {
        let policy = |name: &str, code: &str| Pending::Policy {
            source: "in.yaml".into(),
            index: 0,
            object: serde_json::json!({
                "apiVersion": "roost.birb.party/v1alpha1", "kind": "RoostPolicy",
                "metadata": {"name": name},
                "spec": {"rules": [{"code": code, "level": "error", "expression": "true", "message": "m"}]}
            }),
            positions: None,
        };
        let pending = [
            policy("zz-late", "SHARED_CODE"),
            policy("aa-early", "SHARED_CODE"),
            policy("mm-other", "OWN_CODE"),
            policy("aa-early", "SHARED_CODE"),
        ];
        let mut report = Report::default();
        let (set, problems) = compile_policies(&pending, &mut report);
        let names: Vec<&str> = set.policies().iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["aa-early", "mm-other"]);
        assert_eq!(problems.keys().copied().collect::<Vec<_>>(), [0]);
        assert_eq!(problems[&0][0].field, "spec.rules[0].code");
        assert!(
            problems[&0][0].message.contains("aa-early"),
            "{:?}",
            problems[&0]
        );
        assert_eq!(report.policies, 3, "an identical repeat counts once");
    }

    #[test]
    fn exceptions_compile_once_per_namespace_and_name_in_default_without_one() {
        let exception = |name: &str, namespace: Option<&str>, code: &str| Pending::Exception {
            source: "in.yaml".into(),
            index: 0,
            object: serde_json::json!({
                "apiVersion": "roost.birb.party/v1alpha1", "kind": "RoostPolicyException",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"codes": [code], "roosts": ["web"], "justification": "j"}
            }),
            positions: None,
        };
        let pending = [
            exception("ex", None, "MY_CODE"),
            exception("ex", Some("default"), "MY_CODE"),
            exception("ex", Some("default"), "OTHER_CODE"),
            exception("ex", Some("team-a"), "CHART_VERSION_MISSING"),
            exception("", Some("team-a"), "MY_CODE"),
        ];
        let mut report = Report::default();
        let (compiled, problems) = compile_exceptions(&pending, &mut report);
        assert_eq!(compiled.len(), 1);
        assert_eq!(compiled[0].namespace, "default");
        assert!(compiled[0].selects("default", "web", &Labels::new()));
        assert_eq!(problems.keys().copied().collect::<Vec<_>>(), [2, 3, 4]);
        assert!(
            problems[&2][0].message.contains("in.yaml:0"),
            "{problems:?}"
        );
        assert_eq!(problems[&3][0].field, "spec.codes[0]");
        assert_eq!(problems[&4][0].field, "metadata.name");
        for findings in problems.values() {
            assert!(findings.iter().all(|f| f.code == "EXCEPTION_INVALID"));
        }
        assert_eq!(report.exceptions, 4, "an identical repeat counts once");
    }

    #[test]
    fn list_documents_expand_with_their_items_positions() {
        let document = crate::yaml::Documents::new(
            "kind: List\nitems:\n- kind: A\n-   kind: B\n    spec: {}\n",
        )
        .next()
        .unwrap()
        .unwrap();
        let items: Vec<(String, Option<(usize, usize)>)> =
            list_items(document.value, Some(document.positions))
                .map(|(item, positions)| {
                    (
                        item["kind"].as_str().unwrap().to_owned(),
                        positions.map(|p| {
                            let at = p.locate("spec");
                            (at.line, at.column)
                        }),
                    )
                })
                .collect();
        assert_eq!(
            items,
            [("A".into(), Some((3, 3))), ("B".into(), Some((5, 5)))]
        );
    }
}
