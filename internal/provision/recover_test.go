package provision

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/leader"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// TestLeaderRuns: the leader's Run fails the jobs an earlier leader left running, saying which,
// runs the queued ones in its own epoch, and leaves ended ones alone; once a newer leader holds
// the lead it takes nothing more. Cancel ends a queued job at once and marks a running one for
// its leader to stop. Start refuses what cannot be provisioned before it stores a job.
func TestLeaderRuns(t *testing.T) {
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
			for i, name := range []string{"edge-1", "edge-2", "edge-3", "edge-4", "edge-5"} {
				h, err := inv.Add(ctx, "test", apitype.HostCreate{Hostname: name, Personality: "edgeworker",
					MgmtIP: "192.168.204." + string(rune('5'+i))})
				if err != nil {
					t.Fatal(err)
				}
				hosts = append(hosts, h)
			}
			now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
			jobs := []store.ProvisionJob{
				{State: StateRunning, Epoch: 1, Runner: "ctl-old"}, // left by the last leader
				{State: StateQueued},    // waits for a leader
				{State: StateSucceeded}, // ended
			}
			insert := func(i int, j store.ProvisionJob) {
				t.Helper()
				if err := st.Write(ctx, func(tx store.Tx) error {
					id, err := tx.NextID("provision_jobs")
					if err != nil {
						return err
					}
					j.ID, j.UUID, j.HostID, j.CreatedAt, j.UpdatedAt = id, "00000000-0000-4000-8000-00000000000"+string(rune('1'+i)), hosts[i].ID, now, now
					if err := tx.InsertProvisionJob(&j); err != nil {
						return err
					}
					h := hosts[i]
					h.InvProvision = inventory.ProvProvisioning
					if j.State == StateSucceeded {
						h.InvProvision = inventory.ProvProvisioned
					}
					return tx.UpdateHost(&h)
				}); err != nil {
					t.Fatal(err)
				}
			}
			for i, j := range jobs {
				insert(i, j)
			}
			lead := func(epoch int64, old int64) {
				t.Helper()
				if err := st.Write(ctx, func(tx store.Tx) error {
					return tx.SwapLeadership(store.Leadership{Duty: leader.Duty, Holder: "run-" + string(rune('0'+epoch)), Epoch: epoch,
						Version: old + 1, RenewedAt: now}, old)
				}); err != nil {
					t.Fatal(err)
				}
			}
			lead(2, 0)
			r := New(st, nil, Config{Name: "ctl-new", Poll: 50 * time.Millisecond, Now: func() time.Time { return now.Add(time.Hour) }})
			runCtx, stop := context.WithCancel(store.WithFence(ctx, store.Fence{Duty: leader.Duty, Epoch: 2}))
			defer stop()
			done := make(chan error, 1)
			go func() { done <- r.Run(runCtx) }()

			job := func(host string) store.ProvisionJob {
				t.Helper()
				j, err := r.Job(ctx, host)
				if err != nil {
					t.Fatal(err)
				}
				return j
			}
			waitEnded := func(host string) store.ProvisionJob {
				t.Helper()
				deadline := time.Now().Add(10 * time.Second)
				for {
					if j := job(host); j.State != StateQueued && j.State != StateRunning {
						return j
					}
					if time.Now().After(deadline) {
						t.Fatalf("the job of %s has not ended: %+v", host, job(host))
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			if j := waitEnded("edge-1"); j.State != StateFailed || !strings.Contains(j.Message, "controller ctl-old") ||
				!strings.Contains(j.Message, "epoch 1") || !j.FinishedAt.Equal(now.Add(time.Hour)) {
				t.Errorf("the job the last leader left running: %+v", j)
			}
			// The queued job ran here, in epoch 2, and failed where it had to: the test holds no
			// SSH key for it.
			if j := waitEnded("edge-2"); j.State != StateFailed || j.Epoch != 2 || j.Runner != "ctl-new" ||
				j.Task != "Check the host" || j.StartedAt.IsZero() {
				t.Errorf("the queued job: %+v", j)
			}
			if j := job("edge-3"); j.State != StateSucceeded {
				t.Errorf("the ended job: %+v", j)
			}
			for i, want := range []string{inventory.ProvFailed, inventory.ProvFailed, inventory.ProvProvisioned} {
				if h, err := inv.Get(ctx, hosts[i].Hostname); err != nil || h.InvProvision != want {
					t.Errorf("%s: invprovision %s (%v), want %s", hosts[i].Hostname, h.InvProvision, err, want)
				}
			}

			// Cancel: a queued job ends at once; a running one is marked for its leader.
			insert(3, store.ProvisionJob{State: StateRunning, Epoch: 2, Runner: "ctl-new"})
			if _, err := r.Cancel(ctx, "edge-4", "operator-1"); err != nil {
				t.Fatal(err)
			}
			if j := job("edge-4"); j.State != StateRunning || j.CancelBy != "operator-1" {
				t.Errorf("a running job after Cancel: %+v", j)
			}
			if _, err := r.Cancel(ctx, "edge-3", "operator-1"); err == nil {
				t.Error("Cancel of an ended job was accepted")
			}

			// A newer leader: this one takes no queued job, and its Run ends fenced.
			lead(3, 1)
			insert(4, store.ProvisionJob{State: StateQueued})
			r.Kick()
			select {
			case err := <-done:
				if !errors.Is(err, store.ErrFenced) {
					t.Errorf("Run under a newer leader ended with %v, want fenced", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run went on under a newer leader")
			}
			if j := job("edge-5"); j.State != StateQueued || j.Epoch != 0 {
				t.Errorf("the job queued under the newer leader: %+v", j)
			}
			if _, err := r.Cancel(ctx, "edge-5", "operator-2"); err != nil {
				t.Fatal(err)
			}
			if j := job("edge-5"); j.State != StateCancelled || j.Message != "cancelled by operator-2 before it started" || !j.StartedAt.IsZero() {
				t.Errorf("a queued job after Cancel: %+v", j)
			}

			// Start refuses a host it cannot reach (no SSH key here, and no cluster), storing nothing.
			if _, err := r.Start(ctx, Request{Host: "edge-3", Actor: "test"}); err == nil {
				t.Error("Start without a cluster was accepted")
			}
			if j := job("edge-3"); j.State != StateSucceeded {
				t.Errorf("a refused Start changed the last job: %+v", j)
			}
		})
	}
}
