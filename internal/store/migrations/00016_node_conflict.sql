-- A host's node state may be Conflict: a Node of the host's name exists that is not the host's
-- (it lacks the host's ownership mark), and Hummingbird leaves it alone. A CHECK constraint
-- cannot be changed in place in SQLite: the table is made again, with its rows.

-- +goose Up
CREATE TABLE host_nodes_new (
    host_id         BIGINT PRIMARY KEY REFERENCES hosts (id) ON DELETE CASCADE,
    state           TEXT NOT NULL CHECK (state IN ('Ready', 'NotReady', 'Conflict')),
    kubelet_version TEXT NOT NULL DEFAULT '',
    reason          TEXT NOT NULL DEFAULT '',
    updated_at      TIMESTAMP NOT NULL
);
INSERT INTO host_nodes_new (host_id, state, kubelet_version, reason, updated_at)
    SELECT host_id, state, kubelet_version, reason, updated_at FROM host_nodes;
DROP TABLE host_nodes;
ALTER TABLE host_nodes_new RENAME TO host_nodes;

-- +goose Down
CREATE TABLE host_nodes_old (
    host_id         BIGINT PRIMARY KEY REFERENCES hosts (id) ON DELETE CASCADE,
    state           TEXT NOT NULL CHECK (state IN ('Ready', 'NotReady')),
    kubelet_version TEXT NOT NULL DEFAULT '',
    reason          TEXT NOT NULL DEFAULT '',
    updated_at      TIMESTAMP NOT NULL
);
INSERT INTO host_nodes_old (host_id, state, kubelet_version, reason, updated_at)
    SELECT host_id, state, kubelet_version, reason, updated_at FROM host_nodes WHERE state <> 'Conflict';
DROP TABLE host_nodes;
ALTER TABLE host_nodes_old RENAME TO host_nodes;
