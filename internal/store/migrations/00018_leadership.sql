-- Who leads the duties that must run once however many controllers share the database (the
-- heartbeat monitor's deadlines, the reconcilers, jobs, DHCP, the alarm webhook). A row per duty,
-- written only by compare-and-swap on version: the holder renews it by bumping version; another
-- controller that sees version stand still for the lease time takes over with the next epoch.
-- Writes made for a duty carry its epoch and are refused once the row holds a newer one.

-- +goose Up
CREATE TABLE leadership (
    duty       TEXT PRIMARY KEY,
    -- The leading controller's id, '' when it gave the duty up.
    holder     TEXT NOT NULL,
    -- Where the holder's API listens, for people.
    address    TEXT NOT NULL DEFAULT '',
    -- Grows by one with each new holder; the fencing token.
    epoch      BIGINT NOT NULL,
    -- Grows by one with each write of the row.
    version    BIGINT NOT NULL,
    -- The holder's clock at the last renewal, for people: no controller compares it with its own.
    renewed_at TIMESTAMP NOT NULL
);

-- +goose Down
DROP TABLE leadership;
