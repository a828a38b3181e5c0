package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// TestLockOps: a lock's row round-trips (its apps and pending pods as lists, its timeout); a
// host has one lock draining at a time, a second is a conflict on "host"; the latest lock is
// the newest; and a host's locks go with it.
func TestLockOps(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			testLockOps(t, storetest.Open(t, b.DSN(t)))
		})
	}
}

func testLockOps(t *testing.T, s store.Store) {
	ctx := context.Background()
	insertHosts(t, s, host(1, "edge-01"), host(2, "edge-02"))
	at := time.Date(2026, 12, 7, 12, 0, 0, 123000, time.UTC)
	op := func(hostID int64, hostname, uuid string) store.LockOp {
		return store.LockOp{UUID: uuid, HostID: hostID, Hostname: hostname, State: "draining", Force: true,
			Timeout: 90 * time.Second, Actor: "token:op", Apps: []string{"plc", "hmi"}, Drain: true,
			Note: "the host has no Kubernetes Node", Message: "cordoning the Node", StartedAt: at, UpdatedAt: at}
	}
	insert := func(o *store.LockOp) error {
		return s.Write(ctx, func(tx store.Tx) error {
			var err error
			if err = tx.SerializeLocks(); err != nil {
				return err
			}
			if o.ID, err = tx.NextID("lock_ops"); err != nil {
				return err
			}
			return tx.InsertLockOp(o)
		})
	}
	first := op(1, "edge-01", "00000000-0000-4000-8000-000000000001")
	if err := insert(&first); err != nil {
		t.Fatal(err)
	}
	got := read(t, s, func(tx store.Tx) (store.LockOp, error) { return tx.LatestLockOp(1) })
	if diff := cmp.Diff(first, got); diff != "" {
		t.Errorf("the lock as stored (-want +got):\n%s", diff)
	}

	second := op(1, "edge-01", "00000000-0000-4000-8000-000000000002")
	if err := insert(&second); !problem.Is(err, problem.Conflict) || problem.FieldOf(err) != "host" {
		t.Errorf("a second lock draining: %v (field %q), want a conflict on host", err, problem.FieldOf(err))
	}

	// The leader takes it, and it ends: then the host may be locked again.
	write(t, s, func(tx store.Tx) error {
		o, err := tx.LockOpForUpdate(first.ID)
		if err != nil {
			return err
		}
		o.State, o.Epoch, o.Runner, o.CancelBy = "cancelled", 3, "ctl-1", "token:other"
		o.PodsTotal, o.PodsEvicted, o.Pending = 2, 1, []string{"default/web-1"}
		o.FinishedAt, o.UpdatedAt = at.Add(time.Minute), at.Add(time.Minute)
		first = o
		return tx.UpdateLockOp(&o)
	})
	if got := read(t, s, func(tx store.Tx) ([]store.LockOp, error) { return tx.ListLockOps("cancelled") }); len(got) != 1 ||
		!cmp.Equal(got[0], first) {
		t.Errorf("cancelled locks: %+v, want the first", got)
	}
	if err := insert(&second); err != nil {
		t.Fatalf("a lock after the first ended: %v", err)
	}
	if got := read(t, s, func(tx store.Tx) (store.LockOp, error) { return tx.LatestLockOp(1) }); got.ID != second.ID {
		t.Errorf("latest lock %d, want %d", got.ID, second.ID)
	}
	if got := read(t, s, func(tx store.Tx) ([]store.LockOp, error) { return tx.ListLockOps("draining") }); len(got) != 1 || got[0].ID != second.ID {
		t.Errorf("draining locks: %+v, want the second", got)
	}
	err := s.Read(ctx, func(tx store.Tx) error { _, err := tx.LatestLockOp(2); return err })
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("latest lock of a host never locked: %v, want not found", err)
	}
	err = s.Write(ctx, func(tx store.Tx) error { return tx.UpdateLockOp(&store.LockOp{ID: 99, State: "failed", UpdatedAt: at}) })
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("update of a lock that is not there: %v, want not found", err)
	}

	write(t, s, func(tx store.Tx) error { return tx.DeleteHost(1) })
	if got := read(t, s, func(tx store.Tx) ([]store.LockOp, error) { return tx.ListLockOps() }); len(got) != 0 {
		t.Errorf("locks after their host was deleted: %+v", got)
	}
}
