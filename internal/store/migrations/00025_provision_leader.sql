-- Provisioning jobs run on the leading controller, whichever controller's API queued them: a
-- job notes the leader's epoch and name that run it, and a cancellation asked through any
-- controller (who asked), which the leader carries out.

-- +goose Up
ALTER TABLE provision_jobs ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE provision_jobs ADD COLUMN runner TEXT NOT NULL DEFAULT '';
ALTER TABLE provision_jobs ADD COLUMN cancel_by TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE provision_jobs DROP COLUMN cancel_by;
ALTER TABLE provision_jobs DROP COLUMN runner;
ALTER TABLE provision_jobs DROP COLUMN epoch;
