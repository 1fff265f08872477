//! The offline validator as users run it: the real binary, real files, stdin,
//! exit codes and both output formats; and `convert`, which reads the same
//! inputs.

use roost_testcluster::{output_with_stdin, text};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_roost-keeper"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn samples() -> PathBuf {
    root().join("tests/samples")
}

fn validate(args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = bin();
    command
        .arg("validate")
        .args(args)
        .current_dir(root())
        .env_remove("ROOST_KEEPER_OUTPUT")
        .env_remove("ROOST_KEEPER_VERBOSE")
        .env_remove("ROOST_KEEPER_POLICY");
    output_with_stdin(&mut command, stdin.unwrap_or_default().as_bytes()).expect("binary runs")
}

fn json_results(output: &Output) -> Vec<Value> {
    let doc: Value = serde_json::from_slice(&output.stdout).expect("stdout is JSON");
    doc["results"].as_array().expect("results array").clone()
}

fn codes(result: &Value) -> Vec<String> {
    result["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn valid_example_exits_zero_with_no_findings() {
    let out = validate(&["-f", "examples/web-valid.yaml", "-o", "json", "-v"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let results = json_results(&out);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["valid"], true);
    assert_eq!(results[0]["name"], "web");
    assert_eq!(results[0]["namespace"], "default");
    assert!(codes(&results[0]).is_empty(), "{:?}", codes(&results[0]));
}

#[test]
fn warnings_do_not_fail_the_run() {
    let out = validate(&["-f", "examples/warnings.yaml", "-o", "json"], None);
    assert_eq!(out.status.code(), Some(0));
    let results = json_results(&out);
    assert_eq!(
        codes(&results[0]),
        [
            "CHART_VERSION_UNPINNED",
            "CHART_REPO_INSECURE",
            "AUTH_INLINE_CREDENTIALS",
            "HEALTH_CHECK_INTERVAL_TOO_SHORT"
        ]
    );
    assert!(
        results[0]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["level"] == "warning")
    );
}

#[test]
fn invalid_example_lists_every_error_and_exits_one() {
    let out = validate(&["-f", "examples/invalid.yaml", "-o", "json"], None);
    assert_eq!(out.status.code(), Some(1));
    let result = &json_results(&out)[0];
    assert_eq!(result["valid"], false);
    let mut got: Vec<(String, String)> = result["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_owned(),
                f["field"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    got.sort();
    let mut want: Vec<(String, String)> = [
        ("CHART_REPO_TYPE_MISMATCH", "spec.chart.repository.type"),
        ("CHART_VERSION_INVALID", "spec.chart.version"),
        ("DURATION_INVALID", "spec.healthChecks[0].interval"),
        (
            "DURATION_INVALID",
            "spec.teardownPolicy.triggers[1].timeout",
        ),
        ("HEALTH_CHECK_NAME_DUPLICATE", "spec.healthChecks[1].name"),
        (
            "SCHEDULE_INVALID",
            "spec.teardownPolicy.triggers[0].schedule",
        ),
        ("TENANT_ID_MISMATCH", "spec.tenancy.rbac.tenantId"),
    ]
    .iter()
    .map(|(c, f)| (c.to_string(), f.to_string()))
    .collect();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn text_output_one_line_per_finding_and_a_summary() {
    let out = validate(&["-f", "examples/multi-document.yaml", "-v"], None);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with(
        "examples/multi-document.yaml:43:1 default/queue INFO NO_TEARDOWN_POLICY spec.teardownPolicy: "
    ));
    assert_eq!(
        lines[1],
        "examples/multi-document.yaml:54:9 default/queue ERROR TCP_PORT_INVALID spec.healthChecks[0].tcp.port: port must be 1-65535, got 70000"
    );
    assert_eq!(
        lines[2],
        "2 ManagedRoosts checked, 1 invalid: 1 error, 0 warnings, 1 info; 1 other document skipped"
    );
    assert!(
        !stdout.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
}

/// Findings of a document come in line:column order, as an editor lists them.
#[test]
fn text_output_lists_findings_by_line_and_column() {
    let out = validate(&["-f", "examples/invalid.yaml"], None);
    let stdout = text(&out.stdout);
    let positions: Vec<(u32, u32)> = stdout
        .lines()
        .filter_map(|line| {
            let mut parts = line.split(' ').next()?.rsplit(':');
            let column = parts.next()?.parse().ok()?;
            let line = parts.next()?.parse().ok()?;
            Some((line, column))
        })
        .collect();
    assert!(positions.len() >= 7, "{stdout}");
    assert!(positions.is_sorted(), "{positions:?}");
}

#[test]
fn info_findings_only_with_verbose() {
    let quiet = text(&validate(&["-f", "examples/multi-document.yaml"], None).stdout);
    assert!(!quiet.contains("NO_TEARDOWN_POLICY"), "{quiet}");
    let quiet_json = validate(&["-f", "examples/multi-document.yaml", "-o", "json"], None);
    assert!(
        json_results(&quiet_json)
            .iter()
            .all(|r| !codes(r).contains(&"NO_TEARDOWN_POLICY".to_owned()))
    );
    let verbose = validate(
        &["-f", "examples/multi-document.yaml", "-o", "json", "-v"],
        None,
    );
    assert!(
        json_results(&verbose)
            .iter()
            .any(|r| codes(r).contains(&"NO_TEARDOWN_POLICY".to_owned()))
    );
}

#[test]
fn stdin_and_environment_variables() {
    let manifest = std::fs::read_to_string(root().join("examples/invalid.yaml")).unwrap();
    let mut command = bin();
    command
        .args(["validate"])
        .env("ROOST_KEEPER_VALIDATE_FILES", "-")
        .env("ROOST_KEEPER_OUTPUT", "json");
    let out = output_with_stdin(&mut command, manifest.as_bytes()).unwrap();
    assert_eq!(out.status.code(), Some(1));
    let results = json_results(&out);
    assert_eq!(results[0]["source"], "-");
    assert_eq!(results[0]["index"], 0);
}

#[test]
fn directories_are_walked_recursively_and_sorted() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b");
    std::fs::create_dir_all(&nested).unwrap();
    let valid = std::fs::read_to_string(root().join("examples/web-valid.yaml")).unwrap();
    std::fs::write(nested.join("one.yml"), &valid).unwrap();
    std::fs::write(dir.path().join("two.yaml"), &valid).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a manifest").unwrap();
    let json = serde_json::to_string(&serde_norway::from_str::<Value>(&valid).unwrap()).unwrap();
    std::fs::write(dir.path().join("three.json"), json).unwrap();
    let out = validate(&["-f", dir.path().to_str().unwrap(), "-o", "json"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let sources: Vec<String> = json_results(&out)
        .iter()
        .map(|r| {
            Path::new(r["source"].as_str().unwrap())
                .strip_prefix(dir.path())
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    assert_eq!(sources, ["a/b/one.yml", "three.json", "two.yaml"]);
}

#[test]
fn unreadable_inputs_exit_two_and_the_rest_is_still_checked() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "apiVersion: v1\nkind: [unclosed\n").unwrap();
    let binary = dir.path().join("image.yaml");
    std::fs::write(&binary, [0x89, b'P', b'N', b'G', 0xff, 0xfe, 0x00]).unwrap();
    let scalar = dir.path().join("scalar.yaml");
    std::fs::write(&scalar, "just some words\n").unwrap();
    let missing = dir.path().join("missing.yaml");
    let out = validate(
        &[
            "-f",
            broken.to_str().unwrap(),
            "-f",
            binary.to_str().unwrap(),
            "-f",
            scalar.to_str().unwrap(),
            "-f",
            missing.to_str().unwrap(),
            "-f",
            "examples/invalid.yaml",
            "-o",
            "json",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:3:1: not valid YAML", broken.display())),
        "names file and line: {stderr}"
    );
    assert!(stderr.contains("not UTF-8"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:1:1: document 0 is not a Kubernetes object",
            scalar.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{}: cannot read", missing.display())),
        "{stderr}"
    );
    let results = json_results(&out);
    assert_eq!(results.len(), 1, "the readable file is still checked");
    assert_eq!(results[0]["name"], "payments");
}

#[test]
fn other_api_versions_get_api_version_unknown() {
    let manifest = "apiVersion: roost.birbparty.com/v1alpha1\nkind: ManagedRoost\nmetadata:\n  name: old\nspec: {}\n";
    let out = validate(&["-f", "-", "-o", "json"], Some(manifest));
    assert_eq!(out.status.code(), Some(1));
    let result = &json_results(&out)[0];
    let findings = result["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0]["code"], "API_VERSION_UNKNOWN");
    assert_eq!(findings[0]["field"], "apiVersion");
    assert!(
        findings[0]["message"]
            .as_str()
            .unwrap()
            .contains("roost.birb.party/v1alpha1")
    );
}

#[test]
fn json_output_has_the_documented_shape() {
    let out = validate(&["-f", "examples/invalid.yaml", "-o", "json"], None);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["results"]);
    let result = doc["results"][0].as_object().unwrap();
    let mut keys: Vec<&str> = result.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["findings", "index", "name", "namespace", "source", "valid"]
    );
    let finding = result["findings"][0].as_object().unwrap();
    let mut keys: Vec<&str> = finding.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["code", "column", "field", "level", "line", "message"]
    );
    assert!(finding["line"].as_u64().unwrap() > 1, "{finding:?}");
    assert!(finding["column"].as_u64().unwrap() >= 1, "{finding:?}");
}

#[test]
fn no_output_contains_a_password_or_token() {
    let secrets = [
        "pw-Zq8!hunter2",
        "tok-9f8e7d6c5b4a",
        "bearer-abc123xyz",
        "jwt-eyJhbGciOi",
    ];
    let manifest = format!(
        r#"apiVersion: roost.birb.party/v1alpha1
kind: ManagedRoost
metadata: {{name: leaky, namespace: default}}
spec:
  chart:
    name: app
    version: "1.0.0"
    repository:
      url: http://charts.example.com
      auth: {{type: basic, username: bob, password: "{0}", token: "{1}"}}
  healthChecks:
    - name: prom
      type: prometheus
      prometheus:
        query: up
        threshold: "1"
        auth: {{bearerToken: "{2}"}}
      interval: 1s
    - name: grpc
      type: grpc
      grpc: {{host: h, port: 99999, auth: {{jwt: "{3}"}}}}
  observability:
    tracing: {{enabled: true, endpoint: {{url: "", auth: {{bearerToken: "{2}"}}}}}}
"#,
        secrets[0], secrets[1], secrets[2], secrets[3]
    );
    let numeric_password = "apiVersion: roost.birb.party/v1alpha1\nkind: ManagedRoost\nmetadata: {name: n}\nspec:\n  chart:\n    repository:\n      url: https://x.io\n      auth: {password: 8675309123}\n";
    for (input, format) in [
        (manifest.as_str(), "text"),
        (manifest.as_str(), "json"),
        (numeric_password, "json"),
    ] {
        let out = validate(&["-f", "-", "-o", format, "-v"], Some(input));
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(out.status.code().is_some_and(|c| c == 1), "{all}");
        for secret in secrets.iter().chain(std::iter::once(&"8675309123")) {
            assert!(!all.contains(secret), "output leaks {secret}: {all}");
        }
    }
}

/// Every document in the shared samples gets an answer, and nothing panics.
#[test]
fn every_sample_gets_an_answer() {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(samples())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
    {
        let out = validate(&["-f", path.to_str().unwrap(), "-o", "json", "-v"], None);
        let code = out.status.code();
        assert!(
            matches!(code, Some(0..=2)),
            "{}: exit {code:?}\n{}",
            path.display(),
            text(&out.stderr)
        );
        assert!(
            !text(&out.stderr).contains("panicked"),
            "{}",
            path.display()
        );
        // One result per ManagedRoost document (other kinds are skipped).
        let yaml = std::fs::read_to_string(path).unwrap();
        let roosts = serde_norway::Deserializer::from_str(&yaml)
            .map(|doc| <Value as serde::Deserialize>::deserialize(doc).unwrap())
            .filter(|doc| doc["kind"] == "ManagedRoost")
            .count();
        assert_eq!(
            json_results(&out).len(),
            roosts,
            "{}: one result per ManagedRoost document",
            path.display()
        );
    }
}

/// Exact codes for samples, decided from RULES.md (not from what the files intend).
#[test]
fn sample_verdicts_follow_rules_md() {
    let cases: &[(&str, bool, &[&str])] = &[
        // Valid: https repo, pinned version, http check with 30s/10s, 2h timeout.
        ("simple_managedroost.yaml", true, &[]),
        // A range as version is allowed but unpinned; tenancy.rbac.clusterRoles is not
        // in the schema, which kubectl's strict field validation refuses (issue 13).
        (
            "complex_managedroost.yaml",
            false,
            &["UNKNOWN_FIELD", "CHART_VERSION_UNPINNED"],
        ),
        // rbac enabled with tenantId set; quota has limits.
        ("tenancy_managedroost.yaml", true, &[]),
        // No teardown policy: info only.
        ("rbac_managedroost.yaml", true, &["NO_TEARDOWN_POLICY"]),
        // Another API group: one API_VERSION_UNKNOWN and nothing else.
        (
            "teardown_managedroost.yaml",
            false,
            &["API_VERSION_UNKNOWN"],
        ),
        (
            "security_managedroost.yaml",
            false,
            &["API_VERSION_UNKNOWN"],
        ),
        // helmChart instead of chart (so chart fields are missing), healthChecks as a
        // mapping (wrong type), a teardown policy without triggers and with
        // three fields the schema does not have.
        (
            "roost_v1alpha1_managedroost.yaml",
            false,
            &[
                "UNKNOWN_FIELD",
                "UNKNOWN_FIELD",
                "UNKNOWN_FIELD",
                "UNKNOWN_FIELD",
                "SCHEMA_INVALID",
                "CHART_NAME_MISSING",
                "CHART_VERSION_MISSING",
                "CHART_REPO_URL_MISSING",
                "TEARDOWN_TRIGGERS_MISSING",
            ],
        ),
    ];
    for (file, valid, want) in cases {
        let out = validate(
            &[
                "-f",
                samples().join(file).to_str().unwrap(),
                "-o",
                "json",
                "-v",
            ],
            None,
        );
        let results = json_results(&out);
        assert_eq!(results.len(), 1, "{file}");
        assert_eq!(results[0]["valid"], *valid, "{file}");
        assert_eq!(codes(&results[0]), *want, "{file}");
        assert_eq!(
            out.status.code(),
            Some(if *valid { 0 } else { 1 }),
            "{file}"
        );
    }
}

#[test]
fn multi_document_samples_are_counted() {
    let out = validate(
        &[
            "-f",
            samples().join("http_health_checks.yaml").to_str().unwrap(),
            "-o",
            "json",
        ],
        None,
    );
    let results = json_results(&out);
    assert_eq!(results.len(), 9);
    let indexes: Vec<u64> = results
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, (0..9).collect::<Vec<u64>>());
    let out = validate(
        &[
            "-f",
            samples()
                .join("event_driven_integration.yaml")
                .to_str()
                .unwrap(),
        ],
        None,
    );
    let stdout = text(&out.stdout);
    assert!(stdout.contains("other documents skipped"), "{stdout}");
}

#[test]
fn a_silence_annotation_hides_its_warning_codes_offline_too() {
    let manifest = std::fs::read_to_string(root().join("examples/warnings.yaml")).unwrap();
    let silenced = manifest.replacen(
        "metadata:\n",
        "metadata:\n  annotations:\n    roost.birb.party/silence-warnings: CHART_VERSION_UNPINNED, AUTH_INLINE_CREDENTIALS\n",
        1,
    );
    assert_ne!(silenced, manifest, "the example has a metadata block");
    let before = codes(&json_results(&validate(&["-f", "-", "-o", "json"], Some(&manifest)))[0]);
    let output = validate(&["-f", "-", "-o", "json"], Some(&silenced));
    let after = codes(&json_results(&output)[0]);
    for code in ["CHART_VERSION_UNPINNED", "AUTH_INLINE_CREDENTIALS"] {
        assert!(
            before.contains(&code.to_owned()),
            "{code} before: {before:?}"
        );
    }
    assert!(
        !after.contains(&"CHART_VERSION_UNPINNED".to_owned()),
        "{after:?}"
    );
    assert!(
        !after.contains(&"AUTH_INLINE_CREDENTIALS".to_owned()),
        "{after:?}"
    );
    assert!(
        after.contains(&"CHART_REPO_INSECURE".to_owned()),
        "{after:?}"
    );
}

const VALID_HEAD: &str = "apiVersion: roost.birb.party/v1alpha1\nkind: ManagedRoost\nmetadata: {name: web}\nspec:\n  chart: {name: app, version: \"1.0.0\", repository: {url: \"https://charts.example.com\"}}\n";

#[test]
fn a_fifo_in_a_directory_is_skipped_and_a_named_one_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("stuck.yaml");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    std::fs::write(dir.path().join("real.yaml"), VALID_HEAD).unwrap();
    let out = validate(&["-f", dir.path().to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("1 ManagedRoost checked"));
    // Named explicitly, a pipe is read, as `<(generator)` is.
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::write(fifo, VALID_HEAD).unwrap())
    };
    let out = validate(&["-f", fifo.to_str().unwrap()], None);
    writer.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("1 ManagedRoost checked"));
}

#[test]
fn a_named_device_is_an_input_error() {
    let out = validate(&["-f", "/dev/zero"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("/dev/zero: not a regular file"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn inputs_without_documents_are_input_errors() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.yaml");
    std::fs::write(&empty, "# nothing yet\n").unwrap();
    let cases: &[(&str, &[&str], &str, Option<&str>)] = &[
        (
            "empty stdin",
            &["-f", "-"],
            "",
            Some("-: no documents on stdin"),
        ),
        (
            "comments on stdin",
            &["-f", "-"],
            "# c\n\n",
            Some("-: no documents on stdin"),
        ),
        (
            "named empty file",
            &["-f", empty.to_str().unwrap()],
            "",
            Some("file holds no YAML documents"),
        ),
        (
            "directory with nothing to check",
            &["-f", dir.path().to_str().unwrap()],
            "",
            None,
        ),
    ];
    for (name, args, stdin, error) in cases {
        let out = validate(args, Some(stdin));
        let stderr = text(&out.stderr);
        match error {
            Some(error) => {
                assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
                assert!(stderr.contains(error), "{name}: {stderr}");
            }
            None => assert_eq!(out.status.code(), Some(0), "{name}: {stderr}"),
        }
    }
}

#[test]
fn file_names_with_control_characters_are_escaped_in_text() {
    let dir = tempfile::tempdir().unwrap();
    let name = dir.path().join("evil\n\x1b[2Jname.yaml");
    std::fs::write(&name, "kind: [broken\n").unwrap();
    let out = validate(&["-f", dir.path().to_str().unwrap()], None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("evil\\n\\u{1b}[2Jname.yaml:"), "{stderr}");
    assert!(!stderr.contains('\x1b'), "{stderr}");
}

/// The offline reader answers as kubectl's YAML reader (go-yaml v2) does.
#[test]
fn yaml_is_read_as_the_cluster_reads_it() {
    let cases: &[(&str, &str, i32, &str)] = &[
        (
            "yaml 1.1 boolean tenant id",
            "  tenancy: {tenantId: no}\n",
            1,
            "SCHEMA_INVALID",
        ),
        (
            "duplicate key",
            "  namespace: a\n  namespace: b\n",
            2,
            "mapping key \"namespace\" already defined at line 6",
        ),
        (
            "infinity",
            "  healthChecks: [{name: a, weight: .inf}]\n",
            2,
            "+Inf has no JSON form",
        ),
        (
            "integer beyond 64 bits is a number",
            "  healthChecks: [{name: a, type: tcp, tcp: {host: h, port: 100000000000000000000}}]\n",
            1,
            "TCP_PORT_INVALID",
        ),
        (
            "octal",
            "  healthChecks: [{name: a, type: tcp, tcp: {host: h, port: 0200000}}]\n",
            1,
            "got 65536",
        ),
        (
            "100k open brackets",
            &format!("  x: {}\n", "[".repeat(100_000)),
            2,
            "nested deeper than 32 levels",
        ),
    ];
    for (name, tail, code, needle) in cases {
        let manifest = format!("{VALID_HEAD}{tail}");
        let out = validate(&["-f", "-", "-o", "json"], Some(&manifest));
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(*code), "{name}: {all}");
        assert!(all.contains(needle), "{name}: {all}");
    }
}

// ---------------------------------------------------------------------------
// Policies: --policy, RoostPolicy and Namespace documents among the inputs
// ---------------------------------------------------------------------------

/// A Namespace document with `labels` (a flow mapping).
fn namespace(name: &str, labels: &str) -> String {
    format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels: {labels}\n")
}

/// A valid roost (pinned chart, https repository) in `namespace`, with `tail` appended to its spec.
fn roost(name: &str, namespace: &str, tail: &str) -> String {
    format!(
        "apiVersion: roost.birb.party/v1alpha1\nkind: ManagedRoost\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n  chart: {{name: app, version: \"1.0.0\", repository: {{url: \"https://charts.example.com\"}}}}\n{tail}"
    )
}

/// Documents joined into one YAML stream.
fn stream(documents: &[&str]) -> String {
    documents
        .iter()
        .map(|d| format!("---\n{d}"))
        .collect::<String>()
}

/// A policy requiring a teardown policy on every roost (code TEARDOWN_NEEDED).
const TEARDOWN_NEEDED: &str = "apiVersion: roost.birb.party/v1alpha1\nkind: RoostPolicy\nmetadata: {name: teardown-needed}\nspec:\n  rules:\n    - code: TEARDOWN_NEEDED\n      level: error\n      expression: has(object.spec.teardownPolicy) && object.spec.teardownPolicy.triggers.size() > 0\n      message: every roost needs a teardown trigger\n      field: spec.teardownPolicy\n";

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn result_named<'a>(results: &'a [Value], name: &str) -> &'a Value {
    results
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no result {name}: {results:#?}"))
}

fn finding<'a>(result: &'a Value, code: &str) -> Option<&'a Value> {
    result["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == code)
}

#[test]
fn a_policy_file_adds_a_custom_error_in_its_namespaces() {
    let input = stream(&[
        &namespace("shop", "{env: prod}"),
        &roost("checkout", "shop", ""),
        &roost("sandbox", "playground", ""),
    ]);
    let policy = "examples/policies/production-guardrails.yaml";
    let without = validate(&["-f", "-", "-o", "json"], Some(&input));
    assert_eq!(without.status.code(), Some(0), "{}", text(&without.stderr));
    let out = validate(&["-f", "-", "--policy", policy, "-o", "json"], Some(&input));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let results = json_results(&out);
    assert_eq!(results.len(), 2, "{results:#?}");
    let checkout = result_named(&results, "checkout");
    assert_eq!(checkout["valid"], false);
    let custom = finding(checkout, "PROD_TEARDOWN_REQUIRED").expect("custom rule fired");
    assert_eq!(custom["level"], "error");
    assert_eq!(custom["field"], "spec.teardownPolicy");
    let sandbox = result_named(&results, "sandbox");
    assert_eq!(
        sandbox["valid"], true,
        "a namespace without env=prod: {sandbox}"
    );
    let text_out = validate(&["-f", "-", "--policy", policy], Some(&input));
    let stdout = text(&text_out.stdout);
    assert!(
        stdout.contains("-:11:1 shop/checkout ERROR PROD_TEARDOWN_REQUIRED spec.teardownPolicy: roosts in production namespaces need a teardownPolicy\n"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("2 ManagedRoosts checked, 1 invalid: 1 error, 0 warnings, 4 info; 1 other document skipped; 1 RoostPolicy read, 0 invalid\n"),
        "{stdout}"
    );
}

#[test]
fn overrides_raise_a_warning_to_an_error_and_turn_another_off() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write(
        dir.path(),
        "levels.yaml",
        "apiVersion: roost.birb.party/v1alpha1\nkind: RoostPolicy\nmetadata: {name: levels}\nspec:\n  overrides:\n    - {code: CHART_VERSION_UNPINNED, level: error}\n    - {code: CHART_REPO_INSECURE, level: \"off\"}\n",
    );
    let before = validate(&["-f", "examples/warnings.yaml", "-o", "json"], None);
    assert_eq!(before.status.code(), Some(0));
    let before = &json_results(&before)[0];
    assert_eq!(
        finding(before, "CHART_VERSION_UNPINNED").unwrap()["level"],
        "warning"
    );
    assert!(finding(before, "CHART_REPO_INSECURE").is_some());
    let out = validate(
        &[
            "-f",
            "examples/warnings.yaml",
            "--policy",
            &policy,
            "-o",
            "json",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let after = &json_results(&out)[0];
    assert_eq!(after["valid"], false);
    assert_eq!(
        finding(after, "CHART_VERSION_UNPINNED").unwrap()["level"],
        "error"
    );
    assert!(finding(after, "CHART_REPO_INSECURE").is_none(), "{after}");
    assert_eq!(
        finding(after, "AUTH_INLINE_CREDENTIALS").unwrap()["level"],
        "warning",
        "codes not overridden keep their level"
    );
}

#[test]
fn policy_defaults_fill_only_in_matching_namespaces() {
    let input = stream(&[
        &namespace("pr-17", "{env: preview}"),
        &namespace("staging", "{env: staging}"),
        &roost("preview-app", "pr-17", ""),
        &roost("staging-app", "staging", ""),
        // No Namespace document: only the name label, so env=preview does not match.
        &roost("unknown-ns-app", "pr-18", ""),
        // Its own teardown policy is kept.
        &roost(
            "own-ttl",
            "pr-17",
            "  teardownPolicy: {triggers: [{type: timeout, timeout: 2h}]}\n",
        ),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let rule = write(dir.path(), "teardown-needed.yaml", TEARDOWN_NEEDED);
    let out = validate(
        &[
            "-f",
            "-",
            "--policy",
            "examples/policies/preview-ttl.yaml",
            "--policy",
            &rule,
            "-o",
            "json",
            "-v",
        ],
        Some(&input),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let results = json_results(&out);
    assert_eq!(results.len(), 4, "{results:#?}");
    let preview = result_named(&results, "preview-app");
    assert_eq!(
        preview["valid"], true,
        "the default satisfies the rule: {preview}"
    );
    assert!(
        finding(preview, "NO_TEARDOWN_POLICY").is_none(),
        "the built-in rules see the policy's default: {preview}"
    );
    for name in ["staging-app", "unknown-ns-app"] {
        let result = result_named(&results, name);
        assert_eq!(result["valid"], false, "{name}");
        assert!(
            finding(result, "TEARDOWN_NEEDED").is_some(),
            "{name}: {result}"
        );
        assert!(
            finding(result, "NO_TEARDOWN_POLICY").is_some(),
            "{name}: {result}"
        );
    }
    assert_eq!(result_named(&results, "own-ttl")["valid"], true);
}

#[test]
fn every_namespace_has_its_name_label() {
    let policy = "apiVersion: roost.birb.party/v1alpha1\nkind: RoostPolicy\nmetadata: {name: payments-only}\nspec:\n  match:\n    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: payments}}\n  rules:\n    - {code: PAYMENTS_RULE, level: error, expression: \"false\", message: payments roosts are frozen}\n";
    // One namespace given without labels, one not given, one given with a wrong name label.
    let input = stream(&[
        policy,
        &namespace("payments", "{}"),
        &roost("in-doc", "payments", ""),
        &roost("default-ns", "default", ""),
        &namespace("billing", "{kubernetes.io/metadata.name: payments}"),
        &roost("in-billing", "billing", ""),
    ]);
    let out = validate(&["-f", "-", "-o", "json"], Some(&input));
    let results = json_results(&out);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(finding(result_named(&results, "in-doc"), "PAYMENTS_RULE").is_some());
    assert_eq!(result_named(&results, "default-ns")["valid"], true);
    assert_eq!(
        result_named(&results, "in-billing")["valid"],
        true,
        "the apiserver sets the name label from the name"
    );
    let manifest = roost("no-doc", "payments", "");
    let out = validate(
        &["-f", "-", "-o", "json"],
        Some(&stream(&[&manifest, policy])),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(finding(&json_results(&out)[0], "PAYMENTS_RULE").is_some());
}

#[test]
fn a_roost_policy_among_the_inputs_applies_wherever_it_comes() {
    // The policy comes after the roost it applies to.
    let input = stream(&[&roost("late", "default", ""), TEARDOWN_NEEDED]);
    let out = validate(&["-f", "-"], Some(&input));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("-:5:1 default/late ERROR TEARDOWN_NEEDED spec.teardownPolicy: every roost needs a teardown trigger\n"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("1 ManagedRoost checked, 1 invalid: 1 error, 0 warnings, 2 info; 0 other documents skipped; 1 RoostPolicy read, 0 invalid\n"),
        "{stdout}"
    );
}

#[test]
fn a_bad_policy_is_reported_with_its_field_and_position_and_not_applied() {
    let bad = "apiVersion: roost.birb.party/v1alpha1\nkind: RoostPolicy\nmetadata: {name: broken}\nspec:\n  rules:\n    - {code: FINE_RULE, level: error, expression: \"false\", message: never applied}\n    - {code: BAD_CEL, level: error, expression: \"object.spec ==\", message: m}\n";
    let dir = tempfile::tempdir().unwrap();
    let policy = write(dir.path(), "broken.yaml", bad);
    let out = validate(
        &[
            "-f",
            "examples/web-valid.yaml",
            "--policy",
            &policy,
            "-o",
            "json",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let results = json_results(&out);
    assert_eq!(results.len(), 2, "{results:#?}");
    let broken = &results[0];
    assert_eq!(broken["name"], "broken");
    assert_eq!(broken["namespace"], "");
    assert_eq!(broken["source"], policy.as_str());
    assert_eq!(broken["valid"], false);
    let findings = broken["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0]["code"], "POLICY_INVALID");
    assert_eq!(findings[0]["field"], "spec.rules[1].expression");
    assert!(
        findings[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("line 1 column 15"),
        "{}",
        findings[0]["message"]
    );
    let web = &results[1];
    assert_eq!(
        web["valid"], true,
        "an invalid policy is not applied: {web}"
    );
    let text_out = validate(
        &["-f", "examples/web-valid.yaml", "--policy", &policy],
        None,
    );
    let stdout = text(&text_out.stdout);
    assert!(
        stdout.starts_with(&format!(
            "{policy}:7:37 RoostPolicy/broken ERROR POLICY_INVALID spec.rules[1].expression: line 1 column 15"
        )),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("1 ManagedRoost checked, 0 invalid: 1 error, 0 warnings, 0 info; 0 other documents skipped; 1 RoostPolicy read, 1 invalid\n"),
        "{stdout}"
    );
}

#[test]
fn a_custom_code_used_twice_refuses_the_later_policy_in_name_order() {
    let policy = |name: &str| {
        format!(
            "apiVersion: roost.birb.party/v1alpha1\nkind: RoostPolicy\nmetadata: {{name: {name}}}\nspec:\n  rules:\n    - {{code: OTHER_RULE, level: warning, expression: \"true\", message: m}}\n    - {{code: SHARED_CODE, level: error, expression: \"false\", message: from {name}}}\n"
        )
    };
    // b-second comes first in the input; name order decides.
    let input = stream(&[
        &policy("b-second"),
        &policy("a-first"),
        &roost("web", "default", ""),
    ]);
    let out = validate(&["-f", "-", "-o", "json"], Some(&input));
    assert_eq!(out.status.code(), Some(1));
    let results = json_results(&out);
    assert_eq!(results.len(), 2, "{results:#?}");
    assert_eq!(results[0]["name"], "b-second");
    assert_eq!(results[0]["index"], 0);
    let findings = results[0]["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 2, "{findings:#?}");
    assert_eq!(findings[0]["field"], "spec.rules[0].code");
    assert_eq!(findings[1]["field"], "spec.rules[1].code");
    assert!(findings[1]["message"].as_str().unwrap().contains("a-first"));
    let web = result_named(&results, "web");
    assert_eq!(
        finding(web, "SHARED_CODE").unwrap()["message"],
        "from a-first"
    );
}

#[test]
fn the_policy_environment_variable_names_a_policy() {
    let input = stream(&[
        &namespace("shop", "{env: prod}"),
        &roost("checkout", "shop", ""),
    ]);
    let mut command = bin();
    command
        .args(["validate", "-f", "-", "-o", "json"])
        .current_dir(root())
        .env(
            "ROOST_KEEPER_POLICY",
            "examples/policies/production-guardrails.yaml",
        );
    let out = output_with_stdin(&mut command, input.as_bytes()).unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(finding(&json_results(&out)[0], "PROD_TEARDOWN_REQUIRED").is_some());
}

#[test]
fn a_directory_of_policies_applies_each() {
    let input = stream(&[
        &namespace("shop", "{env: prod}"),
        &namespace("pr-3", "{env: preview}"),
        &roost("checkout", "shop", ""),
        &roost("demo", "pr-3", ""),
    ]);
    let out = validate(
        &[
            "-f",
            "-",
            "--policy",
            "examples/policies/",
            "-o",
            "json",
            "-v",
        ],
        Some(&input),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let results = json_results(&out);
    assert_eq!(
        results.len(),
        2,
        "no policy result: every example compiles: {results:#?}"
    );
    assert!(finding(result_named(&results, "checkout"), "PROD_TEARDOWN_REQUIRED").is_some());
    let demo = result_named(&results, "demo");
    assert_eq!(demo["valid"], true, "{demo}");
    assert!(
        finding(demo, "NO_TEARDOWN_POLICY").is_none(),
        "preview-ttl applied: {demo}"
    );
}

/// Every file of examples/policies is a RoostPolicy the cluster would admit.
#[test]
fn every_example_policy_compiles() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("examples/policies"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    for file in &files {
        let out = validate(
            &[
                "-f",
                "examples/web-valid.yaml",
                "--policy",
                file.to_str().unwrap(),
            ],
            None,
        );
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {stdout}{}",
            file.display(),
            text(&out.stderr)
        );
        assert!(
            stdout.ends_with("; 1 RoostPolicy read, 0 invalid\n"),
            "{}: {stdout}",
            file.display()
        );
    }
}

/// The validating webhook sees the object the mutating one returned: an
/// objectSelector matches the labels defaulting adds (the tenant label).
#[test]
fn object_selectors_see_the_labels_defaulting_adds() {
    let policy = "apiVersion: roost.birb.party/v1alpha1\nkind: RoostPolicy\nmetadata: {name: acme-freeze}\nspec:\n  match:\n    objectSelector: {matchLabels: {roost.birb.party/tenant: acme}}\n  rules:\n    - {code: ACME_FROZEN, level: warning, expression: \"false\", message: acme roosts are frozen}\n";
    let input = stream(&[
        policy,
        &roost("acme-web", "default", "  tenancy: {tenantId: acme}\n"),
        &roost("other-web", "default", "  tenancy: {tenantId: other}\n"),
    ]);
    let out = validate(&["-f", "-", "-o", "json"], Some(&input));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let results = json_results(&out);
    let acme = result_named(&results, "acme-web");
    assert_eq!(
        finding(acme, "ACME_FROZEN").expect("matched")["level"],
        "warning"
    );
    assert!(finding(result_named(&results, "other-web"), "ACME_FROZEN").is_none());
}

/// One roost with an inline password, an unnamed chart (an error) and a tcp
/// check that also has an http block, in `api_version`.
fn versioned_roost(api_version: &str, password_key: &str) -> String {
    format!(
        "apiVersion: {api_version}
kind: ManagedRoost
metadata:
  name: web
  namespace: default
spec:
  chart:
    name: \"\"
    version: 1.2.3
    repository:
      url: https://charts.example.com
      auth:
        {password_key}: hunter2
  healthChecks:
    - name: h
      type: tcp
      tcp: {{host: h, port: 1}}
      http: {{url: \"https://h\"}}
"
    )
}

/// (code, level, field, line, column) of every finding.
fn located(result: &Value) -> Vec<(String, String, String, u64, u64)> {
    result["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_owned(),
                f["level"].as_str().unwrap().to_owned(),
                f["field"].as_str().unwrap().to_owned(),
                f["line"].as_u64().unwrap(),
                f["column"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn both_served_versions_are_judged_at_the_paths_and_lines_written() {
    let alpha = versioned_roost("roost.birb.party/v1alpha1", "password");
    let beta = versioned_roost("roost.birb.party/v1beta1", "deprecatedPassword");
    let out = validate(&["-f", "-", "-o", "json"], Some(&alpha));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let alpha = located(&json_results(&out)[0]);
    let out = validate(&["-f", "-", "-o", "json"], Some(&beta));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let beta = located(&json_results(&out)[0]);
    let find = |found: &[(String, String, String, u64, u64)], code: &str| {
        found
            .iter()
            .filter(|f| f.0 == code)
            .map(|f| (f.1.clone(), f.2.clone(), f.3, f.4))
            .collect::<Vec<_>>()
    };
    let at = |level: &str, field: &str, line, column| {
        vec![(level.to_owned(), field.to_owned(), line, column)]
    };
    for found in [&alpha, &beta] {
        assert_eq!(
            find(found, "CHART_NAME_MISSING"),
            at("error", "spec.chart.name", 8, 5)
        );
    }
    assert_eq!(
        find(&alpha, "AUTH_INLINE_CREDENTIALS"),
        at("warning", "spec.chart.repository.auth.password", 13, 9)
    );
    assert_eq!(
        find(&beta, "AUTH_INLINE_CREDENTIALS"),
        at(
            "warning",
            "spec.chart.repository.auth.deprecatedPassword",
            13,
            9
        )
    );
    // v1alpha1 ignores the other block (a warning); v1beta1's schema refuses
    // it before any webhook (an error, said once).
    assert_eq!(
        find(&alpha, "HEALTH_CHECK_CONFIG_MISMATCH"),
        at("warning", "spec.healthChecks[0].http", 18, 7)
    );
    assert_eq!(
        find(&beta, "HEALTH_CHECK_CONFIG_MISMATCH"),
        at("error", "spec.healthChecks[0].http", 18, 7)
    );
    let codes = |found: &[(String, String, String, u64, u64)]| {
        let mut codes: Vec<String> = found.iter().map(|f| f.0.clone()).collect();
        codes.sort();
        codes
    };
    assert_eq!(codes(&alpha), codes(&beta));
}

#[test]
fn each_version_is_checked_against_its_own_schema() {
    // A number where v1beta1 declares a string, and v1alpha1's name for the
    // password, which v1beta1 does not declare.
    let beta = "apiVersion: roost.birb.party/v1beta1
kind: ManagedRoost
metadata:
  name: web
spec:
  chart:
    name: web
    version: 1.2.3
    repository:
      url: https://charts.example.com
      auth:
        password: hunter2
  teardownPolicy:
    triggers:
      - type: schedule
        schedule: \"0 2 * * *\"
        timeout: 2h
      - type: resource_threshold
        resourceThreshold: {storage: 10}
      - type: webhook
";
    let out = validate(&["-f", "-", "-o", "json"], Some(beta));
    assert_eq!(out.status.code(), Some(1));
    let found = located(&json_results(&out)[0]);
    let errors: Vec<(&str, &str)> = found
        .iter()
        .filter(|f| f.1 == "error")
        .map(|f| (f.0.as_str(), f.2.as_str()))
        .collect();
    // The block the apiserver refuses is said once, not again at its url.
    let webhook: Vec<&(&str, &str)> = errors
        .iter()
        .filter(|e| e.0 == "WEBHOOK_TRIGGER_URL_MISSING")
        .collect();
    assert_eq!(
        webhook,
        [&(
            "WEBHOOK_TRIGGER_URL_MISSING",
            "spec.teardownPolicy.triggers[2].webhook"
        )]
    );
    for expected in [
        ("UNKNOWN_FIELD", "spec.chart.repository.auth.password"),
        (
            "SCHEMA_INVALID",
            "spec.teardownPolicy.triggers[1].resourceThreshold.storage",
        ),
        (
            "TRIGGER_CONFIG_MISMATCH",
            "spec.teardownPolicy.triggers[0].timeout",
        ),
    ] {
        assert!(errors.contains(&expected), "{expected:?} not in {errors:?}");
    }
    // The same in v1alpha1 is accepted by its schema: the webhook's answer
    // (the missing url, and a warning for the mismatched block).
    let alpha = beta.replace("v1beta1", "v1alpha1");
    let out = validate(&["-f", "-", "-o", "json"], Some(&alpha));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let found = located(&json_results(&out)[0]);
    let errors: Vec<(&str, &str)> = found
        .iter()
        .filter(|f| f.1 == "error")
        .map(|f| (f.0.as_str(), f.2.as_str()))
        .collect();
    assert_eq!(
        errors,
        [(
            "WEBHOOK_TRIGGER_URL_MISSING",
            "spec.teardownPolicy.triggers[2].webhook.url"
        )]
    );
    assert!(
        found
            .iter()
            .any(|f| f.0 == "TRIGGER_CONFIG_MISMATCH" && f.1 == "warning"),
        "{found:?}"
    );
}

#[test]
fn an_unserved_version_names_both_served_ones() {
    let manifest =
        "apiVersion: roost.birb.party/v2\nkind: ManagedRoost\nmetadata:\n  name: x\nspec: {}\n";
    let out = validate(&["-f", "-", "-o", "json"], Some(manifest));
    assert_eq!(out.status.code(), Some(1));
    let finding = &json_results(&out)[0]["findings"][0];
    assert_eq!(finding["code"], "API_VERSION_UNKNOWN");
    let message = finding["message"].as_str().unwrap();
    for served in ["roost.birb.party/v1alpha1", "roost.birb.party/v1beta1"] {
        assert!(message.contains(served), "{message}");
    }
}

// `roost-keeper convert`: the same inputs, every ManagedRoost in another version.

/// `roost-keeper ARGS` with `stdin`, the convert variables unset.
fn convert_run(args: &[&str], stdin: &str) -> Output {
    let mut command = bin();
    command
        .args(args)
        .current_dir(root())
        .env_remove("ROOST_KEEPER_CONVERT_OUTPUT")
        .env_remove("ROOST_KEEPER_CONVERT_TO");
    output_with_stdin(&mut command, stdin.as_bytes()).expect("binary runs")
}

/// A v1alpha1 roost (inline token, a number for a duration) and a Namespace.
const CONVERT_INPUT: &str = "apiVersion: roost.birb.party/v1alpha1
kind: ManagedRoost
metadata:
  name: web
  namespace: default
spec:
  chart:
    name: web
    version: 1.2.3
    repository:
      url: https://charts.example.com
      auth:
        token: t0ken
  healthChecks:
    - name: h
      type: tcp
      interval: 30s
      timeout: 5
      tcp: {host: h, port: 1}
---
apiVersion: v1
kind: Namespace
metadata:
  name: default
";

#[test]
fn converts_to_yaml_that_validate_reads_as_the_same_roost() {
    let out = convert_run(&["convert", "-f", "-", "--to", "v1beta1"], CONVERT_INPUT);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let yaml = text(&out.stdout);
    assert!(
        yaml.contains("apiVersion: roost.birb.party/v1beta1"),
        "{yaml}"
    );
    assert!(yaml.contains("deprecatedToken: t0ken"), "{yaml}");
    assert!(yaml.contains("kind: Namespace"), "passed through: {yaml}");

    let verdict = |manifest: &str| -> Vec<(String, String)> {
        let out = convert_run(&["validate", "-f", "-", "-o", "json"], manifest);
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        doc["results"][0]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["code"].as_str().unwrap().into(),
                    f["field"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    let converted = verdict(&yaml);
    let original = verdict(CONVERT_INPUT);
    let renamed: Vec<(String, String)> = original
        .into_iter()
        .map(|(code, field)| (code, field.replace("auth.token", "auth.deprecatedToken")))
        .collect();
    assert_eq!(converted, renamed);
    assert!(
        converted.contains(&(
            "AUTH_INLINE_CREDENTIALS".into(),
            "spec.chart.repository.auth.deprecatedToken".into()
        )),
        "{converted:?}"
    );

    // And back, as JSON: the v1alpha1 object written.
    let out = convert_run(
        &["convert", "-f", "-", "--to", "v1alpha1", "-o", "json"],
        &yaml,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let roost = &list["items"][0];
    assert_eq!(roost["apiVersion"], "roost.birb.party/v1alpha1");
    assert_eq!(roost["spec"]["healthChecks"][0]["timeout"], 5);
    assert_eq!(
        roost["spec"]["chart"]["repository"]["auth"]["token"],
        "t0ken"
    );
    assert!(roost["metadata"].get("annotations").is_none(), "{roost}");
}

#[test]
fn a_document_that_cannot_be_converted_fails_the_run_with_its_place() {
    let manifest =
        format!("{CONVERT_INPUT}---\napiVersion: roost.birb.party/v7\nkind: ManagedRoost\n");
    let out = convert_run(&["convert", "-f", "-", "--to", "v1beta1"], &manifest);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("error: -:26:1: document 2: "),
        "{stderr}"
    );
    assert!(stderr.contains("roost.birb.party/v7"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let yaml = text(&out.stdout);
    assert_eq!(
        yaml.matches("---\n").count(),
        2,
        "the others are written: {yaml}"
    );

    let out = convert_run(
        &["convert", "-f", "no/such/file.yaml", "--to", "v1beta1"],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no/such/file.yaml: cannot read"),
        "{}",
        text(&out.stderr)
    );

    let out = convert_run(&["convert", "-f", "-", "--to", "v2"], CONVERT_INPUT);
    assert_eq!(
        out.status.code(),
        Some(2),
        "clap refuses an unknown version"
    );
}

#[test]
fn help_says_comments_are_not_kept() {
    let out = convert_run(&["convert", "--help"], "");
    let help = text(&out.stdout);
    assert!(help.contains("comments"), "{help}");
    assert!(help.contains("ROOST_KEEPER_CONVERT_TO"), "{help}");
}
