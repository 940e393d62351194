//! `cargo xtask test`: every test suite of the repository in one command — builds the binary
//! the end-to-end tests run, then the Rust workspace's tests, then the third-party LSP client
//! suite (editors/pytest-lsp, in a Python virtualenv under the target dir) against that binary.
//! Standard library only, so it builds in seconds on a fresh machine.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("test-editors") => test_editors(),
        _ => {
            eprintln!(
                "usage: cargo xtask test [-- <extra cargo test args>]\n       cargo xtask test-editors\n\n  test           build the binary and run every test suite\n  test-editors   build the binary and run only the third-party LSP client suite"
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

/// Builds the `hivesync` binary (debug); returns the cargo command, the target dir and the
/// binary's path.
fn build_binary(root: &Path) -> Result<(String, PathBuf, PathBuf), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target
        .join("debug")
        .join(format!("hivesync{}", std::env::consts::EXE_SUFFIX));
    run(Command::new(&cargo).current_dir(root).args([
        "build",
        "--package",
        "hivesync",
        "--bin",
        "hivesync",
    ]))?;
    Ok((cargo, target, bin))
}

fn test_editors() -> Result<(), String> {
    let root = root();
    let (_, target, bin) = build_binary(&root)?;
    editor_client_suite(&root, &target, &bin)
}

fn test(extra: &[String]) -> Result<(), String> {
    let root = root();
    let (cargo, target, bin) = build_binary(&root)?;

    let extra: Vec<&String> = extra.iter().filter(|a| a.as_str() != "--").collect();
    run(Command::new(&cargo)
        .current_dir(&root)
        .env("HIVESYNC_BIN", &bin)
        .args(["test", "--workspace", "--all-targets"])
        .args(extra))?;

    editor_client_suite(&root, &target, &bin)?;
    Ok(())
}

/// The third-party LSP client suite (editors/pytest-lsp: pytest-lsp, a pygls client) against
/// the binary just built, in a virtualenv under the target dir whose requirements are
/// installed once per change of requirements.txt.
fn editor_client_suite(root: &Path, target: &Path, bin: &Path) -> Result<(), String> {
    let suite = root.join("editors").join("pytest-lsp");
    let requirements = suite.join("requirements.txt");
    let venv = target.join("pytest-lsp-venv");
    let bin_dir = venv.join(if cfg!(windows) { "Scripts" } else { "bin" });
    let python = bin_dir.join(if cfg!(windows) {
        "python.exe"
    } else {
        "python"
    });
    if !python.is_file() {
        let system = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        run(Command::new(&system).args(["-m", "venv"]).arg(&venv)).map_err(|e| {
            format!(
                "{e}\n(the editor-client suite needs Python 3 with venv; set PYTHON to use another)"
            )
        })?;
    }
    let wanted = std::fs::read(&requirements)
        .map_err(|e| format!("cannot read {}: {e}", requirements.display()))?;
    let stamp = venv.join("installed-requirements.txt");
    if std::fs::read(&stamp).ok().as_deref() != Some(wanted.as_slice()) {
        run(Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&requirements))?;
        std::fs::write(&stamp, &wanted)
            .map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    }
    run(Command::new(&python)
        .current_dir(root)
        .env("HIVESYNC_BIN", bin)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .args(["-m", "pytest", "-p", "no:cacheprovider", "-q"])
        .arg(&suite))
}
