//! Manifests of real directory trees: ignore rules, hidden files, symbolic links, odd entries,
//! git metadata, and hashes that identify the tree's content and nothing else.

use hivesync_analysis::manifest::{
    ManifestError, ManifestOptions, build_manifest, build_snapshot, manifest_hash,
    validate_manifest,
};
use hivesync_protocol::{Language, Manifest};
use std::fs;
use std::path::Path;

fn write(root: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let p = root.join(path);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).expect("mkdir");
        }
        fs::write(p, text).expect("write");
    }
}

fn paths(m: &Manifest) -> Vec<&str> {
    m.files.iter().map(|f| f.path.as_str()).collect()
}

fn manifest(root: &Path) -> Manifest {
    build_manifest(root, &ManifestOptions::default()).expect("manifest")
}

#[test]
fn gitignore_and_ignore_files_are_honoured_without_a_repository() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[
            (".gitignore", "*.log\nbuild/\n!keep.log\n"),
            ("app.py", "print(1)\n"),
            ("debug.log", "noise"),
            ("keep.log", "kept"),
            ("build/out.js", "x"),
            ("src/.gitignore", "generated.rs\n"),
            ("src/generated.rs", "// gen"),
            ("src/lib.rs", "// lib"),
            ("docs/.ignore", "draft.md\n"),
            ("docs/draft.md", "wip"),
            ("docs/index.md", "hi"),
        ],
    );
    let m = manifest(dir.path());
    assert_eq!(
        paths(&m),
        [
            ".gitignore",
            "app.py",
            "docs/.ignore",
            "docs/index.md",
            "keep.log",
            "src/.gitignore",
            "src/lib.rs",
        ]
    );
    validate_manifest(&m).expect("a built manifest is valid");
}

#[test]
fn git_directory_and_hidden_files_are_left_out_except_well_known_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[
            (".git/HEAD", "ref: refs/heads/main\n"),
            (".git/config", "[core]\n"),
            (".env", "SECRET=1"),
            (".cache/x", "x"),
            (".editorconfig", "root = true\n"),
            (".github/workflows/ci.yml", "on: push\n"),
            ("main.go", "package main\n"),
        ],
    );
    let m = manifest(dir.path());
    assert_eq!(
        paths(&m),
        [".editorconfig", ".github/workflows/ci.yml", "main.go"]
    );
    let all = build_manifest(
        dir.path(),
        &ManifestOptions {
            include_hidden: true,
        },
    )
    .expect("manifest");
    assert_eq!(
        paths(&all),
        [
            ".cache/x",
            ".editorconfig",
            ".env",
            ".github/workflows/ci.yml",
            "main.go"
        ]
    );
}

#[test]
fn files_carry_hash_size_and_language_sorted_by_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[
            ("z/last.ts", "export const z = 1;\n"),
            ("a/b/c/deep.py", "x = 'é'\n"),
            ("a/b.rs", "fn main() {}\n"),
            ("a/B.tsx", "<div/>"),
            ("README", "read me"),
            ("lib.mjs", ""),
        ],
    );
    let m = manifest(dir.path());
    assert_eq!(
        paths(&m),
        [
            "README",
            "a/B.tsx",
            "a/b.rs",
            "a/b/c/deep.py",
            "lib.mjs",
            "z/last.ts"
        ],
        "sorted by path bytes"
    );
    let deep = &m.files[3];
    assert_eq!(
        deep.hash,
        blake3::hash("x = 'é'\n".as_bytes()).to_hex().to_string()
    );
    assert_eq!(deep.size, "x = 'é'\n".len() as u64);
    let langs: Vec<Option<Language>> = m.files.iter().map(|f| f.language).collect();
    assert_eq!(
        langs,
        [
            None,
            Some(Language::Tsx),
            Some(Language::Rust),
            Some(Language::Python),
            Some(Language::JavaScript),
            Some(Language::TypeScript),
        ]
    );
    assert_eq!(m.metadata["file_count"], "6");
    let total: u64 = m.files.iter().map(|f| f.size).sum();
    assert_eq!(m.metadata["total_size"], total.to_string());
    assert_eq!(m.metadata["skipped"], "0");
    let name = dir
        .path()
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert_eq!(m.metadata["name"], name);
    assert_eq!(m.hash, manifest_hash(&m.files));
}

#[test]
fn equal_trees_have_equal_hashes_whatever_the_metadata() {
    let one = tempfile::tempdir().expect("tempdir");
    let two = tempfile::tempdir().expect("tempdir");
    let files = [("a.py", "a = 1\n"), ("pkg/b.py", "b = 2\n")];
    write(one.path(), &files);
    write(two.path(), &files);
    write(
        two.path(),
        &[(".git/HEAD", &format!("{}\n", "a".repeat(40)))],
    );
    let m1 = manifest(one.path());
    let m2 = manifest(two.path());
    assert_ne!(m1.metadata, m2.metadata);
    assert_eq!(m1.hash, m2.hash);
    assert_eq!(manifest(one.path()), m1, "stable across runs");

    write(two.path(), &[("pkg/b.py", "b = 3\n")]);
    assert_ne!(
        manifest(two.path()).hash,
        m1.hash,
        "content changes the hash"
    );
    fs::rename(two.path().join("a.py"), two.path().join("c.py")).expect("rename");
    write(two.path(), &[("pkg/b.py", "b = 2\n")]);
    assert_ne!(
        manifest(two.path()).hash,
        m1.hash,
        "a rename changes the hash"
    );
}

