//! `repo_sync` `{url, branch}`: mirrors a git remote with the `git` CLI into
//! `<data_dir>/mirrors/<project id>/<url digest>.git` (cloned once, fetched afterwards), then
//! records the branch's commit as a committed snapshot of the project: every file's content
//! goes to the blob store (counted against the project's quota) and the snapshot appears in
//! `GET …/snapshots` like an uploaded one, with `git_commit`/`git_ref`/`source` metadata.
//!
//! Idempotent by job id: the snapshot's id is the job's id, so a redelivered job finds its
//! snapshot and returns it. URLs may not carry passwords (they would be stored with the job's
//! params): an http(s) remote that needs them gets the project's git credentials
//! (`jobs::git_credentials`, `PUT …/git-credentials`) as a header git reads from its
//! environment, never from its command line. git's output is redacted (URL credentials, the
//! secret, the header) before it becomes an error, and a remote refusing access is a
//! permanent failure that says which credentials to set. Transports are limited to https,
//! http, ssh and git (`GIT_ALLOW_PROTOCOL`); local `file://` remotes only with
//! `repo_sync_allow_local` (tests).

use crate::config::redact_url;
use crate::jobs::git_credentials::{self, GitCredentials};
use crate::state::AppState;
use crate::store::{AddBlob, Snapshot};
use crate::worker::{JobContext, JobError, JobHandler};
use hivesync_protocol::{Language, Manifest, ManifestFile};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use uuid::Uuid;

pub const KIND: &str = "repo_sync";

pub struct RepoSync;

struct Params {
    url: String,
    branch: String,
}

fn parse(params: &Value, allow_local: bool) -> Result<Params, String> {
    let url = params["url"]
        .as_str()
        .ok_or("params.url must be a git remote URL (https://, ssh://, git://)")?
        .trim()
        .to_string();
    let branch = params["branch"]
        .as_str()
        .ok_or("params.branch must be a branch name")?
        .trim()
        .to_string();
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("https" | "http" | "ssh" | "git") => {}
        Some("file") if allow_local => {}
        Some("file") => {
            return Err(
                "params.url: file:// remotes are not allowed on this server (repo_sync_allow_local)"
                    .into(),
            );
        }
        _ => {
            return Err(format!(
                "params.url `{}` is not an https://, http://, ssh:// or git:// URL",
                redact_url(&url)
            ));
        }
    }
    if url.starts_with('-') || url.chars().any(char::is_control) {
        return Err("params.url is not a valid URL".into());
    }
    if let Some((_, rest)) = url.split_once("://")
        && rest
            .split('/')
            .next()
            .is_some_and(|auth| auth.contains(':') && auth.contains('@'))
    {
        return Err("params.url must not carry a password (the URL is stored with the job); \
                    set the project's git credentials instead (PUT /api/v1/projects/{id}/git-credentials)"
            .into());
    }
    let valid_branch = !branch.is_empty()
        && !branch.starts_with(['-', '/', '.'])
        && !branch.ends_with(['/', '.'])
        && !branch.contains("..")
        && !branch.contains("//")
        && !branch.ends_with(".lock")
        && branch
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'));
    if !valid_branch {
        return Err(format!(
            "params.branch `{branch}` is not a valid branch name"
        ));
    }
    Ok(Params { url, branch })
}

#[async_trait::async_trait]
impl JobHandler for RepoSync {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn validate(&self, state: &AppState, _: Uuid, params: &Value) -> Result<(), String> {
        parse(params, state.config.config.repo_sync_allow_local).map(|_| ())
    }

