-- Agents: enrollment tokens (API tokens of kind 'enroll' with a use limit
-- and an optional host), the certificate serial each host's agent holds,
-- its hardware inventory, and the active alarms.

-- +goose Up
ALTER TABLE tokens ADD COLUMN max_uses BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN uses BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN host_name TEXT NOT NULL DEFAULT '';

ALTER TABLE hosts ADD COLUMN agent_serial TEXT NOT NULL DEFAULT '';
ALTER TABLE hosts ADD COLUMN inventory TEXT NOT NULL DEFAULT '';
ALTER TABLE hosts ADD COLUMN inventory_hash TEXT NOT NULL DEFAULT '';

INSERT INTO counters (name, value) VALUES ('alarms', 0);
CREATE TABLE alarms (
    id                     BIGINT PRIMARY KEY,
    uuid                   TEXT NOT NULL,
    alarm_id               TEXT NOT NULL,
    entity_type            TEXT NOT NULL,
    entity_instance        TEXT NOT NULL,
    severity               TEXT NOT NULL
        CHECK (severity IN ('warning', 'minor', 'major', 'critical')),
    reason                 TEXT NOT NULL,
    alarm_type             TEXT NOT NULL,
    probable_cause         TEXT NOT NULL,
    proposed_repair_action TEXT NOT NULL,
    service_affecting      BOOLEAN NOT NULL,
    raised_at              TIMESTAMP NOT NULL,
    updated_at             TIMESTAMP NOT NULL,
    CONSTRAINT alarms_uuid_key UNIQUE (uuid),
    CONSTRAINT alarms_entity_key UNIQUE (alarm_id, entity_instance)
);

-- +goose Down
DROP TABLE alarms;
DELETE FROM counters WHERE name = 'alarms';
ALTER TABLE hosts DROP COLUMN inventory_hash;
ALTER TABLE hosts DROP COLUMN inventory;
ALTER TABLE hosts DROP COLUMN agent_serial;
ALTER TABLE tokens DROP COLUMN host_name;
ALTER TABLE tokens DROP COLUMN uses;
ALTER TABLE tokens DROP COLUMN max_uses;
