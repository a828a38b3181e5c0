-- Indexes for every filter of the event and alarm lists, so that a page
-- is read from an index at any size of the log: each filter column with
-- the id after it, which gives the list's order (events newest first,
-- alarms oldest first) without a sort. The old (entity_type, entity_id,
-- id) index sorted every event of a type for ?entity_type=, and could not
-- serve ?entity_id= alone: (entity_type, id) and (entity_id, id) replace
-- it.

-- +goose Up
DROP INDEX events_entity_idx;
CREATE INDEX events_type_idx ON events (entity_type, id);
CREATE INDEX events_entity_id_idx ON events (entity_id, id);
CREATE INDEX events_action_idx ON events (action, id);
CREATE INDEX alarms_entity_idx ON alarms (entity_instance, id);
CREATE INDEX alarms_severity_idx ON alarms (severity, id);

-- +goose Down
DROP INDEX alarms_severity_idx;
DROP INDEX alarms_entity_idx;
DROP INDEX events_action_idx;
DROP INDEX events_entity_id_idx;
DROP INDEX events_type_idx;
CREATE INDEX events_entity_idx ON events (entity_type, entity_id, id);
