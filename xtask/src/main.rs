//! `cargo xtask test`: every test suite of the repository in one command — builds the binary
//! the end-to-end tests run, then the Rust workspace's tests (and, as they land, the web and
//! editor-extension suites). Standard library only, so it builds in seconds on a fresh machine.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask test [-- <extra cargo test args>]\n\n  test   build the binary and run every test suite"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("xtask: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn run(cmd: &mut Command) -> Result<(), String> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed with {status}"))
    }
}

fn test(extra: &[String]) -> Result<(), String> {
    let root = root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target
        .join("debug")
        .join(format!("hivesync{}", std::env::consts::EXE_SUFFIX));

    run(Command::new(&cargo).current_dir(&root).args([
        "build",
        "--package",
        "hivesync",
        "--bin",
        "hivesync",
    ]))?;

    let extra: Vec<&String> = extra.iter().filter(|a| a.as_str() != "--").collect();
    run(Command::new(&cargo)
        .current_dir(&root)
        .env("HIVESYNC_BIN", &bin)
        .args(["test", "--workspace", "--all-targets"])
        .args(extra))?;
    Ok(())
}
