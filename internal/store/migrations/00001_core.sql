-- The controller core: hosts and their labels, API tokens, the event log,
-- and the counters that hand out ids. This SQL runs unchanged on SQLite and
-- PostgreSQL: ids come from the counters table (not from a dialect's
-- auto-increment), timestamps are UTC TIMESTAMPs, secrets are hex TEXT.

-- +goose Up
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('hosts', 0), ('events', 0);

CREATE TABLE hosts (
    id             BIGINT PRIMARY KEY,
    uuid           TEXT NOT NULL,
    hostname       TEXT NOT NULL,
    personality    TEXT NOT NULL
        CHECK (personality IN ('controller', 'worker', 'storage', 'edgeworker')),
    administrative TEXT NOT NULL CHECK (administrative IN ('locked', 'unlocked')),
    operational    TEXT NOT NULL CHECK (operational IN ('disabled', 'enabled')),
    availability   TEXT NOT NULL
        CHECK (availability IN ('offline', 'online', 'available', 'degraded', 'failed')),
    invprovision   TEXT NOT NULL
        CHECK (invprovision IN ('unprovisioned', 'provisioning', 'provisioned', 'failed')),
    mgmt_mac       TEXT,
    mgmt_ip        TEXT,
    location       TEXT NOT NULL DEFAULT '',
    host_group     TEXT NOT NULL DEFAULT '',
    bm_type        TEXT NOT NULL DEFAULT '',
    bm_ip          TEXT NOT NULL DEFAULT '',
    bm_username    TEXT NOT NULL DEFAULT '',
    created_at     TIMESTAMP NOT NULL,
    updated_at     TIMESTAMP NOT NULL,
    CONSTRAINT hosts_uuid_key UNIQUE (uuid),
    CONSTRAINT hosts_hostname_key UNIQUE (hostname),
    CONSTRAINT hosts_mgmt_mac_key UNIQUE (mgmt_mac),
    CONSTRAINT hosts_mgmt_ip_key UNIQUE (mgmt_ip)
);
CREATE INDEX hosts_personality_idx ON hosts (personality, id);
CREATE INDEX hosts_group_idx ON hosts (host_group, id);

CREATE TABLE host_labels (
    host_id BIGINT NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (host_id, key)
);
CREATE INDEX host_labels_key_value_idx ON host_labels (key, value);

CREATE TABLE tokens (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL DEFAULT 'api',
    role          TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    created_by    TEXT NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    expires_at    TIMESTAMP
);

CREATE TABLE events (
    id          BIGINT PRIMARY KEY,
    uuid        TEXT NOT NULL,
    event_time  TIMESTAMP NOT NULL,
    code        TEXT NOT NULL DEFAULT '',
    entity_type TEXT NOT NULL,
    entity_id   TEXT NOT NULL,
    action      TEXT NOT NULL,
    actor       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    CONSTRAINT events_uuid_key UNIQUE (uuid)
);
CREATE INDEX events_entity_idx ON events (entity_type, entity_id, id);

-- +goose Down
DROP TABLE events;
DROP TABLE tokens;
DROP TABLE host_labels;
DROP TABLE hosts;
DROP TABLE counters;
