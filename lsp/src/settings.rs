//! The server's settings: defaults < the `[lsp]` table of the config file (given by the binary
//! as a [`Settings`]) < `initializationOptions` < `workspace/didChangeConfiguration`.
//!
//! Client settings are JSON in the editor's camelCase shape, either bare or under a
//! `"hivesync"` key (VS Code sends one object per section):
//!
//! ```json
//! { "inlayHints": { "parameterNames": true, "hideObvious": true },
//!   "codeLens": { "references": true },
//!   "exclude": ["**/build/**"],
//!   "indexCache": true,
//!   "backend": { "url": "https://hivesync.example", "token": "…" } }
//! ```
//!
//! Unknown keys and values of the wrong type are ignored; the caller logs them once.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Everything a client (or the `[lsp]` config table) can set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Parameter-name inlay hints at call sites whose callee resolves exactly.
    pub inlay_hints: bool,
    /// Hide hints that add nothing: the argument is a name equal to the parameter's, or the
    /// only argument of a call whose function name ends with the parameter's name.
    pub hide_obvious_hints: bool,
    /// "N references" code lenses on definitions.
    pub code_lens: bool,
    /// Glob patterns (relative to each workspace folder) of files never analysed.
    pub exclude: Vec<String>,
    /// HiveSync backend for AI actions (stored for later; nothing is sent yet).
    pub backend_url: Option<String>,
    pub backend_token: Option<String>,
    /// Keep each file's index in the user's cache directory between sessions, so the next
    /// start indexes only files that changed (`HIVESYNC_NO_CACHE=1` also turns it off).
    pub index_cache: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            inlay_hints: true,
            hide_obvious_hints: true,
            code_lens: true,
            exclude: Vec::new(),
            backend_url: None,
            backend_token: None,
            index_cache: true,
        }
    }
}

impl Settings {
    /// Applies a client's JSON settings on top of `self`. Returns the dotted paths of keys that
    /// were unknown or had the wrong type (they change nothing).
    pub fn merge_client(&mut self, value: &Value) -> Vec<String> {
        let mut ignored = Vec::new();
        let value = match value.get("hivesync") {
            Some(v) => v,
            None => value,
        };
        let Some(obj) = value.as_object() else {
            if !value.is_null() {
                ignored.push("(settings are not an object)".to_owned());
            }
            return ignored;
        };
        for (key, v) in obj {
            match key.as_str() {
                "inlayHints" => {
                    self.merge_object(v, "inlayHints", &mut ignored, |s, k, v| match k {
                        "parameterNames" | "enabled" => set_bool(&mut s.inlay_hints, v),
                        "hideObvious" => set_bool(&mut s.hide_obvious_hints, v),
                        _ => false,
                    })
                }
                "codeLens" => match v {
                    Value::Bool(b) => self.code_lens = *b,
                    _ => self.merge_object(v, "codeLens", &mut ignored, |s, k, v| match k {
                        "references" | "enabled" => set_bool(&mut s.code_lens, v),
                        _ => false,
                    }),
                },
                "exclude" => match v.as_array() {
                    Some(items) if items.iter().all(Value::is_string) => {
                        self.exclude = items
                            .iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect();
                    }
                    _ => ignored.push("exclude".to_owned()),
                },
                "indexCache" => {
                    if !set_bool(&mut self.index_cache, v) {
                        ignored.push("indexCache".to_owned());
                    }
                }
                "backend" => self.merge_object(v, "backend", &mut ignored, |s, k, v| match k {
                    "url" => set_string(&mut s.backend_url, v),
                    "token" => set_string(&mut s.backend_token, v),
                    _ => false,
                }),
                other => ignored.push(other.to_owned()),
            }
        }
        ignored.sort();
        ignored
    }

    fn merge_object(
        &mut self,
        value: &Value,
        prefix: &str,
        ignored: &mut Vec<String>,
        mut set: impl FnMut(&mut Settings, &str, &Value) -> bool,
    ) {
        let Some(obj) = value.as_object() else {
            ignored.push(prefix.to_owned());
            return;
        };
        for (k, v) in obj {
            if !set(self, k, v) {
                ignored.push(format!("{prefix}.{k}"));
            }
        }
    }
}

fn set_bool(slot: &mut bool, v: &Value) -> bool {
    match v.as_bool() {
        Some(b) => {
            *slot = b;
            true
        }
        None => false,
    }
}

fn set_string(slot: &mut Option<String>, v: &Value) -> bool {
    match v {
        Value::String(s) => {
            *slot = Some(s.clone());
            true
        }
        Value::Null => {
            *slot = None;
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn client_settings_merge_and_report_unknown_keys() {
        let mut s = Settings::default();
        let ignored = s.merge_client(&json!({
            "hivesync": {
                "inlayHints": { "parameterNames": false, "colour": "red" },
                "codeLens": false,
                "exclude": ["**/gen/**"],
                "indexCache": false,
                "backend": { "url": "https://h.example", "token": 5 },
                "mystery": 1
            }
        }));
        assert!(!s.inlay_hints);
        assert!(!s.code_lens);
        assert_eq!(s.exclude, vec!["**/gen/**".to_owned()]);
        assert!(!s.index_cache);
        assert_eq!(s.backend_url.as_deref(), Some("https://h.example"));
        assert_eq!(s.backend_token, None);
        assert_eq!(
            ignored,
            vec!["backend.token", "inlayHints.colour", "mystery"]
        );
        assert!(s.merge_client(&Value::Null).is_empty());
    }
}
