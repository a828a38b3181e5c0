-- Settings every controller on the database must agree on, written by the first: today the
-- pin of the controllers' CA, which signs every agent's certificate and which each controller
-- loads from its data directory.

-- +goose Up
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- +goose Down
DROP TABLE settings;
