package store

import (
	"context"
	"io/fs"
	"testing"
	"time"

	"github.com/pressly/goose/v3"
)

// TestGroupsMigrationKeepsHostGroups: hosts stored before groups existed
// keep their group, which becomes a group of its own.
func TestGroupsMigrationKeepsHostGroups(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := SQLitePath(t.TempDir())
	s, err := openSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, s.writer, sub, goose.WithGoMigrations(goMigrations("sqlite")...))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 6); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if _, err := s.writer.Exec(`INSERT INTO hosts (id, uuid, hostname, personality, administrative, operational,
		availability, invprovision, host_group, created_at, updated_at)
		VALUES (1, 'u1', 'edge-01', 'edgeworker', 'locked', 'disabled', 'offline', 'unprovisioned', 'press', $1, $1)`, now); err != nil {
		t.Fatal(err)
	}
	s.Close()

	st, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	err = st.Read(ctx, func(tx Tx) error {
		if _, err := tx.GroupByName("press"); err != nil {
			return err
		}
		gs, err := tx.ListGroups()
		if err == nil && len(gs) != 1 {
			t.Errorf("groups after the migration: %+v, want press only", gs)
		}
		return err
	})
	if err != nil {
		t.Fatalf("the group of a stored host after the migration: %v", err)
	}
}