    async fn run(&self, ctx: &JobContext) -> Result<Value, JobError> {
        let state = &ctx.state;
        let (project_id, job_id) = (ctx.job.project_id, ctx.job.id);
        let p = parse(&ctx.job.params, state.config.config.repo_sync_allow_local)
            .map_err(JobError::Permanent)?;
        // A redelivery of a job that already recorded its snapshot.
        if let Some(s) = state
            .snapshots
            .snapshot(project_id, job_id)
            .await
            .map_err(db)?
            && s.committed_at.is_some()
        {
            return Ok(
                json!({"snapshot_id": s.id, "manifest_hash": s.manifest_hash,
                             "file_count": s.file_count}),
            );
        }
        let credentials = git_credentials::load(&state.sql, project_id)
            .await
            .map_err(db)?;
        ctx.progress(0, 3, "fetching").await?;
        let mirror = mirror_dir(state, project_id, &p.url);
        let remote = Remote {
            url: &p.url,
            credentials: credentials.as_ref(),
        };
        fetch(&mirror, &remote, state.config.config.repo_sync_allow_local).await?;
        let commit = git(
            &mirror,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("refs/heads/{}^{{commit}}", p.branch),
            ],
            &p.url,
        )
        .await
        .map_err(|_| {
            JobError::Permanent(format!("branch `{}` not found in the remote", p.branch))
        })?;
        let commit = String::from_utf8_lossy(&commit).trim().to_string();
        ctx.progress(1, 3, "reading files").await?;
        let files = tree(&mirror, &commit, &p.url).await?;
        let total = files.len() as u64;
        let mut manifest_files = Vec::with_capacity(files.len());
        let quota = state.config.config.project_quota_bytes;
        let contents = read_blobs(&mirror, &files, &p.url).await?;
        for (i, ((path, _), content)) in files.iter().zip(contents).enumerate() {
            let hash = hivesync_analysis::changeset::content_hash(&content);
            let size = content.len() as u64;
            state
                .blobs
                .put(&hash, bytes::Bytes::from(content))
                .await
                .map_err(|e| JobError::Retryable(e.to_string()))?;
            if let AddBlob::OverQuota { used } = state
                .snapshots
                .add_blob(project_id, &hash, size, quota, crate::store::now())
                .await
                .map_err(db)?
            {
                return Err(JobError::Permanent(format!(
                    "the project's storage quota ({quota} bytes, {used} used) is too small for this commit"
                )));
            }
            manifest_files.push(ManifestFile {
                path: path.clone(),
                hash,
                size,
                language: Language::from_path(path),
            });
            if i % 64 == 0 {
                ctx.progress(1, 3, &format!("stored {i} of {total} files"))
                    .await?;
            }
        }
        manifest_files.sort_by(|a, b| a.path.cmp(&b.path));
        let manifest = Manifest {
            hash: hivesync_analysis::manifest::manifest_hash(&manifest_files),
            files: manifest_files,
            metadata: BTreeMap::from([
                ("git_commit".to_string(), commit.clone()),
                ("git_ref".to_string(), format!("refs/heads/{}", p.branch)),
                ("source".to_string(), redact_url(&p.url)),
            ]),
        };
        hivesync_analysis::manifest::validate_manifest(&manifest)
            .map_err(|e| JobError::Permanent(format!("the commit's tree: {e}")))?;
        ctx.progress(2, 3, "recording the snapshot").await?;
        let now = crate::store::now();
        let snapshot = Snapshot {
            id: job_id,
            project_id,
            manifest_hash: manifest.hash.clone(),
            file_count: manifest.files.len() as u64,
            total_size: manifest.files.iter().map(|f| f.size).sum(),
            created_by: None,
            created_at: now,
            committed_at: None,
        };
        let text =
            serde_json::to_string(&manifest).map_err(|e| JobError::Permanent(e.to_string()))?;
        if state
            .snapshots
            .snapshot(project_id, job_id)
            .await
            .map_err(db)?
            .is_none()
        {
            state
                .snapshots
                .create_snapshot(&snapshot, &text)
                .await
                .map_err(db)?;
        }
        state
            .snapshots
            .commit_snapshot(project_id, job_id, now)
            .await
            .map_err(db)?;
        let _ = state
            .emit(
                project_id,
                "snapshot.committed",
                None,
                json!({"snapshot_id": job_id, "manifest_hash": manifest.hash,
                       "file_count": snapshot.file_count, "job_id": job_id}),
            )
            .await;
        ctx.progress(3, 3, "done").await?;
        Ok(
            json!({"snapshot_id": job_id, "manifest_hash": manifest.hash,
                  "file_count": snapshot.file_count, "commit": commit}),
        )
    }
}

fn db(e: impl std::fmt::Display) -> JobError {
    JobError::Retryable(format!("database: {e}"))
}

fn mirror_dir(state: &AppState, project_id: Uuid, url: &str) -> PathBuf {
    let digest = hivesync_analysis::changeset::content_hash(url.as_bytes());
    state
        .config
        .config
        .data_dir
        .join("mirrors")
        .join(project_id.to_string())
        .join(format!("{}.git", &digest[..16]))
}

/// The remote a job syncs: its URL and the project's credentials, if any.
struct Remote<'a> {
    url: &'a str,
    credentials: Option<&'a GitCredentials>,
}

