// Package storetest gives tests a fresh, real database of each kind the
// store supports: a SQLite file in a temporary directory, and a database of
// its own on the PostgreSQL server that HB_TEST_POSTGRES points at (a URL
// whose user may create databases). Without that variable PostgreSQL cases
// are skipped, except under CI, where they fail: CI must test both.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver

	"hummingbird.io/hummingbird/internal/store"
)

// EnvPostgres names the variable holding the PostgreSQL server URL.
const EnvPostgres = "HB_TEST_POSTGRES"

// Backend is one kind of database to run a test against.
type Backend struct {
	Name string
	// DSN makes a fresh, empty database and returns how to reach it; it is
	// dropped when the test ends.
	DSN func(t *testing.T) string
}

// Backends lists SQLite and PostgreSQL.
func Backends() []Backend {
	return []Backend{
		{Name: "sqlite", DSN: SQLiteDSN},
		{Name: "postgres", DSN: PostgresDSN},
	}
}

// SQLiteDSN returns the path of a new SQLite file in a temporary directory.
func SQLiteDSN(t *testing.T) string {
	t.Helper()
	return store.SQLitePath(t.TempDir())
}

// PostgresDSN creates a database of the test's own and returns its URL.
func PostgresDSN(t *testing.T) string {
	t.Helper()
	base := os.Getenv(EnvPostgres)
	if base == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set: CI must run the PostgreSQL cases (see .ci/run)", EnvPostgres)
		}
		t.Skipf("%s is not set; run test/run, which starts a PostgreSQL server", EnvPostgres)
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open %s: %v", store.Redact(base), err)
	}
	t.Cleanup(func() { admin.Close() })
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := "hbtest_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvPostgres, err)
	}
	u.Path = "/" + name
	return u.String()
}

// Open opens a store on dsn and closes it when the test ends (two, taking transactions in
// turns, with HB_TEST_CONTROLLERS=2).
func Open(t *testing.T, dsn string) store.Store {
	t.Helper()
	s := open(t, dsn)
	if os.Getenv(EnvControllers) == "2" {
		return &inTurns{stores: [2]store.Store{s, open(t, dsn)}}
	}
	return s
}

// EnvControllers set to 2 makes Open return two stores on the database that take the
// transactions in turns, as two controllers on one database do: each must see what the other
// wrote (test/run sets it for a second pass of the store's tests, and the API's and CLI's).
const EnvControllers = "HB_TEST_CONTROLLERS"

func open(t *testing.T, dsn string) store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// inTurns is two stores on one database, each transaction going to the next.
type inTurns struct {
	stores [2]store.Store
	n      atomic.Int64
}

func (s *inTurns) next() store.Store { return s.stores[s.n.Add(1)%2] }

func (s *inTurns) Read(ctx context.Context, fn func(store.Tx) error) error {
	return s.next().Read(ctx, fn)
}

func (s *inTurns) Write(ctx context.Context, fn func(store.Tx) error) error {
	return s.next().Write(ctx, fn)
}

func (s *inTurns) Ping(ctx context.Context) error { return s.next().Ping(ctx) }
func (s *inTurns) Dialect() string                { return s.stores[0].Dialect() }
func (s *inTurns) Close() error                   { return errors.Join(s.stores[0].Close(), s.stores[1].Close()) }

// EventIDs lists every stored event id, oldest first.
func EventIDs(t *testing.T, s store.Store) []int64 {
	t.Helper()
	var evs []store.Event
	if err := s.Read(context.Background(), func(tx store.Tx) (err error) {
		evs, err = tx.EventsAfter(0, nil, 1_000_000)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	out := []int64{}
	for _, e := range evs {
		out = append(out, e.ID)
	}
	return out
}

// Each runs fn on a fresh, open store of each backend, in parallel
// subtests named after the backends.
func Each(t *testing.T, fn func(t *testing.T, s store.Store)) {
	t.Helper()
	for _, b := range Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, Open(t, b.DSN(t)))
		})
	}
}

// Stoppable is a store whose writes fail once Stop is called, as those of a controller that
// died: its rows stand still. Reads go on.
type Stoppable struct {
	store.Store
	stopped atomic.Bool
}

// Stop makes every later write fail.
func (s *Stoppable) Stop() { s.stopped.Store(true) }

func (s *Stoppable) Write(ctx context.Context, fn func(store.Tx) error) error {
	if s.stopped.Load() {
		return errors.New("the process is gone")
	}
	return s.Store.Write(ctx, fn)
}
