//! The command line's reference, from its clap definition: shell completion
//! scripts (`roost-keeper completions`) and man pages (`roost-keeper man`),
//! so both always list the flags, environment variables and subcommands the
//! binary has.

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
