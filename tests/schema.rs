//! `roost-keeper schema`: the committed `schemas/` are what the binary
//! writes, and the real tools accept them: kubeconform, and a Python
//! `jsonschema` venv for the draft-07 meta-schema (`common::schema_tools`).
//! `tests/e2e_schema.rs` compares kubeconform's verdicts with the apiserver's.
//!
//! The schema must agree with the engine `roost-keeper validate` runs: every
//! ManagedRoost of the samples and examples that it finds free of
//! SCHEMA_INVALID passes kubeconform, unless kubeconform names something the
//! apiserver refuses too: a field the CRD does not declare (kubectl's strict
//! field validation), or a CRD bound that validate reports as an error at the
//! same field.

mod common;

use common::schema_tools::{
    documents_of_kind, kubeconform, roost_with, tools_bin, write_documents,
};
use roost_keeper::api::ApiVersion;
use roost_keeper::api::KIND;
use roost_keeper::api::crd::{CrdKind, spec_schema};
use roost_keeper::api::json_schema::{file_name, versions};
use roost_keeper::offline::check_inputs;
use roost_keeper::validation::Level;
use roost_keeper::validation::codes::{SCHEMA_INVALID, UNKNOWN_FIELD};
use roost_testcluster::stdout_of;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

fn roost_keeper(args: &[&str]) -> String {
    stdout_of(env!("CARGO_BIN_EXE_roost-keeper"), args)
}

const KINDS: [(CrdKind, &str); 2] = [
    (CrdKind::Managedroost, "managedroost"),
    (CrdKind::Roostpolicy, "roostpolicy"),
];

#[test]
fn committed_schemas_match_the_binary() {
    let written = tempfile::tempdir().unwrap();
    let dir = written.path().to_str().unwrap();
    roost_keeper(&["schema", "--out-dir", dir]);
    let mut names: Vec<String> = std::fs::read_dir(written.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "managedroost-roost-v1alpha1.json",
            "managedroost-roost-v1beta1.json",
            "roostpolicy-roost-v1alpha1.json",
            "roostpolicyexception-roost-v1alpha1.json"
        ]
    );
    for name in &names {
        let committed =
            std::fs::read_to_string(common::cluster::repo().join("schemas").join(name)).unwrap();
        let file = std::fs::read_to_string(written.path().join(name)).unwrap();
        assert!(
            file == committed,
            "schemas/{name} is stale: run `make schema`"
        );
    }
    for (kind, flag) in KINDS {
        let name = file_name(kind);
        let printed = roost_keeper(&["schema", "--kind", flag]);
        let committed =
            std::fs::read_to_string(common::cluster::repo().join("schemas").join(&name)).unwrap();
        assert!(
            printed == committed,
            "schemas/{name} is stale: run `make schema`"
        );
        let file = std::fs::read_to_string(written.path().join(&name)).unwrap();
        assert_eq!(file, printed, "--out-dir writes what --kind {flag} prints");
    }
    assert_eq!(
        roost_keeper(&["schema"]),
        roost_keeper(&["schema", "--kind", "managedroost"])
    );
}

/// `/spec/healthChecks/0/tcp/port` as validate names it: `spec.healthChecks[0].tcp.port`.
fn dotted(pointer: &str) -> String {
    let mut field = String::new();
    for segment in pointer.split('/').filter(|s| !s.is_empty()) {
        if segment.bytes().all(|b| b.is_ascii_digit()) {
            field.push_str(&format!("[{segment}]"));
        } else {
            if !field.is_empty() {
                field.push('.');
            }
            field.push_str(&segment.replace("~1", "/").replace("~0", "~"));
        }
    }
    field
}

/// The names quoted in a kubeconform message: `additional properties 'a', 'b' not allowed`.
fn quoted_names(message: &str) -> Vec<&str> {
    message.split('\'').skip(1).step_by(2).collect()
}

