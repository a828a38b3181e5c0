// Package dhcp is the controller's DHCPv4 server for the management network.
//
// It answers only MACs that the inventory knows (mgmtnet.Inventory), with the
// address and options of the host's binding on the requester's subnet: the
// relay's subnet (giaddr) when the request was relayed, else the subnet of the
// interface it arrived on. A relayed request is answered only when its giaddr
// is one of the relay agents the server was given (Config.Relays): a giaddr
// is where the answer goes, so anyone could otherwise name their own address
// and be told the address and hostname of any MAC. A MAC the inventory does not know gets no answer
// and is reported once with Inventory.Discovered; a bounded table keeps a flood
// of random MACs from filling memory or the event log. Packets are decoded and
// encoded with github.com/insomniacslk/dhcp/dhcpv4; sockets are opened with its
// server4 package.
package dhcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"

	"hummingbird.io/hummingbird/internal/mgmtnet"
)

const (
	// ServerPort and ClientPort are the DHCPv4 UDP ports.
	ServerPort = dhcpv4.ServerPort
	ClientPort = dhcpv4.ClientPort

	// DefaultLease is the lease time given when a binding has none.
	DefaultLease = time.Hour

	// DiscoveredInterval is how long an unknown MAC stays quiet after it was
	// reported with Inventory.Discovered.
	DiscoveredInterval = 10 * time.Minute
	// DefaultDiscoveredMax bounds the number of MACs remembered as reported.
	// When the table is full of MACs reported in the last DiscoveredInterval,
	// new unknown MACs are not reported until entries expire, so at most this
	// many Discovered calls happen per DiscoveredInterval.
	DefaultDiscoveredMax = 4096

	// requestTimeout bounds the inventory calls made for one packet.
	requestTimeout = 5 * time.Second
	// logInterval is the shortest time between two log lines with the same
	// message about the traffic (errors, malformed or refused packets).
	logInterval = 10 * time.Second
	// maxInFlight bounds the packets handled at once over all listeners.
	maxInFlight = 32
	// maxAddrs bounds the addresses put in one list option (DNS, NTP).
	maxAddrs = 16
)

// Listener is one socket the server serves on.
type Listener struct {
	// Conn receives on UDP port 67 of one interface and can broadcast on
	// it (see Listen). The server closes it when Run returns.
	Conn net.PacketConn
	// Interface names the interface, for the logs.
	Interface string
	// Addr is the interface's IPv4 address: the server identifier in
	// replies, and the link of requests that were not relayed.
	Addr netip.Addr
}

// Listen opens a UDP socket on port 67 bound to the interface ifname, able to
// broadcast on it, and returns it with the interface's first IPv4 address.
// It works in the network namespace of the calling OS thread.
func Listen(ifname string) (Listener, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return Listener{}, fmt.Errorf("dhcp: interface %s: %w", ifname, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return Listener{}, fmt.Errorf("dhcp: addresses of %s: %w", ifname, err)
	}
	var addr netip.Addr
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap().Is4() {
				addr = ip.Unmap()
				break
			}
		}
	}
	if !addr.IsValid() {
		return Listener{}, fmt.Errorf("dhcp: interface %s has no IPv4 address", ifname)
	}
	conn, err := server4.NewIPv4UDPConn(ifname, &net.UDPAddr{Port: ServerPort})
	if err != nil {
		return Listener{}, fmt.Errorf("dhcp: listen on %s: %w", ifname, err)
	}
	return Listener{Conn: conn, Interface: ifname, Addr: addr}, nil
}

// Config configures a Server.
type Config struct {
	// Interfaces are the names of the interfaces Run opens with Listen.
	Interfaces []string
	// Listeners are sockets opened by the caller (for example inside another
	// network namespace), served beside Interfaces.
	Listeners []Listener
	// Relays are the relay agents' addresses on the hosts' subnets (the
	// giaddr they write) whose relayed requests are answered; a relayed
	// request with any other giaddr is ignored.
	Relays []netip.Addr
	// Inventory gives the bindings and records leases and unknown MACs.
	Inventory mgmtnet.Inventory
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// DiscoveredMax bounds the table of reported unknown MACs; 0 means
	// DefaultDiscoveredMax.
	DiscoveredMax int
}

// Server is the DHCPv4 server. Create it with New and start it with Run.
type Server struct {
	cfg       Config
	inv       mgmtnet.Inventory
	log       *slog.Logger
	now       func() time.Time
	ours      map[netip.Addr]bool // server identifiers of Config.Listeners
	relays    map[netip.Addr]bool // Config.Relays
	disc      *discoveredTable
	limit     *logLimiter
	inFlight  chan struct{}
	startOnce sync.Once
}

