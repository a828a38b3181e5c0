// Package failover keeps exactly one member of each redundant app active,
// decided by the app's members among themselves, so that it keeps working
// while the controller is unreachable.
//
// Every member's agent (and a witness's, for a two-member app) is a voter
// of the app's raft group (hashicorp/raft), over mutual TLS on the agent's
// failover listener. The leader of the group is the active member: it
// writes "active = me, epoch = term" to the group's log, then holds the
// role, and the app's VIP, under a lease that every renewal confirms with
// a majority of the group. The lease runs out before any other member can
// be elected, so an active cut off from its group drops the VIP and tells
// its app before a successor takes over. A witness that wins an election
// hands the leadership to an app member at once; an active whose app fails
// its health check hands it to a healthy standby; a planned switchover
// hands it over after the successor has been chosen, and the old active
// keeps the VIP until the successor announces it, so no request is lost.
//
// Timings follow two numbers, the heartbeat time (100 ms by default) and
// the probes in it (5 by default): a standby that hears nothing from the
// active for a heartbeat time starts an election, and the active renews
// its lease, probing every member, that many times per heartbeat time.
package failover

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"

	"hummingbird.io/hummingbird/internal/wire"
)

// Options configure a Manager.
type Options struct {
	Self   string // this host's uuid, as its certificate names it
	Listen string // the failover listener's address, ":6386"
	Dir    string // where each app's group state is kept
	Certs  Certs
	CA     *x509.CertPool
	Log    *slog.Logger
	// RaftLog receives raft's own warnings (nil: discarded).
	RaftLog io.Writer
	// Addresses puts VIPs on the node (nil: this node's interfaces).
	Addresses Addresses
}

// Manager runs this agent's memberships of app groups.
type Manager struct {
	self    string
	dir     string
	log     *slog.Logger
	raftLog io.Writer
	addrs   Addresses
	certs   Certs
	mux     *mux
	ctx     context.Context

	mu      sync.Mutex
	members map[string]*member // by app name
	apps    map[string]wire.App

	// cmu guards changed alone: members notify while Stop or Apply,
	// holding mu, wait for them to end.
	cmu     sync.Mutex
	changed chan struct{}

	stopLinks context.CancelFunc // ends watchLinks (nil: not started)
}

