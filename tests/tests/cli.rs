//! The binary's basic contract: version, help, configuration errors, logs on stderr only.

use hivesync_e2e::{hivesync, text};

#[test]
fn version_prints_name_and_version() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = hivesync(home.path())
        .arg("--version")
        .output()
        .expect("runs");
    assert!(out.status.success());
    let (stdout, _) = text(&out);
    assert_eq!(
        stdout.trim(),
        format!("hivesync {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_lists_subcommands_and_global_flags() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = hivesync(home.path()).arg("--help").output().expect("runs");
    assert!(out.status.success());
    let (stdout, _) = text(&out);
    for needle in [
        "Usage: hivesync",
        "config",
        "--config",
        "--log-level",
        "--version",
    ] {
        assert!(stdout.contains(needle), "help lacks {needle:?}:\n{stdout}");
    }
}

#[test]
fn no_subcommand_is_a_usage_error() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = hivesync(home.path()).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("Usage"));
}

#[test]
fn bad_config_value_is_one_line_naming_the_key_exit_2() {
    let home = tempfile::tempdir().expect("tempdir");
    let cfg = home.path().join("hivesync.toml");
    std::fs::write(&cfg, "log_level = \"loud\"\n").expect("write");
    let out = hivesync(home.path())
        .arg("--config")
        .arg(&cfg)
        .arg("config")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let (stdout, stderr) = text(&out);
    assert!(stdout.is_empty(), "nothing on stdout: {stdout}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("`log_level`"), "{stderr}");
    assert!(stderr.contains("loud"), "{stderr}");
    assert!(
        stderr.contains("error") && stderr.contains("trace"),
        "allowed values: {stderr}"
    );
}

#[test]
fn bad_value_in_environment_names_the_variable() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = hivesync(home.path())
        .env("HIVESYNC_LOG_LEVEL", "chatty")
        .arg("config")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out).1;
    assert!(stderr.contains("HIVESYNC_LOG_LEVEL"), "{stderr}");
}

#[test]
fn missing_explicit_config_file_is_exit_2() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = hivesync(home.path())
        .args(["--config", "nope.toml", "config"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("nope.toml"));
}

#[test]
fn unknown_key_in_file_is_exit_2() {
    let home = tempfile::tempdir().expect("tempdir");
    let cfg = home.path().join("c.toml");
    std::fs::write(&cfg, "log_levle = \"info\"\n").expect("write");
    let out = hivesync(home.path())
        .arg("--config")
        .arg(&cfg)
        .arg("config")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("`log_levle`"));
}

#[test]
fn config_from_default_location_and_env_override() {
    let home = tempfile::tempdir().expect("tempdir");
    let dir = home.path().join(".config/hivesync");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("config.toml"), "log_level = \"warn\"\n").expect("write");
    let out = hivesync(home.path()).arg("config").output().expect("runs");
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(text(&out).0.contains("log_level = \"warn\""));

    let out = hivesync(home.path())
        .env("HIVESYNC_LOG_LEVEL", "debug")
        .arg("config")
        .output()
        .expect("runs");
    assert!(text(&out).0.contains("log_level = \"debug\""));
}

#[test]
fn logs_go_to_stderr_never_stdout() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = hivesync(home.path())
        .args(["--log-level", "trace", "config", "--path"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let (stdout, stderr) = text(&out);
    assert_eq!(
        stdout.lines().count(),
        1,
        "only the path on stdout: {stdout}"
    );
    assert!(stdout.trim().ends_with("hivesync/config.toml"));
    assert!(stderr.contains("configuration loaded"), "{stderr}");
}
