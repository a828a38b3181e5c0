package inventory_test

import (
	"context"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/leader"
	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/roster"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// TestDeleteController: a controller that renews its row, or leads, or is not listed, is not
// removed; one the leader counts lost is, with its alarm cleared and an event, and it is not
// raised again.
func TestDeleteController(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			const every = 100 * time.Millisecond
			st := storetest.Open(t, b.DSN(t))
			ctx := context.Background()
			svc := inventory.New(st, inventory.Options{})
			run := func(name, runID string, s store.Store, watch bool) {
				r := roster.New(roster.Config{Store: s, Name: name, RunID: runID, Version: "v1",
					Address: func() string { return name + ":6385" }, Every: every})
				rctx, cancel := context.WithCancel(ctx)
				done := make(chan struct{}, 2)
				go func() { r.Run(rctx); done <- struct{}{} }()
				if watch {
					go func() { r.Watch(rctx); done <- struct{}{} }()
				}
				t.Cleanup(func() {
					cancel()
					<-done
					if watch {
						<-done
					}
				})
			}
			if err := st.Write(ctx, func(tx store.Tx) error {
				return tx.SwapLeadership(store.Leadership{Duty: leader.Duty, Holder: "a1", Epoch: 1, Version: 1, RenewedAt: time.Now().UTC()}, 0)
			}); err != nil {
				t.Fatal(err)
			}
			run("ctl-a", "a1", st, true)
			b1 := &storetest.Stoppable{Store: st}
			run("ctl-b", "b1", b1, false)

			state := func(name string) string {
				cs, err := svc.ListControllers(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range cs {
					if c.Name == name {
						return c.State
					}
				}
				return "absent"
			}
			waitState := func(name, want string) {
				t.Helper()
				deadline := time.Now().Add(20 * every)
				for state(name) != want {
					if time.Now().After(deadline) {
						t.Fatalf("controller %s is %s, want %s", name, state(name), want)
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			waitState("ctl-b", "up")

			for _, c := range []struct {
				name string
				kind problem.Kind
			}{{"ctl-b", problem.Conflict}, {"ctl-a", problem.Conflict}, {"ctl-c", problem.NotFound}} {
				if err := svc.DeleteController(ctx, "admin", c.name); !problem.Is(err, c.kind) {
					t.Errorf("DeleteController(%s): %v, want %s", c.name, err, c.kind)
				}
			}
			if state("ctl-a") != "up" || state("ctl-b") != "up" {
				t.Fatalf("a refused delete changed the list: ctl-a %s, ctl-b %s", state("ctl-a"), state("ctl-b"))
			}

			b1.Stop()
			waitState("ctl-b", "lost")
			if err := svc.DeleteController(ctx, "admin", "ctl-b"); err != nil {
				t.Fatalf("DeleteController of the lost controller: %v", err)
			}
			if s := state("ctl-b"); s != "absent" {
				t.Errorf("ctl-b is %s after its removal", s)
			}
			var alarms []store.Alarm
			var events []store.Event
			check := func() {
				t.Helper()
				if err := st.Read(ctx, func(tx store.Tx) (err error) {
					if alarms, err = tx.ListAlarms(store.AlarmFilter{EntityInstance: roster.Entity("ctl-b")}); err != nil {
						return err
					}
					events, err = tx.ListEvents(store.EventFilter{Action: "controller.delete"})
					return err
				}); err != nil {
					t.Fatal(err)
				}
			}
			check()
			if len(alarms) != 0 || len(events) != 1 || events[0].EntityID != roster.Entity("ctl-b") || events[0].Actor != "admin" {
				t.Errorf("after the removal: alarms %+v, controller.delete events %+v", alarms, events)
			}
			time.Sleep((roster.LostRenewals + 2) * every)
			if check(); len(alarms) != 0 {
				t.Errorf("400.005 raised again for the removed controller: %+v", alarms)
			}
			if err := svc.DeleteController(ctx, "admin", "ctl-b"); !problem.Is(err, problem.NotFound) {
				t.Errorf("a second DeleteController: %v, want not found", err)
			}
		})
	}
}
