-- Per-project git credentials for repo_sync (HTTP Basic for http(s) remotes; one row per
-- project). The secret is write-only through the API: stored here, never returned or logged.
CREATE TABLE git_credentials (
    project_id TEXT PRIMARY KEY REFERENCES projects(id) ON DELETE CASCADE,
    username TEXT NOT NULL,
    secret TEXT NOT NULL,
    updated_by TEXT,
    updated_at BIGINT NOT NULL
);
