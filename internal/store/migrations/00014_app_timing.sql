-- An app's failure detection, as the operator set it: the heartbeat time (a standby that
-- hears nothing from the active for this long starts an election), how many times the
-- active probes every member in it, and lean probing (the probes alone on the wire).
-- 0 is the default of the members' agents.

-- +goose Up
ALTER TABLE app_state ADD COLUMN heartbeat_ms INTEGER NOT NULL DEFAULT 0
    CHECK (heartbeat_ms = 0 OR heartbeat_ms BETWEEN 20 AND 60000);
ALTER TABLE app_state ADD COLUMN probes INTEGER NOT NULL DEFAULT 0
    CHECK (probes = 0 OR probes BETWEEN 3 AND 50);
ALTER TABLE app_state ADD COLUMN lean_probes BOOLEAN NOT NULL DEFAULT FALSE;

-- +goose Down
ALTER TABLE app_state DROP COLUMN lean_probes;
ALTER TABLE app_state DROP COLUMN probes;
ALTER TABLE app_state DROP COLUMN heartbeat_ms;
