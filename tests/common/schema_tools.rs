//! kubeconform over the generated `schemas/`, and the documents it checks,
//! for tests/schema.rs and tests/e2e_schema.rs. The tools come from
//! `tests/tools/build.sh`, pinned and cached under `.cache/tools/`.

use super::cluster::repo;
use roost_keeper::api::{API_VERSION, KIND};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The directory holding `kubeconform` and the venv's `python3`, built when missing.
pub fn tools_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| roost_testcluster::built_by("tests/tools/build.sh").unwrap())
}

/// kubeconform's verdict on one resource.
pub struct Verdict {
    pub filename: String,
    pub kind: String,
    pub valid: bool,
    /// `(path, message)`: `/spec/chart/version`, `got array, want string`.
    pub errors: Vec<(String, String)>,
}

/// Runs kubeconform (strict, our schemas only) over `paths`.
pub fn kubeconform(paths: &[&Path]) -> Vec<Verdict> {
    let location = format!(
        "{}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json",
        repo().join("schemas").display()
    );
    let out = Command::new(tools_bin().join("kubeconform"))
        .args(["-strict", "-summary", "-verbose", "-output", "json"])
        .args(["-schema-location", &location])
        .args(paths)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "kubeconform printed no JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_ne!(
                r["status"], "statusError",
                "kubeconform could not check a resource (schema not found or not compiled): {r}"
            );
            Verdict {
                filename: text(&r["filename"]),
                kind: text(&r["kind"]),
                valid: r["status"] == "statusValid",
                errors: r["validationErrors"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| (text(&e["path"]), text(&e["msg"])))
                    .collect(),
            }
        })
        .collect()
}

/// Every document of our apiVersion and `kind` in the YAML files (or
/// directories of them) `paths`, each with where it came from.
pub fn documents_of_kind(paths: &[&str], kind: &str) -> Vec<(String, Value)> {
    let mut files = Vec::new();
    for path in paths {
        collect_yaml_files(&repo().join(path), &mut files);
    }
    files.sort();
    let mut documents = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (index, document) in roost_keeper::yaml::Documents::new(&text).enumerate() {
            let Ok(document) = document else { break };
            let object = document.value;
            if object["apiVersion"] == API_VERSION && object["kind"] == kind {
                let shown = file.strip_prefix(repo()).unwrap_or(&file).display();
                documents.push((format!("{shown}:{index}"), object));
            }
        }
    }
    documents
}

/// `path` itself if it is a file, else the `.yaml` and `.yml` files below it.
fn collect_yaml_files(path: &Path, files: &mut Vec<PathBuf>) {
    if !path.is_dir() {
        files.push(path.to_owned());
        return;
    }
    for entry in std::fs::read_dir(path).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() || path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            collect_yaml_files(&path, files);
        }
    }
}

/// Writes each document to its own JSON file in `dir`, named by position.
pub fn write_documents(dir: &Path, documents: &[(String, Value)]) -> Vec<PathBuf> {
    documents
        .iter()
        .enumerate()
        .map(|(n, (_, object))| {
            let path = dir.join(format!("doc-{n:03}.json"));
            std::fs::write(&path, serde_json::to_vec_pretty(object).unwrap()).unwrap();
            path
        })
        .collect()
}

/// A ManagedRoost that is valid but for `field`, set to `value`.
pub fn roost_with(pointer: &str, value: Value) -> Value {
    let mut roost = json!({
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "chart": {
                "name": "nginx",
                "version": "1.2.3",
                "repository": {"url": "https://charts.example.com"}
            },
            "healthChecks": [
                {"name": "api", "type": "tcp", "tcp": {"host": "web.default.svc", "port": 80}}
            ]
        }
    });
    let (parent, name) = pointer.rsplit_once('/').unwrap();
    roost.pointer_mut(parent).unwrap()[name] = value;
    roost
}