// New checks cfg and returns a server that Run starts.
func New(cfg Config) (*Server, error) {
	if cfg.Inventory == nil {
		return nil, errors.New("dhcp: no inventory")
	}
	if len(cfg.Interfaces) == 0 && len(cfg.Listeners) == 0 {
		return nil, errors.New("dhcp: no interface to serve on")
	}
	s := &Server{
		cfg:      cfg,
		inv:      cfg.Inventory,
		log:      cfg.Logger,
		now:      cfg.Now,
		ours:     make(map[netip.Addr]bool),
		relays:   make(map[netip.Addr]bool),
		inFlight: make(chan struct{}, maxInFlight),
	}
	for _, r := range cfg.Relays {
		if !r.Is4() || r.IsUnspecified() {
			return nil, fmt.Errorf("dhcp: relay %v is not an IPv4 address", r)
		}
		s.relays[r] = true
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s.log = s.log.With("logger", "dhcp")
	if s.now == nil {
		s.now = time.Now
	}
	for _, l := range cfg.Listeners {
		if l.Conn == nil {
			return nil, fmt.Errorf("dhcp: listener %q has no socket", l.Interface)
		}
		if !l.Addr.Is4() {
			return nil, fmt.Errorf("dhcp: listener %q: %v is not an IPv4 address", l.Interface, l.Addr)
		}
		s.ours[l.Addr] = true
	}
	max := cfg.DiscoveredMax
	if max <= 0 {
		max = DefaultDiscoveredMax
	}
	s.disc = newDiscoveredTable(max, DiscoveredInterval)
	s.limit = newLogLimiter(logInterval)
	return s, nil
}

// Run opens the configured interfaces and serves DHCP on them and on the
// given listeners until ctx ends. It closes every socket before it returns;
// it returns nil when ctx ended and an error when a socket could not be
// opened or failed. A Server runs once.
func (s *Server) Run(ctx context.Context) error {
	first := false
	s.startOnce.Do(func() { first = true })
	if !first {
		for _, l := range s.cfg.Listeners {
			l.Conn.Close()
		}
		return errors.New("dhcp: the server already ran")
	}
	listeners := append([]Listener(nil), s.cfg.Listeners...)
	for _, name := range s.cfg.Interfaces {
		l, err := Listen(name)
		if err != nil {
			for _, l := range listeners {
				l.Conn.Close()
			}
			return err
		}
		listeners = append(listeners, l)
		s.ours[l.Addr] = true // not yet shared: no reader runs before the loop ends
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		runErr  error
	)
	for _, l := range listeners {
		s.log.Info("serving DHCP", "interface", l.Interface, "address", l.Addr)
		wg.Go(func() {
			if err := s.serve(ctx, l, &wg); err != nil {
				errOnce.Do(func() { runErr = err })
				cancel()
			}
		})
	}
	<-ctx.Done()
	for _, l := range listeners {
		l.Conn.Close()
	}
	wg.Wait()
	return runErr
}

// serve reads packets from l until its socket is closed, handling each in a
// goroutine of its own, at most maxInFlight at once.
func (s *Server) serve(ctx context.Context, l Listener, wg *sync.WaitGroup) error {
	buf := make([]byte, 4096)
	for {
		n, peer, err := l.Conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("dhcp: read on %s: %w", l.Interface, err)
		}
		pkt := append([]byte(nil), buf[:n]...)
		select {
		case s.inFlight <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		wg.Go(func() {
			defer func() { <-s.inFlight }()
			defer func() {
				if r := recover(); r != nil {
					s.logLimited(ctx, slog.LevelError, "DHCP packet handler failed", "interface", l.Interface, "peer", peer, "panic", fmt.Sprint(r))
				}
			}()
			s.respond(ctx, l, pkt)
		})
	}
}

// respond handles one packet received on l and sends the answer, if any.
func (s *Server) respond(ctx context.Context, l Listener, pkt []byte) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	reply, dst := s.handle(ctx, link{iface: l.Interface, addr: l.Addr}, pkt)
	if reply == nil {
		return
	}
	if _, err := l.Conn.WriteTo(reply.ToBytes(), dst); err != nil {
		s.logLimited(ctx, slog.LevelWarn, "cannot send DHCP reply", "interface", l.Interface, "to", dst.String(), "mac", reply.ClientHWAddr.String(), "error", err)
	}
}

// logLimited logs msg unless a line with the same message was logged less
// than logInterval ago; the next line that passes says how many were left out.
func (s *Server) logLimited(ctx context.Context, level slog.Level, msg string, args ...any) {
	if !s.log.Enabled(ctx, level) {
		return
	}
	ok, suppressed := s.limit.allow(msg, s.now())
	if !ok {
		return
	}
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	s.log.Log(ctx, level, msg, args...)
}
