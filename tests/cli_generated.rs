//! `roost-keeper completions` and `roost-keeper man`: non-empty, naming every
//! subcommand, and accepted by the real shell or man reader where one is
//! installed (bash always is).

use clap::CommandFactory;
use roost_keeper::cli::Cli;
use roost_testcluster::stdout_of;
use std::path::Path;
use std::process::Command;

fn roost_keeper(args: &[&str]) -> String {
    let text = stdout_of(env!("CARGO_BIN_EXE_roost-keeper"), args);
    assert!(
        !text.trim().is_empty(),
        "roost-keeper {args:?} printed nothing"
    );
    text
}

fn subcommand_names() -> Vec<String> {
    let names: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    assert!(names.iter().any(|n| n == "validate"), "{names:?}");
    names
}

fn assert_names_every_subcommand(what: &str, text: &str) {
    for name in subcommand_names() {
        assert!(text.contains(&name), "{what} does not name {name}");
    }
}

/// Whether `program` is on PATH.
fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `shell args... file`; the script must parse.
fn assert_parses(shell: &str, args: &[&str], file: &Path) {
    let out = Command::new(shell).args(args).arg(file).output().unwrap();
    assert!(
        out.status.success(),
        "{shell} {args:?} refuses the script: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bash_completion_parses_and_registers() {
    let script = roost_keeper(&["completions", "bash"]);
    assert_names_every_subcommand("bash completion", &script);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("roost-keeper.bash");
    std::fs::write(&file, &script).unwrap();
    assert_parses("bash", &["-n"], &file);
    let out = Command::new("bash")
        .args([
            "--norc",
            "--noprofile",
            "-c",
            r#"source "$1" && complete -p roost-keeper"#,
            "bash",
        ])
        .arg(&file)
        .output()
        .unwrap();
    let registered = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && registered.contains("roost-keeper"),
        "sourced, no completion for roost-keeper: {registered}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn zsh_fish_powershell_and_elvish_completions_name_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    // The shell's own syntax check where it is installed.
    for (shell, check) in [
        ("zsh", Some(("zsh", &["-n"][..]))),
        ("fish", Some(("fish", &["--no-execute"][..]))),
        ("powershell", None),
        ("elvish", None),
    ] {
        let script = roost_keeper(&["completions", shell]);
        assert_names_every_subcommand(&format!("{shell} completion"), &script);
        if let Some((program, args)) = check.filter(|(program, _)| installed(program)) {
            let file = dir.path().join(format!("roost-keeper.{shell}"));
            std::fs::write(&file, &script).unwrap();
            assert_parses(program, args, &file);
        }
    }
    assert!(
        roost_keeper(&["completions", "powershell"])
            .contains("Register-ArgumentCompleter -Native -CommandName 'roost-keeper'")
    );
    assert!(roost_keeper(&["completions", "zsh"]).starts_with("#compdef roost-keeper"));
    assert!(roost_keeper(&["completions", "fish"]).contains("complete -c roost-keeper"));
}

#[test]
fn man_page_is_roff_and_renders() {
    let page = roost_keeper(&["man"]);
    assert!(page.contains(".TH roost-keeper 1"), "no title line");
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH OPTIONS", ".SH SUBCOMMANDS"] {
        assert!(page.contains(section), "no {section}");
    }
    // roff writes a hyphen as `\-`.
    assert_names_every_subcommand("man page", &page.replace("\\-", "-"));
    assert!(
        page.contains("ROOST_KEEPER_LOG_FORMAT"),
        "flags show their environment variable"
    );
    if installed("man") {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("roost-keeper.1");
        std::fs::write(&file, &page).unwrap();
        let out = Command::new("man")
            .args(["--warnings", "-l"])
            .arg(&file)
            .env("MANWIDTH", "80")
            .env("MANPAGER", "cat")
            .output()
            .unwrap();
        let rendered = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "man: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(rendered.contains("SYNOPSIS"), "{rendered}");
    }
}

#[test]
fn man_out_dir_writes_one_page_per_command() {
    let dir = tempfile::tempdir().unwrap();
    let said = roost_keeper(&["man", "--out-dir", dir.path().to_str().unwrap()]);
    let mut pages: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    pages.sort();
    assert!(
        said.starts_with(&format!("wrote {} man pages", pages.len())),
        "{said}"
    );
    assert!(pages.contains(&"roost-keeper.1".to_owned()), "{pages:?}");
    for name in subcommand_names() {
        let page = format!("roost-keeper-{name}.1");
        assert!(pages.contains(&page), "no {page} in {pages:?}");
    }
    assert!(pages.contains(&"roost-keeper-certs-generate.1".to_owned()));
    let validate = std::fs::read_to_string(dir.path().join("roost-keeper-validate.1")).unwrap();
    assert!(validate.contains("ROOST_KEEPER_VALIDATE_FILES"));
}

/// The project's convention, which the man pages show: every flag of every
/// command also reads an environment variable.
#[test]
fn every_flag_has_an_environment_variable() {
    fn check(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in command.get_arguments() {
            if !arg.is_positional() && arg.get_env().is_none() {
                missing.push(format!("{path} --{}", arg.get_id()));
            }
        }
        for sub in command.get_subcommands() {
            check(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }
    let mut missing = Vec::new();
    check(&Cli::command(), "roost-keeper", &mut missing);
    assert!(missing.is_empty(), "flags without env: {missing:?}");
}

/// The flag tables in docs/ are `roost-keeper man --flags-markdown CMD`'s
/// rendering, between `<!-- CMD-flags:begin -->` and `<!-- CMD-flags:end -->`,
/// and the Makefile's `FLAG_TABLES` (what `make generate` rewrites) lists
/// each one.
#[test]
fn docs_flag_tables_are_the_rendering() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let makefile = std::fs::read_to_string(repo.join("Makefile")).unwrap();
    let listed = makefile
        .lines()
        .find_map(|l| l.strip_prefix("FLAG_TABLES = "))
        .expect("the Makefile has FLAG_TABLES");
    let mut found = Vec::new();
    let mut pages: Vec<_> = std::fs::read_dir(repo.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    for page in pages {
        let name = page.file_name().unwrap().to_str().unwrap().to_owned();
        let text = std::fs::read_to_string(&page).unwrap();
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            let Some(command) = line
                .strip_prefix("<!-- ")
                .and_then(|l| l.strip_suffix("-flags:begin -->"))
            else {
                continue;
            };
            let end = format!("<!-- {command}-flags:end -->");
            let block: Vec<&str> = lines.by_ref().take_while(|l| *l != end).collect();
            let rendered = roost_keeper::cli::reference::flags_markdown(command).unwrap();
            assert_eq!(
                block.join("\n").trim(),
                rendered.trim(),
                "docs/{name}: the {command} flag table differs from the binary's; run `make generate`"
            );
            assert!(
                listed
                    .split_whitespace()
                    .any(|t| t == format!("{name}:{command}")),
                "docs/{name}'s {command} table is not in the Makefile's FLAG_TABLES"
            );
            found.push(format!("{name}:{command}"));
        }
    }
    assert!(
        found.iter().any(|t| t == "serving.md:serve"),
        "no serve flag table in docs/serving.md: {found:?}"
    );
}
