//! Where `validate` says a finding is, and the machine formats it writes:
//! every finding's line and column are checked against the text, SARIF
//! against the OASIS SARIF 2.1.0 JSON Schema and JUnit XML against the JUnit
//! XSD (both with real validators, installed by tests/tools/build.sh), and
//! the GitHub Actions annotations against the workflow command syntax.

use roost_testcluster::{output_with_stdin, text};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn validate_in(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_roost-keeper"));
    command
        .arg("validate")
        .args(args)
        .current_dir(dir)
        .env_remove("ROOST_KEEPER_OUTPUT")
        .env_remove("ROOST_KEEPER_VERBOSE")
        .env_remove("ROOST_KEEPER_POLICY");
    output_with_stdin(&mut command, stdin.unwrap_or_default().as_bytes()).expect("binary runs")
}

fn validate(args: &[&str]) -> Output {
    validate_in(&root(), args, None)
}

/// The samples with their apiVersion changed to ours, so every rule has
/// something to say about them, beside the examples.
fn inputs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let sources = [root().join("tests/samples"), root().join("examples")];
    for source in sources {
        for entry in std::fs::read_dir(source).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let text = std::fs::read_to_string(&path).unwrap();
                let ours = text
                    .lines()
                    .map(|line| match line.strip_prefix("apiVersion: roost") {
                        Some(_) if line.ends_with("/v1alpha1") => {
                            "apiVersion: roost.birb.party/v1alpha1"
                        }
                        _ => line,
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                std::fs::write(dir.path().join(path.file_name().unwrap()), ours).unwrap();
            }
        }
    }
    dir
}

/// A written step of a field path: a key (`name`, `[key]`) or a list item (`[0]`).
#[derive(Debug)]
enum Step {
    Key(String),
    Item,
}

/// The steps of `field` that exist in `document`, longest first: dotted
/// names are joined when the mapping has such a key (`app.kubernetes.io/name`).
fn written_steps(document: &serde_norway::Value, field: &str) -> Vec<Step> {
    let mut parts: Vec<String> = Vec::new();
    for piece in field.split('.') {
        let mut rest = piece;
        if let Some(open) = rest.find('[') {
            if open > 0 {
                parts.push(rest[..open].to_owned());
            }
            rest = &rest[open..];
            while let Some(inner) = rest.strip_prefix('[') {
                let end = inner.find(']').unwrap();
                parts.push(format!("[{}]", &inner[..end]));
                rest = &inner[end + 1..];
            }
        } else if !rest.is_empty() {
            parts.push(rest.to_owned());
        }
    }
    let mut node = document;
    let mut steps = Vec::new();
    let mut at = 0;
    'walk: while at < parts.len() {
        if let Some(inner) = parts[at]
            .strip_prefix('[')
            .and_then(|p| p.strip_suffix(']'))
        {
            if let (Ok(index), serde_norway::Value::Sequence(items)) =
                (inner.parse::<usize>(), node)
                && let Some(item) = items.get(index)
            {
                steps.push(Step::Item);
                node = item;
                at += 1;
                continue;
            }
            if let Some(child) = node.get(inner) {
                steps.push(Step::Key(inner.to_owned()));
                node = child;
                at += 1;
                continue;
            }
            break;
        }
        for end in (at + 1..=parts.len()).rev() {
            let key = parts[at..end].join(".");
            if let Some(child) = node.get(key.as_str()) {
                steps.push(Step::Key(key));
                node = child;
                at = end;
                continue 'walk;
            }
        }
        break;
    }
    steps
}

/// Whether the text at `line:column` (1-based, in characters) is the node
/// the last written step names: its key, or the start of the list item.
fn points_at(lines: &[&str], line: usize, column: usize, steps: &[Step]) -> bool {
    let Some(text) = lines.get(line - 1) else {
        return false;
    };
    let before: String = text.chars().take(column - 1).collect();
    let here: String = text.chars().skip(column - 1).collect();
    match steps.last() {
        None => line == 1 || before.trim().is_empty() || before.trim_end().ends_with("---"),
        Some(Step::Key(key)) => [key.clone(), format!("\"{key}\""), format!("'{key}'")]
            .iter()
            .any(|written| {
                here.strip_prefix(written.as_str())
                    .is_some_and(|after| after.trim_start().starts_with(':'))
            }),
        Some(Step::Item) => {
            let trimmed = before.trim_end();
            trimmed.ends_with('-') || trimmed.ends_with('[') || trimmed.ends_with(',')
        }
    }
}

