package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Open connects to the database that dsn names and brings its schema up to
// date. dsn is either a PostgreSQL URL (postgres://… or postgresql://…) or,
// for the embedded default, a SQLite file path (optionally file:…).
func Open(ctx context.Context, dsn string) (Store, error) {
	return OpenWith(ctx, dsn, Options{})
}

// ErrSchemaNewer is returned (wrapped) by Open when the database's schema
// is newer than this build's: a newer controller migrated it.
var ErrSchemaNewer = errors.New("the database's schema is newer than this controller's")

// SchemaControllers is the first schema version with the tables through
// which controllers that share a database see each other (leadership and
// controllers).
const SchemaControllers = 20

// Options are what OpenWith is told besides the database.
type Options struct {
	// BeforeMigrate, when set, is called when the schema is behind this
	// build's (at version from; this build's is to), before any migration
	// runs, with the store at the old schema; its error ends the open with
	// nothing changed. It is called only when the schema is at
	// SchemaControllers or later: before that no controller shared the
	// database with another.
	BeforeMigrate func(ctx context.Context, s Store, from, to int64) error
}

// OpenWith is Open, told o.
func OpenWith(ctx context.Context, dsn string, o Options) (Store, error) {
	var (
		s   *sqlStore
		err error
	)
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		s, err = openPostgres(dsn)
	case dsn == "":
		return nil, errors.New("open store: no database given")
	default:
		s, err = openSQLite(dsn)
	}
	if err != nil {
		return nil, err
	}
	if err := s.migrate(ctx, 0, o.BeforeMigrate); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// SQLitePath is the SQLite database file inside a data directory.
func SQLitePath(dataDir string) string { return filepath.Join(dataDir, "hummingbird.db") }

// Redact hides the password of a database URL for logs.
func Redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	return u.Redacted()
}

// counterNames are the counters of the counters table.
var counterNames = []string{"hosts", "events", "pools", "alarms", "provision_jobs", "apps", "lock_ops"}

// sequencesMigration gives PostgreSQL a sequence per counter,
// started after the counter's value, so that concurrent writers do not
// queue on one counters row: nextval never blocks (ids may have gaps after
// a rollback). On SQLite, where writers are serialized anyway, the counters
// table stays in use and this step does nothing.
func sequencesMigration(version int64, dialect string, counters ...string) *goose.Migration {
	up := func(ctx context.Context, tx *sql.Tx) error {
		if dialect != "postgres" {
			return nil
		}
		for _, c := range counters {
			var v int64
			if err := tx.QueryRowContext(ctx, `SELECT value FROM counters WHERE name = $1`, c).Scan(&v); err != nil {
				return fmt.Errorf("read counter %s: %w", c, err)
			}
			if _, err := tx.ExecContext(ctx, fmt.Sprintf(`CREATE SEQUENCE %s START WITH %d`, sequenceName(c), v+1)); err != nil {
				return fmt.Errorf("create sequence for %s: %w", c, err)
			}
		}
		return nil
	}
	down := func(ctx context.Context, tx *sql.Tx) error {
		if dialect != "postgres" {
			return nil
		}
		for _, c := range counters {
			if _, err := tx.ExecContext(ctx, `DROP SEQUENCE `+sequenceName(c)); err != nil {
				return err
			}
		}
		return nil
	}
	return goose.NewGoMigration(version, &goose.GoFunc{RunTx: up}, &goose.GoFunc{RunTx: down})
}

func sequenceName(counter string) string { return counter + "_id_seq" }

// goMigrations are the schema steps written in Go, numbered between the SQL
// files: the sequences PostgreSQL gives the counters the SQL file before
// each added, and the steps whose SQL differs by dialect.
func goMigrations(dialect string) []*goose.Migration {
	return []*goose.Migration{
		sequencesMigration(2, dialect, "hosts", "events"),
		sequencesMigration(4, dialect, "pools"),
		sequencesMigration(6, dialect, "alarms"),
		sequencesMigration(9, dialect, "provision_jobs"),
		sequencesMigration(12, dialect, "apps"),
		labelsColumnMigration(24, dialect),
		sequencesMigration(27, dialect, "lock_ops"),
	}
}

// labelsColumnMigration gives hosts a labels column: the host's labels as
// one JSON object, written with host_labels in the same transaction. A
// list then reads a host's labels with its row instead of one more row a
// label (a page of 1,000 hosts with 3 labels each read 3,000 label rows,
// a third of the page's time on SQLite). host_labels stays: the label
// filters are answered from its (key, value) index. The column is filled
// from host_labels with each dialect's JSON aggregate.
func labelsColumnMigration(version int64, dialect string) *goose.Migration {
	fill := `UPDATE hosts SET labels = (SELECT json_group_object(key, value)
		FROM host_labels WHERE host_id = hosts.id)
		WHERE id IN (SELECT host_id FROM host_labels)`
	if dialect == "postgres" {
		fill = `UPDATE hosts SET labels = l.obj FROM (SELECT host_id,
			json_object_agg(key, value ORDER BY key)::text AS obj
			FROM host_labels GROUP BY host_id) l WHERE hosts.id = l.host_id`
	}
	up := func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `ALTER TABLE hosts ADD COLUMN labels TEXT NOT NULL DEFAULT '{}'`); err != nil {
			return fmt.Errorf("add hosts.labels: %w", err)
		}
		if _, err := tx.ExecContext(ctx, fill); err != nil {
			return fmt.Errorf("fill hosts.labels from host_labels: %w", err)
		}
		return nil
	}
	down := func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `ALTER TABLE hosts DROP COLUMN labels`)
		return err
	}
	return goose.NewGoMigration(version, &goose.GoFunc{RunTx: up}, &goose.GoFunc{RunTx: down})
}

// migrate applies the migrations up to version, or all of them when
// version is 0, after asking before (when set) as Options.BeforeMigrate
// says. Bringing the schema all the way up, it refuses a schema newer than
// this build's.
func (s *sqlStore) migrate(ctx context.Context, version int64, before func(ctx context.Context, s Store, from, to int64) error) error {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	var (
		dialect goose.Dialect
		opts    []goose.ProviderOption
	)
	opts = append(opts, goose.WithGoMigrations(goMigrations(s.dialect)...))
	switch s.dialect {
	case "postgres":
		dialect = goose.DialectPostgres
		// Several controllers may start at once: one migrates, the others wait.
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return fmt.Errorf("migration lock: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	default:
		dialect = goose.DialectSQLite3
	}
	p, err := goose.NewProvider(dialect, s.writer, sub, opts...)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if version == 0 {
		// A database that was never migrated has no versions yet: its
		// error says nothing else, and Up makes it.
		if cur, target, err := p.GetVersions(ctx); err == nil {
			if cur > target {
				return fmt.Errorf("%w: it is at version %d and this controller's at %d; a newer hb-controller migrated it: "+
					"run that version here too (README.md, \"Several controllers\")", ErrSchemaNewer, cur, target)
			}
			if cur < target && cur >= SchemaControllers && before != nil {
				if err := before(ctx, s, cur, target); err != nil {
					return err
				}
			}
		}
	}
	if version > 0 {
		_, err = p.UpTo(ctx, version)
	} else {
		_, err = p.Up(ctx)
	}
	if err != nil {
		return fmt.Errorf("apply migrations to %s: %w", s.dialect, err)
	}
	return nil
}
