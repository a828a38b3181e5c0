package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// TestLeadership: the lease row changes only from the version the writer
// read, and a write under a fence commits only while the fence's epoch is
// the duty's, on both databases.
func TestLeadership(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := storetest.Open(t, b.DSN(t))
			at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
			swap := func(l store.Leadership, old int64) error {
				return s.Write(ctx, func(tx store.Tx) error { return tx.SwapLeadership(l, old) })
			}
			read := func() (store.Leadership, error) {
				var l store.Leadership
				err := s.Read(ctx, func(tx store.Tx) (err error) { l, err = tx.Leadership("controller"); return err })
				return l, err
			}
			if _, err := read(); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("leadership of a new database: %v, want not found", err)
			}
			a := store.Leadership{Duty: "controller", Holder: "a", Address: "10.0.0.1:6385", Epoch: 1, Version: 1, RenewedAt: at}
			if err := swap(a, 0); err != nil {
				t.Fatal(err)
			}
			if err := swap(store.Leadership{Duty: "controller", Holder: "b", Epoch: 1, Version: 1, RenewedAt: at}, 0); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("a second first claim: %v, want not found", err)
			}
			a.Version, a.RenewedAt = 2, at.Add(time.Second)
			if err := swap(a, 1); err != nil {
				t.Fatal(err)
			}
			if got, err := read(); err != nil || !cmp.Equal(got, a) {
				t.Errorf("after a renewal: %+v, %v; want %+v", got, err, a)
			}
			// A write under epoch 1 commits while a leads.
			fenced := store.WithFence(ctx, store.Fence{Duty: "controller", Epoch: 1})
			h := host(1, "edge-01")
			if err := s.Write(fenced, func(tx store.Tx) error { return tx.InsertHost(&h) }); err != nil {
				t.Fatalf("a write in the current epoch: %v", err)
			}
			// b takes over from the version it saw; a's renewal from the old one fails.
			bl := store.Leadership{Duty: "controller", Holder: "b", Epoch: 2, Version: 3, RenewedAt: at.Add(3 * time.Second)}
			if err := swap(bl, 2); err != nil {
				t.Fatal(err)
			}
			a.Version = 3
			if err := swap(a, 2); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("a's renewal after b took over: %v, want not found", err)
			}
			// a's writes under epoch 1 are refused, and nothing of them is stored.
			h2 := host(2, "edge-02")
			err := s.Write(fenced, func(tx store.Tx) error { return tx.InsertHost(&h2) })
			if !errors.Is(err, store.ErrFenced) {
				t.Errorf("a write in an ended epoch: %v, want fenced", err)
			}
			if err := s.Read(ctx, func(tx store.Tx) error { _, err := tx.HostByHostname("edge-02"); return err }); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("the fenced write's host: %v, want none", err)
			}
			// Reads are not fenced.
			if err := s.Read(fenced, func(tx store.Tx) error { _, err := tx.HostByHostname("edge-01"); return err }); err != nil {
				t.Errorf("a read under an ended fence: %v", err)
			}
		})
	}
}

// TestFenceHoldsClaim: on PostgreSQL, a new leader's claim waits for a
// write under the old epoch that checked its fence before the claim, so
// that no write of the old epoch commits after the new one began.
func TestFenceHoldsClaim(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.Open(t, storetest.PostgresDSN(t))
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	if err := s.Write(ctx, func(tx store.Tx) error {
		return tx.SwapLeadership(store.Leadership{Duty: "controller", Holder: "a", Epoch: 1, Version: 1, RenewedAt: at}, 0)
	}); err != nil {
		t.Fatal(err)
	}
	checked, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		h := host(1, "edge-01")
		done <- s.Write(store.WithFence(ctx, store.Fence{Duty: "controller", Epoch: 1}), func(tx store.Tx) error {
			close(checked)
			<-release
			return tx.InsertHost(&h)
		})
	}()
	<-checked
	claimed := make(chan time.Time, 1)
	go func() {
		s.Write(ctx, func(tx store.Tx) error {
			return tx.SwapLeadership(store.Leadership{Duty: "controller", Holder: "b", Epoch: 2, Version: 2, RenewedAt: at}, 1)
		})
		claimed <- time.Now()
	}()
	time.Sleep(300 * time.Millisecond)
	select {
	case <-claimed:
		t.Fatal("the claim committed while a write of the old epoch that had checked its fence was open")
	default:
	}
	released := time.Now()
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the write that checked its fence first: %v", err)
	}
	if c := <-claimed; c.Before(released) {
		t.Errorf("the claim committed before the old epoch's write")
	}
}
