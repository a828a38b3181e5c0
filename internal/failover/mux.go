package failover

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
	"golang.org/x/sys/unix"

	"hummingbird.io/hummingbird/internal/wire"
)

// The failover listener carries every app's raft traffic and status
// queries over mutual TLS, both ends presenting their agent certificate.
// After the handshake the dialler sends one header line naming what it
// wants:
//
//	raft APP\n    the connection is raft's, for APP's group
//	status APP\n  answer this member's Peer status of APP as one JSON line
//
// Each side accepts the other only when its certificate chains to the
// controller CA, names (in its common name) a host uuid that is a member
// of that app, and is that member's current certificate as the desired
// state names it (wire.AppMember.CertSerial), or a later generation of it
// (wire.AcceptCert). A replaced or revoked certificate, still within its
// validity, is refused, and so is any host that is no member of one of
// this agent's apps, at the handshake already.
//
// Why serials in the desired state rather than short-lived certificates:
// the controller already knows each host's current agent certificate (the
// one it accepts on the agent API), members already fetch the desired
// state whenever it changes, and a member keeps working from its kept
// desired state while the controller is unreachable, which a certificate
// that must be renewed every few hours would break. Revocation reaches the
// members as fast as a desired state does (their next heartbeat), and
// the open connections of a revoked certificate (one from before its
// host's agent joined again) are closed then.
//
// A renewal leaves no window: the renewed certificate has the next
// generation (the controller counts them in the serial, see
// wire.CertGeneration), so that members that still hold the desired state
// naming the old certificate accept the new one at once, and those that
// got the new desired state accept the new one alone. The renewing agent
// switches to its new certificate at its next connection, so no member
// ever refuses the certificate it presents, and its open connections stay
// (wire.KeepCertConn).
const (
	headerRaft   = "raft"
	headerStatus = "status"
	maxHeader    = 256
)

// Certs gives the agent's current certificate; it is asked at every
// handshake, so a renewed certificate is used from the next connection.
type Certs func() (*tls.Certificate, error)

// mux is the failover listener shared by every app of the agent.
type mux struct {
	ln    net.Listener
	udp   *net.UDPConn // the probe socket, on ln's port (nil: none)
	certs Certs
	ca    *x509.CertPool
	log   *slog.Logger

	// probesRefused counts the datagrams the probe socket got and
	// openProbe refused.
	probesRefused atomic.Uint64

	mu   sync.Mutex
	apps map[string]*stream
}

func newMux(ln net.Listener, udp *net.UDPConn, certs Certs, ca *x509.CertPool, log *slog.Logger) *mux {
	return &mux{ln: ln, udp: udp, certs: certs, ca: ca, log: log, apps: map[string]*stream{}}
}

// errNotMember refuses a certificate that is not the current one of a
// member of any of this agent's apps.
var errNotMember = errors.New("not the current certificate of a member of this node's apps")

// peerCert checks that chain is an agent certificate of the controller CA
// and returns it.
func (m *mux) peerCert(rawCerts [][]byte) (*x509.Certificate, error) {
	if len(rawCerts) == 0 {
		return nil, errors.New("no certificate")
	}
	certs := make([]*x509.Certificate, 0, len(rawCerts))
	for _, raw := range rawCerts {
		c, err := x509.ParseCertificate(raw)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{
		Roots: m.ca, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return nil, err
	}
	return certs[0], nil
}

// anyApp says whether some app's group accepts leaf.
func (m *mux) anyApp(leaf *x509.Certificate) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.apps {
		if s.accepts(leaf) {
			return true
		}
	}
	return false
}

func (m *mux) serverTLS() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return m.certs() },
		ClientAuth:     tls.RequireAnyClientCert,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			leaf, err := m.peerCert(raw)
			if err != nil {
				return err
			}
			if !m.anyApp(leaf) {
				return fmt.Errorf("host %s, certificate %s: %w", leaf.Subject.CommonName, leaf.SerialNumber.Text(16), errNotMember)
			}
			return nil
		},
	}
}

// clientTLS verifies that the far end is the agent of host want with a
// certificate s accepts.
func (m *mux) clientTLS(want string, s *stream) *tls.Config {
	return &tls.Config{
		MinVersion:           tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return m.certs() },
		// The agents' certificates are client certificates naming a host
		// uuid, not a DNS name: VerifyPeerCertificate does the whole
		// verification instead.
		InsecureSkipVerify: true, //nolint:gosec // verified below
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			leaf, err := m.peerCert(raw)
			if err != nil {
				return err
			}
			if id := leaf.Subject.CommonName; id != want {
				return fmt.Errorf("the member at this address is host %s, not %s", id, want)
			}
			if !s.accepts(leaf) {
				return fmt.Errorf("host %s, certificate %s: %w", want, leaf.SerialNumber.Text(16), errNotMember)
			}
			return nil
		},
	}
}

