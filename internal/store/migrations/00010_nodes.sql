-- Kubernetes follows the inventory: labels a group gives every member's Node,
-- and what the controller last read of each host's Node.

-- +goose Up
CREATE TABLE group_labels (
    group_name TEXT NOT NULL REFERENCES host_groups (name) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (group_name, key)
);
CREATE TABLE host_nodes (
    host_id         BIGINT PRIMARY KEY REFERENCES hosts (id) ON DELETE CASCADE,
    state           TEXT NOT NULL CHECK (state IN ('Ready', 'NotReady')),
    kubelet_version TEXT NOT NULL DEFAULT '',
    reason          TEXT NOT NULL DEFAULT '',
    updated_at      TIMESTAMP NOT NULL
);

-- +goose Down
DROP TABLE host_nodes;
DROP TABLE group_labels;
