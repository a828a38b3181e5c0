-- Where a dynamic pool's next allocation starts looking: every address of
-- the pool below alloc_from is held by a host (empty: look from the
-- start). Allocations move it up, released addresses down, so that an
-- allocation reads a few addresses instead of every host of the pool.

-- +goose Up
ALTER TABLE address_pools ADD COLUMN alloc_from TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE address_pools DROP COLUMN alloc_from;
