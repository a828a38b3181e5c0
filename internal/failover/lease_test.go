package failover

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"hummingbird.io/hummingbird/internal/wire"
)

// slowAddresses is Addresses that takes removeTook to take the VIP off, as
// ip can under load, and records where the VIP is and whether two changes
// ever ran at once.
type slowAddresses struct {
	removeTook time.Duration

	mu       sync.Mutex
	held     bool
	inFlight int
	overlaps int
}

func (a *slowAddresses) change(held bool, took time.Duration) {
	a.mu.Lock()
	a.inFlight++
	if a.inFlight > 1 {
		a.overlaps++
	}
	a.mu.Unlock()
	time.Sleep(took)
	a.mu.Lock()
	a.held = held
	a.inFlight--
	a.mu.Unlock()
}

func (a *slowAddresses) Add(context.Context, netip.Prefix) error {
	a.change(true, 0)
	return nil
}

func (a *slowAddresses) Remove(context.Context, netip.Prefix) error {
	a.change(false, a.removeTook)
	return nil
}

func (a *slowAddresses) Announce(netip.Prefix) error { return nil }

func (a *slowAddresses) Forward(context.Context, netip.Prefix, netip.Addr) (func(), error) {
	return func() {}, nil
}

func (a *slowAddresses) state() (held bool, overlaps int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.held, a.overlaps
}

// leaseMember is a member of a one-voter group on raft's in-memory
// transport, leader already, whose VIP goes to addrs.
func leaseMember(t *testing.T, addrs Addresses) *member {
	t.Helper()
	m := &Manager{log: slog.New(slog.NewTextHandler(io.Discard, nil)), addrs: addrs, changed: make(chan struct{})}
	self := wire.AppMember{HostUUID: "00000000-0000-4000-8000-000000000001", Hostname: "edge-a"}
	mb, err := newMember(m, wire.App{Name: "press", VIP: "10.201.0.10/24", Health: wire.Health{Kind: "none"},
		Members: []wire.AppMember{self}}, self, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := raft.DefaultConfig()
	c.LocalID = raft.ServerID(self.HostUUID)
	c.Logger = nil
	c.LogOutput = io.Discard
	addr, trans := raft.NewInmemTransport("")
	st := raft.NewInmemStore()
	r, err := raft.NewRaft(c, mb.fsm, st, st, raft.NewInmemSnapshotStore(), trans)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Shutdown().Error(); mb.store.Close() })
	if err := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{ID: c.LocalID, Address: addr}}}).Error(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.LeaderCh():
	case <-time.After(10 * time.Second):
		t.Fatal("the one-voter group elected no leader within 10 s")
	}
	mb.r = r
	// The group's raft runs on the in-memory transport; the member reads
	// what its peers answered from one of its own, which has none.
	mb.trans = newConfirmTransport(nil)
	return mb
}

// TestLeaseRenewedWhileVIPRemoved renews the lease while the removal that
// its expiry started is still under way: the member ends up active with
// the VIP on the node (it used to end up active without it, for good,
// when the removal finished last), and the VIP's changes never overlap.
func TestLeaseRenewedWhileVIPRemoved(t *testing.T) {
	t.Parallel()
	addrs := &slowAddresses{removeTook: 100 * time.Millisecond}
	mb := leaseMember(t, addrs)
	ctx := t.Context()

	mb.extend(ctx, time.Now().Add(20*time.Millisecond))
	if held, _ := addrs.state(); !held || mb.role() != wire.RoleActive {
		t.Fatalf("after the first renewal: VIP held %v, role %s; want the VIP and the active role", held, mb.role())
	}
	// The lease runs out and its timer starts taking the VIP off; a
	// renewal comes in while it does.
	time.Sleep(50 * time.Millisecond)
	mb.extend(ctx, time.Now().Add(time.Hour))

	deadline := time.Now().Add(2 * time.Second)
	for {
		held, overlaps := addrs.state()
		mb.mu.Lock()
		active, holds := mb.active, mb.holdsVIP
		mb.mu.Unlock()
		if overlaps > 0 {
			t.Fatalf("%d changes of the VIP ran while another was under way", overlaps)
		}
		if active && holds && held {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("2 s after the renewal: active %v, believes it holds the VIP %v, VIP on the node %v; want all three", active, holds, held)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// And it stays so once the removal is long over.
	time.Sleep(3 * addrs.removeTook)
	if held, _ := addrs.state(); !held || mb.role() != wire.RoleActive {
		t.Errorf("after the removal would have finished: VIP on the node %v, role %s; want both", held, mb.role())
	}
}

// TestRetryFor checks, for every detection an app may set, that a
// renewal's two retries come before the lease it extends ends (the
// lease counts from the renewal before, a renewal period earlier), and
// that a retry never waits more than a third of the renewal period.
func TestRetryFor(t *testing.T) {
	t.Parallel()
	for hbMillis := wire.MinHeartbeatMillis; hbMillis <= 2000; hbMillis += 5 {
		for probes := wire.MinProbes; probes <= wire.MaxProbes && hbMillis >= probes*wire.MinProbeMillis; probes++ {
			hb := time.Duration(hbMillis) * time.Millisecond
			renew := hb / time.Duration(probes)
			r := retryFor(hb, renew)
			if left := leaseFor(hb) - renew; 2*r >= left {
				t.Errorf("%v with %d probes: retries after %v and %v, the lease ends %v after the renewal begins", hb, probes, r, 2*r, left)
			}
			if r > max(renew/3, 2*time.Millisecond) {
				t.Errorf("%v with %d probes: a retry after %v, more than a third of the renewal period %v", hb, probes, r, renew)
			}
		}
	}
}