#[test]
fn every_finding_points_at_its_node_or_nearest_written_parent() {
    let dir = inputs();
    let out = validate_in(dir.path(), &["-f", ".", "-o", "json", "-v"], None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut checked = 0;
    let mut wrong = Vec::new();
    let mut codes = std::collections::BTreeSet::new();
    for result in report["results"].as_array().unwrap() {
        let source = result["source"].as_str().unwrap();
        let file = std::fs::read_to_string(dir.path().join(source)).unwrap();
        let lines: Vec<&str> = file.lines().collect();
        let documents: Vec<serde_norway::Value> = serde_norway::Deserializer::from_str(&file)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .filter(|d: &serde_norway::Value| !d.is_null())
            .collect();
        let document = &documents[result["index"].as_u64().unwrap() as usize];
        for finding in result["findings"].as_array().unwrap() {
            let field = finding["field"].as_str().unwrap();
            let (Some(line), Some(column)) = (finding["line"].as_u64(), finding["column"].as_u64())
            else {
                wrong.push(format!("{source}: {field}: no position"));
                continue;
            };
            let steps = written_steps(document, field);
            if !points_at(&lines, line as usize, column as usize, &steps) {
                wrong.push(format!(
                    "{source}:{line}:{column} {field} (written: {steps:?}): {:?}",
                    lines.get(line as usize - 1)
                ));
            }
            codes.insert(finding["code"].as_str().unwrap().to_owned());
            checked += 1;
        }
    }
    assert!(
        wrong.is_empty(),
        "{} misplaced:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(checked >= 60, "only {checked} findings checked");
    assert!(codes.len() >= 15, "only {} codes: {codes:?}", codes.len());
}

#[test]
fn json_input_is_located_too() {
    let json = r#"{"apiVersion": "roost.birb.party/v1alpha1", "kind": "ManagedRoost",
 "metadata": {"name": "j"},
 "spec": {"chart": {"name": "web", "version": "1.0.0",
   "repository": {"url": "https://charts.example.com"}},
   "healthChecks": [{"name": "tcp", "type": "tcp", "tcp": {"host": "web", "port": 70000}}]}}
"#;
    let out = validate_in(&root(), &["-f", "-", "-o", "json"], Some(json));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let finding = &report["results"][0]["findings"][0];
    assert_eq!(finding["code"], "TCP_PORT_INVALID", "{report}");
    assert_eq!(
        (finding["line"].as_u64(), finding["column"].as_u64()),
        (Some(5), Some(75))
    );
}

#[test]
fn unknown_fields_are_errors_with_the_closest_field() {
    let manifest = "apiVersion: roost.birb.party/v1alpha1\nkind: ManagedRoost\nmetadata:\n  name: typo\nspec:\n  chart:\n    name: web\n    version: 1.0.0\n    repository: {url: 'https://charts.example.com'}\n  chrat: {}\n  healthChecks:\n    - name: a\n      type: tcp\n      tcp: {host: web, port: 80}\n      intervall: 5s\n";
    let out = validate_in(&root(), &["-f", "-"], Some(manifest));
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("-:10:3 default/typo ERROR UNKNOWN_FIELD spec.chrat: unknown field; did you mean \"chart\"?"),
        "{stdout}"
    );
    assert!(
        stdout.contains("-:15:7 default/typo ERROR UNKNOWN_FIELD spec.healthChecks[0].intervall: unknown field; did you mean \"interval\"?"),
        "{stdout}"
    );
}

/// The tools' directory: `bin/python3` (a venv with jsonschema and
/// xmlschema) and `schemas/` (the JUnit XSD and the SARIF schema).
fn tools() -> PathBuf {
    let bin = roost_testcluster::built_by("tests/tools/build.sh").unwrap();
    bin.parent().unwrap().to_owned()
}

/// Runs a Python check with the tools' venv; `Err` carries what it said.
fn python(tools: &Path, script: &str, args: &[&Path]) -> Result<(), String> {
    let out = Command::new(tools.join("bin/python3"))
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(text(&out.stderr))
    }
}

const SARIF_CHECK: &str = "import json, sys, jsonschema\n\
schema = json.load(open(sys.argv[1]))\n\
jsonschema.Draft7Validator.check_schema(schema)\n\
jsonschema.Draft7Validator(schema).validate(json.load(open(sys.argv[2])))\n";

