-- Groups (federations) of hosts. A host's host_group names one; the groups
-- already named by hosts become groups, so nothing stored is lost.

-- +goose Up
CREATE TABLE host_groups (
    name        TEXT PRIMARY KEY,
    description TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);
INSERT INTO host_groups (name, description, created_at, updated_at)
    SELECT DISTINCT host_group, '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM hosts WHERE host_group <> '';

-- +goose Down
DROP TABLE host_groups;
