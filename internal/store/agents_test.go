package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

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

// TestListAgentHosts: the hosts whose agent holds a certificate, by id,
// and no others, on both databases.
func TestListAgentHosts(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			s := storetest.Open(t, b.DSN(t))
			var got []store.AgentHost
			err := s.Write(context.Background(), func(tx store.Tx) error {
				for i, name := range []string{"edge-01", "edge-02", "edge-03", "edge-04"} {
					h := host(int64(i+1), name)
					if err := tx.InsertHost(&h); err != nil {
						return err
					}
				}
				for _, id := range []int64{3, 1, 4} {
					if err := tx.SetHostAgent(id, fmt.Sprintf("serial-%d", id)); err != nil {
						return err
					}
				}
				if err := tx.SetHostAgent(4, ""); err != nil { // revoked
					return err
				}
				if err := tx.SetHostState(3, "failed", "disabled", time.Unix(1_700_000_000, 0)); err != nil {
					return err
				}
				var err error
				got, err = tx.ListAgentHosts()
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			h1 := host(1, "edge-01")
			want := []store.AgentHost{
				{ID: 1, Hostname: "edge-01", Personality: h1.Personality, Availability: h1.Availability},
				{ID: 3, Hostname: "edge-03", Personality: h1.Personality, Availability: "failed"},
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("agent hosts (-want +got):\n%s", d)
			}
		})
	}
}