const JUNIT_CHECK: &str = "import sys, xmlschema\n\
xmlschema.XMLSchema(sys.argv[1]).validate(sys.argv[2])\n";

/// Inputs with every kind of result: findings at every level, an invalid
/// RoostPolicy, a file name that needs escaping and an unreadable file.
fn mixed_inputs() -> (tempfile::TempDir, Vec<String>) {
    let dir = inputs();
    std::fs::write(
        dir.path().join("odd name, 100%.yaml"),
        "apiVersion: roost.birb.party/v1alpha1\nkind: RoostPolicy\nmetadata: {name: broken}\nspec:\n  rules:\n    - {code: BAD_CEL, level: error, expression: \"object.spec ==\", message: m}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("broken.yaml"), "a: [1, 2\n").unwrap();
    (dir, vec!["-f".into(), ".".into(), "-v".into()])
}

fn run_format(dir: &Path, args: &[String], format: &str) -> Output {
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.extend(["-o", format]);
    validate_in(dir, &all, None)
}

#[test]
fn sarif_validates_against_the_sarif_2_1_0_schema() {
    let tools = tools();
    let schema = tools.join("schemas/sarif-2.1.0.json");
    let (dir, args) = mixed_inputs();
    let out = run_format(dir.path(), &args, "sarif");
    assert_eq!(out.status.code(), Some(2), "an unreadable input: exit 2");
    let file = dir.path().join("out.sarif");
    std::fs::write(&file, &out.stdout).unwrap();
    python(&tools, SARIF_CHECK, &[&schema, &file]).unwrap();

    let sarif: Value = serde_json::from_slice(&out.stdout).unwrap();
    let run = &sarif["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "roost-keeper");
    assert_eq!(run["tool"]["driver"]["version"], env!("CARGO_PKG_VERSION"));
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let rule_ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    for code in [
        "CHART_VERSION_MISSING",
        "UNKNOWN_FIELD",
        "POLICY_INVALID",
        "API_VERSION_UNKNOWN",
    ] {
        assert!(rule_ids.contains(&code), "rules[] lacks {code}");
    }
    for rule in rules {
        assert!(
            !rule["shortDescription"]["text"]
                .as_str()
                .unwrap()
                .is_empty(),
            "{rule}"
        );
        assert!(
            !rule["help"]["text"].as_str().unwrap_or("").is_empty() || rule["id"] == "BAD_CEL",
            "{rule}"
        );
    }
    let json = run_format(dir.path(), &args, "json");
    let report: Value = serde_json::from_slice(&json.stdout).unwrap();
    let expected: usize = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["findings"].as_array().unwrap().len())
        .sum();
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), expected);
    let levels: std::collections::BTreeSet<&str> = results
        .iter()
        .map(|r| r["level"].as_str().unwrap())
        .collect();
    assert_eq!(levels, ["error", "note", "warning"].into_iter().collect());
    for result in results {
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[index]["id"], result["ruleId"], "{result}");
        let location = &result["locations"][0]["physicalLocation"];
        let uri = location["artifactLocation"]["uri"].as_str().unwrap();
        assert!(
            !uri.starts_with('/') && !uri.contains(' '),
            "relative, encoded: {uri}"
        );
        assert!(
            location["region"]["startLine"].as_u64().unwrap() >= 1,
            "{result}"
        );
        assert!(
            location["region"]["startColumn"].as_u64().unwrap() >= 1,
            "{result}"
        );
    }
    assert!(
        results.iter().any(
            |r| r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                == "odd%20name%2C%20100%25.yaml"
        ),
        "the odd file name is percent-encoded"
    );
    let invocation = &run["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], false);
    assert!(
        invocation["toolExecutionNotifications"][0]["message"]["text"]
            .as_str()
            .unwrap()
            .contains("broken.yaml:2:1: not valid YAML"),
        "{invocation}"
    );

    // The check can fail: a SARIF log without its version is refused.
    let mut broken = sarif.clone();
    broken.as_object_mut().unwrap().remove("version");
    std::fs::write(&file, broken.to_string()).unwrap();
    assert!(python(&tools, SARIF_CHECK, &[&schema, &file]).is_err());
}

