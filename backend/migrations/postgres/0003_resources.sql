-- Snapshots (the server's mirror of a project's files), their content-addressed blobs, and
-- preview sessions. Same SQL on SQLite and PostgreSQL: ids are UUID text, times Unix ms.

-- The blobs a project has uploaded (content lives in the blob store under its hash, shared by
-- every project; a project may only read the blobs it uploaded itself). `size` counts toward
-- the project's quota once per distinct hash.
CREATE TABLE project_blobs (
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    hash TEXT NOT NULL,
    size BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (project_id, hash)
);

CREATE TABLE snapshots (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    manifest_hash TEXT NOT NULL,
    -- The manifest as received (validated), JSON.
    manifest TEXT NOT NULL,
    file_count BIGINT NOT NULL,
    total_size BIGINT NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    committed_at BIGINT
);
CREATE INDEX snapshots_project ON snapshots (project_id, created_at);

CREATE TABLE previews (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    entry TEXT NOT NULL,
    -- sha256 hex of the normalised token; the token itself is never stored.
    token_hash TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL CHECK (status IN ('pending', 'ready', 'revoked')),
    file_count BIGINT,
    size BIGINT,
    sha256 TEXT,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ready_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX previews_project ON previews (project_id, created_at);
CREATE INDEX previews_expires ON previews (expires_at);

-- Comment threads anchored to lines of a file in a snapshot. The anchor keeps the anchored
-- lines' text and a few lines of context, so the thread can be found again in later snapshots.
CREATE TABLE threads (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
    snapshot_id TEXT NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    file_hash TEXT NOT NULL,
    start_line BIGINT NOT NULL,
    end_line BIGINT NOT NULL,
    anchor_lines TEXT NOT NULL,
    context_before TEXT NOT NULL,
    context_after TEXT NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    resolved_by TEXT,
    resolved_at BIGINT
);
CREATE INDEX threads_project ON threads (project_id, created_at);

CREATE TABLE thread_comments (
    id TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    author_id TEXT,
    author_kind TEXT NOT NULL CHECK (author_kind IN ('user', 'ai')),
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    edited_at BIGINT,
    deleted_at BIGINT
);
CREATE INDEX thread_comments_thread ON thread_comments (thread_id, created_at, id);

-- Earlier bodies of edited comments, oldest first.
CREATE TABLE thread_comment_edits (
    id TEXT PRIMARY KEY,
    comment_id TEXT NOT NULL REFERENCES thread_comments (id) ON DELETE CASCADE,
    body TEXT NOT NULL,
    replaced_at BIGINT NOT NULL
);
CREATE INDEX thread_comment_edits_comment ON thread_comment_edits (comment_id, replaced_at);
