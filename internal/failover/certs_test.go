package failover

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"hummingbird.io/hummingbird/internal/failover/failovertest"
)

// TestMemberCertificates runs two members' failover listeners (A and B)
// on loopback with real TLS and follows A's certificate through a renewal
// and a second join: B accepts A's renewed certificate before its desired
// state names it, and A's current one; once the desired state names the
// renewed one, B refuses the one before for new connections, in both
// directions (as a dialled member, too), and keeps the connections open
// that A made with it; once A joined again, B closes those of A's earlier
// certificates. A replaced certificate and one of a host in no app are
// refused throughout.
func TestMemberCertificates(t *testing.T) {
	t.Parallel()
	ca, pool := failovertest.CA(t)
	const (
		uuidA    = "00000000-0000-4000-8000-00000000000a"
		uuidB    = "00000000-0000-4000-8000-00000000000b"
		stranger = "00000000-0000-4000-8000-000000000099"
	)
	type cert struct {
		pair   tls.Certificate
		serial string
	}
	sign := func(uuid, prev string, renewal bool) cert {
		c, k, serial := failovertest.Cert(t, ca, uuid, prev, renewal)
		pair, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return cert{pair, serial}
	}
	a1 := sign(uuidA, "", false)        // A's join
	a2 := sign(uuidA, a1.serial, true)  // its renewal: A's current certificate
	a3 := sign(uuidA, a2.serial, true)  // its next renewal
	a4 := sign(uuidA, a3.serial, false) // A joined again
	b1 := sign(uuidB, "", false)
	x1 := sign(stranger, "", false)

	var certA atomic.Pointer[tls.Certificate]
	certA.Store(&a2.pair)
	lnA, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lnB, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addrA, addrB := lnA.Addr().String(), lnB.Addr().String()
	members := map[string]string{addrA: uuidA, addrB: uuidB}
	log := slog.New(slog.DiscardHandler)
	muxA := newMux(lnA, nil, func() (*tls.Certificate, error) { return certA.Load(), nil }, pool, log)
	muxB := newMux(lnB, nil, func() (*tls.Certificate, error) { return &b1.pair, nil }, pool, log)
	noStatus := func(net.Conn) {}
	sA := muxA.stream("press", raft.ServerAddress(addrA), members, map[string]string{uuidA: a2.serial, uuidB: b1.serial}, false, noStatus)
	sB := muxB.stream("press", raft.ServerAddress(addrB), members, map[string]string{uuidA: a2.serial, uuidB: b1.serial}, false, noStatus)
	for _, m := range []*mux{muxA, muxB} {
		go m.serve()
	}
	t.Cleanup(func() {
		sA.Close()
		sB.Close()
		lnA.Close()
		lnB.Close()
	})
	// What reaches B's raft: the connections its stream accepts.
	acceptedB := make(chan net.Conn, 16)
	for _, s := range []*stream{sA, sB} {
		go func() {
			for {
				c, err := s.Accept()
				if err != nil {
					return
				}
				if s == sB {
					acceptedB <- c
				}
			}
		}()
	}
	// offer connects to B's listener for raft as a host holding c, and
	// says whether B's raft got the connection.
	offer := func(c cert) (*tls.Conn, bool) {
		t.Helper()
		conn, err := tls.Dial("tcp", addrB, &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{c.pair},
			InsecureSkipVerify: true}) //nolint:gosec // B's side is what is tested
		if err == nil {
			_, err = conn.Write([]byte("raft press\n"))
		}
		if err != nil {
			return nil, false
		}
		t.Cleanup(func() { conn.Close() })
		select {
		case <-acceptedB:
			return conn, true
		case <-time.After(300 * time.Millisecond):
			return conn, false
		}
	}
	// closed says whether B closed the connection c within a second.
	closed := func(c *tls.Conn) bool {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(time.Second))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		return err != nil && !(errors.As(err, &ne) && ne.Timeout())
	}
	dialA := func(as cert) error {
		t.Helper()
		certA.Store(&as.pair)
		c, err := sB.Dial(raft.ServerAddress(addrA), time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}

	named := func(a cert) map[string]string { return map[string]string{uuidA: a.serial, uuidB: b1.serial} }
	steps := []struct {
		name    string
		certs   map[string]string // B's new desired state; nil: unchanged
		closed  []cert            // whose connections B closes then
		offer   cert
		reaches bool
	}{
		{name: "A's current certificate", offer: a2, reaches: true},
		{name: "A's renewal, before the desired state names it", offer: a3, reaches: true},
		{name: "A's replaced certificate", offer: a1, reaches: false},
		{name: "a host in no app", offer: x1, reaches: false},
		{name: "A's renewal, named by the desired state", certs: named(a3), offer: a3, reaches: true},
		{name: "A's certificate before the renewal, for a new connection", offer: a2, reaches: false},
		{name: "A joined again", certs: named(a4), closed: []cert{a2, a3}, offer: a4, reaches: true},
		{name: "A's certificate before it joined again", offer: a3, reaches: false},
	}
	open := map[string][]*tls.Conn{} // by serial, connections B accepted
	for _, step := range steps {
		if step.certs != nil {
			sB.setCerts(step.certs, false)
			// A renewal leaves the connections of the renewed certificate
			// open; a join closes those of the earlier ones.
			for serial, conns := range open {
				want := slices.ContainsFunc(step.closed, func(c cert) bool { return c.serial == serial })
				for _, c := range conns {
					if got := closed(c); got != want {
						t.Errorf("%s: a connection of A's certificate %s closed = %v, want %v", step.name, serial, got, want)
					}
				}
				if want {
					delete(open, serial)
				}
			}
		}
		conn, reached := offer(step.offer)
		if reached != step.reaches {
			t.Errorf("%s: reached B's raft = %v, want %v", step.name, reached, step.reaches)
		}
		if reached {
			open[step.offer.serial] = append(open[step.offer.serial], conn)
		}
		// B dialling A, A presenting the same certificate (a stranger's
		// names another host: refused for that already).
		if err := dialA(step.offer); step.offer.serial != x1.serial && (err == nil) != step.reaches {
			t.Errorf("%s: B dialling A presenting it: %v, want accepted = %v", step.name, err, step.reaches)
		}
	}
}
