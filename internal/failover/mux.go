package failover

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
	"golang.org/x/sys/unix"
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
// controller CA and names (in its common name) a host uuid that is a member
// of that app.
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
	certs Certs
	ca    *x509.CertPool
	log   *slog.Logger

	mu   sync.Mutex
	apps map[string]*stream
}

func newMux(ln net.Listener, certs Certs, ca *x509.CertPool, log *slog.Logger) *mux {
	return &mux{ln: ln, certs: certs, ca: ca, log: log, apps: map[string]*stream{}}
}

// peerUUID checks that chain is an agent certificate of the controller CA
// and returns the host uuid it names.
func (m *mux) peerUUID(rawCerts [][]byte) (string, error) {
	if len(rawCerts) == 0 {
		return "", errors.New("no certificate")
	}
	certs := make([]*x509.Certificate, 0, len(rawCerts))
	for _, raw := range rawCerts {
		c, err := x509.ParseCertificate(raw)
		if err != nil {
			return "", err
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
		return "", err
	}
	return certs[0].Subject.CommonName, nil
}

func (m *mux) serverTLS() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return m.certs() },
		ClientAuth:     tls.RequireAnyClientCert,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			_, err := m.peerUUID(raw)
			return err
		},
	}
}

// clientTLS verifies that the far end is the agent of host want.
func (m *mux) clientTLS(want string) *tls.Config {
	return &tls.Config{
		MinVersion:           tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return m.certs() },
		// The agents' certificates are client certificates naming a host
		// uuid, not a DNS name: VerifyPeerCertificate does the whole
		// verification instead.
		InsecureSkipVerify: true, //nolint:gosec // verified below
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			id, err := m.peerUUID(raw)
			if err != nil {
				return err
			}
			if id != want {
				return fmt.Errorf("the member at this address is host %s, not %s", id, want)
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

func (m *mux) handle(raw net.Conn) {
	if tc, ok := raw.(*net.TCPConn); ok {
		if rc, err := tc.SyscallConn(); err == nil {
			lowRTO("", "", rc)
		}
		raw = quickAck(tc)
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
	peer, _ := m.peerUUID(rawChain(c.ConnectionState()))
	m.mu.Lock()
	s := m.apps[app]
	m.mu.Unlock()
	if s == nil || !s.allowed[peer] {
		m.log.Debug("failover connection for an unknown app or member", "app", app, "peer", peer)
		c.Close()
		return
	}
	switch kind {
	case headerRaft:
		c.SetDeadline(time.Time{})
		select {
		case s.accept <- c:
		case <-s.done:
			c.Close()
		}
	case headerStatus:
		s.status(c)
		c.Close()
	default:
		c.Close()
	}
}

func rawChain(st tls.ConnectionState) [][]byte {
	out := make([][]byte, 0, len(st.PeerCertificates))
	for _, c := range st.PeerCertificates {
		out = append(out, c.Raw)
	}
	return out
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

// lowRTO sets rtoMin on a socket where the kernel allows it.
func lowRTO(_, _ string, c syscall.RawConn) error {
	c.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_RTO_MIN_US, int(rtoMin/time.Microsecond))
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

// dial connects to the member want at addr for kind.
func (m *mux) dial(ctx context.Context, addr, want, kind, app string) (net.Conn, error) {
	raw, err := dialTCP(ctx, addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := raw.(*net.TCPConn); ok {
		raw = quickAck(tc)
	}
	c := tls.Client(raw, m.clientTLS(want))
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if err := c.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	if _, err := c.Write([]byte(kind + " " + app + "\n")); err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// stream is one app's raft.StreamLayer on the shared listener.
type stream struct {
	m       *mux
	app     string
	self    raft.ServerAddress
	allowed map[string]bool   // member host uuids
	byAddr  map[string]string // member address -> host uuid
	accept  chan net.Conn
	done    chan struct{}
	once    sync.Once
	status  func(net.Conn)
}

func (m *mux) stream(app string, self raft.ServerAddress, members map[string]string, status func(net.Conn)) *stream {
	s := &stream{
		m: m, app: app, self: self, allowed: map[string]bool{}, byAddr: members,
		accept: make(chan net.Conn), done: make(chan struct{}), status: status,
	}
	for _, id := range members {
		s.allowed[id] = true
	}
	m.mu.Lock()
	m.apps[app] = s
	m.mu.Unlock()
	return s
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
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.m.dial(ctx, string(addr), want, headerRaft, s.app)
}

// memberAddr is a member's advertised host:port as a net.Addr.
type memberAddr string

func (a memberAddr) Network() string { return "tcp" }
func (a memberAddr) String() string  { return string(a) }

// quickAckConn acknowledges what it reads at once. A member answers each
// message it gets, and the sender sends nothing more until that answer
// or the next probe: the kernel's delayed acknowledgement of the answer
// (a few to 40 ms) entered the answerer's round-trip time, and so its
// retransmission timeout, which lengthened the wait for a lost answer
// to tens of milliseconds, past a lease.
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