// serve accepts connections until the listener is closed.
func (m *mux) serve() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go m.handle(c)
	}
}

// handle serves a connection a member opened. It reads requests and
// answers each at once, so the kernel's delayed acknowledgement of a
// request rides on its answer: acknowledging at once (quickAck, as the
// member that sends the requests does for the answers) was one packet
// more per probe at every member.
func (m *mux) handle(raw net.Conn) {
	if tc, ok := raw.(*net.TCPConn); ok {
		if rc, err := tc.SyscallConn(); err == nil {
			lowRTO("", "", rc)
		}
	}
	raw.SetDeadline(time.Now().Add(2 * time.Second))
	c := tls.Server(raw, m.serverTLS())
	if err := c.Handshake(); err != nil {
		m.log.Debug("failover connection refused", "peer", raw.RemoteAddr().String(), "err", err)
		raw.Close()
		return
	}
	kind, app, err := readHeader(c)
	if err != nil {
		c.Close()
		return
	}
	leaf := c.ConnectionState().PeerCertificates[0]
	m.mu.Lock()
	s := m.apps[app]
	m.mu.Unlock()
	if s == nil || !s.accepts(leaf) {
		m.log.Debug("failover connection for an unknown app or member", "app", app, "peer", leaf.Subject.CommonName)
		c.Close()
		return
	}
	switch kind {
	case headerRaft:
		c.SetDeadline(time.Time{})
		mc := s.track(c, leaf)
		if mc == nil {
			return // no longer accepted
		}
		select {
		case s.accept <- mc:
		case <-s.done:
			mc.Close()
		}
	case headerStatus:
		s.status(c)
		c.Close()
	default:
		c.Close()
	}
}

// readHeader reads the header line a byte at a time, so that nothing of
// what follows it is consumed.
func readHeader(c net.Conn) (kind, app string, err error) {
	var b [1]byte
	var line []byte
	for len(line) < maxHeader {
		if _, err := c.Read(b[:]); err != nil {
			return "", "", err
		}
		if b[0] == '\n' {
			kind, app, ok := strings.Cut(string(line), " ")
			if !ok {
				return "", "", errors.New("bad header")
			}
			return kind, app, nil
		}
		line = append(line, b[0])
	}
	return "", "", errors.New("header too long")
}

// rtoMin is the least retransmission timeout of the members' TCP
// connections. Linux's default, 200 ms, is longer than the heartbeat time:
// under packet loss a lost heartbeat would stall its connection past an
// election. Kernels from 6.15 take it per socket; older ones keep their
// default (or a route's rto_min), and so tolerate less loss.
const rtoMin = 10 * time.Millisecond

// unackedMax is how long a member connection may hold data its peer has
// not acknowledged before the kernel drops it (TCP_USER_TIMEOUT). A
// connection whose peer was cut off kept retransmitting at doubling
// intervals and held raft's next heartbeat and entries to that member
// for up to ten heartbeat times after it came back (failovers of 5–8 s
// at a 1 s heartbeat time, the member that came back lacking the log);
// dropped, it gives way to a new connection. Under 20 % loss a segment
// stays unacknowledged that long about once in a thousand.
const unackedMax = time.Second

// lowRTO sets rtoMin and unackedMax on a socket where the kernel allows
// it.
func lowRTO(_, _ string, c syscall.RawConn) error {
	c.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_RTO_MIN_US, int(rtoMin/time.Microsecond))
		unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(unackedMax/time.Millisecond))
	})
	return nil
}

// listen opens the failover listener; accepted connections inherit its
// retransmission timeout.
func listen(ctx context.Context, addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: lowRTO}
	return lc.Listen(ctx, "tcp", addr)
}

