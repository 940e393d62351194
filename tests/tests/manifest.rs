//! `hivesync analyze manifest`: the JSON document the backend's snapshot API accepts, checked
//! against hashes computed independently here, and the human summary.

use hivesync_e2e::{hivesync, text};
use serde_json::{Value, json};
use std::fs;
use std::path::Path;

fn blake3_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

fn tree(root: &Path) {
    for (path, text) in [
        (".gitignore", "target/\n*.log\n"),
        ("src/main.rs", "fn main() {}\n"),
        ("src/util/mod.rs", "pub fn f() {}\n"),
        ("app/views.py", "def view():\n    return 'é'\n"),
        ("web/index.ts", "export const x = 1;\n"),
        ("README.md", "# demo\n"),
        ("target/debug/junk", "build output"),
        ("run.log", "noise"),
        (".env", "SECRET=1\n"),
    ] {
        let p = root.join(path);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(p, text).expect("write");
    }
}

#[test]
fn manifest_json_lists_files_with_independent_hashes() {
    let home = tempfile::tempdir().expect("tempdir");
    let project = home.path().join("demo");
    tree(&project);
    let out = hivesync(home.path())
        .args(["analyze", "manifest"])
        .arg(&project)
        .arg("--json")
        .output()
        .expect("runs");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let doc: Value = serde_json::from_str(&stdout).expect("one JSON document on stdout");

    let expected_files = [
        (".gitignore", "target/\n*.log\n", Value::Null),
        ("README.md", "# demo\n", Value::Null),
        (
            "app/views.py",
            "def view():\n    return 'é'\n",
            json!("python"),
        ),
        ("src/main.rs", "fn main() {}\n", json!("rust")),
        ("src/util/mod.rs", "pub fn f() {}\n", json!("rust")),
        ("web/index.ts", "export const x = 1;\n", json!("typescript")),
    ];
    let files: Vec<Value> = expected_files
        .iter()
        .map(|(path, content, language)| {
            json!({
                "path": path,
                "hash": blake3_hex(content.as_bytes()),
                "size": content.len(),
                "language": language,
            })
        })
        .collect();
    assert_eq!(doc["files"], Value::Array(files));

    // The documented manifest hash: blake3 over `path \0 hash \n` for each file in order.
    let mut encoding = Vec::new();
    for (path, content, _) in &expected_files {
        encoding.extend_from_slice(path.as_bytes());
        encoding.push(0);
        encoding.extend_from_slice(blake3_hex(content.as_bytes()).as_bytes());
        encoding.push(b'\n');
    }
    assert_eq!(doc["hash"], json!(blake3_hex(&encoding)));

    let keys: Vec<&str> = doc
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["files", "hash", "metadata"]);
    assert_eq!(doc["metadata"]["name"], json!("demo"));
    assert_eq!(doc["metadata"]["file_count"], json!("6"));
}

#[test]
fn manifest_defaults_to_the_current_directory_and_prints_a_summary() {
    let home = tempfile::tempdir().expect("tempdir");
    tree(home.path());
    let out = hivesync(home.path())
        .args(["analyze", "manifest"])
        .output()
        .expect("runs");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    for needle in ["hash", "files  6", "rust", "python", "typescript", "other"] {
        assert!(stdout.contains(needle), "{needle:?} missing:\n{stdout}");
    }
    let json_out = hivesync(home.path())
        .args(["analyze", "manifest", "--json"])
        .output()
        .expect("runs");
    let doc: Value = serde_json::from_slice(&json_out.stdout).expect("json");
    let hash = doc["hash"].as_str().expect("hash");
    assert!(stdout.contains(hash), "summary shows the hash:\n{stdout}");
}

#[test]
fn manifest_of_a_missing_root_fails_naming_it() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = hivesync(home.path())
        .args(["analyze", "manifest", "no-such-dir", "--json"])
        .output()
        .expect("runs");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("no-such-dir"), "{stderr}");
}
