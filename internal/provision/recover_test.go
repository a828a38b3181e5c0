package provision

import (
	"context"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// TestRecover: jobs a stopped controller left queued or running end failed, and so do their
// hosts; ended jobs are left alone. Start refuses what cannot be provisioned before it stores a
// job.
func TestRecover(t *testing.T) {
	t.Parallel()
	for _, be := range storetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := storetest.Open(t, be.DSN(t))
			inv := inventory.New(st, inventory.Options{})
			if _, _, err := inv.EnsureManagementPool(ctx, "static", "192.168.204.0/24", []string{"192.168.204.1"}); err != nil {
				t.Fatal(err)
			}
			var hosts []store.Host
			for i, name := range []string{"edge-1", "edge-2", "edge-3"} {
				h, err := inv.Add(ctx, "test", apitype.HostCreate{Hostname: name, Personality: "edgeworker",
					MgmtIP: "192.168.204." + string(rune('5'+i))})
				if err != nil {
					t.Fatal(err)
				}
				hosts = append(hosts, h)
			}
			now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
			states := []string{StateQueued, StateRunning, StateSucceeded}
			if err := st.Write(ctx, func(tx store.Tx) error {
				for i, h := range hosts {
					id, err := tx.NextID("provision_jobs")
					if err != nil {
						return err
					}
					j := store.ProvisionJob{ID: id, UUID: "00000000-0000-4000-8000-00000000000" + string(rune('1'+i)),
						HostID: h.ID, State: states[i], CreatedAt: now, UpdatedAt: now}
					if err := tx.InsertProvisionJob(&j); err != nil {
						return err
					}
					h.InvProvision = inventory.ProvProvisioning
					if states[i] == StateSucceeded {
						h.InvProvision = inventory.ProvProvisioned
					}
					if err := tx.UpdateHost(&h); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			r := New(st, nil, Config{Now: func() time.Time { return now.Add(time.Hour) }})
			if err := r.Recover(ctx); err != nil {
				t.Fatal(err)
			}
			for i, want := range []struct{ job, host string }{
				{StateFailed, inventory.ProvFailed}, {StateFailed, inventory.ProvFailed}, {StateSucceeded, inventory.ProvProvisioned},
			} {
				j, err := r.Job(ctx, hosts[i].Hostname)
				if err != nil {
					t.Fatal(err)
				}
				h, err := inv.Get(ctx, hosts[i].Hostname)
				if err != nil {
					t.Fatal(err)
				}
				if j.State != want.job || h.InvProvision != want.host {
					t.Errorf("%s after Recover: job %s, host %s; want %s, %s", h.Hostname, j.State, h.InvProvision, want.job, want.host)
				}
				if want.job == StateFailed && (j.Message == "" || !j.FinishedAt.Equal(now.Add(time.Hour))) {
					t.Errorf("%s: failed job %+v lacks its message or end time", h.Hostname, j)
				}
			}

			// Start refuses a host it cannot reach (no SSH key here, and no cluster), storing nothing.
			if _, err := r.Start(ctx, Request{Host: "edge-3", Actor: "test"}); err == nil {
				t.Error("Start without a cluster was accepted")
			}
			if j, _ := r.Job(ctx, "edge-3"); j.State != StateSucceeded {
				t.Errorf("a refused Start changed the last job: %+v", j)
			}
		})
	}
}
