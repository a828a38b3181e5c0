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
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// TestLeaderTakesOver: a lock asked through a controller that does not lead is carried out by
// the leader; when the leader's term ends mid-lock it writes nothing more, and the next leader
// takes the lock over where it stands (an app its members moved meanwhile is not asked to move
// again) and ends it once, in its own epoch. A lock whose time ran out while no controller led
// fails, saying so; a leader whose epoch is past writes nothing and its Run ends fenced.
func TestLeaderTakesOver(t *testing.T) {
	t.Parallel()
	for _, be := range storetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			testLeaderTakesOver(t, storetest.Open(t, be.DSN(t)))
		})
	}
}

func testLeaderTakesOver(t *testing.T, st store.Store) {
	ctx := context.Background()
	inv := newInventory(t, st)
	if _, err := inv.AddGroup(ctx, "test", "press", ""); err != nil {
		t.Fatal(err)
	}
	var (
		mu        sync.Mutex
		requested []string
	)
	cfg := func(name string) Config {
		return Config{Name: name, Poll: 50 * time.Millisecond, AppPollInterval: 10 * time.Millisecond,
			Switchover: func(ctx context.Context, actor, app string) error {
				if _, err := inv.RequestSwitchover(ctx, actor, app, ""); err != nil {
					return err
				}
				mu.Lock()
				requested = append(requested, app)
				mu.Unlock()
				return nil // the members carry it out when the test says
			}}
	}
	api := New(st, nil, cfg("ctl-api")) // a controller that never leads
	for i, name := range []string{"edge-01", "edge-02", "edge-03", "edge-04"} {
		if _, err := inv.Add(ctx, "test", apitype.HostCreate{Hostname: name, Personality: apitype.PersonalityEdgeworker,
			MgmtIP: fmt.Sprintf("192.168.204.%d", 10+i), Group: "press"}); err != nil {
			t.Fatal(err)
		}
		if _, err := api.Unlock(ctx, name, "test"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := inv.AddApp(ctx, "test", apitype.AppCreate{Name: "plc", Group: "press", Image: "plc:1",
		Members: []string{"edge-01", "edge-02"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := inv.AddApp(ctx, "test", apitype.AppCreate{Name: "hmi", Group: "press", Image: "hmi:1",
		Members: []string{"edge-03", "edge-04"}}); err != nil {
		t.Fatal(err)
	}
	// activate makes host the active member of app in epoch, the other member a healthy standby.
	activate := func(app, host string, epoch int64) {
		t.Helper()
		if err := st.Write(ctx, func(tx store.Tx) error {
			a, err := tx.AppByName(app)
			if err != nil {
				return err
			}
			for _, m := range a.Members {
				if err := tx.SetHostState(m.HostID, inventory.AvailAvailable, inventory.OperEnabled, time.Now()); err != nil {
					return err
				}
				s := store.AppMemberStatus{HostID: m.HostID, Role: "standby", Healthy: true, ReportedAt: time.Now()}
				if m.Hostname == host {
					s.Role = "active"
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
			t.Fatal(err)
		}
	}
	activate("plc", "edge-01", 1)
	activate("hmi", "edge-03", 1)

	// Leader A takes the lock asked through the API of another controller.
	a := New(st, nil, cfg("ctl-a"))
	lead(t, st, 1)
	aCtx, stopA := context.WithCancel(store.WithFence(ctx, store.Fence{Duty: leader.Duty, Epoch: 1}))
	aDone := make(chan error, 1)
	go func() { aDone <- a.Run(aCtx) }()
	if op, err := api.Lock(ctx, Request{Host: "edge-01", Actor: "test", Timeout: time.Minute}); err != nil || op.State != StateDraining || op.Runner != "" {
		t.Fatalf("lock through a controller that does not lead: %+v, %v; want it draining, no runner yet", op, err)
	}
	waitLock(t, api, "edge-01", func(op Operation) bool {
		return op.Runner == "ctl-a" && strings.HasPrefix(op.Message, "moving app plc")
	})
	waitFor(t, "the switchover asked", func() bool { mu.Lock(); defer mu.Unlock(); return len(requested) == 1 })

	// A's term ends: it writes nothing more, and the lock stays draining, A's.
	stopA()
	if err := <-aDone; err != nil {
		t.Fatalf("A's Run: %v", err)
	}
	if op := waitLock(t, api, "edge-01", func(Operation) bool { return true }); op.State != StateDraining || op.Runner != "ctl-a" {
		t.Errorf("the lock after A's term ended: %+v; want it draining, A's", op)
	}

	// Meanwhile the members carry the switchover out; and a lock of edge-03 is asked whose
	// time has run out by the time a leader comes (it began an hour ago).
	activate("plc", "edge-02", 2)
	past := cfg("ctl-api")
	past.Now = func() time.Time { return time.Now().Add(-time.Hour) }
	if _, err := New(st, nil, past).Lock(ctx, Request{Host: "edge-03", Actor: "test", Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}

	// Leader B takes both over: edge-01's app moved, so it asks nothing more and locks it.
	b := New(st, nil, cfg("ctl-b"))
	run(t, b, 2)
	if op := waitEnded(t, api, "edge-01"); op.State != StateLocked || op.Runner != "ctl-b" || !strings.Contains(op.Message, "app(s) plc moved") {
		t.Errorf("the lock B took over: %+v; want it locked by ctl-b", op)
	}
	if op := waitEnded(t, api, "edge-03"); op.State != StateFailed || op.Runner != "ctl-b" ||
		!strings.Contains(op.Message, "did not end within 1m of its start") || !strings.Contains(op.Message, "no controller led for that long") {
		t.Errorf("the lock whose time ran out: %+v; want it failed, saying why", op)
	}
	mu.Lock()
	if len(requested) != 1 {
		t.Errorf("switchovers asked: %v; want plc's once", requested)
	}
	mu.Unlock()
	for host, want := range map[string]string{"edge-01": inventory.AdminLocked, "edge-03": inventory.AdminUnlocked} {
		if h, err := inv.Get(ctx, host); err != nil || h.Administrative != want {
			t.Errorf("%s: %s (%v), want %s", host, h.Administrative, err, want)
		}
	}
	var events []string
	if err := st.Read(ctx, func(tx store.Tx) error {
		evs, err := tx.ListEvents(store.EventFilter{EntityID: "host=edge-01", Limit: 10})
		for _, e := range evs {
			if strings.HasPrefix(e.Action, "host.lock") {
				events = append(events, e.Action)
			}
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if want := "host.lock, host.lock.start"; strings.Join(events, ", ") != want {
		t.Errorf("lock events of edge-01: %q, want %q (each once)", strings.Join(events, ", "), want)
	}

	// A, woken with its old epoch, takes nothing: its Run ends fenced, and B carries out the
	// lock asked meanwhile.
	staleCtx, stopStale := context.WithCancel(store.WithFence(ctx, store.Fence{Duty: leader.Duty, Epoch: 1}))
	defer stopStale()
	staleDone := make(chan error, 1)
	stale := New(st, nil, cfg("ctl-a"))
	go func() { staleDone <- stale.Run(staleCtx) }()
	if _, err := stale.Lock(ctx, Request{Host: "edge-03", Actor: "test", Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-staleDone:
		if !errors.Is(err, store.ErrFenced) {
			t.Errorf("Run of a past leader ended with %v, want fenced", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run of a past leader went on")
	}
	waitLock(t, api, "edge-03", func(op Operation) bool {
		return op.Runner == "ctl-b" && strings.HasPrefix(op.Message, "moving app hmi")
	})
	// The members report only once the switchover was asked: on PostgreSQL a report committed
	// while the request reads the app may leave it with no standby to name.
	waitFor(t, "hmi's switchover asked", func() bool { mu.Lock(); defer mu.Unlock(); return len(requested) == 2 })
	activate("hmi", "edge-04", 2)
	if op := waitEnded(t, api, "edge-03"); op.State != StateLocked || op.Runner != "ctl-b" {
		t.Errorf("the lock asked while a past leader ran: %+v; want it locked by ctl-b", op)
	}
}

// waitFor waits until ok, for at most 10 s.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: timed out", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
