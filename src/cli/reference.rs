//! The command line's reference, from its clap definition: shell completion
//! scripts (`roost-keeper completions`), man pages (`roost-keeper man`) and
//! the Markdown flag tables of docs/ (`roost-keeper man --flags-markdown`),
//! so all of them list the flags, environment variables, defaults and
//! subcommands the binary has.

use super::Cli;
use crate::{Error, Result};
use clap::CommandFactory;
use std::io::Write;
use std::path::Path;

/// The name the scripts complete and the man pages are titled with.
const BIN_NAME: &str = "roost-keeper";

/// Writes the completion script for `shell`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn Write) -> Result<()> {
    // Rendered in memory first: the generators panic on a failed write (a
    // closed pipe), and a write error should be an error.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), BIN_NAME, &mut script);
    out.write_all(&script).map_err(Error::Write)
}

/// Writes the main man page (roff): synopsis, options, subcommands.
pub fn man_page(out: &mut dyn Write) -> Result<()> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .map_err(Error::Write)?;
    out.write_all(&page).map_err(Error::Write)
}

/// Writes `roost-keeper.1` and one page per subcommand
/// (`roost-keeper-validate.1`, ...) into `dir`, created if missing; returns
/// how many pages it wrote.
pub fn write_man_pages(dir: &Path) -> Result<usize> {
    std::fs::create_dir_all(dir).map_err(|source| Error::WriteFile {
        path: dir.to_owned(),
        source,
    })?;
    // What clap_mangen::generate_to prepares, whose own writes would follow
    // a symlink already in `dir`.
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    write_pages(command, dir)
}

/// The page of `command` and of its subcommands at every depth (`certs
/// generate` too), as `generate_to` names them; returns how many.
fn write_pages(command: clap::Command, dir: &Path) -> Result<usize> {
    let mut written = 0;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        written += write_pages(sub.clone(), dir)?;
    }
    let man = clap_mangen::Man::new(command);
    let mut page = Vec::new();
    man.render(&mut page).map_err(Error::Write)?;
    crate::files::replace(&dir.join(man.get_filename()), &page, crate::files::PUBLIC)?;
    Ok(written + 1)
}

/// The flags of the subcommand `name`, and the global ones, as a Markdown
/// table: flag, environment variable, default, description (clap's long help
/// on one line). Hidden flags and `--help` are left out.
pub fn flags_markdown(name: &str) -> Result<String> {
    let mut command = Cli::command();
    // Building propagates the global flags into every subcommand.
    command.build();
    let Some(sub) = command
        .get_subcommands()
        .find(|s| s.get_name() == name && !s.is_hide_set())
    else {
        let names: Vec<&str> = command.get_subcommands().map(|s| s.get_name()).collect();
        return Err(Error::Config(format!(
            "--flags-markdown \"{}\" is not a subcommand; one of {}",
            name.escape_debug(),
            names.join(", ")
        )));
    };
    let mut table = String::from(
        "| flag | environment variable | default | description |\n|---|---|---|---|\n",
    );
    let shown = sub.get_arguments().filter(|a| {
        !a.is_hide_set()
            && !matches!(
                a.get_action(),
                clap::ArgAction::Help | clap::ArgAction::Version
            )
    });
    for arg in shown {
        let code = |text: &str| format!("`{text}`");
        let env = arg
            .get_env()
            .map_or("".to_owned(), |e| code(&e.to_string_lossy()));
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| code(&v.to_string_lossy()))
            .collect();
        let mut description = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        if arg.is_global_set() {
            description.push_str(" (every subcommand)");
        }
        table.push_str(&format!(
            "| {} | {env} | {} | {} |\n",
            code(&flag_usage(arg)),
            defaults.join(", "),
            cell(&description)
        ));
    }
    Ok(table)
}

/// How a flag is written: `-f, --filename <FILE>`, `--output <text/json/…>`
/// (its choices), `--verbose`, or a positional's `<CODE>`.
fn flag_usage(arg: &clap::Arg) -> String {
    let choices: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| v.get_name().to_owned())
        .collect();
    let value = if !choices.is_empty() {
        format!("<{}>", choices.join("/"))
    } else {
        let names = arg
            .get_value_names()
            .map(|n| {
                n.iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_else(|| arg.get_id().as_str().to_uppercase());
        format!("<{names}>")
    };
    if arg.is_positional() {
        return value;
    }
    let mut usage = match arg.get_short() {
        Some(short) => format!("-{short}, "),
        None => String::new(),
    };
    usage.push_str("--");
    usage.push_str(arg.get_long().unwrap_or_default());
    if arg.get_num_args().is_some_and(|n| n.takes_values()) {
        usage.push(' ');
        usage.push_str(&value);
    }
    usage
}

/// Help text as one table cell: one line, `|` escaped.
fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_table_of_serve() {
        let table = flags_markdown("serve").unwrap();
        assert!(table.starts_with("| flag | environment variable | default | description |\n"));
        assert!(
            table.contains("| `--webhook-port <WEBHOOK_PORT>` | `ROOST_KEEPER_WEBHOOK_PORT` | `8443` | HTTPS port"),
            "{table}"
        );
        assert!(table.contains("| `--controller <true/false>` |"), "{table}");
        assert!(table.contains("| `--log-format <text/json>` |"), "{table}");
        assert!(!table.contains("--help"), "{table}");
        assert!(
            table
                .lines()
                .all(|l| l.starts_with('|') && l.ends_with('|'))
        );
    }

    #[test]
    fn flag_table_names_short_flags_and_refuses_unknown_subcommands() {
        let table = flags_markdown("validate").unwrap();
        assert!(table.contains("| `-f, --filename <"), "{table}");
        let error = flags_markdown("serv").unwrap_err().to_string();
        assert!(error.contains("one of validate, crd, serve"), "{error}");
    }

    #[test]
    fn cells_stay_one_line() {
        assert_eq!(cell("a | b\n  c"), "a \\| b c");
    }
}
