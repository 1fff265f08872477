//! `validate` with RoostPolicies in each enforcement mode and with
//! RoostPolicyExceptions: the exit code, where each finding shows (and only
//! with `-v` for audited and exempted ones), expiry judged at `--now`, and
//! `-o report`, the Report each roost would get from the controller.

use roost_testcluster::{output_with_stdin, text};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn validate_env(args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_roost-keeper"));
    command
        .arg("validate")
        .args(args)
        .current_dir(root())
        .env_remove("ROOST_KEEPER_OUTPUT")
        .env_remove("ROOST_KEEPER_VERBOSE")
        .env_remove("ROOST_KEEPER_POLICY")
        .env_remove("ROOST_KEEPER_NOW")
        .env_remove("ROOST_KEEPER_REPORT_API")
        .envs(env.iter().copied());
    output_with_stdin(&mut command, stdin.as_bytes()).expect("binary runs")
}

fn validate(args: &[&str], stdin: &str) -> Output {
    validate_env(args, stdin, &[])
}

fn all_text(out: &Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

fn json_results(output: &Output) -> Vec<Value> {
    let doc: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is JSON ({e}): {}", all_text(output)));
    doc["results"].as_array().expect("results array").clone()
}

fn result_named<'a>(results: &'a [Value], name: &str) -> &'a Value {
    results
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no result {name}: {results:#?}"))
}

