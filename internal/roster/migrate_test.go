package roster_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/leader"
	"hummingbird.io/hummingbird/internal/roster"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// TestMigrationGuard: the guard refuses while a leader or another controller runs on the
// database, naming them (the leader first, marked), lets the migration go on when told, and
// agrees once they stopped, cleanly or not.
func TestMigrationGuard(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			const lease = 400 * time.Millisecond
			ctx := context.Background()
			st := storetest.Open(t, b.DSN(t))
			// ctl-a leads and renews; ctl-b runs; ctl-gone stopped renewing long ago.
			a := &storetest.Stoppable{Store: st}
			term, err := leader.New(leader.Config{Store: a, ID: "a1", Address: ":6385", TTL: lease}).Campaign(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(term.Lost)
			run := func(name, runID string, s store.Store) (stop func()) {
				r := roster.New(roster.Config{Store: s, Name: name, RunID: runID, Version: "v1",
					Address: func() string { return name + ":6385" }, Every: lease})
				rctx, cancel := context.WithCancel(ctx)
				done := make(chan struct{})
				go func() { r.Run(rctx); close(done) }()
				t.Cleanup(func() { cancel(); <-done })
				return func() { cancel(); <-done }
			}
			run("ctl-a", "a1", a)
			stopB := run("ctl-b", "b1", st)
			if err := st.Write(ctx, func(tx store.Tx) error {
				now := time.Now().UTC().Truncate(time.Microsecond)
				return tx.PutController(store.Controller{Name: "ctl-gone", RunID: "g1", Address: "ctl-gone:6385", Version: "v0",
					StartedAt: now, Seen: 7, SeenAt: now})
			}); err != nil {
				t.Fatal(err)
			}

			guard := roster.MigrationGuard{Every: lease}
			err = guard.Check(ctx, st, 22, 24)
			if !errors.Is(err, roster.ErrOthersRun) {
				t.Fatalf("Check with two controllers running: %v", err)
			}
			msg := err.Error()
			for _, want := range []string{"other controllers run on the database: ctl-a (ctl-a:6385, v1, leads), ctl-b (ctl-b:6385, v1).", "at version 22 and this controller's at 24",
				"--migrate-under-older (HB_MIGRATE_UNDER_OLDER=true)"} {
				if !strings.Contains(msg, want) {
					t.Errorf("the refusal lacks %q:\n%s", want, msg)
				}
			}
			if strings.Contains(msg, "ctl-gone") {
				t.Errorf("the refusal names a controller that stopped renewing its row:\n%s", msg)
			}
			if err := (roster.MigrationGuard{Every: lease, Allow: true}).Check(ctx, st, 22, 24); err != nil {
				t.Errorf("Check told to allow: %v", err)
			}

			// ctl-b stops cleanly; the leader crashes: its lease and row stand still.
			stopB()
			a.Stop()
			// A renewal under way when it died may still commit: the guard watches from after.
			time.Sleep(lease / 2)
			if err := guard.Check(ctx, st, 22, 24); err != nil {
				t.Errorf("Check with no controller running: %v", err)
			}
		})
	}
}
