-- Host locks: a lock is an operation that may drain the host's Kubernetes Node for minutes. Any
-- controller's API asks for one by writing its row; the leading controller carries it out,
-- noting its epoch and name, and a later leader takes over what an earlier one left draining.
-- A host has at most one lock draining at a time.

-- +goose Up
INSERT INTO counters (name, value) VALUES ('lock_ops', 0);
CREATE TABLE lock_ops (
    id           BIGINT PRIMARY KEY,
    uuid         TEXT NOT NULL,
    host_id      BIGINT NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    state        TEXT NOT NULL
        CHECK (state IN ('draining', 'locked', 'failed', 'cancelled')),
    force        BOOLEAN NOT NULL DEFAULT FALSE,
    timeout_ms   BIGINT NOT NULL,
    actor        TEXT NOT NULL,
    apps         TEXT NOT NULL DEFAULT '',
    drain        BOOLEAN NOT NULL DEFAULT FALSE,
    note         TEXT NOT NULL DEFAULT '',
    pods_total   INTEGER NOT NULL DEFAULT 0,
    pods_evicted INTEGER NOT NULL DEFAULT 0,
    pending      TEXT NOT NULL DEFAULT '',
    message      TEXT NOT NULL DEFAULT '',
    started_at   TIMESTAMP NOT NULL,
    finished_at  TIMESTAMP,
    updated_at   TIMESTAMP NOT NULL,
    epoch        BIGINT NOT NULL DEFAULT 0,
    runner       TEXT NOT NULL DEFAULT '',
    cancel_by    TEXT NOT NULL DEFAULT '',
    CONSTRAINT lock_ops_uuid_key UNIQUE (uuid)
);
CREATE UNIQUE INDEX lock_ops_draining ON lock_ops (host_id) WHERE state = 'draining';
CREATE INDEX lock_ops_host_idx ON lock_ops (host_id, id);

-- +goose Down
DROP TABLE lock_ops;
DELETE FROM counters WHERE name = 'lock_ops';
