-- The controllers that share the database, each renewing its row while it runs (hbctl
-- controller-list shows them; the leader raises 400.005 for one that stopped renewing). A
-- controller that stops cleanly deletes its row.

-- +goose Up
CREATE TABLE controllers (
    -- The controller's name (--name, by default its machine's hostname): a restart keeps it.
    name       TEXT PRIMARY KEY,
    -- This run's id: the leadership row's holder while it leads.
    run_id     TEXT NOT NULL,
    address    TEXT NOT NULL,
    version    TEXT NOT NULL,
    -- The parts it runs while it leads, comma-separated.
    duties     TEXT NOT NULL DEFAULT '',
    started_at TIMESTAMP NOT NULL,
    -- Grows with each renewal; seen_at is the controller's clock then, for people.
    seen       BIGINT NOT NULL,
    seen_at    TIMESTAMP NOT NULL
);

-- +goose Down
DROP TABLE controllers;