impl Remote<'_> {
    /// git's output without the URL's credentials or the project's secret.
    fn redact(&self, text: &str) -> String {
        let text = text.replace(self.url, &redact_url(self.url));
        match self.credentials {
            Some(c) => c.redact(&text),
            None => text,
        }
    }

    /// Hands the credentials to git for this remote only, through its environment
    /// (`GIT_CONFIG_COUNT`/`KEY`/`VALUE`: neither the command line nor the mirror's config).
    fn authorize(&self, cmd: &mut Command) {
        let Some(c) = self.credentials else { return };
        let scheme = self
            .url
            .split_once("://")
            .map(|(s, _)| s.to_ascii_lowercase());
        if !matches!(scheme.as_deref(), Some("http" | "https")) {
            return;
        }
        cmd.env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", format!("http.{}.extraHeader", self.url))
            .env(
                "GIT_CONFIG_VALUE_0",
                format!("Authorization: {}", c.authorization()),
            );
    }
}

fn command(allow_local: bool) -> Command {
    let mut cmd = Command::new("git");
    // Tracing would copy requests (and their headers) to stderr.
    for var in [
        "GIT_TRACE",
        "GIT_TRACE_CURL",
        "GIT_TRACE_PACKET",
        "GIT_CURL_VERBOSE",
        "GIT_TRACE_REDACT",
        "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_COUNT",
        "GIT_ASKPASS",
        "SSH_ASKPASS",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env(
            "GIT_ALLOW_PROTOCOL",
            if allow_local {
                "https:http:ssh:git:file"
            } else {
                "https:http:ssh:git"
            },
        )
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// Runs git in `dir` on the local mirror; stdout on success. Errors never show the URL's
/// credentials.
async fn git(dir: &Path, args: &[&str], url: &str) -> Result<Vec<u8>, JobError> {
    let out = command(true)
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .await
        .map_err(|e| JobError::Permanent(format!("cannot run git: {e}")))?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(JobError::Retryable(git_error(
            &out.stderr,
            &Remote {
                url,
                credentials: None,
            },
        )))
    }
}

fn git_error(stderr: &[u8], remote: &Remote<'_>) -> String {
    let text = remote.redact(&String::from_utf8_lossy(stderr));
    let line = text
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("git failed");
    format!("git: {line}")
}

/// What the remote's refusal means for the job: retrying cannot help until someone sets (or
/// fixes) the project's git credentials.
fn fetch_error(stderr: &[u8], remote: &Remote<'_>) -> JobError {
    let text = String::from_utf8_lossy(stderr);
    let refused = [
        "could not read Username",
        "could not read Password",
        "Authentication failed",
        "The requested URL returned error: 401",
        "The requested URL returned error: 403",
    ]
    .iter()
    .any(|needle| text.contains(needle));
    let error = git_error(stderr, remote);
    if !refused {
        return JobError::Retryable(error);
    }
    JobError::Permanent(match remote.credentials {
        None => format!(
            "the remote requires authentication and the project has no git credentials \
             (set them with PUT /api/v1/projects/{{id}}/git-credentials); {error}"
        ),
        Some(c) => format!(
            "the remote refused the project's git credentials (user `{}`); {error}",
            c.username
        ),
    })
}

/// Clones the mirror once, fetches it afterwards.
async fn fetch(mirror: &Path, remote: &Remote<'_>, allow_local: bool) -> Result<(), JobError> {
    let io = |e: std::io::Error| JobError::Retryable(format!("mirror storage: {e}"));
    let url = remote.url;
    let with_credentials = || {
        let mut cmd = command(allow_local);
        remote.authorize(&mut cmd);
        cmd
    };
    let out = if mirror.join("HEAD").is_file() {
        with_credentials()
            .arg("-C")
            .arg(mirror)
            .args([
                "fetch",
                "--prune",
                "--quiet",
                "--",
                url,
                "+refs/heads/*:refs/heads/*",
            ])
            .output()
            .await
    } else {
        let parent = mirror.parent().unwrap_or(mirror);
        tokio::fs::create_dir_all(parent).await.map_err(io)?;
        let tmp = parent.join(format!(".clone-{}", Uuid::new_v4()));
        let out = with_credentials()
            .args(["clone", "--mirror", "--quiet", "--", url])
            .arg(&tmp)
            .output()
            .await;
        if matches!(&out, Ok(o) if o.status.success()) {
            if let Err(e) = tokio::fs::rename(&tmp, mirror).await {
                let _ = tokio::fs::remove_dir_all(&tmp).await;
                // Another job cloned it meanwhile: use theirs.
                if !mirror.join("HEAD").is_file() {
                    return Err(io(e));
                }
            }
        } else {
            let _ = tokio::fs::remove_dir_all(&tmp).await;
        }
        out
    }
    .map_err(|e| JobError::Permanent(format!("cannot run git: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(fetch_error(&out.stderr, remote))
    }
}

/// The commit's regular files: (path, object id). Symlinks and submodules are left out.
async fn tree(mirror: &Path, commit: &str, url: &str) -> Result<Vec<(String, String)>, JobError> {
    let out = git(mirror, &["ls-tree", "-r", "-z", "--full-tree", commit], url).await?;
    let mut files = Vec::new();
    for entry in out.split(|b| *b == 0).filter(|e| !e.is_empty()) {
        let entry = String::from_utf8_lossy(entry);
        let Some((meta, path)) = entry.split_once('\t') else {
            continue;
        };
        let mut parts = meta.split(' ');
        let (mode, kind, oid) = (parts.next(), parts.next(), parts.next());
        if kind == Some("blob")
            && matches!(mode, Some("100644" | "100755"))
            && let Some(oid) = oid
        {
            files.push((path.to_string(), oid.to_string()));
        }
    }
    Ok(files)
}

/// The contents of `files`, in order, through one `git cat-file --batch`.
async fn read_blobs(
    mirror: &Path,
    files: &[(String, String)],
    url: &str,
) -> Result<Vec<Vec<u8>>, JobError> {
    let fail = |e: std::io::Error| JobError::Retryable(format!("git cat-file: {e}"));
    let mut child = command(true)
        .arg("-C")
        .arg(mirror)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| JobError::Permanent(format!("cannot run git: {e}")))?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| fail(std::io::Error::other("stdin")))?;
    let input: String = files.iter().map(|(_, oid)| format!("{oid}\n")).collect();
    let writer = tokio::spawn(async move {
        let r = stdin.write_all(input.as_bytes()).await;
        drop(stdin);
        r
    });
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| fail(std::io::Error::other("stdout")))?;
    let mut reader = BufReader::new(stdout);
    let mut contents = Vec::with_capacity(files.len());
    for (path, _) in files {
        let mut header = String::new();
        reader.read_line(&mut header).await.map_err(fail)?;
        let size: usize = header
            .split(' ')
            .nth(2)
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| {
                JobError::Retryable(format!(
                    "git cat-file: cannot read `{path}`: {}",
                    header.trim()
                ))
            })?;
        let mut buf = vec![0; size + 1];
        reader.read_exact(&mut buf).await.map_err(fail)?;
        buf.truncate(size);
        contents.push(buf);
    }
    let _ = writer.await;
    let status = child.wait_with_output().await.map_err(fail)?;
    if !status.status.success() {
        return Err(JobError::Retryable(git_error(
            &status.stderr,
            &Remote {
                url,
                credentials: None,
            },
        )));
    }
    Ok(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_checked() {
        let ok = parse(
            &json!({"url": "https://example.com/r.git", "branch": "main"}),
            false,
        );
        assert!(ok.is_ok());
        for (params, needle) in [
            (json!({"branch": "main"}), "params.url"),
            (json!({"url": "https://example.com/r.git"}), "params.branch"),
            (
                json!({"url": "ext::sh -c x", "branch": "main"}),
                "not an https",
            ),
            (
                json!({"url": "file:///srv/r.git", "branch": "main"}),
                "file://",
            ),
            (
                json!({"url": "https://u:secret@example.com/r.git", "branch": "main"}),
                "password",
            ),
            (
                json!({"url": "https://example.com/r.git", "branch": "a..b"}),
                "branch",
            ),
            (
                json!({"url": "https://example.com/r.git", "branch": "-x"}),
                "branch",
            ),
        ] {
            let err = parse(&params, false).err().unwrap_or_default();
            assert!(err.contains(needle), "{params}: {err}");
            assert!(!err.contains("secret"), "{err}");
        }
        assert!(parse(&json!({"url": "file:///srv/r.git", "branch": "main"}), true).is_ok());
    }

    #[test]
    fn git_errors_hide_credentials() {
        let msg = git_error(
            b"fatal: could not read from https://u:tok@h/r.git\n",
            &Remote {
                url: "https://u:tok@h/r.git",
                credentials: None,
            },
        );
        assert!(!msg.contains("tok"), "{msg}");
        let credentials = GitCredentials {
            username: "bot".into(),
            secret: crate::ai::Secret::new("s3cret-token"),
        };
        let remote = Remote {
            url: "https://h/r.git",
            credentials: Some(&credentials),
        };
        let err = fetch_error(
            format!(
                "> Authorization: {}\nfatal: Authentication failed for s3cret-token\n",
                credentials.authorization()
            )
            .as_bytes(),
            &remote,
        );
        let JobError::Permanent(msg) = err else {
            panic!("an authentication failure is permanent: {err:?}");
        };
        assert!(
            msg.contains("refused the project's git credentials"),
            "{msg}"
        );
        assert!(!msg.contains("s3cret"), "{msg}");
    }
}
