package store_test

import (
	"context"
	"errors"
	"testing"

	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// TestSwapHostAgent: the serial changes only from the one the caller read,
// on both databases.
func TestSwapHostAgent(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			s := storetest.Open(t, b.DSN(t))
			h := host(1, "edge-01")
			for _, step := range []struct {
				old, serial string
				wantErr     error
				want        string // the serial after the step
			}{
				{"", "a1", nil, "a1"},
				{"", "b2", store.ErrNotFound, "a1"},
				{"b2", "c3", store.ErrNotFound, "a1"},
				{"a1", "b2", nil, "b2"},
				{"b2", "", nil, ""},
			} {
				var got string
				err := s.Write(context.Background(), func(tx store.Tx) error {
					if step.old == "" && step.serial == "a1" {
						if err := tx.InsertHost(&h); err != nil {
							return err
						}
					}
					if err := tx.SwapHostAgent(h.ID, step.old, step.serial); err != nil {
						return err
					}
					got, _ = tx.HostAgent(h.ID)
					return nil
				})
				if !errors.Is(err, step.wantErr) {
					t.Fatalf("swap %q to %q: %v, want %v", step.old, step.serial, err, step.wantErr)
				}
				if err == nil && got != step.want {
					t.Errorf("swap %q to %q: serial %q, want %q", step.old, step.serial, got, step.want)
				}
			}
			if err := s.Read(context.Background(), func(tx store.Tx) error {
				got, err := tx.HostAgent(h.ID)
				if err == nil && got != "" {
					t.Errorf("serial at the end: %q, want none", got)
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
}
