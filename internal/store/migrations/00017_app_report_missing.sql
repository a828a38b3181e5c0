-- The capabilities a member's agent reported it lacks for the app (an app with a VIP needs
-- CAP_NET_ADMIN and CAP_NET_RAW), comma-separated; '' for none. Such a member never takes the
-- active role, and alarm 400.001 names it.

-- +goose Up
ALTER TABLE app_reports ADD COLUMN missing TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE app_reports DROP COLUMN missing;
