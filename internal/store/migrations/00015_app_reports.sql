-- What each voter of an app's group (a member or the witness) last reported of it, as it
-- reported it: the active member and epoch it knows, its own role and health, and the last
-- switchover it knows. The controller shows what a majority of the voters confirm, never
-- what one voter alone says; app_member_status holds what it shows of each member.

-- +goose Up
CREATE TABLE app_reports (
    app_id         BIGINT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    host_id        BIGINT NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    -- 0: no active member known, or one that is not a member of the app.
    active_host_id BIGINT NOT NULL DEFAULT 0,
    epoch          BIGINT NOT NULL DEFAULT 0,
    role           TEXT NOT NULL DEFAULT '',
    healthy        BOOLEAN NOT NULL DEFAULT FALSE,
    switchover_seq BIGINT NOT NULL DEFAULT 0,
    -- The last switchover as the voter reported it (JSON), '' for none.
    last_switch    TEXT NOT NULL DEFAULT '',
    reported_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (app_id, host_id)
);
CREATE INDEX app_reports_host_idx ON app_reports (host_id);

-- +goose Down
DROP TABLE app_reports;
