package store_test

import (
	"context"
	"errors"
	"testing"

	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// TestOpenAsksBeforeMigrating: a schema behind this build's, with the controllers' tables, is
// brought up only once BeforeMigrate agrees; refused, it stays as it was. An older schema, or
// one up to date, is not asked about. A schema newer than this build's is refused.
func TestOpenAsksBeforeMigrating(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			version := func(dsn string) int64 {
				t.Helper()
				db, err := store.OpenAt(ctx, dsn, 1)
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				var v int64
				if err := db.QueryRow(`SELECT MAX(version_id) FROM goose_db_version WHERE is_applied`).Scan(&v); err != nil {
					t.Fatal(err)
				}
				return v
			}
			at := func(v int64) string {
				t.Helper()
				dsn := b.DSN(t)
				db, err := store.OpenAt(ctx, dsn, v)
				if err != nil {
					t.Fatal(err)
				}
				db.Close()
				return dsn
			}
			refuse := errors.New("others run")
			var asked [][2]int64
			ask := func(err error) store.Options {
				return store.Options{BeforeMigrate: func(_ context.Context, s store.Store, from, to int64) error {
					asked = append(asked, [2]int64{from, to})
					// The store reads the old schema meanwhile.
					if rerr := s.Read(ctx, func(tx store.Tx) error { _, e := tx.ListControllers(); return e }); rerr != nil {
						t.Errorf("reading the controllers at schema %d: %v", from, rerr)
					}
					return err
				}}
			}

			dsn := at(store.SchemaControllers)
			if _, err := store.OpenWith(ctx, dsn, ask(refuse)); !errors.Is(err, refuse) {
				t.Fatalf("OpenWith refused by BeforeMigrate: %v", err)
			}
			if v := version(dsn); v != store.SchemaControllers {
				t.Fatalf("the refused open left the schema at %d, want %d", v, store.SchemaControllers)
			}
			s, err := store.OpenWith(ctx, dsn, ask(nil))
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			latest := version(dsn)
			if len(asked) != 2 || asked[1] != [2]int64{store.SchemaControllers, latest} || latest <= store.SchemaControllers {
				t.Errorf("BeforeMigrate asked %v, schema now %d", asked, latest)
			}

			// Up to date, or from before the controllers' tables: not asked.
			asked = nil
			for _, dsn := range []string{dsn, at(store.SchemaControllers - 1)} {
				s, err := store.OpenWith(ctx, dsn, ask(refuse))
				if err != nil {
					t.Fatalf("OpenWith: %v", err)
				}
				s.Close()
			}
			if len(asked) != 0 {
				t.Errorf("BeforeMigrate asked %v", asked)
			}

			// A newer build migrated it.
			db, err := store.OpenAt(ctx, dsn, 1)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (9999, true)`); err != nil {
				t.Fatal(err)
			}
			db.Close()
			if _, err := store.Open(ctx, dsn); !errors.Is(err, store.ErrSchemaNewer) {
				t.Errorf("Open of a schema newer than this build's: %v", err)
			}
		})
	}
}
