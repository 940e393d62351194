-- Invalidation of the API's in-process membership cache (store/project_cache.rs) across
-- processes sharing this file: every change of `projects` or `project_members` bumps the
-- `projects` counter, which each process polls; a change clears its cache.
CREATE TABLE change_counters (
    name TEXT PRIMARY KEY,
    counter BIGINT NOT NULL
);
INSERT INTO change_counters (name, counter) VALUES ('projects', 0);

CREATE TRIGGER project_members_insert_count AFTER INSERT ON project_members BEGIN
    UPDATE change_counters SET counter = counter + 1 WHERE name = 'projects';
END;
CREATE TRIGGER project_members_update_count AFTER UPDATE ON project_members BEGIN
    UPDATE change_counters SET counter = counter + 1 WHERE name = 'projects';
END;
CREATE TRIGGER project_members_delete_count AFTER DELETE ON project_members BEGIN
    UPDATE change_counters SET counter = counter + 1 WHERE name = 'projects';
END;
-- Only real changes: adding or removing a member also "touches" the project row to take the
-- write lock (`SET updated_at = updated_at`), which changes nothing cached.
CREATE TRIGGER projects_update_count AFTER UPDATE ON projects
WHEN OLD.id IS NOT NEW.id OR OLD.name IS NOT NEW.name OR OLD.description IS NOT NEW.description
    OR OLD.created_at IS NOT NEW.created_at OR OLD.updated_at IS NOT NEW.updated_at
BEGIN
    UPDATE change_counters SET counter = counter + 1 WHERE name = 'projects';
END;
CREATE TRIGGER projects_delete_count AFTER DELETE ON projects BEGIN
    UPDATE change_counters SET counter = counter + 1 WHERE name = 'projects';
END;
