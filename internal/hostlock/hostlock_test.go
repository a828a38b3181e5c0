package hostlock

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/leader"
	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

func TestParseTimeout(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"": DefaultTimeout, "10s": 10 * time.Second, "90s": 90 * time.Second, "1h": time.Hour} {
		if got, err := ParseTimeout(in); err != nil || got != want {
			t.Errorf("ParseTimeout(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"9s", "61m", "-5m", "5", "soon"} {
		if _, err := ParseTimeout(in); !problem.Is(err, problem.Invalid) || problem.FieldOf(err) != "timeout" {
			t.Errorf("ParseTimeout(%q): %v; want an invalid timeout", in, err)
		}
	}
	if got := shortDuration(time.Hour); got != "1h" {
		t.Errorf("shortDuration(1h) = %q", got)
	}
}

// TestConcurrentLocks locks hosts at once without a cluster: of two locks of one host, one
// wins; of the two unlocked controllers locked at once, one stays unlocked.
func TestConcurrentLocks(t *testing.T) {
	t.Parallel()
	for _, be := range storetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			testConcurrentLocks(t, storetest.Open(t, be.DSN(t)))
		})
	}
}

// testConcurrentLocks locks hosts at once through two controllers' Lockers on one store.
func testConcurrentLocks(t *testing.T, st store.Store) {
	ctx := context.Background()
	inv := newInventory(t, st)
	ls := [2]*Locker{New(st, nil, Config{Name: "ctl-1"}), New(st, nil, Config{Name: "ctl-2"})}
	l := ls[0]
	for i, h := range []apitype.HostCreate{
		{Hostname: "edge-01", Personality: apitype.PersonalityEdgeworker, MgmtIP: "192.168.204.10"},
		{Hostname: "controller-0", Personality: apitype.PersonalityController, MgmtIP: "192.168.204.20"},
		{Hostname: "controller-1", Personality: apitype.PersonalityController, MgmtIP: "192.168.204.21"},
	} {
		if _, err := inv.Add(ctx, "test", h); err != nil {
			t.Fatal(i, err)
		}
		if _, err := l.Unlock(ctx, h.Hostname, "test"); err != nil {
			t.Fatal(err)
		}
	}
	for _, hosts := range [][2]string{{"edge-01", "edge-01"}, {"controller-0", "controller-1"}} {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, host := range hosts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = ls[i].Lock(ctx, Request{Host: host, Actor: "test"})
			}()
		}
		wg.Wait()
		if (errs[0] == nil) == (errs[1] == nil) || !problem.Is(errs[0], problem.Conflict) && !problem.Is(errs[1], problem.Conflict) {
			t.Errorf("two locks of %v at once: %v, %v; want one locked and one conflict", hosts, errs[0], errs[1])
		}
	}
	unlocked, err := inv.List(ctx, store.HostFilter{Personality: apitype.PersonalityController, Administrative: inventory.AdminUnlocked})
	if err != nil || len(unlocked) != 1 {
		t.Errorf("unlocked controllers after locking both at once: %d (%v), want 1", len(unlocked), err)
	}
}

