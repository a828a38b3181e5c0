package hostlock

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// TestCancel: a lock that waits for an app to move (its members never
// carry the switchover out) can be left: host-lock-cancel ends it cancelled,
// with an event naming who, and host-unlock of a host being locked does the
// same; the host stays unlocked either way, and a cancel with no lock
// running is refused.
func TestCancel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.Open(t, storetest.SQLiteDSN(t))
	inv := newInventory(t, st)
	if _, err := inv.AddGroup(ctx, "test", "press", ""); err != nil {
		t.Fatal(err)
	}
	l := New(st, nil, Config{Name: "ctl-1", Poll: 50 * time.Millisecond, AppPollInterval: 10 * time.Millisecond,
		Switchover: func(ctx context.Context, actor, app string) error {
			_, err := inv.RequestSwitchover(ctx, actor, app, "")
			return err // nobody carries it out
		}})
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
	if err := st.Write(ctx, func(tx store.Tx) error {
		a, err := tx.AppByName("plc")
		if err != nil {
			return err
		}
		for _, m := range a.Members {
			if err := tx.SetHostState(m.HostID, inventory.AvailAvailable, inventory.OperEnabled, time.Now()); err != nil {
				return err
			}
			s := store.AppMemberStatus{HostID: m.HostID, Role: "standby", Healthy: true, ReportedAt: time.Now()}
			if m.Hostname == "edge-01" {
				s.Role = "active"
				if _, err := tx.SetAppActive(a.ID, m.HostID, 1); err != nil {
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

	if _, err := l.Cancel(ctx, "edge-01", "token:op"); !problem.Is(err, problem.Conflict) || !strings.Contains(err.Error(), "no lock of host edge-01 is running") {
		t.Errorf("cancel with no lock running: %v; want a conflict", err)
	}
	unlocked := func(what string) {
		t.Helper()
		h, err := inv.Get(ctx, "edge-01")
		if err != nil {
			t.Fatal(err)
		}
		if h.Administrative != inventory.AdminUnlocked {
			t.Errorf("%s: edge-01 is %s, want unlocked", what, h.Administrative)
		}
	}

	// host-lock-cancel of a lock no leader took yet (no leader runs): it ends at once.
	if op, err := l.Lock(ctx, Request{Host: "edge-01", Actor: "test", Timeout: time.Minute}); err != nil || op.State != StateDraining {
		t.Fatalf("lock of the active member: %+v, %v; want it draining", op, err)
	}
	op, err := l.Cancel(ctx, "edge-01", "token:op")
	if err != nil {
		t.Fatal(err)
	}
	if op.State != StateCancelled || op.CancelledBy != "token:op" || op.Runner != "" ||
		!strings.HasPrefix(op.Message, "cancelled by token:op; the host stays unlocked") {
		t.Errorf("the cancelled lock: %+v", op)
	}
	unlocked("after host-lock-cancel")

	// host-unlock, through another controller, of a host whose lock the leader carries out:
	// the leader stops it.
	run(t, l, 1)
	other := New(st, nil, Config{Name: "ctl-2"})
	if op, err := l.Lock(ctx, Request{Host: "edge-01", Actor: "test", Timeout: time.Minute}); err != nil || op.State != StateDraining {
		t.Fatalf("second lock: %+v, %v; want it draining", op, err)
	}
	waitLock(t, l, "edge-01", func(op Operation) bool { return op.Runner == "ctl-1" })
	h, err := other.Unlock(ctx, "edge-01", "token:other")
	if err != nil || h.Administrative != inventory.AdminUnlocked {
		t.Errorf("unlock of a host being locked: %+v, %v; want it unlocked", h, err)
	}
	if op, err := l.Operation(ctx, "edge-01"); err != nil || op.State != StateCancelled || op.CancelledBy != "token:other" ||
		!strings.HasPrefix(op.Message, "cancelled by token:other; the host stays unlocked and the apps moved so far stay where they are") {
		t.Errorf("the lock after host-unlock: %+v, %v; want it cancelled by token:other", op, err)
	}
	unlocked("after host-unlock")

	var events []string
	if err := st.Read(ctx, func(tx store.Tx) error {
		evs, err := tx.ListEvents(store.EventFilter{EntityID: "host=edge-01", Limit: 10})
		for _, e := range evs {
			if strings.HasPrefix(e.Action, "host.lock") {
				events = append(events, e.Action+" "+e.Actor)
			}
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if want := "host.lock.cancel token:other, host.lock.cancelling token:other, host.lock.start test, " +
		"host.lock.cancel token:op, host.lock.start test"; strings.Join(events, ", ") != want {
		t.Errorf("lock events: %q, want %q", strings.Join(events, ", "), want)
	}
}
