-- Jobs runtime. Maintenance jobs that belong to no project (the scheduled `preview_cleanup`)
-- are recorded under this reserved project: it has no members, so no user ever sees it.
INSERT INTO projects (id, name, description, created_at, updated_at)
VALUES ('00000000-0000-0000-0000-000000000000', 'system', 'Reserved: maintenance jobs', 0, 0);

-- When the job was last handed to the broker (RabbitMQ) for its current `queued` state; NULL
-- while it still has to be (created, or queued again for a retry, but not yet confirmed).
-- The sweeper re-publishes queued rows left NULL, so a broker outage at enqueue loses no job.
ALTER TABLE jobs ADD COLUMN published_at BIGINT;
CREATE INDEX jobs_unpublished ON jobs (status, published_at);
