//! `hivesync config`: shows the configuration every role would run with, so a user can see what
//! the file, `HIVESYNC_*` variables and defaults add up to (and where the file is looked for).

use crate::config::{ConfigSource, GlobalConfig};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the path of the configuration file and exit
    #[arg(long)]
    path: bool,
}

pub fn run(args: &Args, source: &ConfigSource, global: &GlobalConfig) -> anyhow::Result<ExitCode> {
    let location = source
        .path
        .as_deref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "(no config directory on this system)".into());
    if args.path {
        println!("{location}");
        return Ok(ExitCode::SUCCESS);
    }
    let state = if source.found {
        ""
    } else {
        " (not found; defaults)"
    };
    let mut doc = toml::Table::new();
    let global_value = toml::Table::try_from(global)?;
    doc.extend(global_value);
    print!(
        "# config file: {location}{state}\n{}",
        toml::to_string(&doc)?
    );
    Ok(ExitCode::SUCCESS)
}