#[test]
fn git_head_is_read_from_loose_refs_packed_refs_and_detached_heads() {
    let commit_a = "0123456789abcdef0123456789abcdef01234567";
    let commit_b = "89abcdef0123456789abcdef0123456789abcdef";
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write(
        root,
        &[
            ("x.py", ""),
            (".git/HEAD", "ref: refs/heads/main\n"),
            (".git/refs/heads/main", &format!("{commit_a}\n")),
        ],
    );
    let m = manifest(root);
    assert_eq!(m.metadata["git_head"], commit_a);
    assert_eq!(m.metadata["git_ref"], "refs/heads/main");

    fs::remove_file(root.join(".git/refs/heads/main")).expect("rm");
    write(
        root,
        &[(
            ".git/packed-refs",
            &format!("# pack-refs with: peeled fully-peeled sorted\n{commit_b} refs/heads/main\n"),
        )],
    );
    assert_eq!(manifest(root).metadata["git_head"], commit_b);

    write(root, &[(".git/HEAD", &format!("{commit_a}\n"))]);
    let detached = manifest(root);
    assert_eq!(detached.metadata["git_head"], commit_a);
    assert!(!detached.metadata.contains_key("git_ref"));

    write(root, &[(".git/HEAD", "garbage\n")]);
    assert!(!manifest(root).metadata.contains_key("git_head"));
}

#[test]
fn git_file_pointing_elsewhere_is_followed() {
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let dir = tempfile::tempdir().expect("tempdir");
    let gitdir = tempfile::tempdir().expect("tempdir");
    write(gitdir.path(), &[("HEAD", &format!("{commit}\n"))]);
    write(
        dir.path(),
        &[
            ("a.rs", ""),
            (".git", &format!("gitdir: {}\n", gitdir.path().display())),
        ],
    );
    let m = manifest(dir.path());
    assert_eq!(m.metadata["git_head"], commit);
    assert_eq!(paths(&m), ["a.rs"]);
}

#[test]
fn symbolic_links_stay_inside_the_root_and_odd_entries_are_skipped() {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write(root, &[("real.py", "r = 1\n"), ("sub/inner.py", "i = 1\n")]);
    write(outside.path(), &[("secret.py", "s = 1\n")]);
    symlink(root.join("real.py"), root.join("alias.py")).expect("symlink");
    symlink(outside.path().join("secret.py"), root.join("escape.py")).expect("symlink");
    symlink(outside.path(), root.join("outdir")).expect("symlink");
    symlink(root.join("sub"), root.join("subdir_link")).expect("symlink");
    symlink(root.join("missing"), root.join("dangling")).expect("symlink");
    let fifo = std::process::Command::new("mkfifo")
        .arg(root.join("pipe"))
        .status()
        .expect("mkfifo runs");
    assert!(fifo.success());
    fs::write(root.join("back\\slash.py"), "").expect("write");
    fs::write(
        root.join(std::ffi::OsStr::from_bytes(b"bad\xffname.py")),
        "",
    )
    .expect("write");

    let snapshot = build_snapshot(root, &ManifestOptions::default()).expect("snapshot");
    let m = &snapshot.manifest;
    assert_eq!(paths(m), ["alias.py", "real.py", "sub/inner.py"]);
    assert_eq!(
        m.files[0].hash, m.files[1].hash,
        "a link has its target's content"
    );
    let skipped: Vec<(&str, &str)> = snapshot
        .skipped
        .iter()
        .map(|s| (s.path.as_str(), s.reason.as_str()))
        .collect();
    let reason = |path: &str| {
        skipped
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, r)| *r)
            .unwrap_or_else(|| panic!("{path} not skipped: {skipped:?}"))
    };
    assert!(reason("escape.py").contains("out of the root"));
    assert!(reason("outdir").contains("out of the root"));
    assert!(reason("subdir_link").contains("other than a regular file"));
    assert!(reason("dangling").contains("dangling"));
    assert!(reason("pipe").contains("not a regular file"));
    assert!(reason("back\\slash.py").contains("backslash"));
    assert!(reason("bad\u{fffd}name.py").contains("not UTF-8"));
    assert_eq!(skipped.len(), 7, "{skipped:?}");
    assert_eq!(m.metadata["skipped"], "7");
    validate_manifest(m).expect("valid");
}

#[test]
fn bad_roots_are_errors_naming_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope");
    let err = build_manifest(&missing, &ManifestOptions::default()).expect_err("missing");
    assert!(matches!(err, ManifestError::Root { .. }));
    assert!(err.to_string().contains("nope"), "{err}");
    write(dir.path(), &[("file", "")]);
    let err =
        build_manifest(&dir.path().join("file"), &ManifestOptions::default()).expect_err("a file");
    assert!(matches!(err, ManifestError::RootNotDirectory { .. }));
    assert!(err.to_string().contains("not a directory"), "{err}");
}

#[test]
fn manifest_json_has_the_wire_shape() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), &[("m.go", "package m\n")]);
    let m = manifest(dir.path());
    let json: serde_json::Value = serde_json::to_value(&m).expect("json");
    let keys: Vec<&str> = json
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["files", "hash", "metadata"]);
    assert_eq!(
        json["files"][0],
        serde_json::json!({
            "path": "m.go",
            "hash": blake3::hash(b"package m\n").to_hex().to_string(),
            "size": 10,
            "language": "go",
        })
    );
}
