#![forbid(unsafe_code)]

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = roost_keeper::cli::Cli::parse();
    let code = roost_keeper::cli::run(cli)?;
    std::process::exit(code);
}
