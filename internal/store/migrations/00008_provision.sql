-- Provisioning: the SSH login the controller uses to reach a host (the user,
-- and the name of a private-key credential the controller holds; never a
-- key itself), the provisioning jobs run against hosts, and their logs. A
-- host has at most one job queued or running at a time.

-- +goose Up
ALTER TABLE hosts ADD COLUMN ssh_user TEXT NOT NULL DEFAULT '';
ALTER TABLE hosts ADD COLUMN ssh_key TEXT NOT NULL DEFAULT '';

INSERT INTO counters (name, value) VALUES ('provision_jobs', 0);
CREATE TABLE provision_jobs (
    id          BIGINT PRIMARY KEY,
    uuid        TEXT NOT NULL,
    host_id     BIGINT NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    state       TEXT NOT NULL
        CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    reinstall   BOOLEAN NOT NULL DEFAULT FALSE,
    tasks_total INTEGER NOT NULL DEFAULT 0,
    tasks_done  INTEGER NOT NULL DEFAULT 0,
    changed     INTEGER NOT NULL DEFAULT 0,
    task        TEXT NOT NULL DEFAULT '',
    message     TEXT NOT NULL DEFAULT '',
    created_by  TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    started_at  TIMESTAMP,
    finished_at TIMESTAMP,
    updated_at  TIMESTAMP NOT NULL,
    CONSTRAINT provision_jobs_uuid_key UNIQUE (uuid)
);
CREATE UNIQUE INDEX provision_jobs_active ON provision_jobs (host_id) WHERE state IN ('queued', 'running');
CREATE INDEX provision_jobs_host_idx ON provision_jobs (host_id, id);

CREATE TABLE provision_log (
    job_id BIGINT NOT NULL REFERENCES provision_jobs (id) ON DELETE CASCADE,
    seq    BIGINT NOT NULL,
    text   TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);

-- +goose Down
DROP TABLE provision_log;
DROP TABLE provision_jobs;
DELETE FROM counters WHERE name = 'provision_jobs';
ALTER TABLE hosts DROP COLUMN ssh_key;
ALTER TABLE hosts DROP COLUMN ssh_user;
