package failover_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"hummingbird.io/hummingbird/internal/failover/failovertest"
	"hummingbird.io/hummingbird/internal/wire"
)

// localApp is member m's view of app press on its local endpoint.
func localApp(t *testing.T, g *failovertest.Group, m string) wire.LocalApp {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", g.Socket(m))
	}}}
	resp, err := c.Get("http://agent" + wire.LocalAppPath + "press")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var l wire.LocalApp
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		t.Fatal(err)
	}
	return l
}

// certStream is a raft.StreamLayer that dials members' failover ports
// from the bed's client namespace with a certificate of the caller's
// choosing, as a host holding that certificate would.
type certStream struct {
	bed  *failovertest.Bed
	cert tls.Certificate
	done chan struct{}
}

func (s *certStream) Accept() (net.Conn, error) { <-s.done; return nil, net.ErrClosed }
func (s *certStream) Close() error              { close(s.done); return nil }
func (s *certStream) Addr() net.Addr            { return &net.TCPAddr{IP: net.ParseIP(failovertest.Client)} }

func (s *certStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	var raw net.Conn
	if err := s.bed.InClient(func() (err error) {
		raw, err = net.DialTimeout("tcp", string(addr), timeout)
		return err
	}); err != nil {
		return nil, err
	}
	c := tls.Client(raw, &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{s.cert},
		InsecureSkipVerify: true}) //nolint:gosec // the far end does not matter here
	c.SetDeadline(time.Now().Add(timeout))
	if err := c.Handshake(); err != nil {
		raw.Close()
		return nil, err
	}
	if _, err := c.Write([]byte("raft press\n")); err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// TestReplacedCertificateRefused: certificates of the controller's CA,
// within their validity, that are not a member's current one cannot
// reach the group's raft: a member's replaced (earlier) certificate, and
// that of a host that is no member, sending RequestVote with leadership
// transfer in a term far ahead (which, reaching raft, steps the active
// down and moves the epoch). A member's renewed certificate, of a later
// generation than the one the desired state names, reaches raft at once
// (its vote, of an old term, changes nothing): a renewal leaves no window.
// The group keeps its active member and epoch throughout.
func TestReplacedCertificateRefused(t *testing.T) {
	d, g, act := start(t, wire.App{})
	stby := other(act)
	before := localApp(t, g, "W")
	if before.Epoch == 0 || before.ActiveMember != "edge-"+map[string]string{"A": "a", "B": "b"}[act] {
		t.Fatalf("before: the witness sees %+v, want %s active", before, act)
	}
	pair := func(cert, key []byte, _ string) tls.Certificate {
		t.Helper()
		c, err := tls.X509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	const stranger = "00000000-0000-4000-8000-000000000099"
	addr := func(m string) raft.ServerAddress {
		return raft.ServerAddress(net.JoinHostPort(d.Addr[m], fmt.Sprint(wire.FailoverPort)))
	}
	takeOver := func(as string) *raft.RequestVoteRequest {
		return &raft.RequestVoteRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax,
			ID: []byte(g.UUID[as]), Addr: []byte(addr(as))},
			Term: before.Epoch + 1000, LastLogIndex: 1 << 40, LastLogTerm: before.Epoch + 1000, LeadershipTransfer: true}
	}
	stale := func(as string) *raft.RequestVoteRequest {
		return &raft.RequestVoteRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax,
			ID: []byte(g.UUID[as]), Addr: []byte(addr(as))}, Term: 1}
	}
	replacedStby := pair(failovertest.Cert(t, g.CA, g.UUID[stby], "", false))
	replacedAct := pair(failovertest.Cert(t, g.CA, g.UUID[act], "", false))
	strangerCert := pair(failovertest.Cert(t, g.CA, stranger, "", false))
	renewedStby := pair(failovertest.Cert(t, g.CA, g.UUID[stby], g.Serial[stby], true))
	cases := []struct {
		name    string
		cert    tls.Certificate
		to      []string
		vote    *raft.RequestVoteRequest
		reaches bool
	}{
		{"the standby's replaced certificate", replacedStby, []string{act, "W"}, takeOver(stby), false},
		{"the active's replaced certificate", replacedAct, []string{stby, "W"}, takeOver(act), false},
		{"a host that is no member, as the standby", strangerCert, []string{act, "W"}, takeOver(stby), false},
		{"the standby's renewed certificate", renewedStby, []string{act, "W"}, stale(stby), true},
	}
	from := time.Now()
	for _, c := range cases {
		s := &certStream{bed: d, cert: c.cert, done: make(chan struct{})}
		trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: s, MaxPool: 1, Timeout: time.Second,
			Logger: hclog.NewNullLogger()})
		for _, m := range c.to {
			var resp raft.RequestVoteResponse
			err := trans.RequestVote(raft.ServerID(g.UUID[m]), addr(m), c.vote, &resp)
			if reached := err == nil; reached != c.reaches {
				t.Errorf("%s, RequestVote to %s: reached raft = %v (err %v, answer %+v), want %v", c.name, m, reached, err, resp, c.reaches)
			}
		}
		trans.Close()
	}
	time.Sleep(500 * time.Millisecond)
	for _, m := range []string{act, stby, "W"} {
		if got := localApp(t, g, m); got.Epoch != before.Epoch || got.ActiveMember != before.ActiveMember {
			t.Errorf("%s sees epoch %d, active %q after the attempts; want epoch %d, %q still\n%s", m, got.Epoch, got.ActiveMember,
				before.Epoch, before.ActiveMember, g.Logs())
		}
	}
	if h := d.Holders(t); !slices.Equal(h, []string{act}) {
		t.Errorf("the VIP is held by %v after the attempts, want %s alone", h, act)
	}
	checkProbes(t, d, from, g)
}
