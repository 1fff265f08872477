//! What clap generates from the command line itself: shell completion
//! scripts (`roost-keeper completions`) and man pages (`roost-keeper man`),
//! so both always list the flags, environment variables and subcommands the
//! binary has.

use crate::cli::Cli;
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
    let written_to = |source| Error::WriteFile {
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(written_to)?;
    let command = Cli::command();
    clap_mangen::generate_to(command.clone(), dir).map_err(written_to)?;
    Ok(1 + count_subcommands(&command))
}

/// Subcommands at every depth (`certs generate` too), as `generate_to` writes them.
fn count_subcommands(command: &clap::Command) -> usize {
    command
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| 1 + count_subcommands(s))
        .sum()
}
