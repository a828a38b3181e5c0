package mtce_test

import (
	"context"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/mtce"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
	"hummingbird.io/hummingbird/internal/wire"
)

// TestHeardAcrossControllers: two controllers share a database; the leader's monitor keeps
// the deadlines, and the agent's heartbeats reach the other controller only, which notes them.
// While they come, the leader declares nothing, for a host it watched from its start or one
// that joined through the other controller after it; when they stop, the leader declares the
// host degraded, then failed.
func TestHeardAcrossControllers(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := storetest.Open(t, b.DSN(t))
			inv := inventory.New(st, inventory.Options{})
			if _, _, err := inv.EnsureManagementPool(ctx, "static", "192.168.204.0/24", nil); err != nil {
				t.Fatal(err)
			}
			// edge-02 is enrolled before the controllers start: the leader watches it from its
			// start.
			known, err := inv.Add(ctx, "t", apitype.HostCreate{Hostname: "edge-02", Personality: "edgeworker", MgmtIP: "192.168.204.11"})
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Write(ctx, func(tx store.Tx) error { return tx.SetHostAgent(known.ID, "5678") }); err != nil {
				t.Fatal(err)
			}
			timing := mtce.Timing{Interval: 200 * time.Millisecond, DegradeAfter: 3, FailAfter: 6}
			mk := func(id string) *mtce.Monitor {
				m := mtce.New(st, mtce.Config{Timing: timing, ID: id})
				if err := m.Start(ctx); err != nil {
					t.Fatal(err)
				}
				return m
			}
			leader := mk("leader")
			other := mk("other")
			runCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			done := make(chan struct{}, 3)
			go func() { leader.Run(runCtx); done <- struct{}{} }()
			go func() { leader.RunFlush(runCtx); done <- struct{}{} }()
			go func() { other.RunFlush(runCtx); done <- struct{}{} }()
			defer func() { cancel(); <-done; <-done; <-done }()
			time.Sleep(50 * time.Millisecond) // the leader's Run started
			// The leader counts what it hears itself, and notes nothing.
			if _, err := leader.Heartbeat(ctx, known, wire.Heartbeat{Capability: wire.CapabilityVersion, Seq: 1, Boot: "b0"}, ""); err != nil {
				t.Fatal(err)
			}

			// The host joins through the other controller, after the leader started.
			h, err := inv.Add(ctx, "t", apitype.HostCreate{Hostname: "edge-01", Personality: "edgeworker", MgmtIP: "192.168.204.10"})
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Write(ctx, func(tx store.Tx) error { return tx.SetHostAgent(h.ID, "1234") }); err != nil {
				t.Fatal(err)
			}
			other.Enrolled(h)
			availability := func(name string) string {
				got, err := inv.Get(ctx, name)
				if err != nil {
					t.Fatal(err)
				}
				return got.Availability
			}
			// Heartbeats to the other controller only, for 12 intervals: past the leader's
			// grace and twice its failure threshold.
			for seq := uint64(1); seq <= 24; seq++ {
				for _, hh := range []store.Host{h, known} {
					if _, err := other.Heartbeat(ctx, hh, wire.Heartbeat{Capability: wire.CapabilityVersion, Seq: seq, Boot: "b1"}, ""); err != nil {
						t.Fatal(err)
					}
					if seq > 1 {
						if got := availability(hh.Hostname); got != inventory.AvailAvailable {
							t.Fatalf("%s is %s while its heartbeats reach the other controller (heartbeat %d), want available", hh.Hostname, got, seq)
						}
					}
				}
				time.Sleep(timing.Interval / 2)
			}
			if at, ok := leader.LastHeartbeat(h.ID); !ok || time.Since(at) > time.Second {
				t.Errorf("the leader's last heartbeat of the host: %v, %v; want within the last second", at, ok)
			}
			// Silence: degraded after 3 intervals, failed after 6, with a second of slack.
			stop := time.Now()
			for _, want := range []string{inventory.AvailDegraded, inventory.AvailFailed} {
				deadline := time.Now().Add(6*timing.Interval + time.Second)
				for availability("edge-01") != want {
					if time.Now().After(deadline) {
						t.Fatalf("edge-01 is %s %v after the last heartbeat, want %s", availability("edge-01"), time.Since(stop), want)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			// The leader deleted the notes it applied; the other's own bound keeps the rest few.
			var notes []store.Heard
			if err := st.Read(ctx, func(tx store.Tx) (err error) { notes, err = tx.ListHeard(); return err }); err != nil {
				t.Fatal(err)
			}
			if len(notes) > 1 || (len(notes) == 1 && notes[0].Controller != "other") {
				t.Errorf("notes left: %+v; want at most the other controller's last", notes)
			}
		})
	}
}