// Start opens the failover listener, and the probe socket on the same
// address and port (UDP). It fails when either is taken.
// The memberships run until Stop, not until ctx ends.
func Start(ctx context.Context, o Options) (*Manager, error) {
	if o.Self == "" || o.Certs == nil || o.CA == nil {
		return nil, errors.New("failover needs this host's uuid, its certificate and the CA")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.RaftLog == nil {
		o.RaftLog = io.Discard
	}
	if o.Addresses == nil {
		o.Addresses = hostAddresses{log: o.Log.With("logger", "vip")}
	}
	ln, udp, err := listenFailover(ctx, o.Listen)
	if err != nil {
		return nil, fmt.Errorf("failover listener: %w", err)
	}
	m := &Manager{
		self: o.Self, dir: o.Dir, log: o.Log, raftLog: o.RaftLog, addrs: o.Addresses, certs: o.Certs,
		// Members outlive ctx: Stop hands an active role over first.
		mux: newMux(ln, udp, o.Certs, o.CA, o.Log), ctx: context.WithoutCancel(ctx),
		members: map[string]*member{}, apps: map[string]wire.App{}, changed: make(chan struct{}),
	}
	go m.mux.serve()
	go m.mux.serveProbes()
	links, stopLinks := context.WithCancel(m.ctx)
	m.stopLinks = stopLinks
	go m.watchLinks(links, m.peerAddrs)
	return m, nil
}

// peerAddrs are the addresses of the other members and witnesses of this node's apps.
func (m *Manager) peerAddrs() []netip.Addr {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	for _, app := range m.apps {
		for _, p := range app.Members {
			ap, err := netip.ParseAddrPort(p.Address)
			if err != nil || p.HostUUID == m.self || seen[ap.Addr().Unmap()] {
				continue
			}
			seen[ap.Addr().Unmap()] = true
			out = append(out, ap.Addr().Unmap())
		}
	}
	return out
}

// Addr is the failover listener's address.
func (m *Manager) Addr() net.Addr { return m.mux.ln.Addr() }

// groupKey identifies an app's group by its voters: a different list is
// a different group, with a fresh log.
func groupKey(app wire.App) string {
	h := sha256.New()
	for _, p := range app.Members {
		fmt.Fprintf(h, "%s %s %t\n", p.HostUUID, p.Address, p.Witness)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// sameGroup says whether a and b can share a running member: everything
// but the switchover request, the members' certificates and whether their
// hosts are locked is the same.
func sameGroup(a, b wire.App) bool {
	a.Switchover, b.Switchover = nil, nil
	a.Members, b.Members = slices.Clone(a.Members), slices.Clone(b.Members)
	for i := range a.Members {
		a.Members[i].CertSerial, a.Members[i].Locked = "", false
	}
	for i := range b.Members {
		b.Members[i].CertSerial, b.Members[i].Locked = "", false
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// Apply makes the running memberships those of apps: it starts members of
// new apps, restarts those whose app changed (other than its switchover
// request, its members' certificates and whether their hosts are locked,
// which are passed on) and stops
// those of apps no longer listed.
// Apps that name this host nowhere are ignored; an app that cannot run
// here is logged and reported down.
func (m *Manager) Apply(apps []wire.App) {
	m.mu.Lock()
	defer m.mu.Unlock()
	want := map[string]wire.App{}
	keep := map[string]bool{}
	for _, a := range apps {
		i := slices.IndexFunc(a.Members, func(p wire.AppMember) bool { return p.HostUUID == m.self })
		if i < 0 {
			continue
		}
		want[a.Name] = a
		keep[memberDir(m.dir, a)] = true
	}
	for name, mb := range m.members {
		if a, ok := want[name]; !ok || !sameGroup(a, mb.app) {
			mb.stop()
			delete(m.members, name)
			delete(m.apps, name)
		}
	}
	removeStaleDirs(m.dir, keep)
	for name, a := range want {
		m.apps[name] = a
		if mb, ok := m.members[name]; ok {
			mb.setSwitchover(a.Switchover)
			mb.stream.setCerts(memberCerts(a))
			for _, p := range a.Members {
				if p.HostUUID == m.self {
					mb.setLocked(p.Locked)
				}
			}
			continue
		}
		self := a.Members[slices.IndexFunc(a.Members, func(p wire.AppMember) bool { return p.HostUUID == m.self })]
		mb, err := newMember(m, a, self, memberDir(m.dir, a))
		if err == nil {
			err = mb.start(m.ctx)
		}
		if err != nil {
			m.log.Error("app not started", "app", name, "err", err)
			if mb != nil {
				mb.stop()
			}
			continue
		}
		m.members[name] = mb
	}
	m.notify()
}

// Status is every app's state as this member sees it, by name.
func (m *Manager) Status() []wire.AppStatus {
	m.mu.Lock()
	names := make([]string, 0, len(m.apps))
	for n := range m.apps {
		names = append(names, n)
	}
	members := map[string]*member{}
	for n, mb := range m.members {
		members[n] = mb
	}
	m.mu.Unlock()
	slices.Sort(names)
	out := make([]wire.AppStatus, 0, len(names))
	for _, n := range names {
		if mb := members[n]; mb != nil {
			out = append(out, mb.status())
		} else {
			out = append(out, wire.AppStatus{Name: n, Role: wire.RoleDown})
		}
	}
	return out
}

// Changed is closed at the next change of any app's state.
func (m *Manager) Changed() <-chan struct{} {
	m.cmu.Lock()
	defer m.cmu.Unlock()
	return m.changed
}

func (m *Manager) notify() {
	m.cmu.Lock()
	defer m.cmu.Unlock()
	close(m.changed)
	m.changed = make(chan struct{})
}

// Stop leaves every group, handing over the active roles and dropping
// the VIPs this node holds, and closes the failover listener and the
// probe socket.
func (m *Manager) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, mb := range m.members {
		mb.stop()
		delete(m.members, name)
	}
	m.mux.ln.Close()
	m.mux.udp.Close()
	if m.stopLinks != nil {
		m.stopLinks()
	}
}

// member is the running member of an app, or nil.
func (m *Manager) member(name string) *member {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.members[name]
}

// CertFiles is a Certs reading the agent's key pair from its files at
// every handshake, so a renewed certificate is picked up. While a renewal
// has written the new key but not yet the new certificate, the pair does
// not match: the last pair read is used until it does.
func CertFiles(certFile, keyFile string) Certs {
	var (
		mu   sync.Mutex
		last *tls.Certificate
	)
	return func() (*tls.Certificate, error) {
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if last != nil {
				return last, nil
			}
			return nil, err
		}
		last = &c
		return &c, nil
	}
}
