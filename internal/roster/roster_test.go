package roster_test

import (
	"context"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/fm"
	"hummingbird.io/hummingbird/internal/roster"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

const every = 100 * time.Millisecond

// TestRoster: controllers list themselves; the leader raises 400.005 for one that stopped
// renewing its row (a crash) after LostRenewals periods, clears it when the controller runs
// again under its name, and raises nothing for one that stopped cleanly.
func TestRoster(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			st := storetest.Open(t, b.DSN(t))
			run := func(name, runID string, s store.Store) (stop func()) {
				r := roster.New(roster.Config{Store: s, Name: name, RunID: runID, Version: "v1",
					Address: func() string { return name + ":6385" }, Duties: []string{"monitor"}, Every: every})
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { r.Run(ctx); close(done) }()
				t.Cleanup(func() { cancel(); <-done })
				return func() { cancel(); <-done }
			}
			// The leader, and its watch.
			run("ctl-a", "a1", st)
			w := roster.New(roster.Config{Store: st, Name: "ctl-a", RunID: "a1", Every: every})
			wctx, wcancel := context.WithCancel(context.Background())
			wdone := make(chan struct{})
			go func() { w.Watch(wctx); close(wdone) }()
			defer func() { wcancel(); <-wdone }()

			b1 := &storetest.Stoppable{Store: st}
			run("ctl-b", "b1", b1)
			names := func() []string {
				var list []store.Controller
				if err := st.Read(context.Background(), func(tx store.Tx) (err error) { list, err = tx.ListControllers(); return err }); err != nil {
					t.Fatal(err)
				}
				var out []string
				for _, c := range list {
					out = append(out, c.Name+"/"+c.RunID)
				}
				return out
			}
			alarmed := func() bool {
				var as []store.Alarm
				if err := st.Read(context.Background(), func(tx store.Tx) (err error) {
					as, err = tx.ListAlarms(store.AlarmFilter{})
					return err
				}); err != nil {
					t.Fatal(err)
				}
				for _, a := range as {
					if a.AlarmID == fm.AlarmControllerLost && a.EntityInstance == roster.Entity("ctl-b") {
						return true
					}
				}
				return false
			}
			waitFor := func(what string, within time.Duration, ok func() bool) time.Duration {
				t.Helper()
				start := time.Now()
				for !ok() {
					if time.Since(start) > within {
						t.Fatalf("%s: not within %v (controllers %v)", what, within, names())
					}
					time.Sleep(10 * time.Millisecond)
				}
				return time.Since(start)
			}
			waitFor("both controllers listed", time.Second, func() bool { return len(names()) == 2 })
			time.Sleep(5 * every)
			if alarmed() {
				t.Fatal("400.005 raised for a controller that renews its row")
			}

			// ctl-b dies: its row stands still.
			b1.Stop()
			took := waitFor("400.005 for the dead controller", 20*every, alarmed)
			if took < (roster.LostRenewals-1)*every {
				t.Errorf("400.005 raised %v after the death, want about %d periods of %v", took, roster.LostRenewals, every)
			}
			// It runs again under its name: cleared.
			stopB := run("ctl-b", "b2", st)
			waitFor("400.005 cleared when the controller is back", 20*every, func() bool { return !alarmed() })
			// It stops cleanly: its row goes, and no alarm comes.
			stopB()
			waitFor("the stopped controller's row gone", time.Second, func() bool { return len(names()) == 1 })
			time.Sleep((roster.LostRenewals + 2) * every)
			if alarmed() {
				t.Error("400.005 raised for a controller that stopped cleanly")
			}
		})
	}
}
