//! The JSON Schema against its reference: a real kube-apiserver with only
//! the CRDs installed (no admission webhooks, so only the CRD schema and
//! kubectl's strict field validation judge; roost-keeper serves only the
//! conversion a v1alpha1 object needs, even in a dry run, as v1beta1 is stored). For every ManagedRoost and RoostPolicy of
//! our apiVersion in the samples and examples, and for a few wrong ones,
//! kubeconform with `schemas/` accepts exactly what a server-side dry run
//! accepts, and `roost-keeper validate` refuses every ManagedRoost the
//! apiserver refuses and calls a field UNKNOWN_FIELD or SCHEMA_INVALID only
//! where the apiserver refuses the object.

mod common;

use common::schema_tools::{documents_of_kind, kubeconform, roost_with, write_documents};
use roost_keeper::admission::POLICY_KIND;
use roost_keeper::api::KIND;
use roost_testcluster::{ControlPlane, ServeCommand, text};
use serde_json::json;
use std::path::Path;

#[test]
fn kubeconform_accepts_what_the_apiserver_accepts() {
    let plane = ControlPlane::start().expect("control plane starts");
    plane.install_crd().expect("CRDs installed");
    let converter = ServeCommand::new(env!("CARGO_BIN_EXE_roost-keeper"))
        .spawn()
        .expect("serve starts");
    plane
        .convert_at(
            &format!("https://127.0.0.1:{}", converter.webhook.port()),
            Some(converter.ca_pem().as_bytes()),
        )
        .expect("CRD conversion pointed at roost-keeper");
    let paths = ["tests/samples", "examples"];
    let mut documents = documents_of_kind(&paths, KIND);
    documents.extend(documents_of_kind(&paths, POLICY_KIND));
    for (pointer, value) in [
        ("/spec/chart/version", json!([1])),
        ("/spec/healthChecks", json!({})),
        ("/spec/healthChecks/0/tcp/port", json!("eighty")),
        ("/spec/chart/colour", json!("blue")),
        // What YAML makes of `version: 1.2` and `failureThreshold: "3"`.
        ("/spec/chart/version", json!(1.2)),
        ("/spec/healthChecks/0/failureThreshold", json!("3")),
        ("/spec/healthChecks/0/tcp/port", json!("80")),
        ("/spec/healthChecks/0/failureThreshold", json!(3.0)),
    ] {
        documents.push((format!("{pointer} = {value}"), roost_with(pointer, value)));
    }
    // The samples' namespaces do not exist here; the namespace does not
    // change what the schema says.
    for (_, object) in &mut documents {
        if object["kind"] == KIND {
            object["metadata"]["namespace"] = json!("default");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let files = write_documents(dir.path(), &documents);
    let verdicts = kubeconform(&[dir.path()]);
    let (mut accepted, mut refused, mut offline_compared) = (0, 0, 0);
    for ((origin, object), file) in documents.iter().zip(&files) {
        let verdict = verdicts
            .iter()
            .find(|v| Path::new(&v.filename) == file)
            .unwrap_or_else(|| panic!("{origin}: no kubeconform verdict"));
        let out = plane
            .kubectl()
            .args([
                "create",
                "--dry-run=server",
                "--validate=strict",
                "-o",
                "name",
                "-f",
            ])
            .arg(file)
            .output()
            .unwrap();
        assert_eq!(
            verdict.valid,
            out.status.success(),
            "{origin}: kubeconform {:?}, apiserver: {}",
            verdict.errors,
            text(&out.stderr)
        );
        if object["kind"] == KIND {
            let (valid, schema_codes) = offline_verdict(file);
            assert!(
                out.status.success() || !valid,
                "{origin}: the apiserver refuses it, validate finds it valid: {}",
                text(&out.stderr)
            );
            assert!(
                schema_codes.is_empty() || !out.status.success(),
                "{origin}: validate says {schema_codes:?}, the apiserver accepts it"
            );
            offline_compared += 1;
        }
        if verdict.valid {
            accepted += 1;
        } else {
            eprintln!("{origin}: refused by both: {:?}", verdict.errors);
            refused += 1;
        }
    }
    assert!(
        accepted >= 10 && refused >= 8,
        "{accepted} accepted, {refused} refused"
    );
    assert!(
        offline_compared >= 12,
        "{offline_compared} compared with validate"
    );
}

/// `validate`'s verdict on one file, and the codes it gives for what the CRD
/// schema refuses (UNKNOWN_FIELD, and SCHEMA_INVALID).
fn offline_verdict(file: &Path) -> (bool, Vec<String>) {
    let report = common::cluster::offline_report(file);
    let result = &report["results"][0];
    let codes = result["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .filter(|c| c == "UNKNOWN_FIELD" || c == "SCHEMA_INVALID")
        .collect();
    (result["valid"] == true, codes)
}
