//! `roost-keeper convert` as users run it: the real binary, files and stdin,
//! exit codes, and output that `validate` reads back.

use roost_testcluster::{output_with_stdin, text};
use serde_json::Value;
use std::process::{Command, Output};

fn run(args: &[&str], stdin: &str) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_roost-keeper"));
    command
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("ROOST_KEEPER_CONVERT_OUTPUT")
        .env_remove("ROOST_KEEPER_CONVERT_TO");
    output_with_stdin(&mut command, stdin.as_bytes()).expect("binary runs")
}

const ALPHA: &str = "apiVersion: roost.birb.party/v1alpha1
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
    let out = run(&["convert", "-f", "-", "--to", "v1beta1"], ALPHA);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let yaml = text(&out.stdout);
    assert!(
        yaml.contains("apiVersion: roost.birb.party/v1beta1"),
        "{yaml}"
    );
    assert!(yaml.contains("deprecatedToken: t0ken"), "{yaml}");
    assert!(yaml.contains("kind: Namespace"), "passed through: {yaml}");

    let verdict = |manifest: &str| -> Vec<(String, String)> {
        let out = run(&["validate", "-f", "-", "-o", "json"], manifest);
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
    let original = verdict(ALPHA);
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
    let out = run(
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
    let manifest = format!("{ALPHA}---\napiVersion: roost.birb.party/v7\nkind: ManagedRoost\n");
    let out = run(&["convert", "-f", "-", "--to", "v1beta1"], &manifest);
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

    let out = run(
        &["convert", "-f", "no/such/file.yaml", "--to", "v1beta1"],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no/such/file.yaml: cannot read"),
        "{}",
        text(&out.stderr)
    );

    let out = run(&["convert", "-f", "-", "--to", "v2"], ALPHA);
    assert_eq!(
        out.status.code(),
        Some(2),
        "clap refuses an unknown version"
    );
}

#[test]
fn help_says_comments_are_not_kept() {
    let out = run(&["convert", "--help"], "");
    let help = text(&out.stdout);
    assert!(help.contains("comments"), "{help}");
    assert!(help.contains("ROOST_KEEPER_CONVERT_TO"), "{help}");
}