// dialTCP connects to addr. A lost SYN is retransmitted only after a
// second, far longer than an election, so a new attempt starts every
// dialStagger while the earlier ones wait, up to dialAttempts; the first
// connection made wins and the others are closed.
func dialTCP(ctx context.Context, addr string) (net.Conn, error) {
	const (
		dialStagger  = 25 * time.Millisecond
		dialAttempts = 4
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		c   net.Conn
		err error
	}
	results := make(chan result, dialAttempts)
	d := net.Dialer{Control: lowRTO}
	started, failed := 0, 0
	next := time.NewTimer(0)
	defer next.Stop()
	var lastErr error
	for {
		select {
		case <-next.C:
			started++
			go func() {
				c, err := d.DialContext(ctx, "tcp", addr)
				results <- result{c, err}
			}()
			if started < dialAttempts {
				next.Reset(dialStagger)
			}
		case r := <-results:
			if r.err == nil {
				cancel()
				// Close the connections the other started attempts still
				// make; attempts not started send nothing.
				go func(n int) {
					for range n {
						if r := <-results; r.c != nil {
							r.c.Close()
						}
					}
				}(started - failed - 1)
				return r.c, nil
			}
			failed++
			lastErr = r.err
			if failed == dialAttempts || ctx.Err() != nil {
				return nil, lastErr
			}
		}
	}
}

