-- The state of redundant apps: what the operator set beyond the app itself (a witness, the
-- health check), what the members' agents report (the active member and the epoch that
-- fences it, the last switchover and how long it took, each member's role and health), and
-- the planned switchover the operator asked for. The reported state only moves forward: a
-- report with a lower epoch than the stored one changes nothing.

-- +goose Up
CREATE TABLE app_state (
    app_id                   BIGINT PRIMARY KEY REFERENCES apps (id) ON DELETE CASCADE,
    -- The witness votes in the app's group but never runs the app.
    witness_host_id          BIGINT REFERENCES hosts (id) ON DELETE RESTRICT,
    health_kind              TEXT NOT NULL DEFAULT '' CHECK (health_kind IN ('', 'tcp', 'http', 'none')),
    health_path              TEXT NOT NULL DEFAULT '',
    active_host_id           BIGINT REFERENCES hosts (id) ON DELETE SET NULL,
    epoch                    BIGINT NOT NULL DEFAULT 0,
    -- switchover_seq is the last planned switchover asked for; pending until a member
    -- reports it done.
    switchover_seq           BIGINT NOT NULL DEFAULT 0,
    switchover_pending       BOOLEAN NOT NULL DEFAULT FALSE,
    switchover_to_host_id    BIGINT REFERENCES hosts (id) ON DELETE SET NULL,
    switchover_at            TIMESTAMP,
    last_switch_epoch        BIGINT NOT NULL DEFAULT 0,
    last_switch_at           TIMESTAMP,
    last_switch_from_host_id BIGINT REFERENCES hosts (id) ON DELETE SET NULL,
    last_switch_to_host_id   BIGINT REFERENCES hosts (id) ON DELETE SET NULL,
    last_switch_duration_ms  BIGINT NOT NULL DEFAULT 0,
    last_switch_reason       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX app_state_witness_idx ON app_state (witness_host_id);
INSERT INTO app_state (app_id) SELECT id FROM apps;

-- What each member last reported of an app, written only when it changes.
CREATE TABLE app_member_status (
    app_id      BIGINT NOT NULL,
    host_id     BIGINT NOT NULL,
    role        TEXT NOT NULL,
    healthy     BOOLEAN NOT NULL,
    reported_at TIMESTAMP NOT NULL,
    PRIMARY KEY (app_id, host_id),
    FOREIGN KEY (app_id, host_id) REFERENCES app_members (app_id, host_id) ON DELETE CASCADE
);

-- +goose Down
DROP TABLE app_member_status;
DROP TABLE app_state;
