//! Command line: every flag also reads an environment variable.

use crate::offline::{self, OutputFormat};
use crate::{Error, Result};
use clap::{Parser, Subcommand};
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "roost-keeper",
    version,
    about = "Admission webhook, status controller and offline validator for ManagedRoost"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate ManagedRoost manifests offline, with the same rules and defaults as the cluster.
    Validate(ValidateArgs),
    /// Print the ManagedRoost CustomResourceDefinition (YAML).
    Crd,
}

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Files or directories to check (directories recursively: .yaml, .yml, .json); `-` reads stdin. Repeatable.
    #[arg(short = 'f', long = "filename", required = true, num_args = 1.., env = "ROOST_KEEPER_VALIDATE_FILES")]
    pub files: Vec<PathBuf>,
    /// Output format.
    #[arg(
        short = 'o',
        long = "output",
        value_enum,
        default_value = "text",
        env = "ROOST_KEEPER_OUTPUT"
    )]
    pub output: OutputFormat,
    /// Also show info findings.
    #[arg(short = 'v', long = "verbose", env = "ROOST_KEEPER_VERBOSE")]
    pub verbose: bool,
}

/// Runs `validate`; returns the exit code (0 valid, 1 errors, 2 unreadable input).
pub fn run_validate(
    args: &ValidateArgs,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    color: bool,
) -> Result<i32> {
    let report = offline::check_inputs(&args.files, stdin);
    let rendered = match args.output {
        OutputFormat::Json => offline::render_json(&report, args.verbose),
        OutputFormat::Text => offline::render_text(&report, args.verbose, color),
    };
    stdout
        .write_all(rendered.as_bytes())
        .map_err(Error::Write)?;
    stderr
        .write_all(offline::render_input_errors(&report).as_bytes())
        .map_err(Error::Write)?;
    Ok(report.exit_code())
}

/// Runs the parsed command against the process's standard streams.
pub fn run(cli: Cli) -> Result<i32> {
    let stdout = std::io::stdout();
    match cli.command {
        Command::Validate(args) => {
            let color = stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none();
            run_validate(
                &args,
                &mut std::io::stdin().lock(),
                &mut stdout.lock(),
                &mut std::io::stderr().lock(),
                color,
            )
        }
        Command::Crd => {
            stdout
                .lock()
                .write_all(crate::crd::crd_yaml()?.as_bytes())
                .map_err(Error::Write)?;
            Ok(0)
        }
    }
}
