-- Apps: redundant edge apps that run warm on several edgeworkers of a group,
-- one member active at a time. The members are listed in order of preference.
-- A group with apps, and a host that is an app's member, cannot be deleted.

-- +goose Up
INSERT INTO counters (name, value) VALUES ('apps', 0);
CREATE TABLE apps (
    id         BIGINT PRIMARY KEY,
    uuid       TEXT NOT NULL,
    name       TEXT NOT NULL,
    group_name TEXT NOT NULL REFERENCES host_groups (name) ON DELETE RESTRICT,
    image      TEXT NOT NULL,
    port       INTEGER NOT NULL DEFAULT 0 CHECK (port BETWEEN 0 AND 65535),
    vip        TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CONSTRAINT apps_uuid_key UNIQUE (uuid),
    CONSTRAINT apps_name_key UNIQUE (name)
);
CREATE INDEX apps_group_idx ON apps (group_name);

CREATE TABLE app_members (
    app_id   BIGINT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    host_id  BIGINT NOT NULL REFERENCES hosts (id) ON DELETE RESTRICT,
    position INTEGER NOT NULL,
    PRIMARY KEY (app_id, host_id)
);
CREATE INDEX app_members_host_idx ON app_members (host_id);

-- +goose Down
DROP TABLE app_members;
DROP TABLE apps;
DELETE FROM counters WHERE name = 'apps';
