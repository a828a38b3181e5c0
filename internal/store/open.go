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
	if err := s.migrate(ctx); err != nil {
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
var counterNames = []string{"hosts", "events", "pools", "alarms", "provision_jobs", "apps"}

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
// files: each gives PostgreSQL the sequences of the counters the SQL file
// before it added.
func goMigrations(dialect string) []*goose.Migration {
	return []*goose.Migration{
		sequencesMigration(2, dialect, "hosts", "events"),
		sequencesMigration(4, dialect, "pools"),
		sequencesMigration(6, dialect, "alarms"),
		sequencesMigration(9, dialect, "provision_jobs"),
		sequencesMigration(12, dialect, "apps"),
	}
}

func (s *sqlStore) migrate(ctx context.Context) error {
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
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("apply migrations to %s: %w", s.dialect, err)
	}
	return nil
}