/// Whether the CRD's own spec schema (not the converted one) refuses `name`
/// below `pointer` (`/spec/...`): an object that declares neither the field
/// nor preserves unknown fields.
fn crd_refuses_field(pointer: &str, name: &str) -> bool {
    let mut node = spec_schema();
    for segment in pointer.split('/').filter(|s| !s.is_empty()).skip(1) {
        node = if segment.bytes().all(|b| b.is_ascii_digit()) {
            &node["items"]
        } else if node["properties"].get(segment).is_some() {
            &node["properties"][segment]
        } else {
            &node["additionalProperties"]
        };
    }
    node["type"] == "object"
        && node["x-kubernetes-preserve-unknown-fields"] != true
        && node.get("additionalProperties").is_none()
        && node["properties"].get(name).is_none()
}

#[test]
fn every_sample_validate_finds_well_typed_passes_kubeconform() {
    let documents = documents_of_kind(&["tests/samples", "examples"], KIND);
    let dir = tempfile::tempdir().unwrap();
    let files = write_documents(dir.path(), &documents);
    let verdicts = kubeconform(&[dir.path()]);
    assert_eq!(verdicts.len(), documents.len(), "one verdict per document");
    let mut clean = 0;
    for ((origin, _), file) in documents.iter().zip(&files) {
        let report = check_inputs(std::slice::from_ref(file), &mut std::io::empty());
        assert!(
            report.input_errors.is_empty(),
            "{origin}: {:?}",
            report.input_errors
        );
        let findings: Vec<_> = report
            .results
            .iter()
            .flat_map(|r| &r.findings)
            .map(|f| &f.finding)
            .collect();
        if findings
            .iter()
            .any(|f| f.code == SCHEMA_INVALID.name() || f.code == UNKNOWN_FIELD.name())
        {
            continue;
        }
        let verdict = verdicts
            .iter()
            .find(|v| Path::new(&v.filename) == file)
            .unwrap_or_else(|| panic!("{origin}: no kubeconform verdict"));
        if verdict.valid {
            clean += 1;
            continue;
        }
        assert!(
            !verdict.errors.is_empty(),
            "{origin}: invalid without a reason"
        );
        for (pointer, message) in &verdict.errors {
            // An error at `field` or below it.
            let validate_refuses = |field: &str| {
                findings.iter().any(|f| {
                    f.level == Level::Error
                        && f.field.strip_prefix(field).is_some_and(|rest| {
                            rest.is_empty() || rest.starts_with('.') || rest.starts_with('[')
                        })
                })
            };
            let apiserver_refuses_too = if message.starts_with("additional properties") {
                quoted_names(message)
                    .iter()
                    .all(|name| crd_refuses_field(pointer, name))
            } else if message.starts_with("missing propert") {
                quoted_names(message)
                    .iter()
                    .all(|name| validate_refuses(&dotted(&format!("{pointer}/{name}"))))
            } else {
                validate_refuses(&dotted(pointer))
            };
            assert!(
                apiserver_refuses_too,
                "{origin}: kubeconform refuses {pointer} ({message}), validate finds it \
                 well-typed: {findings:?}"
            );
            eprintln!("{origin}: refused by the CRD too: {pointer}: {message}");
        }
    }
    assert!(clean >= 8, "only {clean} samples passed cleanly");
}

