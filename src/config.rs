//! Configuration for every role of the `hivesync` binary.
//!
//! One TOML file (`--config PATH`, default `<user config dir>/hivesync/config.toml`) holds a
//! top-level `log_level` and one table per role (`[server]`, `[lsp]`, …). Each value can be
//! overridden by an environment variable `HIVESYNC_<ROLE>_<KEY>` (global keys:
//! `HIVESYNC_<KEY>`), and those by command-line flags. Each role reads its table into its own
//! typed `Config` struct; a value of the wrong type or an unknown key is a [`ConfigError`]
//! naming the key, where it came from and what is allowed — the binary prints it on one line and
//! exits with code 2.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::{Figment, Profile};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// The role tables a config file may contain. A top-level key outside this list (and outside
/// [`GlobalConfig`]) is reported as unknown, so typos never pass silently.
pub const ROLE_SECTIONS: &[&str] = &["server", "worker", "lsp"];

/// Keys at the top level of the file.
const GLOBAL_KEYS: &[&str] = &["log_level"];

/// Settings shared by every role.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalConfig {
    /// Minimum level of log lines written to stderr.
    pub log_level: LogLevel,
}

/// Log verbosity, from quietest to loudest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// A configuration problem, formatted as one line for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key, e.g. `server.bind`; empty when the problem is the file itself.
    pub key: String,
    /// Where the bad value came from (file path, environment variable, flag).
    pub source: Option<String>,
    /// What was wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration")?;
        if !self.key.is_empty() {
            write!(f, " for `{}`", self.key)?;
        }
        if let Some(source) = &self.source {
            write!(f, " (from {source})")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Where the configuration file is, and its parsed (but not yet typed) contents.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    /// The file consulted, and whether it existed.
    pub path: Option<PathBuf>,
    pub found: bool,
    file: Figment,
}

/// The default location of the configuration file.
pub fn default_config_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("hivesync").join("config.toml"))
}

impl ConfigSource {
    /// Reads the configuration file. An explicitly given file must exist; the default one is
    /// optional.
    pub fn load(explicit: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_sections(explicit, ROLE_SECTIONS)
    }