#[test]
fn junit_validates_against_the_junit_xsd() {
    let tools = tools();
    let xsd = tools.join("schemas/junit-10.xsd");
    let (dir, args) = mixed_inputs();
    let out = run_format(dir.path(), &args, "junit");
    assert_eq!(out.status.code(), Some(2));
    let file = dir.path().join("out.xml");
    std::fs::write(&file, &out.stdout).unwrap();
    python(&tools, JUNIT_CHECK, &[&xsd, &file]).unwrap();

    let xml = text(&out.stdout);
    let json = run_format(dir.path(), &args, "json");
    let report: Value = serde_json::from_slice(&json.stdout).unwrap();
    let results = report["results"].as_array().unwrap();
    let files: std::collections::BTreeSet<&str> = results
        .iter()
        .map(|r| r["source"].as_str().unwrap())
        .collect();
    // One suite per file, plus one for the unreadable inputs.
    assert_eq!(xml.matches("<testsuite ").count(), files.len() + 1);
    assert_eq!(xml.matches("<testcase ").count(), results.len() + 1);
    let errors = results
        .iter()
        .flat_map(|r| r["findings"].as_array().unwrap())
        .filter(|f| f["level"] == "error")
        .count();
    assert_eq!(xml.matches("<failure ").count(), errors);
    assert!(xml.contains("<system-out>"), "warnings are system-out");
    assert!(xml.contains("<error type=\"INPUT_UNREADABLE\""), "{xml}");

    // The check can fail: a testsuite without its required counts is refused.
    std::fs::write(&file, xml.replacen(" failures=\"", " failurez=\"", 2)).unwrap();
    assert!(python(&tools, JUNIT_CHECK, &[&xsd, &file]).is_err());
}

#[test]
fn github_annotations_are_workflow_commands_at_the_line() {
    let (dir, args) = mixed_inputs();
    let out = run_format(dir.path(), &args, "github");
    assert_eq!(out.status.code(), Some(2));
    let stdout = text(&out.stdout);
    let json = run_format(dir.path(), &args, "json");
    let report: Value = serde_json::from_slice(&json.stdout).unwrap();
    let mut want = Vec::new();
    for result in report["results"].as_array().unwrap() {
        for finding in result["findings"].as_array().unwrap() {
            let command = match finding["level"].as_str().unwrap() {
                "error" => "error",
                "warning" => "warning",
                _ => "notice",
            };
            let source = result["source"].as_str().unwrap();
            let file = source
                .strip_prefix("./")
                .unwrap_or(source)
                .replace('%', "%25")
                .replace(',', "%2C");
            want.push(format!(
                "::{command} file={file},line={},col={},title={}::",
                finding["line"],
                finding["column"],
                finding["code"].as_str().unwrap()
            ));
        }
    }
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        want.len() + 1,
        "one per finding, one per unreadable input"
    );
    for (line, prefix) in lines.iter().zip(&want) {
        assert!(line.starts_with(prefix.as_str()), "{line}\nwant {prefix}");
    }
    assert!(
        lines.iter().any(|l| l.starts_with(
            "::error file=odd name%2C 100%25.yaml,line=6,col=37,title=POLICY_INVALID::"
        )),
        "{stdout}"
    );
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("::error file=broken.yaml,line=2,col=1,title=INPUT_UNREADABLE::./broken.yaml:2:1: not valid YAML"),
        "{stdout}"
    );
}

#[test]
fn every_format_keeps_the_exit_codes() {
    for format in ["text", "json", "sarif", "junit", "github"] {
        for (file, code) in [
            ("examples/web-valid.yaml", 0),
            ("examples/warnings.yaml", 0),
            ("examples/invalid.yaml", 1),
            ("examples/missing.yaml", 2),
        ] {
            let out = validate(&["-f", file, "-o", format]);
            assert_eq!(out.status.code(), Some(code), "{format} {file}");
        }
    }
}

#[test]
fn enum_typos_get_the_closest_choice_at_their_line() {
    let stdout = text(&validate_in(&root(), &["-f", "-"], Some(TYPOS)).stdout);
    for line in [
        "-:6:38 RoostPolicy/p ERROR POLICY_INVALID spec.overrides[0].level: ",
        "-:14:81 default/a ERROR CHART_REPO_TYPE_INVALID spec.chart.repository.type: ",
        "-:15:29 default/a ERROR LOG_LEVEL_INVALID spec.observability.logging.level: ",
        "-:16:28 default/a ERROR HEALTH_CHECK_TYPE_INVALID spec.healthChecks[0].type: ",
    ] {
        let found = stdout
            .lines()
            .find(|l| l.starts_with(line))
            .unwrap_or_else(|| panic!("no {line}\n{stdout}"));
        assert!(
            ["\"warning\"?", "\"http\"?", "\"warn\"?"]
                .iter()
                .any(|hint| found.ends_with(&format!("did you mean {hint}"))),
            "{found}"
        );
    }
}

