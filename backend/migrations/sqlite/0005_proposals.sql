-- Proposals: a ChangeSet computed by a job (AI documentation, a refactor) on a snapshot, reviewed
-- hunk by hunk, applied and reverted by clients. Same SQL on SQLite and PostgreSQL: ids are UUID
-- text, times Unix ms. Nothing here ever writes to a user's files; clients apply.
CREATE TABLE proposals (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    -- The job that made it: one proposal per job, so a redelivered job finds the first one.
    job_id TEXT NOT NULL UNIQUE,
    snapshot_id TEXT NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
    manifest_hash TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('docs', 'refactor')),
    title TEXT NOT NULL,
    -- The ChangeSet (hivesync_protocol::ChangeSet) as JSON, exact and probable edits marked.
    changeset TEXT NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('pending', 'approved', 'partially_approved', 'rejected')),
    created_by TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    reviewed_by TEXT,
    reviewed_at BIGINT,
    -- The snapshot a client applied it to, while applied (NULL when never applied or reverted).
    applied_snapshot_id TEXT
);
CREATE INDEX proposals_project ON proposals (project_id, created_at);

-- The latest decision per hunk (hunk ids are stable: see routes/proposals.rs).
CREATE TABLE proposal_decisions (
    proposal_id TEXT NOT NULL REFERENCES proposals (id) ON DELETE CASCADE,
    hunk_id TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('accept', 'reject')),
    decided_by TEXT NOT NULL,
    decided_at BIGINT NOT NULL,
    PRIMARY KEY (proposal_id, hunk_id)
);

-- Who applied or reverted it, where, and when; oldest first.
CREATE TABLE proposal_applications (
    id TEXT PRIMARY KEY,
    proposal_id TEXT NOT NULL REFERENCES proposals (id) ON DELETE CASCADE,
    action TEXT NOT NULL CHECK (action IN ('applied', 'reverted')),
    snapshot_id TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX proposal_applications_proposal ON proposal_applications (proposal_id, created_at);
