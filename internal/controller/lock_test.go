package controller_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/client"
	"hummingbird.io/hummingbird/internal/controller/controllertest"
	"hummingbird.io/hummingbird/internal/hostlock"
	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// TestLockOnLeader: a host-lock asked through the controller that does not lead is carried out
// by the one that does (it moves the host's app, then locks the host); a lock whose leader
// stops mid-way is taken over by the other controller once it leads, and ends there.
func TestLockOnLeader(t *testing.T) {
	t.Parallel()
	dsn := storetest.PostgresDSN(t)
	a := controllertest.Start(t, dsn, nil)
	b := controllertest.Start(t, dsn, controllertest.ShareCA(t, a))
	ctx := context.Background()
	lead, other := leaderOf(t, a, b)
	via := other.Client(t, a.AdminToken)
	if _, err := via.AddGroup(ctx, apitype.GroupCreate{Name: "press"}); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"edge-1", "edge-2"} {
		if _, err := via.AddHost(ctx, apitype.HostCreate{Hostname: name, Personality: "edgeworker", Group: "press",
			MgmtIP: "192.168.204." + string(rune('5'+i))}); err != nil {
			t.Fatal(err)
		}
		if _, err := via.UnlockHost(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := via.AddApp(ctx, apitype.AppCreate{Name: "plc", Group: "press", Image: "plc:1", Members: []string{"edge-1", "edge-2"}}); err != nil {
		t.Fatal(err)
	}
	st := other.Controller.Store // it keeps running
	// activate stores what the members' agents would report: host active in epoch, the other
	// member a healthy standby.
	activate := func(host string, epoch int64) {
		t.Helper()
		if err := st.Write(ctx, func(tx store.Tx) error {
			app, err := tx.AppByName("plc")
			if err != nil {
				return err
			}
			for _, m := range app.Members {
				if err := tx.SetHostState(m.HostID, inventory.AvailAvailable, inventory.OperEnabled, time.Now()); err != nil {
					return err
				}
				s := store.AppMemberStatus{HostID: m.HostID, Role: "standby", Healthy: true, ReportedAt: time.Now()}
				if m.Hostname == host {
					s.Role = "active"
					if _, err := tx.SetAppActive(app.ID, m.HostID, epoch); err != nil {
						return err
					}
				}
				if err := tx.SetAppMemberStatus(app.ID, s); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	activate("edge-1", 1)

	if op, err := via.LockHost(ctx, "edge-1", apitype.LockRequest{}); err != nil || op.State != hostlock.StateDraining {
		t.Fatalf("lock through the controller that does not lead: %+v, %v", op, err)
	}
	waitLockOp(t, via, "edge-1", "the lock carried out by the leader", func(op apitype.LockOperation) bool {
		return op.Runner == lead.Name() && strings.HasPrefix(op.Message, "moving app plc")
	})
	switchovers(t, via, 1)
	activate("edge-2", 2)
	if op := waitLockOp(t, via, "edge-1", "the lock once the app moved", func(op apitype.LockOperation) bool {
		return op.State != hostlock.StateDraining
	}); op.State != hostlock.StateLocked || op.Runner != lead.Name() {
		t.Errorf("the lock: %+v; want it locked by %s", op, lead.Name())
	}

	// The leader stops during the next lock; the other takes it over once it leads.
	if _, err := via.UnlockHost(ctx, "edge-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := via.LockHost(ctx, "edge-2", apitype.LockRequest{}); err != nil {
		t.Fatal(err)
	}
	waitLockOp(t, via, "edge-2", "the second lock on the leader", func(op apitype.LockOperation) bool { return op.Runner == lead.Name() })
	lead.Stop(t)
	waitLockOp(t, via, "edge-2", "the lock taken over", func(op apitype.LockOperation) bool {
		return op.Runner == other.Name() && strings.Contains(op.Message, "moving app plc")
	})
	switchovers(t, via, 2)
	activate("edge-1", 3)
	if op := waitLockOp(t, via, "edge-2", "the lock taken over, ended", func(op apitype.LockOperation) bool {
		return op.State != hostlock.StateDraining
	}); op.State != hostlock.StateLocked || op.Runner != other.Name() {
		t.Errorf("the lock taken over: %+v; want it locked by %s", op, other.Name())
	}
}

// switchovers waits until app plc's planned switchover was asked n times: the members report
// only then (on PostgreSQL a report committed while the request reads the app may leave it with
// no standby to name).
func switchovers(t *testing.T, c *client.Client, n int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		events, err := c.ListEvents(context.Background(), client.EventFilter{EntityID: "app=plc"})
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for _, e := range events {
			if e.Action == "app.switchover.request" {
				got++
			}
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("app plc's switchover asked %d times after 15 s, want %d", got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leaderOf waits until one of a and b leads and returns it, then the other.
func leaderOf(t *testing.T, a, b *controllertest.Instance) (lead, other *controllertest.Instance) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		switch {
		case a.Controller.Elector.Leading() != nil:
			return a, b
		case b.Controller.Elector.Leading() != nil:
			return b, a
		case time.Now().After(deadline):
			t.Fatal("no controller leads after 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitLockOp waits, for at most 15 s, until host's lock satisfies ok, and returns it.
func waitLockOp(t *testing.T, c *client.Client, host, what string, ok func(apitype.LockOperation) bool) apitype.LockOperation {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		op, err := c.LockOperation(context.Background(), host)
		if err != nil {
			t.Fatal(err)
		}
		if ok(op) {
			return op
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 15 s: %+v", what, op)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