const TYPOS: &str = "apiVersion: roost.birb.party/v1alpha1
kind: RoostPolicy
metadata: {name: p}
spec:
  overrides:
    - {code: CHART_VERSION_UNPINNED, level: warnng}
  rules:
    - {code: MY_RULE, level: error, expression: \"true\", message: m}
---
apiVersion: roost.birb.party/v1alpha1
kind: ManagedRoost
metadata: {name: a}
spec:
  chart: {name: web, version: 1.0.0, repository: {url: \"https://x.example.com\", type: hlem}}
  observability: {logging: {level: warnng}}
  healthChecks: [{name: t, type: htpp, http: {url: \"https://x.example.com\"}}]
";

// ---------------------------------------------------------------------------
// Strings an object or a policy controls cannot forge output lines
// ---------------------------------------------------------------------------

/// What an attacker writes into a file name, a name, a namespace and a rule's
/// message, field and messageExpression: a workflow command on a line of its
/// own, a carriage return, a terminal title change, a screen clear, a Unicode
/// line separator and a right-to-left override.
const FORGED: &str =
    "\n::error file=forged.yaml,line=1::pwned\r\x1b]0;title\x07\x1b[2J\u{2028}\u{202e}";
/// [`FORGED`] as a CEL string literal, for a messageExpression.
const FORGED_CEL: &str =
    r"'\n::error file=forged.yaml,line=1::pwned\r\x1b]0;title\x07\x1b[2J\u2028\u202e'";

/// A roost in a file whose name starts with `::` and one in a file named
/// with [`FORGED`], both named and namespaced with it; a policy whose rules
/// carry it in their message, field and messageExpression; a policy the
/// cluster would refuse, named and coded with it. Returns the directory and
/// the arguments (roosts, then `--policy`).
fn forged_inputs() -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let roost = serde_json::json!({
        "apiVersion": "roost.birb.party/v1alpha1",
        "kind": "ManagedRoost",
        "metadata": {"name": format!("evil{FORGED}"), "namespace": format!("ns{FORGED}")},
        "spec": {"chart": {"name": "app", "version": "1.0.0",
            "repository": {"url": "https://charts.example.com"}}},
    });
    let roosts = [
        "::error file=forged.yaml,line=1::pwned.json",
        &format!("x{FORGED}.json"),
    ];
    for name in roosts {
        std::fs::write(dir.path().join(name), roost.to_string()).unwrap();
    }
    let policies = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
        {
            "apiVersion": "roost.birb.party/v1alpha1",
            "kind": "RoostPolicy",
            "metadata": {"name": "forged"},
            "spec": {"rules": [
                {"code": "FORGED_MESSAGE", "level": "error", "expression": "false",
                 "message": format!("message{FORGED}"), "field": format!("spec{FORGED}")},
                {"code": "FORGED_EXPRESSION", "level": "warning", "expression": "false",
                 "message": "m", "messageExpression": format!("'expression' + {FORGED_CEL}")},
            ]},
        },
        {
            "apiVersion": "roost.birb.party/v1alpha1",
            "kind": "RoostPolicy",
            "metadata": {"name": format!("refused{FORGED}")},
            "spec": {"rules": [{"code": format!("BAD{FORGED}"), "level": "error",
                "expression": "true", "message": "m"}]},
        },
    ]});
    std::fs::write(dir.path().join("policies.json"), policies.to_string()).unwrap();
    let args = ["-f", roosts[0], roosts[1], "--policy", "policies.json"];
    (dir, args.iter().map(|a| (*a).to_owned()).collect())
}

/// The findings `-o json` reports with these arguments (info left out, as
/// every format leaves it out without `-v`).
fn forged_finding_count(dir: &Path, args: &[String]) -> usize {
    let out = run_format(dir, args, "json");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["findings"].as_array().unwrap().len())
        .sum()
}

/// A character a terminal or a log reader acts on rather than shows: control
/// characters (C0, DEL, C1), line and paragraph separators, bidi controls.
fn acted_on(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{061c}' | '\u{200e}' | '\u{200f}'
        )
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

#[test]
fn text_output_keeps_each_finding_on_one_escaped_line() {
    let (dir, args) = forged_inputs();
    let findings = forged_finding_count(dir.path(), &args);
    assert_eq!(
        findings, 5,
        "a refused policy, two custom findings per roost"
    );
    let out = run_format(dir.path(), &args, "text");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.strip_suffix('\n').unwrap().split('\n').collect();
    assert_eq!(
        lines.len(),
        findings + 1,
        "findings and the summary:\n{stdout}"
    );
    for line in &lines {
        // The Actions runner reads a command after leading white space too.
        assert!(!line.trim_start().starts_with("::"), "{line}");
        assert!(!line.chars().any(acted_on), "{line:?}");
    }
    assert!(
        lines.last().unwrap().starts_with("2 ManagedRoosts checked"),
        "{stdout}"
    );
    let escaped = "\\n::error file=forged.yaml,line=1::pwned\\r\\u{1b}]0;title\\u{7}\\u{1b}[2J\\u{2028}\\u{202e}";
    for want in [
        format!("ns{escaped}/evil{escaped} ERROR FORGED_MESSAGE spec{escaped}: message{escaped}"),
        format!("WARNING FORGED_EXPRESSION spec: expression{escaped}"),
        format!("RoostPolicy/refused{escaped} ERROR POLICY_INVALID"),
        "./::error file=forged.yaml,line=1::pwned.json:1:".to_owned(),
        format!("x{escaped}.json:1:"),
    ] {
        assert!(stdout.contains(&want), "no {want}\n{stdout}");
    }
}

#[test]
fn github_annotations_escape_every_control_character() {
    let (dir, args) = forged_inputs();
    let findings = forged_finding_count(dir.path(), &args);
    let out = run_format(dir.path(), &args, "github");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.strip_suffix('\n').unwrap().split('\n').collect();
    assert_eq!(lines.len(), findings, "one command per finding:\n{stdout}");
    for line in &lines {
        assert!(
            line.starts_with("::error ")
                || line.starts_with("::warning ")
                || line.starts_with("::notice "),
            "{line}"
        );
        assert!(!line.chars().any(acted_on), "{line:?}");
        // The runner ends the properties at the first `::`: none of them
        // holds a raw `:`, so a forged command stays inside the message.
        let (properties, _) = line[2..].split_once("::").unwrap();
        assert!(!properties.contains(':'), "{line}");
    }
    // The runner's own escapes, then `\u{..}` for what it has none for.
    let data = "%0A::error file=forged.yaml,line=1::pwned%0D\\u{1b}]0;title\\u{7}\\u{1b}[2J\\u{2028}\\u{202e}";
    let property = data.replace(':', "%3A").replace(',', "%2C");
    for want in [
        format!("title=FORGED_MESSAGE::ns{data}/evil{data} spec{data}: message{data}"),
        format!("title=FORGED_EXPRESSION::ns{data}/evil{data} spec: expression{data}"),
        format!("::error file=x{property}.json,line=1,col="),
        "::error file=%3A%3Aerror file=forged.yaml%2Cline=1%3A%3Apwned.json,line=1,col=".to_owned(),
    ] {
        assert!(stdout.contains(&want), "no {want}\n{stdout}");
    }
}

/// JSON and SARIF carry the strings exactly (JSON escapes them); JUnit XML
/// stays valid and shows what XML 1.0 cannot hold as `\u{..}`.
#[test]
fn machine_formats_keep_forged_strings_intact_and_valid() {
    let (dir, args) = forged_inputs();
    let json = run_format(dir.path(), &args, "json");
    let report: Value = serde_json::from_slice(&json.stdout).unwrap();
    let results = report["results"].as_array().unwrap();
    let roost = results
        .iter()
        .find(|r| r["source"] == format!("x{FORGED}.json"))
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(roost["name"], format!("evil{FORGED}"));
    assert_eq!(roost["namespace"], format!("ns{FORGED}"));
    let findings = roost["findings"].as_array().unwrap();
    let custom = |code: &str| findings.iter().find(|f| f["code"] == code).unwrap();
    assert_eq!(
        custom("FORGED_MESSAGE")["message"],
        format!("message{FORGED}")
    );
    assert_eq!(custom("FORGED_MESSAGE")["field"], format!("spec{FORGED}"));
    assert_eq!(
        custom("FORGED_EXPRESSION")["message"],
        format!("expression{FORGED}")
    );

    let sarif = run_format(dir.path(), &args, "sarif");
    let sarif: Value = serde_json::from_slice(&sarif.stdout).unwrap();
    let texts: Vec<&str> = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["message"]["text"].as_str().unwrap())
        .collect();
    assert!(
        texts.contains(&format!("spec{FORGED}: message{FORGED}").as_str()),
        "{texts:?}"
    );
    assert!(
        sarif["runs"][0]["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| {
                r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]
                    == format!("ns{FORGED}/evil{FORGED}")
            }),
        "{sarif:#}"
    );

    let tools = tools();
    let junit = run_format(dir.path(), &args, "junit");
    let xml = String::from_utf8(junit.stdout).unwrap();
    assert!(!xml.chars().any(|c| c.is_control() && c != '\n'), "{xml:?}");
    assert!(
        xml.contains("pwned\\u{d}\\u{1b}]0;title\\u{7}\\u{1b}[2J"),
        "{xml}"
    );
    let file = dir.path().join("out.xml");
    std::fs::write(&file, &xml).unwrap();
    python(
        &tools,
        JUNIT_CHECK,
        &[&tools.join("schemas/junit-10.xsd"), &file],
    )
    .unwrap();
}