// TestLockMovesApps locks the active member of an app: the lock asks for a planned switchover
// first and locks the host once another member reports itself active. A host whose app has no
// healthy standby is refused, unless forced.
func TestLockMovesApps(t *testing.T) {
	t.Parallel()
	for _, be := range storetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := storetest.Open(t, be.DSN(t))
			inv := newInventory(t, st)
			if _, err := inv.AddGroup(ctx, "test", "press", ""); err != nil {
				t.Fatal(err)
			}
			var (
				mu        sync.Mutex
				requested []string
			)
			// report stores what the members' agents would: active the active member in epoch,
			// the other a standby, healthy or not, on available hosts.
			report := func(active string, epoch int64, standbyHealthy bool) {
				t.Helper()
				if err := st.Write(ctx, func(tx store.Tx) error {
					a, err := tx.AppByName("plc")
					if err != nil {
						return err
					}
					for _, m := range a.Members {
						if err := tx.SetHostState(m.HostID, inventory.AvailAvailable, inventory.OperEnabled, time.Now()); err != nil {
							return err
						}
						s := store.AppMemberStatus{HostID: m.HostID, Role: "standby", Healthy: standbyHealthy, ReportedAt: time.Now()}
						if m.Hostname == active {
							s.Role, s.Healthy = "active", true
							if _, err := tx.SetAppActive(a.ID, m.HostID, epoch); err != nil {
								return err
							}
						}
						if err := tx.SetAppMemberStatus(a.ID, s); err != nil {
							return err
						}
					}
					return nil
				}); err != nil {
					t.Error(err)
				}
			}
			due := time.Date(2026, 5, 4, 12, 0, 30, 0, time.UTC)
			l := New(st, nil, Config{AppPollInterval: 10 * time.Millisecond,
				NextHeartbeat: func(int64) (time.Time, bool) { return due, true },
				Switchover: func(ctx context.Context, actor, app string) error {
					if _, err := inv.RequestSwitchover(ctx, actor, app, ""); err != nil {
						return err
					}
					mu.Lock()
					requested = append(requested, app)
					mu.Unlock()
					go func() { // the members carry it out a moment later
						time.Sleep(50 * time.Millisecond)
						report("edge-02", 2, true)
					}()
					return nil
				}})
			run(t, l, 1)
			for i, name := range []string{"edge-01", "edge-02"} {
				if _, err := inv.Add(ctx, "test", apitype.HostCreate{Hostname: name, Personality: apitype.PersonalityEdgeworker,
					MgmtIP: fmt.Sprintf("192.168.204.%d", 10+i), Group: "press"}); err != nil {
					t.Fatal(err)
				}
				if _, err := l.Unlock(ctx, name, "test"); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := inv.AddApp(ctx, "test", apitype.AppCreate{Name: "plc", Group: "press", Image: "plc:1"}); err != nil {
				t.Fatal(err)
			}

			// edge-01 is active, edge-02 unhealthy: refused without --force.
			report("edge-01", 1, false)
			if _, err := l.Lock(ctx, Request{Host: "edge-01", Actor: "test"}); !problem.Is(err, problem.Conflict) ||
				!strings.Contains(err.Error(), "active member of app plc, which has no healthy standby") || !strings.Contains(err.Error(), "--force") {
				t.Errorf("lock of the active member without a standby: %v; want a conflict naming the app and --force", err)
			}

			// With a healthy standby, the app moves first, then the host is locked.
			report("edge-01", 1, true)
			op, err := l.Lock(ctx, Request{Host: "edge-01", Actor: "test"})
			if err != nil {
				t.Fatal(err)
			}
			if op.State != StateDraining || op.Message != "moving app plc to a standby: its agent learns of it with its next heartbeat, due at 12:00:30 UTC" {
				t.Errorf("lock of the active member: %+v; want it draining, moving plc", op)
			}
			if op = waitEnded(t, l, "edge-01"); op.State != StateLocked || !strings.Contains(op.Message, "app(s) plc moved to a standby") {
				t.Errorf("the lock once the app moved: %+v", op)
			}
			a, err := inv.GetApp(ctx, "plc")
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			if a.ActiveHostname != "edge-02" || len(requested) != 1 {
				t.Errorf("after the lock: %s active, switchovers asked %v; want edge-02 and one for plc", a.ActiveHostname, requested)
			}
			mu.Unlock()

			// The new active member, with no standby left (edge-01 is locked and unhealthy), is
			// locked with --force only, and then nothing is moved.
			report("edge-02", 2, false)
			if _, err := l.Lock(ctx, Request{Host: "edge-02", Actor: "test"}); !problem.Is(err, problem.Conflict) {
				t.Errorf("lock of the last member: %v; want a conflict", err)
			}
			if op, err := l.Lock(ctx, Request{Host: "edge-02", Actor: "test", Force: true}); err != nil || op.State != StateLocked {
				t.Errorf("forced lock of the last member: %+v, %v; want it locked at once", op, err)
			}
			mu.Lock()
			if len(requested) != 1 {
				t.Errorf("switchovers asked: %v; want none for the forced lock", requested)
			}
			mu.Unlock()
		})
	}
}

// run runs l's leader part in epoch as the leader (a fence), until the test ends.
func run(t *testing.T, l *Locker, epoch int64) {
	t.Helper()
	ctx, cancel := context.WithCancel(store.WithFence(context.Background(), store.Fence{Duty: leader.Duty, Epoch: epoch}))
	lead(t, l.st, epoch)
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// lead makes epoch the leader's epoch in st.
func lead(t *testing.T, st store.Store, epoch int64) {
	t.Helper()
	if err := st.Write(context.Background(), func(tx store.Tx) error {
		cur, err := tx.Leadership(leader.Duty)
		if errors.Is(err, store.ErrNotFound) {
			cur, err = store.Leadership{}, nil
		}
		if err != nil || cur.Epoch == epoch {
			return err
		}
		return tx.SwapLeadership(store.Leadership{Duty: leader.Duty, Holder: fmt.Sprintf("run-%d", epoch), Epoch: epoch,
			Version: cur.Version + 1, RenewedAt: time.Now()}, cur.Version)
	}); err != nil {
		t.Fatal(err)
	}
}

// waitEnded waits until host's latest lock has ended, and returns it.
func waitEnded(t *testing.T, l *Locker, host string) Operation {
	t.Helper()
	return waitLock(t, l, host, func(op Operation) bool { return op.State != StateDraining })
}

// waitLock waits until host's latest lock is as ok wants it, and returns it.
func waitLock(t *testing.T, l *Locker, host string, ok func(Operation) bool) Operation {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		op, err := l.Operation(context.Background(), host)
		if err != nil {
			t.Fatal(err)
		}
		if ok(op) {
			return op
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lock of %s: %+v", host, op)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// newInventory is the inventory of st, with a management pool to add hosts in.
func newInventory(t *testing.T, st store.Store) *inventory.Service {
	t.Helper()
	inv := inventory.New(st, inventory.Options{})
	if _, _, err := inv.EnsureManagementPool(context.Background(), "static", "192.168.204.0/24", []string{"192.168.204.1"}); err != nil {
		t.Fatal(err)
	}
	return inv
}