// dial connects to the member want of s's app at addr for kind.
func (m *mux) dial(ctx context.Context, addr, want, kind string, s *stream) (*tls.Conn, error) {
	raw, err := dialTCP(ctx, addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := raw.(*net.TCPConn); ok {
		raw = quickAck(tc)
	}
	c := tls.Client(raw, m.clientTLS(want, s))
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if err := c.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	if _, err := c.Write([]byte(kind + " " + s.app + "\n")); err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// stream is one app's raft.StreamLayer on the shared listener.
type stream struct {
	m      *mux
	app    string
	self   raft.ServerAddress
	id     string            // this member's host uuid
	byAddr map[string]string // member address -> host uuid
	accept chan net.Conn
	done   chan struct{}
	once   sync.Once
	status func(net.Conn)
	// dialMax bounds raft's connection attempts (0: raft's timeout, ten
	// heartbeat times): an attempt that began while a member was cut off
	// waited that long after it came back, its heartbeats and entries
	// held up behind it.
	dialMax time.Duration
	// probeAddrs are the members' addresses by host uuid (the reverse of
	// byAddr), of those that are an IP address and port, for probes.
	probeAddrs map[string]netip.AddrPort

	mu sync.Mutex
	// certs are the members' current certificate serials (hex) by host
	// uuid; legacy: the desired state names none (an older controller),
	// and any certificate of the CA naming a member is accepted.
	certs  map[string]string
	legacy bool
	conns  map[*memberConn]bool // the raft connections open
	// keys are the probe keys of the raft connections open, by the host
	// uuid at their far end, in the order they were tracked.
	keys map[string][]*probeKey
	// probeHandler takes the app's datagrams (nil: they are dropped).
	probeHandler probeHandler
}

// memberCerts are the current certificate serials of app's members by
// host uuid, and whether the desired state names none at all.
func memberCerts(app wire.App) (map[string]string, bool) {
	certs := map[string]string{}
	legacy := true
	for _, p := range app.Members {
		certs[p.HostUUID] = p.CertSerial
		legacy = legacy && p.CertSerial == ""
	}
	return certs, legacy
}

func (m *mux) stream(app string, self raft.ServerAddress, members map[string]string, certs map[string]string, legacy bool,
	status func(net.Conn)) *stream {
	s := &stream{
		m: m, app: app, self: self, id: members[string(self)], byAddr: members, probeAddrs: map[string]netip.AddrPort{},
		certs: certs, legacy: legacy, conns: map[*memberConn]bool{}, keys: map[string][]*probeKey{},
		accept: make(chan net.Conn), done: make(chan struct{}), status: status,
	}
	for addr, id := range members {
		if ap, err := netip.ParseAddrPort(addr); err == nil {
			s.probeAddrs[id] = ap
		}
	}
	if legacy {
		m.log.Warn("the desired state names no member certificates (the controller is older than the agent): "+
			"any certificate of the controller's CA naming a member is accepted", "app", app)
	}
	m.mu.Lock()
	m.apps[app] = s
	m.mu.Unlock()
	return s
}

// accepts says whether leaf is the current certificate of a member of
// the app, or a later generation of it.
func (s *stream) accepts(leaf *x509.Certificate) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acceptsLocked(leaf.Subject.CommonName, leaf.SerialNumber)
}

func (s *stream) acceptsLocked(id string, serial *big.Int) bool {
	cur, ok := s.certs[id]
	return ok && (s.legacy || wire.AcceptCert(cur, serial))
}

// setCerts takes the members' current certificates from a new desired
// state: from then on a new connection must present one of them (or a
// later generation). Open raft connections made with a certificate from
// before its host's agent joined again are closed: a revoked certificate
// stops reaching raft at once. Those of a certificate its holder renewed
// stay: closing them cost the active member its lease confirmations
// (with a renewal every second the VIP lapsed now and then), and the
// holder, which proved it holds the renewed key, opens its next
// connections with the new certificate.
func (s *stream) setCerts(certs map[string]string, legacy bool) {
	s.mu.Lock()
	s.certs, s.legacy = certs, legacy
	var stale []*memberConn
	for c := range s.conns {
		if cur, ok := certs[c.peer]; !ok || !(legacy || wire.KeepCertConn(cur, c.serial)) {
			stale = append(stale, c)
		}
	}
	s.mu.Unlock()
	for _, c := range stale {
		s.m.log.Info("failover connection closed: the member's certificate was revoked", "app", s.app,
			"peer", c.peer, "serial", c.serial.Text(16))
		c.Close()
	}
}

// track notes a raft connection with the certificate of its far end, and
// its probe key, or closes it and returns nil when that is no longer
// accepted.
func (s *stream) track(c *tls.Conn, leaf *x509.Certificate) *memberConn {
	mc := &memberConn{Conn: c, s: s, peer: leaf.Subject.CommonName, serial: leaf.SerialNumber}
	key, err := connProbeKey(c.ConnectionState(), s.app)
	if err != nil {
		// Not with TLS 1.3, which both ends require.
		s.m.log.Warn("failover connection without a probe key", "app", s.app, "peer", mc.peer, "err", err)
	}
	s.mu.Lock()
	ok := s.acceptsLocked(mc.peer, mc.serial)
	if ok {
		s.conns[mc] = true
		if key != nil {
			mc.key = key
			s.addProbeKeyLocked(mc.peer, key)
		}
	}
	s.mu.Unlock()
	if !ok {
		c.Close()
		return nil
	}
	return mc
}

// memberConn is a raft connection of a stream, with the member and the
// certificate at its far end, and the probe key derived from it (nil:
// none).
type memberConn struct {
	*tls.Conn
	s      *stream
	peer   string
	serial *big.Int
	key    *probeKey
}

// Close closes the connection and drops its probe key.
func (c *memberConn) Close() error {
	c.s.mu.Lock()
	delete(c.s.conns, c)
	if c.key != nil {
		c.s.dropProbeKeyLocked(c.peer, c.key)
	}
	c.s.mu.Unlock()
	return c.Conn.Close()
}

func (s *stream) Accept() (net.Conn, error) {
	select {
	case c := <-s.accept:
		return c, nil
	case <-s.done:
		return nil, net.ErrClosed
	}
}

func (s *stream) Close() error {
	s.once.Do(func() {
		close(s.done)
		s.m.mu.Lock()
		if s.m.apps[s.app] == s {
			delete(s.m.apps, s.app)
		}
		s.m.mu.Unlock()
	})
	return nil
}

func (s *stream) Addr() net.Addr { return memberAddr(s.self) }

func (s *stream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	want, ok := s.byAddr[string(addr)]
	if !ok {
		return nil, fmt.Errorf("%s is not a member of app %s", addr, s.app)
	}
	if s.dialMax > 0 {
		timeout = min(timeout, s.dialMax)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := s.m.dial(ctx, string(addr), want, headerRaft, s)
	if err != nil {
		return nil, err
	}
	mc := s.track(c, c.ConnectionState().PeerCertificates[0])
	if mc == nil {
		return nil, fmt.Errorf("member %s at %s: %w", want, addr, errNotMember)
	}
	return mc, nil
}

// memberAddr is a member's advertised host:port as a net.Addr.
type memberAddr string

func (a memberAddr) Network() string { return "tcp" }
func (a memberAddr) String() string  { return string(a) }

// quickAckConn acknowledges what it reads at once: the connections a
// member opens to send requests read answers with it. A member answers
// each message it gets, and the sender sends nothing more until that
// answer or the next probe: the kernel's delayed acknowledgement of the
// answer (a few to 40 ms) entered the answerer's round-trip time, and so
// its retransmission timeout, which lengthened the wait for a lost
// answer to tens of milliseconds, past a lease.
type quickAckConn struct {
	*net.TCPConn
	rc syscall.RawConn
}

func quickAck(c *net.TCPConn) net.Conn {
	rc, err := c.SyscallConn()
	if err != nil {
		return c
	}
	return quickAckConn{TCPConn: c, rc: rc}
}

// Read reads, then asks the kernel to acknowledge at once: quick
// acknowledgement is a mode the kernel leaves on its own, so it is asked
// for again after every read.
func (c quickAckConn) Read(b []byte) (int, error) {
	n, err := c.TCPConn.Read(b)
	c.rc.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1)
	})
	return n, err
}