#[test]
fn a_wrong_type_or_undeclared_field_fails_kubeconform_and_is_named() {
    let cases = [
        ("/spec/chart/version", json!([1]), "/spec/chart/version"),
        ("/spec/healthChecks", json!({}), "/spec/healthChecks"),
        (
            "/spec/healthChecks/0/tcp/port",
            json!("eighty"),
            "/spec/healthChecks/0/tcp/port",
        ),
        (
            "/spec/healthChecks/0/interval",
            json!(1.5),
            "/spec/healthChecks/0/interval",
        ),
        ("/spec/chart/colour", json!("blue"), "/spec/chart"),
        // Another group with the same first label: kubeconform picks our file.
        (
            "/apiVersion",
            json!("roost.birbparty.com/v1alpha1"),
            "/apiVersion",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let documents: Vec<(String, Value)> = cases
        .iter()
        .map(|(pointer, value, _)| {
            (
                format!("{pointer} = {value}"),
                roost_with(pointer, value.clone()),
            )
        })
        .collect();
    let files = write_documents(dir.path(), &documents);
    let verdicts = kubeconform(&[dir.path()]);
    for (((case, _), file), (_, value, named)) in documents.iter().zip(&files).zip(&cases) {
        let verdict = verdicts
            .iter()
            .find(|v| Path::new(&v.filename) == file)
            .unwrap_or_else(|| panic!("{case}: no kubeconform verdict"));
        assert!(!verdict.valid, "{case}: kubeconform accepted it");
        assert!(
            verdict.errors.iter().any(|(path, _)| path == named),
            "{case}: {named} not named in {:?}",
            verdict.errors
        );
        if value.is_array() || value.is_object() {
            let report = check_inputs(std::slice::from_ref(file), &mut std::io::empty());
            assert!(
                report.results[0]
                    .findings
                    .iter()
                    .any(|f| f.finding.code == SCHEMA_INVALID.name()),
                "{case}: validate agrees it is the wrong type"
            );
        }
    }
    let valid = roost_with("/spec/chart/version", json!("1.2.3"));
    let file = dir.path().join("valid.json");
    std::fs::write(&file, valid.to_string()).unwrap();
    let verdicts = kubeconform(&[&file]);
    assert!(
        verdicts[0].valid,
        "the base document: {:?}",
        verdicts[0].errors
    );
}

#[test]
fn example_policies_pass_kubeconform_and_a_wrong_type_fails() {
    let verdicts = kubeconform(&[&common::cluster::repo().join("examples/policies")]);
    let policies: Vec<_> = verdicts
        .iter()
        .filter(|v| v.kind == "RoostPolicy")
        .collect();
    assert!(policies.len() >= 3, "{} policies checked", policies.len());
    for policy in policies {
        assert!(policy.valid, "{}: {:?}", policy.filename, policy.errors);
    }
    let mut policy = documents_of_kind(&["examples/policies"], "RoostPolicy")
        .remove(0)
        .1;
    policy["spec"]["rules"] = json!("not a list");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.json");
    std::fs::write(&file, policy.to_string()).unwrap();
    let verdicts = kubeconform(&[&file]);
    assert!(!verdicts[0].valid);
    assert!(
        verdicts[0]
            .errors
            .iter()
            .any(|(path, _)| path == "/spec/rules"),
        "{:?}",
        verdicts[0].errors
    );
}

/// A second, independent implementation: Python `jsonschema` checks both
/// schemas against the draft-07 meta-schema, and validates a sample with each.
#[test]
fn schemas_are_valid_draft_07_for_python_jsonschema() {
    const CHECK: &str = r#"
import json, sys
from jsonschema import Draft7Validator
schema = json.load(open(sys.argv[1]))
Draft7Validator.check_schema(schema)
validator = Draft7Validator(schema)
for path in sys.argv[2:]:
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(json.load(open(path)))]
    if errors:
        sys.exit(f"{path}: {errors}")
"#;
    let dir = tempfile::tempdir().unwrap();
    let alpha = documents_of_kind(&["examples/web-valid.yaml"], KIND);
    let beta: Vec<(String, Value)> = alpha
        .iter()
        .map(|(origin, doc)| {
            let converted = roost_keeper::api::convert::convert(doc, ApiVersion::V1beta1).unwrap();
            (format!("{origin} as v1beta1"), converted)
        })
        .collect();
    let policies = documents_of_kind(&["examples/policies"], "RoostPolicy");
    for (kind, version, documents) in [
        (CrdKind::Managedroost, "v1alpha1", alpha),
        (CrdKind::Managedroost, "v1beta1", beta),
        (CrdKind::Roostpolicy, "v1alpha1", policies),
    ] {
        assert!(!documents.is_empty());
        let (_, schema) = versions(kind)
            .into_iter()
            .find(|(name, _)| name == version)
            .unwrap();
        let sub = dir.path().join(&schema);
        std::fs::create_dir(&sub).unwrap();
        let files = write_documents(&sub, &documents);
        let out = Command::new(tools_bin().join("python3"))
            .args(["-c", CHECK])
            .arg(common::cluster::repo().join("schemas").join(&schema))
            .args(&files)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{schema}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
