package store

import (
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib" // also registers the "pgx" driver

	"hummingbird.io/hummingbird/internal/problem"
)

// IdleInTransaction is how long PostgreSQL keeps a session of the store idle inside a
// transaction before it ends the session (idle_in_transaction_session_timeout), unless the URL
// sets it. A controller cut off from the database (or stopped) in the middle of a transaction
// leaves its session behind, and the server, which hears nothing more from it, would hold that
// transaction's row locks until TCP keepalives give up on the connection (two hours by
// default): the lease row among them, which no other controller could claim meanwhile. The
// store's transactions never wait between their statements, so the default lease (2 s) is
// ample.
const IdleInTransaction = 2 * time.Second

func openPostgres(dsn string) (*sqlStore, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres %s: %w", Redact(dsn), err)
	}
	if _, ok := cfg.RuntimeParams["idle_in_transaction_session_timeout"]; !ok {
		cfg.RuntimeParams["idle_in_transaction_session_timeout"] = strconv.FormatInt(IdleInTransaction.Milliseconds(), 10)
	}
	db := stdlib.OpenDB(*cfg)
	// Keep every connection open: database/sql keeps only 2 idle by default,
	// and under concurrent requests each new PostgreSQL backend costs more
	// than the query it serves.
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open postgres %s: %w", Redact(dsn), err)
	}
	return &sqlStore{dialect: "postgres", writer: db, reader: db, classify: classifyPostgres}, nil
}

// uniqueFields maps the schema's unique constraints to the request field
// that violates them.
var uniqueFields = map[string]string{
	"hosts_hostname_key":     "hostname",
	"hosts_mgmt_mac_key":     "mgmt_mac",
	"hosts_mgmt_ip_key":      "mgmt_ip",
	"address_pools_name_key": "name",
	"host_groups_pkey":       "name",
	"provision_jobs_active":  "host",
	"lock_ops_draining":      "host",
	"apps_name_key":          "name",
}

// uniqueMessages says what a violated constraint means where "<field> is
// already used by another host" would not.
var uniqueMessages = map[string]string{
	"provision_jobs_active": "the host already has a provisioning job queued or running",
	"lock_ops_draining":     "the host is being locked already",
	"apps_name_key":         "there is already an app of that name",
}

// uniqueConflict is the error for a violation of the named unique
// constraint ("" when the database did not say which).
func uniqueConflict(constraint string, err error) error {
	field := uniqueFields[constraint]
	msg := "conflicts with an existing record"
	if m, ok := uniqueMessages[constraint]; ok {
		msg = m
	} else if field != "" {
		msg = field + " is already used by another host"
	}
	return &problem.Error{Kind: problem.Conflict, Field: field, Message: msg, Err: err}
}

func classifyPostgres(err error) (error, bool) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			return uniqueConflict(pe.ConstraintName, err), false
		case "40001", "40P01": // serialization_failure, deadlock_detected
			return problem.Wrap(problem.Unavailable, err, "the database is busy; try again"), true
		}
		return err, false
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, sql.ErrConnDone) {
		return problem.Wrap(problem.Unavailable, err, "the database cannot be reached; try again"), false
	}
	return err, false
}
