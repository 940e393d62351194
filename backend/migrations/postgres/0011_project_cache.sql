-- Invalidation of the API's in-process membership cache (store/project_cache.rs): every change
-- of a membership notifies `u:<user id>`, every change of a project's row `p:<project id>`, on
-- channel `hivesync_projects`, which every instance LISTENs to. Notifications are sent at
-- commit (and not at all on rollback). A project's deletion also notifies each member through
-- the cascade on project_members.
CREATE FUNCTION hivesync_notify_member() RETURNS trigger AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM pg_notify('hivesync_projects', 'u:' || OLD.user_id);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM pg_notify('hivesync_projects', 'u:' || NEW.user_id);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION hivesync_notify_project() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('hivesync_projects', 'p:' || OLD.id);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION hivesync_notify_all() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('hivesync_projects', '*');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER project_members_notify AFTER INSERT OR UPDATE OR DELETE ON project_members
    FOR EACH ROW EXECUTE FUNCTION hivesync_notify_member();
-- Only real changes: adding or removing a member also "touches" the project row to take its
-- lock (`SET updated_at = updated_at`), which changes nothing cached.
CREATE TRIGGER projects_notify_update AFTER UPDATE ON projects
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION hivesync_notify_project();
CREATE TRIGGER projects_notify_delete AFTER DELETE ON projects
    FOR EACH ROW EXECUTE FUNCTION hivesync_notify_project();
CREATE TRIGGER project_members_notify_truncate AFTER TRUNCATE ON project_members
    FOR EACH STATEMENT EXECUTE FUNCTION hivesync_notify_all();
CREATE TRIGGER projects_notify_truncate AFTER TRUNCATE ON projects
    FOR EACH STATEMENT EXECUTE FUNCTION hivesync_notify_all();
