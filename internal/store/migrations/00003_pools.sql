-- Address pools: the management network and the routed edge subnets whose
-- addresses the controller hands out, the pool each host's address is
-- from, and the DHCP leases it has given. Exactly one pool has the
-- management role.

-- +goose Up
INSERT INTO counters (name, value) VALUES ('pools', 0);

CREATE TABLE address_pools (
    id            BIGINT PRIMARY KEY,
    uuid          TEXT NOT NULL,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('management', 'edge')),
    mode          TEXT NOT NULL CHECK (mode IN ('static', 'dynamic')),
    network       TEXT NOT NULL,
    ranges        TEXT NOT NULL DEFAULT '',
    gateway       TEXT NOT NULL DEFAULT '',
    dns           TEXT NOT NULL DEFAULT '',
    ntp           TEXT NOT NULL DEFAULT '',
    reserved      TEXT NOT NULL DEFAULT '',
    lease_seconds BIGINT NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    CONSTRAINT address_pools_uuid_key UNIQUE (uuid),
    CONSTRAINT address_pools_name_key UNIQUE (name)
);
CREATE UNIQUE INDEX address_pools_one_management ON address_pools (role) WHERE role = 'management';

ALTER TABLE hosts ADD COLUMN pool_id BIGINT REFERENCES address_pools (id);
CREATE INDEX hosts_pool_idx ON hosts (pool_id, id);

CREATE TABLE dhcp_leases (
    mac        TEXT PRIMARY KEY,
    ip         TEXT NOT NULL,
    host_id    BIGINT NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    pool_id    BIGINT NOT NULL REFERENCES address_pools (id),
    expires_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX dhcp_leases_host_idx ON dhcp_leases (host_id);

-- +goose Down
DROP TABLE dhcp_leases;
DROP INDEX hosts_pool_idx;
ALTER TABLE hosts DROP COLUMN pool_id;
DROP TABLE address_pools;
DELETE FROM counters WHERE name = 'pools';