/// Findings of a policy in Audit mode and findings a RoostPolicyException
/// exempts, listed with `-v`: SARIF (a `note` with `mode: Audit`, a result
/// with an accepted suppression) and JUnit (never a failure) stay valid.
#[test]
fn audited_and_exempted_findings_keep_sarif_and_junit_valid() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.yaml"),
        "apiVersion: roost.birb.party/v1alpha1\nkind: RoostPolicy\nmetadata: {name: rollout}\nspec:\n  rules:\n    - {code: TEARDOWN_NEEDED, level: error, expression: has(object.spec.teardownPolicy), message: m, mode: Audit}\n    - {code: OWNER_LABEL, level: error, expression: \"'owner' in object.metadata.labels\", message: m}\n---\napiVersion: roost.birb.party/v1alpha1\nkind: RoostPolicyException\nmetadata: {name: owners-later, namespace: shop}\nspec: {codes: [OWNER_LABEL, CHART_VERSION_UNPINNED], roosts: [web], justification: owners come with the migration}\n---\napiVersion: roost.birb.party/v1alpha1\nkind: ManagedRoost\nmetadata: {name: web, namespace: shop}\nspec:\n  chart: {name: app, version: \"^1.0\", repository: {url: \"https://charts.example.com\"}}\n",
    )
    .unwrap();
    let args: Vec<String> = ["-f", "in.yaml", "-v"].map(String::from).to_vec();
    let tools = tools();

    let out = run_format(dir.path(), &args, "sarif");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let file = dir.path().join("out.sarif");
    std::fs::write(&file, &out.stdout).unwrap();
    python(
        &tools,
        SARIF_CHECK,
        &[&tools.join("schemas/sarif-2.1.0.json"), &file],
    )
    .unwrap();
    let sarif: Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let of = |code: &str| {
        results
            .iter()
            .find(|r| r["ruleId"] == code)
            .unwrap_or_else(|| panic!("no {code}: {sarif:#}"))
    };
    assert_eq!(of("TEARDOWN_NEEDED")["level"], "note");
    assert_eq!(of("TEARDOWN_NEEDED")["properties"]["mode"], "Audit");
    let exempted = of("OWNER_LABEL");
    assert_eq!(exempted["level"], "error");
    assert_eq!(exempted["suppressions"][0]["state"], "accepted");
    assert_eq!(
        exempted["suppressions"][0]["justification"],
        "owners come with the migration"
    );
    assert_eq!(
        of("CHART_VERSION_UNPINNED")["suppressions"][0]["kind"],
        "external"
    );

    let out = run_format(dir.path(), &args, "junit");
    assert_eq!(out.status.code(), Some(0));
    let xml = text(&out.stdout);
    assert!(!xml.contains("<failure"), "{xml}");
    assert!(xml.contains("AUDIT TEARDOWN_NEEDED"), "{xml}");
    assert!(xml.contains("EXEMPT OWNER_LABEL"), "{xml}");
    let file = dir.path().join("out.xml");
    std::fs::write(&file, &xml).unwrap();
    python(
        &tools,
        JUNIT_CHECK,
        &[&tools.join("schemas/junit-10.xsd"), &file],
    )
    .unwrap();
}
