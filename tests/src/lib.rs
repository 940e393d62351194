//! Helpers for end-to-end tests: find the built `hivesync` binary and run it in a scratch
//! directory with a clean environment, as a user on a fresh machine would.
//!
//! The binary is taken from `HIVESYNC_BIN` when set (CI and `cargo xtask test` set it after
//! building), otherwise from the workspace's `target/debug/hivesync`.

pub mod lsp;

use std::path::PathBuf;
use std::process::{Command, Output};

/// Path of the `hivesync` binary under test.
pub fn hivesync_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("HIVESYNC_BIN") {
        return PathBuf::from(p);
    }
    let bin = built_binary("debug");
    assert!(
        bin.is_file(),
        "{} does not exist: run `cargo build` first, or run every suite with `cargo xtask test`",
        bin.display()
    );
    bin
}

/// Where cargo puts the `hivesync` binary of a profile (`debug`, `release`); it may not exist.
pub fn built_binary(profile: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target
        .join(profile)
        .join(format!("hivesync{}", std::env::consts::EXE_SUFFIX))
}

/// A `hivesync` command isolated from the developer's own configuration: `HOME`,
/// `XDG_CONFIG_HOME` and `XDG_CACHE_HOME` point into `home`, and no `HIVESYNC_*` or `RUST_LOG` variable leaks in.
pub fn hivesync(home: &std::path::Path) -> Command {
    hivesync_at(&hivesync_bin(), home)
}

/// Like [`hivesync`], running the binary at `bin` (benchmarks run a release build).
pub fn hivesync_at(bin: &std::path::Path, home: &std::path::Path) -> Command {
    let mut cmd = Command::new(bin);
    for (key, _) in std::env::vars_os() {
        let key_str = key.to_string_lossy();
        if key_str.starts_with("HIVESYNC_") || key_str == "RUST_LOG" {
            cmd.env_remove(&key);
        }
    }
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .current_dir(home);
    cmd
}

/// Output as UTF-8 text, for assertions.
pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