/// (code, level) of a result's `key` array (findings, audited, exempted).
fn listed(result: &Value, key: &str) -> Vec<(String, String)> {
    result[key]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|f| {
                    (
                        f["code"].as_str().unwrap().to_owned(),
                        f["level"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The errors and warnings among a result's findings.
fn counted(result: &Value) -> Vec<(String, String)> {
    listed(result, "findings")
        .into_iter()
        .filter(|(_, level)| level != "info")
        .collect()
}

fn pair(code: &str, level: &str) -> (String, String) {
    (code.to_owned(), level.to_owned())
}

fn namespace(name: &str, labels: &str) -> String {
    format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels: {labels}\n")
}

/// A roost with a pinned chart (`version`), labels and no teardown policy.
fn roost_with(name: &str, namespace: &str, version: &str, labels: &str) -> String {
    format!(
        "apiVersion: roost.birb.party/v1alpha1\nkind: ManagedRoost\nmetadata: {{name: {name}, namespace: {namespace}, labels: {labels}}}\nspec:\n  chart: {{name: app, version: \"{version}\", repository: {{url: \"https://charts.example.com\"}}}}\n"
    )
}

fn roost(name: &str, namespace: &str) -> String {
    roost_with(name, namespace, "1.0.0", "{}")
}

fn stream(documents: &[&str]) -> String {
    documents.iter().map(|d| format!("---\n{d}")).collect()
}

/// A policy with the custom error TEARDOWN_NEEDED (every roost needs a
/// teardown trigger), `extra` added to its spec (a mode, scopedModes).
fn teardown_policy(extra: &str) -> String {
    format!(
        "apiVersion: roost.birb.party/v1alpha1\nkind: RoostPolicy\nmetadata: {{name: teardown-needed}}\nspec:\n{extra}  rules:\n    - code: TEARDOWN_NEEDED\n      level: error\n      expression: has(object.spec.teardownPolicy)\n      message: every roost needs a teardown policy\n      field: spec.teardownPolicy\n"
    )
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

// ---------------------------------------------------------------------------
// Modes
// ---------------------------------------------------------------------------

#[test]
fn enforce_mode_fails_the_run() {
    let input = stream(&[&teardown_policy("  mode: Enforce\n"), &roost("web", "shop")]);
    let out = validate(&["-f", "-", "-o", "json"], &input);
    assert_eq!(out.status.code(), Some(1), "{}", all_text(&out));
    let results = json_results(&out);
    assert!(listed(&results[0], "findings").contains(&pair("TEARDOWN_NEEDED", "error")));
}

#[test]
fn warn_mode_warns_and_exits_zero() {
    let input = stream(&[&teardown_policy("  mode: Warn\n"), &roost("web", "shop")]);
    let out = validate(&["-f", "-", "-o", "json"], &input);
    assert_eq!(out.status.code(), Some(0), "{}", all_text(&out));
    let results = json_results(&out);
    assert_eq!(results[0]["valid"], true);
    assert!(
        listed(&results[0], "findings").contains(&pair("TEARDOWN_NEEDED", "warning")),
        "{results:#?}"
    );
    let plain = validate(&["-f", "-"], &input);
    assert!(
        text(&plain.stdout).contains("shop/web WARNING TEARDOWN_NEEDED spec.teardownPolicy:"),
        "{}",
        all_text(&plain)
    );
}

#[test]
fn audit_mode_exits_zero_and_lists_the_finding_only_with_verbose() {
    let input = stream(&[&teardown_policy("  mode: Audit\n"), &roost("web", "shop")]);
    let quiet = validate(&["-f", "-"], &input);
    assert_eq!(quiet.status.code(), Some(0), "{}", all_text(&quiet));
    let quiet_text = text(&quiet.stdout);
    assert!(!quiet_text.contains("TEARDOWN_NEEDED"), "{quiet_text}");
    assert!(
        quiet_text.contains("0 errors, 0 warnings, 2 info, 1 audited, 0 exempted;"),
        "the summary counts it: {quiet_text}"
    );

    let verbose = validate(&["-f", "-", "-v"], &input);
    assert_eq!(verbose.status.code(), Some(0), "{}", all_text(&verbose));
    let verbose_text = text(&verbose.stdout);
    assert!(
        verbose_text.contains("shop/web AUDIT TEARDOWN_NEEDED spec.teardownPolicy: every roost needs a teardown policy (Audit mode: error if enforced)\n"),
        "{verbose_text}"
    );

    let json = json_results(&validate(&["-f", "-", "-o", "json"], &input));
    assert!(json[0].get("audited").is_none(), "only with -v: {json:#?}");
    assert!(listed(&json[0], "findings").is_empty(), "{json:#?}");
    let json = json_results(&validate(&["-f", "-", "-o", "json", "-v"], &input));
    assert_eq!(
        listed(&json[0], "audited"),
        [pair("TEARDOWN_NEEDED", "error")]
    );
    assert_eq!(json[0]["valid"], true);

    let sarif: Value =
        serde_json::from_slice(&validate(&["-f", "-", "-o", "sarif", "-v"], &input).stdout)
            .unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let audited = results
        .iter()
        .find(|r| r["ruleId"] == "TEARDOWN_NEEDED")
        .expect("listed with -v");
    assert_eq!(audited["level"], "note");
    assert_eq!(audited["properties"]["mode"], "Audit");
    for format in ["junit", "github"] {
        let out = validate(&["-f", "-", "-o", format, "-v"], &input);
        assert_eq!(out.status.code(), Some(0));
        let shown = text(&out.stdout);
        assert!(shown.contains("TEARDOWN_NEEDED"), "{format}: {shown}");
        assert!(!shown.contains("<failure"), "{format}: {shown}");
        assert!(!shown.contains("::error"), "{format}: {shown}");
        let quiet = validate(&["-f", "-", "-o", format], &input);
        assert!(!text(&quiet.stdout).contains("TEARDOWN_NEEDED"), "{format}");
    }
}

#[test]
fn scoped_modes_follow_the_namespace_labels() {
    let policy = teardown_policy(
        "  mode: Enforce\n  scopedModes:\n    - namespaceSelector: {matchLabels: {env: dev}}\n      mode: Warn\n    - namespaceSelector: {matchLabels: {env: lab}}\n      mode: Audit\n",
    );
    let input = stream(&[
        &namespace("prod", "{env: prod}"),
        &namespace("dev", "{env: dev}"),
        &namespace("lab", "{env: lab}"),
        &roost("a", "prod"),
        &roost("b", "dev"),
        &roost("c", "lab"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let policy = write(dir.path(), "policy.yaml", &policy);
    let out = validate(
        &["-f", "-", "--policy", &policy, "-o", "json", "-v"],
        &input,
    );
    assert_eq!(out.status.code(), Some(1), "{}", all_text(&out));
    let results = json_results(&out);
    let a = result_named(&results, "a");
    assert_eq!(a["valid"], false);
    assert!(listed(a, "findings").contains(&pair("TEARDOWN_NEEDED", "error")));
    let b = result_named(&results, "b");
    assert_eq!(b["valid"], true);
    assert!(listed(b, "findings").contains(&pair("TEARDOWN_NEEDED", "warning")));
    let c = result_named(&results, "c");
    assert_eq!(c["valid"], true);
    assert!(
        !listed(c, "findings")
            .iter()
            .any(|(c, _)| c == "TEARDOWN_NEEDED")
    );
    assert_eq!(listed(c, "audited"), [pair("TEARDOWN_NEEDED", "error")]);

    // Without the prod roost, nothing fails.
    let input = stream(&[
        &namespace("dev", "{env: dev}"),
        &namespace("lab", "{env: lab}"),
        &roost("b", "dev"),
        &roost("c", "lab"),
    ]);
    let out = validate(&["-f", "-", "--policy", &policy], &input);
    assert_eq!(out.status.code(), Some(0), "{}", all_text(&out));
}

#[test]
fn a_rules_own_mode_wins_over_the_policys() {
    let policy = "apiVersion: roost.birb.party/v1alpha1\nkind: RoostPolicy\nmetadata: {name: rollout}\nspec:\n  mode: Enforce\n  rules:\n    - code: TEARDOWN_NEEDED\n      level: error\n      expression: has(object.spec.teardownPolicy)\n      message: every roost needs a teardown policy\n      mode: Audit\n    - code: OWNER_LABEL\n      level: error\n      expression: \"'owner' in object.metadata.labels\"\n      message: roosts have an owner label\n      field: metadata.labels\n";
    let input = stream(&[policy, &roost_with("web", "shop", "1.0.0", "{owner: ops}")]);
    let out = validate(&["-f", "-", "-o", "json", "-v"], &input);
    assert_eq!(out.status.code(), Some(0), "{}", all_text(&out));
    let results = json_results(&out);
    assert_eq!(
        listed(&results[0], "audited"),
        [pair("TEARDOWN_NEEDED", "error")]
    );
    // The enforced rule still refuses.
    let input = stream(&[policy, &roost("web", "shop")]);
    let out = validate(&["-f", "-", "-o", "json", "-v"], &input);
    assert_eq!(out.status.code(), Some(1), "{}", all_text(&out));
    let results = json_results(&out);
    assert_eq!(counted(&results[0]), [pair("OWNER_LABEL", "error")]);
}

// ---------------------------------------------------------------------------
// Exceptions
// ---------------------------------------------------------------------------

const JUSTIFICATION: &str = "teardown lands with the Q1 migration";

/// An exception in `shop` exempting TEARDOWN_NEEDED and the built-in warning
/// CHART_VERSION_UNPINNED, choosing roosts by `target` (`roosts: [...]` or
/// `selector: ...`), until 2030.
fn exception(name: &str, target: &str) -> String {
    format!(
        "apiVersion: roost.birb.party/v1alpha1\nkind: RoostPolicyException\nmetadata: {{name: {name}, namespace: shop}}\nspec:\n  codes: [TEARDOWN_NEEDED, CHART_VERSION_UNPINNED]\n  {target}\n  justification: {JUSTIFICATION}\n  expiresAt: \"2030-01-01T00:00:00Z\"\n"
    )
}

const BEFORE: &str = "2029-12-31T23:59:59Z";
const AFTER: &str = "2030-01-01T00:00:01Z";

#[test]
fn an_exception_by_name_exempts_a_custom_error_and_a_built_in_warning_until_it_expires() {
    let dir = tempfile::tempdir().unwrap();
    let policies = write(
        dir.path(),
        "policies.yaml",
        &stream(&[
            &teardown_policy(""),
            &exception("web-migration", "roosts: [web]"),
        ]),
    );
    let input = roost_with("web", "shop", "^1.0", "{}");
    let without = validate(&["-f", "-", "-o", "json"], &input);
    let unpinned = json_results(&without);
    assert!(listed(&unpinned[0], "findings").contains(&pair("CHART_VERSION_UNPINNED", "warning")));

    let out = validate(
        &[
            "-f", "-", "--policy", &policies, "--now", BEFORE, "-o", "json", "-v",
        ],
        &input,
    );
    assert_eq!(out.status.code(), Some(0), "{}", all_text(&out));
    let results = json_results(&out);
    let web = result_named(&results, "web");
    assert_eq!(web["valid"], true);
    assert!(counted(web).is_empty(), "{web:#}");
    let exempted = web["exempted"].as_array().unwrap();
    let codes: Vec<&str> = exempted
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"TEARDOWN_NEEDED"), "{exempted:#?}");
    assert!(codes.contains(&"CHART_VERSION_UNPINNED"), "{exempted:#?}");
    for entry in exempted {
        assert_eq!(entry["exception"], "web-migration");
        assert_eq!(entry["justification"], JUSTIFICATION);
        assert_eq!(entry["expiresAt"], "2030-01-01T00:00:00Z");
    }

    let plain = validate(
        &["-f", "-", "--policy", &policies, "--now", BEFORE, "-v"],
        &input,
    );
    let shown = text(&plain.stdout);
    assert!(
        shown.contains(&format!("shop/web EXEMPT TEARDOWN_NEEDED spec.teardownPolicy: every roost needs a teardown policy (exempted by RoostPolicyException web-migration until 2030-01-01T00:00:00Z: {JUSTIFICATION})")),
        "{shown}"
    );
    assert!(shown.contains(", 0 audited, 2 exempted;"), "{shown}");
    assert!(
        shown.contains("; 1 RoostPolicyException read, 0 invalid"),
        "{shown}"
    );
    let quiet = validate(&["-f", "-", "--policy", &policies, "--now", BEFORE], &input);
    assert!(
        !text(&quiet.stdout).contains("EXEMPT"),
        "{}",
        text(&quiet.stdout)
    );

    // Past expiresAt (by the flag or its environment variable) it applies no more.
    let expired = validate(
        &[
            "-f", "-", "--policy", &policies, "--now", AFTER, "-o", "json",
        ],
        &input,
    );
    assert_eq!(expired.status.code(), Some(1), "{}", all_text(&expired));
    let results = json_results(&expired);
    let findings = listed(&results[0], "findings");
    assert!(
        findings.contains(&pair("TEARDOWN_NEEDED", "error")),
        "{findings:?}"
    );
    assert!(
        findings.contains(&pair("CHART_VERSION_UNPINNED", "warning")),
        "{findings:?}"
    );
    let by_env = validate_env(
        &["-f", "-", "--policy", &policies],
        &input,
        &[("ROOST_KEEPER_NOW", AFTER)],
    );
    assert_eq!(by_env.status.code(), Some(1), "{}", all_text(&by_env));
    let by_env = validate_env(
        &["-f", "-", "--policy", &policies],
        &input,
        &[("ROOST_KEEPER_NOW", BEFORE)],
    );
    assert_eq!(by_env.status.code(), Some(0), "{}", all_text(&by_env));
    let bad = validate(&["-f", "-", "--now", "next tuesday"], &input);
    assert_eq!(bad.status.code(), Some(2), "{}", all_text(&bad));
}

#[test]
fn an_exception_by_selector_exempts_only_the_roosts_it_selects() {
    let input = stream(&[
        &teardown_policy(""),
        &exception("team-a", "selector: {matchLabels: {team: a}}"),
        &roost_with("web", "shop", "1.0.0", "{team: a}"),
        &roost_with("api", "shop", "1.0.0", "{team: b}"),
        &roost_with("elsewhere", "other", "1.0.0", "{team: a}"),
    ]);
    let out = validate(&["-f", "-", "--now", BEFORE, "-o", "json", "-v"], &input);
    assert_eq!(out.status.code(), Some(1), "{}", all_text(&out));
    let results = json_results(&out);
    let web = result_named(&results, "web");
    assert_eq!(web["valid"], true, "{web:#}");
    assert_eq!(web["exempted"][0]["code"], "TEARDOWN_NEEDED");
    assert_eq!(web["exempted"][0]["justification"], JUSTIFICATION);
    for other in ["api", "elsewhere"] {
        let result = result_named(&results, other);
        assert_eq!(result["valid"], false, "{result:#}");
        assert_eq!(result["exempted"], serde_json::json!([]));
    }
    // The selected roost alone passes, and -v says why.
    let alone = stream(&[
        &teardown_policy(""),
        &exception("team-a", "selector: {matchLabels: {team: a}}"),
        &roost_with("web", "shop", "1.0.0", "{team: a}"),
    ]);
    let out = validate(&["-f", "-", "--now", BEFORE, "-v"], &alone);
    assert_eq!(out.status.code(), Some(0), "{}", all_text(&out));
    assert!(
        text(&out.stdout).contains(&format!(
            "shop/web EXEMPT TEARDOWN_NEEDED spec.teardownPolicy: every roost needs a teardown policy (exempted by RoostPolicyException team-a until 2030-01-01T00:00:00Z: {JUSTIFICATION})"
        )),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn an_exception_naming_a_built_in_error_is_refused_and_not_applied() {
    let dir = tempfile::tempdir().unwrap();
    let exception = "apiVersion: roost.birb.party/v1alpha1\nkind: RoostPolicyException\nmetadata: {name: no-version}\nspec:\n  codes: [CHART_VERSION_MISSING, CHART_VERSION_UNPINNED]\n  roosts: [web]\n  justification: we pin elsewhere\n";
    let policies = write(dir.path(), "exception.yaml", exception);
    let input = roost_with("web", "default", "^1.0", "{}");
    let out = validate(&["-f", "-", "--policy", &policies, "-o", "json"], &input);
    assert_eq!(out.status.code(), Some(1), "{}", all_text(&out));
    let results = json_results(&out);
    let refused = results
        .iter()
        .find(|r| r["kind"] == "RoostPolicyException")
        .unwrap_or_else(|| panic!("{results:#?}"));
    assert_eq!(refused["name"], "no-version");
    assert_eq!(refused["namespace"], "default");
    assert_eq!(refused["valid"], false);
    let finding = &refused["findings"][0];
    assert_eq!(finding["code"], "EXCEPTION_INVALID");
    assert_eq!(finding["field"], "spec.codes[0]");
    assert_eq!(finding["line"], 5);
    // Not applied: the warning it would exempt stays.
    let web = result_named(&results, "web");
    assert_eq!(web["valid"], true);
    assert!(listed(web, "findings").contains(&pair("CHART_VERSION_UNPINNED", "warning")));

    let plain = validate(&["-f", "-", "--policy", &policies], &input);
    let shown = text(&plain.stdout);
    assert!(
        shown.contains(&format!(
            "{policies}:5:11 RoostPolicyException/default/no-version ERROR EXCEPTION_INVALID spec.codes[0]: CHART_VERSION_MISSING is an error"
        )),
        "{shown}"
    );
    assert!(
        shown.ends_with("; 1 RoostPolicyException read, 1 invalid\n"),
        "{shown}"
    );
}

// ---------------------------------------------------------------------------
// -o report
// ---------------------------------------------------------------------------

fn reports(out: &Output) -> Vec<Value> {
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("---\n"), "{stdout}");
    stdout
        .split("---\n")
        .skip(1)
        .map(|doc| serde_norway::from_str(doc).unwrap_or_else(|e| panic!("{e}: {doc}")))
        .collect()
}

fn outcome<'a>(report: &'a Value, rule: &str) -> Option<&'a Value> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == rule)
}

#[test]
fn report_output_is_the_report_each_roost_gets() {
    let rules = "apiVersion: roost.birb.party/v1alpha1\nkind: RoostPolicy\nmetadata: {name: house-rules}\nspec:\n  rules:\n    - code: TEARDOWN_NEEDED\n      level: error\n      expression: has(object.spec.teardownPolicy)\n      message: every roost needs a teardown policy\n    - code: OWNER_LABEL\n      level: error\n      expression: \"'owner' in object.metadata.labels\"\n      message: roosts have an owner label\n      mode: Audit\n    - code: TIER_LABEL\n      level: warning\n      expression: \"'tier' in object.metadata.labels\"\n      message: roosts have a tier label\n    - code: ALWAYS_FINE\n      level: error\n      expression: \"true\"\n      message: never\n";
    let exempt = "apiVersion: roost.birb.party/v1alpha1\nkind: RoostPolicyException\nmetadata: {name: tier-later, namespace: shop}\nspec:\n  codes: [TIER_LABEL]\n  roosts: [web]\n  justification: tiers come next sprint\n";
    let web = "apiVersion: roost.birb.party/v1alpha1\nkind: ManagedRoost\nmetadata: {name: web, namespace: shop, uid: 6f1c-uid}\nspec:\n  chart: {name: app, version: \"^1.0\", repository: {url: \"https://charts.example.com\"}}\n";
    let api = roost("api", "shop");
    let input = stream(&[rules, exempt, web, &api]);
    for (flag, api_version, kind) in [
        (None, "openreports.io/v1alpha1", "Report"),
        (Some("openreports.io"), "openreports.io/v1alpha1", "Report"),
        (
            Some("wgpolicyk8s.io"),
            "wgpolicyk8s.io/v1alpha2",
            "PolicyReport",
        ),
    ] {
        let mut args = vec!["-f", "-", "-o", "report"];
        if let Some(flag) = flag {
            args.extend(["--report-api", flag]);
        }
        let out = validate(&args, &input);
        assert_eq!(out.status.code(), Some(1), "{}", all_text(&out));
        let got = reports(&out);
        assert_eq!(got.len(), 2, "one per roost, in input order: {got:#?}");
        let report = &got[0];
        assert_eq!(report["apiVersion"], api_version);
        assert_eq!(report["kind"], kind);
        assert_eq!(report["metadata"]["name"], "6f1c-uid");
        assert_eq!(report["metadata"]["namespace"], "shop");
        assert_eq!(report["scope"]["name"], "web");
        assert_eq!(report["scope"]["kind"], "ManagedRoost");
        assert_eq!(report["metadata"]["ownerReferences"][0]["uid"], "6f1c-uid");
        let result = |rule: &str| {
            outcome(report, rule)
                .unwrap_or_else(|| panic!("no {rule}: {report:#}"))
                .clone()
        };
        assert_eq!(result("TEARDOWN_NEEDED")["result"], "fail");
        assert_eq!(result("TEARDOWN_NEEDED")["policy"], "house-rules");
        assert_eq!(result("CHART_VERSION_UNPINNED")["result"], "warn");
        assert_eq!(result("OWNER_LABEL")["result"], "fail");
        assert_eq!(result("OWNER_LABEL")["scored"], false);
        assert_eq!(result("TIER_LABEL")["result"], "skip");
        assert_eq!(
            result("TIER_LABEL")["properties"]["justification"],
            "tiers come next sprint"
        );
        assert_eq!(result("ALWAYS_FINE")["result"], "pass");
        assert_eq!(result("tenancy")["result"], "pass");
        let summary = &report["summary"];
        assert_eq!(summary["fail"], 2, "{summary}");
        assert_eq!(summary["warn"], 1, "{summary}");
        assert_eq!(summary["skip"], 1, "{summary}");
        assert!(summary["pass"].as_u64().unwrap() >= 2, "{summary}");
        // A roost without a uid is named by its name.
        assert_eq!(got[1]["metadata"]["name"], "api");
        assert_eq!(got[1]["scope"]["name"], "api");
        assert_eq!(outcome(&got[1], "TIER_LABEL").unwrap()["result"], "warn");
    }
    let by_env = validate_env(
        &["-f", "-", "-o", "report"],
        &input,
        &[("ROOST_KEEPER_REPORT_API", "wgpolicyk8s.io")],
    );
    assert_eq!(reports(&by_env)[0]["kind"], "PolicyReport");
}

#[test]
fn report_output_names_fields_in_the_storage_version() {
    let v1alpha1 = "apiVersion: roost.birb.party/v1alpha1\nkind: ManagedRoost\nmetadata: {name: web, namespace: shop}\nspec:\n  chart:\n    name: app\n    version: \"1.0.0\"\n    repository:\n      url: https://charts.example.com\n      auth: {type: basic, username: bob, password: s3cr3t-pw-value}\n";
    let out = validate(&["-f", "-", "-o", "report"], v1alpha1);
    let report = &reports(&out)[0];
    let inline = outcome(report, "AUTH_INLINE_CREDENTIALS").expect("a warning");
    assert_eq!(
        inline["properties"]["field"],
        "spec.chart.repository.auth.deprecatedPassword"
    );
    assert_eq!(report["scope"]["apiVersion"], "roost.birb.party/v1beta1");
}

#[test]
fn no_report_contains_a_password() {
    let secrets = ["pw-Zq8!hunter2", "tok-9f8e7d6c5b4a", "bearer-abc123xyz"];
    let input = format!(
        "apiVersion: roost.birb.party/v1alpha1\nkind: ManagedRoost\nmetadata: {{name: leaky, namespace: default}}\nspec:\n  chart:\n    name: app\n    version: \"1.0.0\"\n    repository:\n      url: http://charts.example.com\n      auth: {{type: basic, username: bob, password: \"{}\", token: \"{}\"}}\n  healthChecks:\n    - name: prom\n      type: prometheus\n      prometheus: {{query: up, threshold: \"1\", auth: {{bearerToken: \"{}\"}}}}\n",
        secrets[0], secrets[1], secrets[2]
    );
    // A policy whose message echoes the password: CEL sees it redacted.
    let policy = "apiVersion: roost.birb.party/v1alpha1\nkind: RoostPolicy\nmetadata: {name: echo}\nspec:\n  rules:\n    - code: ECHO_PASSWORD\n      level: warning\n      expression: \"false\"\n      message: m\n      messageExpression: \"'password is ' + string(object.spec.chart.repository.auth.password)\"\n";
    let input = stream(&[policy, &input]);
    for api in ["openreports.io", "wgpolicyk8s.io"] {
        let out = validate(&["-f", "-", "-o", "report", "--report-api", api], &input);
        let all = all_text(&out);
        assert_eq!(reports(&out).len(), 1, "{all}");
        assert!(all.contains("AUTH_INLINE_CREDENTIALS"), "{all}");
        assert!(all.contains("ECHO_PASSWORD"), "{all}");
        for secret in secrets {
            assert!(!all.contains(secret), "output leaks {secret}: {all}");
        }
    }
}

#[test]
fn report_output_says_a_refused_exception_on_stderr() {
    let input = stream(&[
        "apiVersion: roost.birb.party/v1alpha1\nkind: RoostPolicyException\nmetadata: {name: bad, namespace: shop}\nspec:\n  codes: [CHART_VERSION_MISSING]\n  roosts: [web]\n  justification: j\n",
        &roost("web", "shop"),
    ]);
    let out = validate(&["-f", "-", "-o", "report"], &input);
    assert_eq!(out.status.code(), Some(1), "{}", all_text(&out));
    assert_eq!(reports(&out).len(), 1);
    assert!(
        text(&out.stderr)
            .contains("RoostPolicyException/shop/bad ERROR EXCEPTION_INVALID spec.codes[0]"),
        "{}",
        text(&out.stderr)
    );
}
