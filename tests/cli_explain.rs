//! `roost-keeper explain` as users run it: the real binary, its output and
//! exit codes.

use roost_keeper::explain::{explanation, explanations};
use std::process::{Command, Output};

fn explain(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_roost-keeper"))
        .arg("explain")
        .args(args)
        .env_remove("ROOST_KEEPER_EXPLAIN_LIST")
        .output()
        .expect("binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_code_prints_its_whole_entry() {
    let entry = explanation("CHART_VERSION_MISSING").expect("an entry");
    for typed in ["CHART_VERSION_MISSING", "chart_version_missing"] {
        let out = explain(&[typed]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert!(
            stdout.starts_with("CHART_VERSION_MISSING (error): "),
            "{stdout}"
        );
        for part in [entry.failing, entry.passing] {
            assert!(stdout.contains(part), "{part}\n---\n{stdout}");
        }
        // Prose is indented under its heading; compare its first words.
        for (heading, part) in [
            ("What it checks:", entry.checks),
            ("Why it matters:", entry.why),
            ("Default behaviour:", entry.default_behaviour),
            ("Fix:", entry.fix),
        ] {
            let start: String = part.chars().take(40).collect();
            assert!(
                stdout.contains(&format!("{heading}\n  {start}")),
                "{heading}\n---\n{stdout}"
            );
        }
        assert!(stdout.contains("Failing example (reports CHART_VERSION_MISSING):"));
        assert!(stdout.contains("Passing example:"));
    }
}

#[test]
fn list_has_one_line_per_code_with_level_and_summary() {
    let out = explain(&["--list"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), explanations().len(), "{stdout}");
    for (line, entry) in lines.iter().zip(explanations()) {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[0], entry.code.name(), "{line}");
        assert_eq!(words[1], entry.level().as_str(), "{line}");
        assert!(line.ends_with(entry.summary()), "{line}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("CHART_VERSION_UNPINNED ") && l.contains(" warning "))
    );
}

#[test]
fn an_unknown_code_exits_2_with_the_nearest_codes() {
    let out = explain(&["CHART_VERSOIN_MISSING"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(
            "error: unknown code \"CHART_VERSOIN_MISSING\"; did you mean CHART_VERSION_MISSING?\n"
        ),
        "{stderr}"
    );

    let out = explain(&["NOTHING_LIKE_ANY_CODE_AT_ALL"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("explain --list"), "{stderr}");
    assert!(!stderr.contains("did you mean"), "{stderr}");
}

#[test]
fn no_code_and_no_list_is_a_usage_error() {
    for args in [&[][..], &["CHART_VERSION_MISSING", "--list"][..]] {
        let out = explain(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(text(&out.stderr).contains("Usage:"), "{args:?}");
    }
}
