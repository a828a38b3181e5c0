package store

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"hummingbird.io/hummingbird/internal/problem"
)

// openSQLite opens the embedded database: WAL for concurrent readers, a
// busy timeout, foreign keys, synchronous=FULL so that an acknowledged
// commit survives a crash, and BEGIN IMMEDIATE for writers so that a write
// transaction never fails half-way on a lock upgrade. Writes go through one
// connection; reads use a pool.
func openSQLite(path string) (*sqlStore, error) {
	path = strings.TrimPrefix(path, "file:")
	if i := strings.IndexByte(path, '?'); i >= 0 {
		return nil, fmt.Errorf("open sqlite %q: give a plain file path without options", path)
	}
	// The database holds token hashes and the inventory: only the
	// controller's user may read it. SQLite makes its -wal and -shm files
	// with the database's mode, so those follow.
	if err := restrict(path); err != nil {
		return nil, err
	}
	pragmas := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "busy_timeout(10000)", "foreign_keys(1)", "synchronous(FULL)"} {
		pragmas.Add("_pragma", p)
	}
	writerDSN := "file:" + path + "?" + pragmas.Encode() + "&_txlock=immediate"
	readerDSN := "file:" + path + "?" + pragmas.Encode() + "&_txlock=deferred"
	writer, err := sql.Open("sqlite", writerDSN)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	// Touch the database now so a bad path fails at start, not at first use.
	if err := writer.Ping(); err != nil {
		writer.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	reader, err := sql.Open("sqlite", readerDSN)
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	reader.SetMaxOpenConns(8)
	reader.SetMaxIdleConns(8) // reopening runs the pragmas again
	return &sqlStore{dialect: "sqlite", writer: writer, reader: reader, classify: classifySQLite}, nil
}

func classifySQLite(err error) (error, bool) {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err, false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return problem.Wrap(problem.Unavailable, err, "the database is busy; try again"), true
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return uniqueConflict(sqliteConstraints[failedColumns(se.Error())], err), false
	}
	return err, false
}

// sqliteConstraints maps the columns SQLite names when a unique constraint
// fails to the constraint's name, as PostgreSQL reports it.
var sqliteConstraints = map[string]string{
	"hosts.hostname":         "hosts_hostname_key",
	"hosts.mgmt_mac":         "hosts_mgmt_mac_key",
	"hosts.mgmt_ip":          "hosts_mgmt_ip_key",
	"address_pools.name":     "address_pools_name_key",
	"host_groups.name":       "host_groups_pkey",
	"provision_jobs.host_id": "provision_jobs_active",
	"lock_ops.host_id":       "lock_ops_draining",
	"apps.name":              "apps_name_key",
	"apps.uuid":              "apps_uuid_key",
}

// failedColumns reads the columns out of SQLite's message
// "UNIQUE constraint failed: hosts.hostname (2067)".
func failedColumns(msg string) string {
	_, cols, ok := strings.Cut(msg, "UNIQUE constraint failed: ")
	if !ok {
		return ""
	}
	cols, _, _ = strings.Cut(cols, " (")
	return cols
}

// restrict makes the database file, and the -wal and -shm files an earlier
// run left, readable and writable by their owner only, creating the
// database file if there is none yet.
func restrict(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open sqlite %s: %w", path, err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("open sqlite %s: %w", path, err)
		}
	}
	return nil
}