    /// Like [`ConfigSource::load`], with the allowed role tables given.
    pub fn load_with_sections(
        explicit: Option<&Path>,
        sections: &[&str],
    ) -> Result<Self, ConfigError> {
        let (path, required) = match explicit {
            Some(p) => (Some(p.to_path_buf()), true),
            None => (default_config_path(), false),
        };
        let found = path.as_deref().is_some_and(Path::is_file);
        if required && !found {
            return Err(ConfigError {
                key: String::new(),
                source: None,
                message: format!(
                    "config file {} does not exist or is not a file",
                    path.as_deref().unwrap_or(Path::new("")).display()
                ),
            });
        }
        let file = match (&path, found) {
            (Some(p), true) => {
                let text = std::fs::read_to_string(p).map_err(|e| ConfigError {
                    key: String::new(),
                    source: Some(p.display().to_string()),
                    message: format!("cannot read the file: {e}"),
                })?;
                // Parse once here so a syntax error is reported with its line, before any role
                // looks at its table.
                let table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError {
                    key: String::new(),
                    source: Some(p.display().to_string()),
                    message: format!(
                        "not valid TOML: {}",
                        e.to_string().lines().next().unwrap_or("syntax error")
                    ),
                })?;
                for key in table.keys() {
                    if !GLOBAL_KEYS.contains(&key.as_str()) && !sections.contains(&key.as_str()) {
                        return Err(ConfigError {
                            key: key.clone(),
                            source: Some(p.display().to_string()),
                            message: format!(
                                "unknown key; allowed top-level keys are {}",
                                GLOBAL_KEYS
                                    .iter()
                                    .chain(sections)
                                    .map(|k| format!("`{k}`"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        });
                    }
                }
                Figment::from(Toml::string(&text))
            }
            _ => Figment::new(),
        };
        Ok(ConfigSource { path, found, file })
    }

    /// The settings shared by every role: defaults < file < `HIVESYNC_LOG_LEVEL`.
    pub fn global(&self) -> Result<GlobalConfig, ConfigError> {
        let figment = Figment::from(Serialized::defaults(GlobalConfig::default()))
            .merge(self.file_only(GLOBAL_KEYS))
            .merge(Env::prefixed("HIVESYNC_").only(GLOBAL_KEYS));
        extract(&figment, "", self)
    }

    /// A role's typed configuration: defaults < the file's `[role]` table <
    /// `HIVESYNC_<ROLE>_<KEY>` variables < `flags` (fields set to `None` are skipped, so use
    /// `#[serde(skip_serializing_if = "Option::is_none")]` on them).
    #[allow(dead_code)] // used by the role subcommands as they land
    pub fn role<T, F>(&self, role: &str, flags: &F) -> Result<T, ConfigError>
    where
        T: Default + Serialize + DeserializeOwned,
        F: Serialize,
    {
        self.role_with(role, Figment::new(), flags)
    }

    /// Like [`ConfigSource::role`], with `extra` merged between the file and the
    /// `HIVESYNC_<ROLE>_<KEY>` variables (for conventional unprefixed variables).
    pub fn role_with<T, F>(&self, role: &str, extra: Figment, flags: &F) -> Result<T, ConfigError>
    where
        T: Default + Serialize + DeserializeOwned,
        F: Serialize,
    {
        let prefix = format!("HIVESYNC_{}_", role.to_ascii_uppercase());
        let figment = Figment::from(Serialized::defaults(T::default()))
            .merge(self.file.clone().focus(role))
            .merge(extra)
            .merge(Env::prefixed(&prefix))
            .merge(Serialized::defaults(flags));
        extract(&figment, role, self)
    }

    /// `hivesync server`'s configuration: defaults < `[server]` < `DATABASE_URL`, `REDIS_URL`,
    /// `AMQP_URL`, `HIVESYNC_STORAGE_URL` < `HIVESYNC_SERVER_<KEY>` < flags.
    pub fn server<F: Serialize>(&self, flags: &F) -> Result<hivesync_backend::Config, ConfigError> {
        let urls = Env::raw()
            .only(&[
                "database_url",
                "redis_url",
                "amqp_url",
                "hivesync_storage_url",
            ])
            .map(|k| {
                if k == "hivesync_storage_url" {
                    "storage_url".into()
                } else {
                    k.into()
                }
            });
        self.role_with("server", Figment::from(urls), flags)
    }

    fn file_only(&self, keys: &[&str]) -> Figment {
        let mut f = Figment::new();
        for key in keys {
            if let Ok(v) = self.file.find_value(key) {
                f = f.merge(Serialized::default(key, v));
            }
        }
        f
    }
}

fn extract<T: DeserializeOwned>(
    figment: &Figment,
    role: &str,
    source: &ConfigSource,
) -> Result<T, ConfigError> {
    figment.extract::<T>().map_err(|err| {
        let err = err
            .into_iter()
            .next()
            .unwrap_or_else(|| figment::Error::from("unknown configuration error".to_string()));
        let mut key: Vec<String> = Vec::new();
        if !role.is_empty() {
            key.push(role.to_string());
        }
        key.extend(
            err.path
                .iter()
                .filter(|p| p.as_str() != Profile::Default.as_str())
                .cloned(),
        );
        let origin = err.metadata.as_ref().map(|m| {
            let name = m.name.to_string();
            if name.contains("environment variable") || name.contains("env") {
                let leaf = err.path.last().cloned().unwrap_or_default();
                let var = if role.is_empty() {
                    format!("HIVESYNC_{}", leaf.to_ascii_uppercase())
                } else {
                    format!(
                        "HIVESYNC_{}_{}",
                        role.to_ascii_uppercase(),
                        leaf.to_ascii_uppercase()
                    )
                };
                format!("environment variable {var}")
            } else if name.contains("TOML") {
                source
                    .path
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "config file".into())
            } else if name.contains("Serialized") && !name.contains("default") {
                "command line".into()
            } else {
                name
            }
        });
        ConfigError {
            key: key.join("."),
            source: origin,
            message: err.kind.to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write_config(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(text.as_bytes()).expect("write");
        f
    }

    #[test]
    fn missing_default_file_gives_defaults() {
        let src = ConfigSource::load(None).expect("loads");
        // The default file may exist on a developer machine; only check the type works.
        let _ = src.global();
    }

    #[test]
    fn explicit_missing_file_is_an_error() {
        let err = ConfigSource::load(Some(Path::new("/nonexistent/hivesync.toml")))
            .expect_err("must fail");
        assert!(
            err.to_string().contains("/nonexistent/hivesync.toml"),
            "{err}"
        );
    }

    #[test]
    fn log_level_from_file() {
        let f = write_config("log_level = \"debug\"\n");
        let src = ConfigSource::load(Some(f.path())).expect("loads");
        assert_eq!(src.global().expect("valid").log_level, LogLevel::Debug);
    }

    #[test]
    fn bad_log_level_names_key_and_allowed_values() {
        let f = write_config("log_level = \"loud\"\n");
        let src = ConfigSource::load(Some(f.path())).expect("loads");
        let err = src.global().expect_err("must fail");
        assert_eq!(err.key, "log_level");
        let msg = err.to_string();
        assert!(msg.contains("loud") && msg.contains("debug"), "{msg}");
        assert!(!msg.contains('\n'), "one line: {msg}");
    }

    #[test]
    fn unknown_top_level_key_is_an_error() {
        let f = write_config("colour = true\n");
        let err = ConfigSource::load(Some(f.path())).expect_err("must fail");
        assert_eq!(err.key, "colour");
        assert!(err.to_string().contains("log_level"));
    }

    #[test]
    fn syntax_error_is_one_line() {
        let f = write_config("log_level = \n");
        let err = ConfigSource::load(Some(f.path())).expect_err("must fail");
        assert!(err.to_string().contains("not valid TOML"), "{err}");
        assert!(!err.to_string().contains('\n'));
    }

    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct DemoRole {
        port: u16,
        name: String,
    }

    #[derive(Serialize)]
    struct DemoFlags {
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    }

    #[test]
    fn role_layers_defaults_file_and_flags() {
        let f = write_config("[demo]\nport = 8080\nname = \"file\"\n");
        let src = ConfigSource::load_with_sections(Some(f.path()), &["demo"]).expect("loads");
        let cfg: DemoRole = src.role("demo", &DemoFlags { name: None }).expect("valid");
        assert_eq!(
            cfg,
            DemoRole {
                port: 8080,
                name: "file".into()
            }
        );
        let cfg: DemoRole = src
            .role(
                "demo",
                &DemoFlags {
                    name: Some("flag".into()),
                },
            )
            .expect("valid");
        assert_eq!(cfg.name, "flag");
    }

    #[test]
    fn role_type_error_names_dotted_key() {
        let f = write_config("[demo]\nport = \"eighty\"\n");
        let src = ConfigSource::load_with_sections(Some(f.path()), &["demo"]).expect("loads");
        let err = src
            .role::<DemoRole, _>("demo", &DemoFlags { name: None })
            .expect_err("must fail");
        assert_eq!(err.key, "demo.port");
        assert!(err.to_string().contains("eighty"), "{err}");
    }
}
