-- Which hosts' agents each controller heard from, written by each controller a few times a
-- second as one row of host ids (not a row per heartbeat), so that the leader's heartbeat
-- monitor counts heartbeats that reached any controller. The leader deletes the rows it
-- applied; each controller deletes its own old rows, so the table stays small without a leader.

-- +goose Up
CREATE TABLE heard (
    -- The writing controller's id (a new one at each start) and its count of rows.
    controller TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    -- Host ids, comma-separated.
    host_ids   TEXT NOT NULL,
    -- The writer's clock, for people.
    heard_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (controller, seq)
);

-- +goose Down
DROP TABLE heard;
