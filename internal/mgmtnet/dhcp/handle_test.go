package dhcp

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv4"

	"hummingbird.io/hummingbird/internal/mgmtnet"
	"hummingbird.io/hummingbird/internal/mgmtnet/dhcp/dhcptest"
)

var (
	serverAddr = netip.MustParseAddr("10.200.1.1")
	relayAddr  = netip.MustParseAddr("10.200.2.1")
	direct     = link{iface: "eth0", addr: serverAddr}

	macA       = mustMAC("02:00:00:00:00:0a") // on the management network
	macB       = mustMAC("02:00:00:00:00:0b") // on the routed edge subnet
	macC       = mustMAC("02:00:00:00:00:0c") // no gateway, no DNS, no NTP
	macUnknown = mustMAC("02:00:00:00:00:ff")

	bindingA = mgmtnet.Binding{
		HostID: 1, Hostname: "edge-a", MAC: macA,
		IP:      netip.MustParseAddr("10.200.1.10"),
		Network: netip.MustParsePrefix("10.200.1.0/24"),
		Gateway: netip.MustParseAddr("10.200.1.254"),
		DNS:     []netip.Addr{netip.MustParseAddr("10.200.1.2"), netip.MustParseAddr("10.200.1.3")},
		NTP:     []netip.Addr{netip.MustParseAddr("10.200.1.4")},
		Lease:   2 * time.Hour, PoolID: 1, PoolName: "mgmt",
	}
	bindingB = mgmtnet.Binding{
		HostID: 2, Hostname: "edge-b", MAC: macB,
		IP:      netip.MustParseAddr("10.200.2.20"),
		Network: netip.MustParsePrefix("10.200.2.0/24"),
		Gateway: netip.MustParseAddr("10.200.2.1"),
		DNS:     []netip.Addr{netip.MustParseAddr("10.200.1.2")},
		NTP:     []netip.Addr{netip.MustParseAddr("10.200.1.4")},
		Lease:   time.Hour, PoolID: 2, PoolName: "edge",
	}
	bindingC = mgmtnet.Binding{
		HostID: 3, Hostname: "edge-c", MAC: macC,
		IP:      netip.MustParseAddr("10.200.1.30"),
		Network: netip.MustParsePrefix("10.200.1.0/25"),
	}
)

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestServer(t testing.TB, inv mgmtnet.Inventory, max int) (*Server, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	s, err := New(Config{
		Listeners:     []Listener{{Conn: &memConn{}, Interface: "eth0", Addr: serverAddr}},
		Relays:        []netip.Addr{relayAddr},
		Inventory:     inv,
		Now:           clk.now,
		DiscoveredMax: max,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s, clk
}

// msg builds a client message for mac of type typ with mods.
func msg(t testing.TB, mac net.HardwareAddr, typ dhcpv4.MessageType, mods ...dhcpv4.Modifier) []byte {
	t.Helper()
	m, err := dhcpv4.New(append([]dhcpv4.Modifier{
		dhcpv4.WithHwAddr(mac),
		dhcpv4.WithMessageType(typ),
		dhcpv4.WithTransactionID(dhcpv4.TransactionID{1, 2, 3, 4}),
	}, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m.ToBytes()
}

func opt(o dhcpv4.Option) dhcpv4.Modifier { return dhcpv4.WithOption(o) }

func ip(s string) net.IP { return net.ParseIP(s).To4() }

// answer is what the tests compare of a reply.
type answer struct {
	Type                   string
	To                     string
	XID                    string
	MAC                    string
	YIAddr, CIAddr, GIAddr string
	Broadcast              bool
	ServerID, Mask, Router string
	DNS, NTP               string
	Hostname               string
	Lease, T1, T2          time.Duration
}

func summarize(t testing.TB, m *dhcpv4.DHCPv4, dst *net.UDPAddr) *answer {
	t.Helper()
	if m == nil {
		if dst != nil {
			t.Errorf("no reply but a destination %v", dst)
		}
		return nil
	}
	// What goes on the wire must decode to the same.
	m, err := dhcpv4.FromBytes(m.ToBytes())
	if err != nil {
		t.Fatalf("reply does not decode: %v", err)
	}
	a := &answer{
		Type:      m.MessageType().String(),
		To:        dst.String(),
		XID:       m.TransactionID.String(),
		MAC:       m.ClientHWAddr.String(),
		YIAddr:    m.YourIPAddr.String(),
		CIAddr:    m.ClientIPAddr.String(),
		GIAddr:    m.GatewayIPAddr.String(),
		Broadcast: m.IsBroadcast(),
		ServerID:  m.ServerIdentifier().String(),
		Hostname:  m.HostName(),
		Lease:     m.IPAddressLeaseTime(0),
		T1:        m.IPAddressRenewalTime(0),
		T2:        m.IPAddressRebindingTime(0),
	}
	if mask := m.SubnetMask(); mask != nil {
		a.Mask = net.IP(mask).String()
	}
	if r := m.Router(); r != nil {
		a.Router = joinIPs(r)
	}
	a.DNS = joinIPs(m.DNS())
	a.NTP = joinIPs(m.NTPServers())
	if m.OpCode != dhcpv4.OpcodeBootReply {
		t.Errorf("reply op %v", m.OpCode)
	}
	return a
}

func joinIPs(ips []net.IP) string {
	s := ""
	for i, x := range ips {
		if i > 0 {
			s += ","
		}
		s += x.String()
	}
	return s
}

const xid = "0x01020304"

func offerA(typ string) *answer {
	return &answer{
		Type: typ, To: "255.255.255.255:68", XID: xid, MAC: macA.String(),
		YIAddr: "10.200.1.10", CIAddr: "0.0.0.0", GIAddr: "0.0.0.0",
		ServerID: "10.200.1.1", Mask: "255.255.255.0", Router: "10.200.1.254",
		DNS: "10.200.1.2,10.200.1.3", NTP: "10.200.1.4", Hostname: "edge-a",
		Lease: 2 * time.Hour, T1: time.Hour, T2: 105 * time.Minute,
	}
}

func nak(mac net.HardwareAddr, to, giaddr string, bcast bool) *answer {
	return &answer{
		Type: "NAK", To: to, XID: xid, MAC: mac.String(),
		YIAddr: "0.0.0.0", CIAddr: "0.0.0.0", GIAddr: giaddr, Broadcast: bcast,
		ServerID: "10.200.1.1",
	}
}

func TestHandle(t *testing.T) {
	t.Parallel()
	ackRenew := offerA("ACK")
	ackRenew.To, ackRenew.CIAddr = "10.200.1.10:68", "10.200.1.10"
	offerB := &answer{
		Type: "OFFER", To: "10.200.2.1:67", XID: xid, MAC: macB.String(),
		YIAddr: "10.200.2.20", CIAddr: "0.0.0.0", GIAddr: "10.200.2.1",
		ServerID: "10.200.1.1", Mask: "255.255.255.0", Router: "10.200.2.1",
		DNS: "10.200.1.2", NTP: "10.200.1.4", Hostname: "edge-b",
		Lease: time.Hour, T1: 30 * time.Minute, T2: 52*time.Minute + 30*time.Second,
	}
	ackB := *offerB
	ackB.Type = "ACK"
	informA := offerA("ACK")
	informA.YIAddr, informA.CIAddr, informA.To = "0.0.0.0", "10.200.1.10", "10.200.1.10:68"
	informA.Lease, informA.T1, informA.T2 = 0, 0, 0
	offerC := &answer{
		Type: "OFFER", To: "255.255.255.255:68", XID: xid, MAC: macC.String(),
		YIAddr: "10.200.1.30", CIAddr: "0.0.0.0", GIAddr: "0.0.0.0",
		ServerID: "10.200.1.1", Mask: "255.255.255.128", Hostname: "edge-c",
		Lease: DefaultLease, T1: DefaultLease / 2, T2: DefaultLease * 7 / 8,
	}
	relayed := dhcpv4.WithGatewayIP(ip("10.200.2.1"))
	sid := opt(dhcpv4.OptServerIdentifier(ip("10.200.1.1")))

	tests := []struct {
		name      string
		pkt       func(t *testing.T) []byte
		want      *answer
		wantLink  []netip.Addr
		wantLease []string // IPs leased
		wantRel   []string
	}{{
		name:     "discover",
		pkt:      func(t *testing.T) []byte { return msg(t, macA, dhcpv4.MessageTypeDiscover) },
		want:     offerA("OFFER"),
		wantLink: []netip.Addr{serverAddr},
	}, {
		name:     "discover with the broadcast flag",
		pkt:      func(t *testing.T) []byte { return msg(t, macA, dhcpv4.MessageTypeDiscover, dhcpv4.WithBroadcast(true)) },
		want:     func() *answer { a := offerA("OFFER"); a.Broadcast = true; return a }(),
		wantLink: []netip.Addr{serverAddr},
	}, {
		name:     "discover without gateway, DNS, NTP or lease time",
		pkt:      func(t *testing.T) []byte { return msg(t, macC, dhcpv4.MessageTypeDiscover) },
		want:     offerC,
		wantLink: []netip.Addr{serverAddr},
	}, {
		name: "request, selecting",
		pkt: func(t *testing.T) []byte {
			return msg(t, macA, dhcpv4.MessageTypeRequest, sid, opt(dhcpv4.OptRequestedIPAddress(ip("10.200.1.10"))))
		},
		want:      offerA("ACK"),
		wantLink:  []netip.Addr{serverAddr},
		wantLease: []string{"10.200.1.10"},
	}, {
		name: "request, selecting another server",
		pkt: func(t *testing.T) []byte {
			return msg(t, macA, dhcpv4.MessageTypeRequest, opt(dhcpv4.OptServerIdentifier(ip("10.200.1.99"))), opt(dhcpv4.OptRequestedIPAddress(ip("10.200.1.10"))))
		},
	}, {
		name: "request, selecting a wrong address",
		pkt: func(t *testing.T) []byte {
			return msg(t, macA, dhcpv4.MessageTypeRequest, sid, opt(dhcpv4.OptRequestedIPAddress(ip("10.200.1.11"))))
		},
		want:     nak(macA, "255.255.255.255:68", "0.0.0.0", false),
		wantLink: []netip.Addr{serverAddr},
	}, {
		name: "request, init-reboot",
		pkt: func(t *testing.T) []byte {
			return msg(t, macA, dhcpv4.MessageTypeRequest, opt(dhcpv4.OptRequestedIPAddress(ip("10.200.1.10"))))
		},
		want:      offerA("ACK"),
		wantLink:  []netip.Addr{serverAddr},
		wantLease: []string{"10.200.1.10"},
	}, {
		name: "request, init-reboot with another address",
		pkt: func(t *testing.T) []byte {
			return msg(t, macA, dhcpv4.MessageTypeRequest, opt(dhcpv4.OptRequestedIPAddress(ip("192.168.7.7"))))
		},
		want:     nak(macA, "255.255.255.255:68", "0.0.0.0", false),
		wantLink: []netip.Addr{serverAddr},
	}, {
		name: "request, renewing",
		pkt: func(t *testing.T) []byte {
			return msg(t, macA, dhcpv4.MessageTypeRequest, dhcpv4.WithClientIP(ip("10.200.1.10")))
		},
		want:      ackRenew,
		wantLink:  []netip.Addr{netip.MustParseAddr("10.200.1.10")},
		wantLease: []string{"10.200.1.10"},
	}, {
		name: "request, renewing another address",
		pkt: func(t *testing.T) []byte {
			return msg(t, macA, dhcpv4.MessageTypeRequest, dhcpv4.WithClientIP(ip("10.200.1.12")))
		},
		want:     nak(macA, "255.255.255.255:68", "0.0.0.0", false),
		wantLink: []netip.Addr{netip.MustParseAddr("10.200.1.12")},
	}, {
		name: "request, renewing straight from a routed subnet",
		pkt: func(t *testing.T) []byte {
			return msg(t, macB, dhcpv4.MessageTypeRequest, dhcpv4.WithClientIP(ip("10.200.2.20")))
		},
		want: func() *answer {
			a := ackB
			a.To, a.CIAddr, a.GIAddr = "10.200.2.20:68", "10.200.2.20", "0.0.0.0"
			return &a
		}(),
		wantLink:  []netip.Addr{netip.MustParseAddr("10.200.2.20")},
		wantLease: []string{"10.200.2.20"},
	}, {
		name: "request without an address",
		pkt:  func(t *testing.T) []byte { return msg(t, macA, dhcpv4.MessageTypeRequest) },
		// The inventory is asked, then the request is dropped.
		wantLink: []netip.Addr{serverAddr},
	}, {
		name:     "relayed discover",
		pkt:      func(t *testing.T) []byte { return msg(t, macB, dhcpv4.MessageTypeDiscover, relayed) },
		want:     offerB,
		wantLink: []netip.Addr{relayAddr},
	}, {
		name: "relayed request",
		pkt: func(t *testing.T) []byte {
			return msg(t, macB, dhcpv4.MessageTypeRequest, relayed, sid, opt(dhcpv4.OptRequestedIPAddress(ip("10.200.2.20"))))
		},
		want:      &ackB,
		wantLink:  []netip.Addr{relayAddr},
		wantLease: []string{"10.200.2.20"},
	}, {
		name: "relayed request for a wrong address",
		pkt: func(t *testing.T) []byte {
			return msg(t, macB, dhcpv4.MessageTypeRequest, relayed, opt(dhcpv4.OptRequestedIPAddress(ip("10.200.2.21"))))
		},
		want:     nak(macB, "10.200.2.1:67", "10.200.2.1", true),
		wantLink: []netip.Addr{relayAddr},
	}, {
		name:     "relayed discover of a host of another subnet",
		pkt:      func(t *testing.T) []byte { return msg(t, macA, dhcpv4.MessageTypeDiscover, relayed) },
		wantLink: []netip.Addr{relayAddr},
	}, {
		name:     "direct discover of a host of a routed subnet",
		pkt:      func(t *testing.T) []byte { return msg(t, macB, dhcpv4.MessageTypeDiscover) },
		wantLink: []netip.Addr{serverAddr},
	}, {
		name: "inform",
		pkt: func(t *testing.T) []byte {
			return msg(t, macA, dhcpv4.MessageTypeInform, dhcpv4.WithClientIP(ip("10.200.1.10")))
		},
		want:     informA,
		wantLink: []netip.Addr{netip.MustParseAddr("10.200.1.10")},
	}, {
		name: "release",
		pkt: func(t *testing.T) []byte {
			return msg(t, macA, dhcpv4.MessageTypeRelease, dhcpv4.WithClientIP(ip("10.200.1.10")), sid)
		},
		wantLink: []netip.Addr{netip.MustParseAddr("10.200.1.10")},
		wantRel:  []string{macA.String()},
	}, {
		name: "release of another address",
		pkt: func(t *testing.T) []byte {
			return msg(t, macA, dhcpv4.MessageTypeRelease, dhcpv4.WithClientIP(ip("10.200.1.11")), sid)
		},
		wantLink: []netip.Addr{netip.MustParseAddr("10.200.1.11")},
	}, {
		name: "decline",
		pkt: func(t *testing.T) []byte {
			return msg(t, macA, dhcpv4.MessageTypeDecline, sid, opt(dhcpv4.OptRequestedIPAddress(ip("10.200.1.10"))))
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			inv := dhcptest.NewInventory(bindingA, bindingB, bindingC)
			s, clk := newTestServer(t, inv, 0)
			m, dst := s.handle(t.Context(), direct, tt.pkt(t))
			got := summarize(t, m, dst)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("reply (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantLink, inv.Links(), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("links asked (-want +got):\n%s", diff)
			}
			var leased []string
			for _, l := range inv.Leases() {
				leased = append(leased, l.IP.String())
				if got == nil {
					t.Errorf("leased %v without an answer", l.IP)
				} else if want := clk.now().Add(got.Lease); !l.Expires.Equal(want) {
					t.Errorf("lease expires %v, want %v", l.Expires, want)
				}
			}
			if diff := cmp.Diff(tt.wantLease, leased); diff != "" {
				t.Errorf("leases (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantRel, inv.Releases()); diff != "" {
				t.Errorf("releases (-want +got):\n%s", diff)
			}
			if d := inv.Discoveries(); len(d) != 0 {
				t.Errorf("discovered %v", d)
			}
		})
	}
}

// rawPacket returns a valid DISCOVER of macA as bytes, for tests that
// break it.
func rawPacket(t testing.TB) []byte {
	t.Helper()
	return msg(t, macA, dhcpv4.MessageTypeDiscover)
}

// malformed are packets the server must ignore; they all carry macA, which
// the inventory knows, so an answer would be a mistake of the server.
func malformed(t testing.TB) map[string][]byte {
	t.Helper()
	set := func(off int, v ...byte) []byte {
		p := rawPacket(t)
		copy(p[off:], v)
		return p
	}
	// Options start after the 236-byte header and the 4-byte cookie.
	const opts = 240
	mods := func(mods ...dhcpv4.Modifier) []byte { return msg(t, macA, dhcpv4.MessageTypeDiscover, mods...) }
	return map[string][]byte{
		"empty":                     {},
		"one byte":                  {1},
		"truncated header":          rawPacket(t)[:100],
		"truncated before cookie":   rawPacket(t)[:238],
		"no options, no end":        rawPacket(t)[:240],
		"bad cookie":                set(236, 1, 2, 3, 4),
		"BOOTREPLY":                 set(0, 2),
		"op code 0":                 set(0, 0),
		"op code 7":                 set(0, 7),
		"hardware type 6":           set(1, 6),
		"hlen 16":                   set(2, 16),
		"hlen 0":                    set(2, 0),
		"hlen 255":                  set(2, 255),
		"option longer than packet": append(rawPacket(t)[:opts], 53, 200, 1),
		"option without length":     append(rawPacket(t)[:opts], 53),
		"no end option":             append(rawPacket(t)[:opts], 53, 1, 1),
		"no message type":           append(rawPacket(t)[:opts], 255),
		"message type too long":     append(rawPacket(t)[:opts], 53, 2, 1, 1, 255),
		"message type empty":        append(rawPacket(t)[:opts], 53, 0, 255),
		"message type 0":            append(rawPacket(t)[:opts], 53, 1, 0, 255),
		"message type 200":          append(rawPacket(t)[:opts], 53, 1, 200, 255),
		"OFFER from a client":       msg(t, macA, dhcpv4.MessageTypeOffer),
		"ACK from a client":         msg(t, macA, dhcpv4.MessageTypeAck),
		"NAK from a client":         msg(t, macA, dhcpv4.MessageTypeNak),
		"zero MAC":                  msg(t, net.HardwareAddr{0, 0, 0, 0, 0, 0}, dhcpv4.MessageTypeDiscover),
		"broadcast MAC":             msg(t, net.HardwareAddr{255, 255, 255, 255, 255, 255}, dhcpv4.MessageTypeDiscover),
		"multicast MAC":             msg(t, net.HardwareAddr{1, 0, 0x5e, 0, 0, 1}, dhcpv4.MessageTypeDiscover),
		"giaddr broadcast":          mods(dhcpv4.WithGatewayIP(ip("255.255.255.255"))),
		"giaddr loopback":           mods(dhcpv4.WithGatewayIP(ip("127.0.0.1"))),
		"giaddr multicast":          mods(dhcpv4.WithGatewayIP(ip("224.0.0.1"))),
		"requested IP 3 bytes":      mods(dhcpv4.WithGeneric(dhcpv4.OptionRequestedIPAddress, []byte{10, 200, 1})),
		"server id 5 bytes":         mods(dhcpv4.WithGeneric(dhcpv4.OptionServerIdentifier, []byte{10, 200, 1, 1, 1})),
		"inform without ciaddr":     msg(t, macA, dhcpv4.MessageTypeInform),
		"release without ciaddr":    msg(t, macA, dhcpv4.MessageTypeRelease),
	}
}

func TestMalformed(t *testing.T) {
	t.Parallel()
	for name, pkt := range malformed(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			inv := dhcptest.NewInventory(bindingA, bindingB)
			s, _ := newTestServer(t, inv, 0)
			for _, in := range []link{direct, {iface: "eth1"}} {
				if m, dst := s.handle(t.Context(), in, pkt); m != nil {
					t.Errorf("answered %v to %v", m.Summary(), dst)
				}
			}
			if l := inv.Leases(); len(l) != 0 {
				t.Errorf("leased %v", l)
			}
		})
	}
}

func TestUnknownMAC(t *testing.T) {
	t.Parallel()
	inv := dhcptest.NewInventory(bindingA)
	s, clk := newTestServer(t, inv, 0)
	types := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(dhcpv4.MessageTypeDiscover),
		dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip("10.200.1.10"))),
	}
	for range 3 {
		for _, typ := range types {
			if m, _ := s.handle(t.Context(), direct, msg(t, macUnknown, dhcpv4.MessageTypeDiscover, typ)); m != nil {
				t.Fatalf("answered an unknown MAC: %v", m.Summary())
			}
		}
		clk.add(time.Minute)
	}
	want := []dhcptest.Discovery{{MAC: macUnknown.String(), Link: serverAddr}}
	if diff := cmp.Diff(want, inv.Discoveries(), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("discovered (-want +got):\n%s", diff)
	}
	// Ten minutes after the report, the MAC is reported again.
	clk.add(DiscoveredInterval)
	s.handle(t.Context(), direct, msg(t, macUnknown, dhcpv4.MessageTypeDiscover))
	if got := len(inv.Discoveries()); got != 2 {
		t.Errorf("%d discoveries after %v, want 2", got, DiscoveredInterval)
	}
	// Relayed: the link is the relay's.
	inv2 := dhcptest.NewInventory()
	s2, _ := newTestServer(t, inv2, 0)
	s2.handle(t.Context(), direct, msg(t, macUnknown, dhcpv4.MessageTypeDiscover, dhcpv4.WithGatewayIP(ip("10.200.2.1"))))
	want = []dhcptest.Discovery{{MAC: macUnknown.String(), Link: relayAddr}}
	if diff := cmp.Diff(want, inv2.Discoveries(), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("relayed: discovered (-want +got):\n%s", diff)
	}
}

// TestUnknownRelay: a request relayed with a giaddr that is not one of the
// server's relay agents gets no answer and asks the inventory nothing,
// whether its MAC is known or not: the answer would go to that giaddr,
// with the host's address and name.
func TestUnknownRelay(t *testing.T) {
	t.Parallel()
	inv := dhcptest.NewInventory(bindingA, bindingB)
	s, _ := newTestServer(t, inv, 0)
	for _, mac := range []net.HardwareAddr{macA, macB, macUnknown} {
		for _, typ := range []dhcpv4.MessageType{dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeInform} {
			for _, giaddr := range []string{"10.200.3.1", "10.200.1.66", "192.0.2.7"} {
				m, dst := s.handle(t.Context(), direct, msg(t, mac, typ, dhcpv4.WithGatewayIP(ip(giaddr))))
				if m != nil {
					t.Errorf("%s of %s relayed by %s was answered (%s to %v)", typ, mac, giaddr, m.MessageType(), dst)
				}
			}
		}
	}
	if got := inv.Links(); len(got) != 0 {
		t.Errorf("the inventory was asked about links %v", got)
	}
	if got := inv.Discoveries(); len(got) != 0 {
		t.Errorf("unknown relays' MACs were reported: %v", got)
	}
	// The known relay is still answered.
	if m, _ := s.handle(t.Context(), direct, msg(t, macB, dhcpv4.MessageTypeDiscover, dhcpv4.WithGatewayIP(relayAddr.AsSlice()))); m == nil || m.MessageType() != dhcpv4.MessageTypeOffer {
		t.Errorf("a discover through the known relay: %v", m)
	}
}

func TestUnknownMACFlood(t *testing.T) {
	t.Parallel()
	const max = 100
	inv := dhcptest.NewInventory(bindingA)
	s, clk := newTestServer(t, inv, max)
	flood := func(n int, seed uint32) {
		mac := net.HardwareAddr{2, 0xee, 0, 0, 0, 0}
		for i := range n {
			binary.BigEndian.PutUint32(mac[2:], seed+uint32(i))
			if m, _ := s.handle(t.Context(), direct, msg(t, mac, dhcpv4.MessageTypeDiscover)); m != nil {
				t.Fatalf("answered an unknown MAC: %v", m.Summary())
			}
		}
	}
	flood(10_000, 0)
	if got := len(inv.Discoveries()); got != max {
		t.Errorf("%d discoveries from a flood of 10000 MACs, want %d", got, max)
	}
	if got := s.disc.len(); got > max {
		t.Errorf("table holds %d MACs, want at most %d", got, max)
	}
	// A known host is still answered during the flood.
	if m, _ := s.handle(t.Context(), direct, msg(t, macA, dhcpv4.MessageTypeDiscover)); m == nil {
		t.Error("no offer to a known host during a flood")
	}
	// Once the reports expire, new MACs are reported again, still bounded.
	clk.add(DiscoveredInterval)
	flood(10_000, 1_000_000)
	if got := len(inv.Discoveries()); got != 2*max {
		t.Errorf("%d discoveries after two floods, want %d", got, 2*max)
	}
	if got := s.disc.len(); got > max {
		t.Errorf("table holds %d MACs, want at most %d", got, max)
	}
}

func TestInventoryErrors(t *testing.T) {
	t.Parallel()
	for _, err := range []error{errors.New("database is down"), context.DeadlineExceeded, mgmtnet.ErrNotHere} {
		inv := dhcptest.NewInventory(bindingA)
		inv.Fail(err)
		s, _ := newTestServer(t, inv, 0)
		for _, typ := range []dhcpv4.MessageType{dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest} {
			pkt := msg(t, macA, typ, opt(dhcpv4.OptRequestedIPAddress(ip("10.200.1.10"))))
			if m, _ := s.handle(t.Context(), direct, pkt); m != nil {
				t.Errorf("%v: answered %v", err, m.Summary())
			}
		}
		if d := inv.Discoveries(); len(d) != 0 {
			t.Errorf("%v: discovered %v", err, d)
		}
	}
}

// badInventory returns bindings the server must not hand out.
type badInventory struct {
	dhcptest.Inventory
	b mgmtnet.Binding
}

func (f *badInventory) Binding(context.Context, net.HardwareAddr, netip.Addr) (mgmtnet.Binding, error) {
	return f.b, nil
}

func TestUnusableBinding(t *testing.T) {
	t.Parallel()
	for name, b := range map[string]mgmtnet.Binding{
		"no address":          {MAC: macA, Network: bindingA.Network},
		"IPv6 address":        {MAC: macA, IP: netip.MustParseAddr("fd00::1"), Network: netip.MustParsePrefix("fd00::/64")},
		"no network":          {MAC: macA, IP: bindingA.IP},
		"address outside net": {MAC: macA, IP: netip.MustParseAddr("10.9.9.9"), Network: bindingA.Network},
	} {
		s, _ := newTestServer(t, &badInventory{b: b}, 0)
		if m, _ := s.handle(t.Context(), direct, msg(t, macA, dhcpv4.MessageTypeDiscover)); m != nil {
			t.Errorf("%s: answered %v", name, m.Summary())
		}
	}
}

// memConn is a net.PacketConn in memory: packets put into in are read,
// packets written go to out.
type memConn struct {
	in     chan []byte
	out    chan sent
	closed chan struct{}
	once   sync.Once
}

type sent struct {
	pkt []byte
	to  string
}

func newMemConn() *memConn {
	return &memConn{in: make(chan []byte, 16), out: make(chan sent, 16), closed: make(chan struct{})}
}

func (c *memConn) ReadFrom(p []byte) (int, net.Addr, error) {
	if c.in == nil {
		return 0, nil, net.ErrClosed
	}
	select {
	case b := <-c.in:
		return copy(p, b), &net.UDPAddr{IP: net.IPv4zero, Port: ClientPort}, nil
	case <-c.closed:
		return 0, nil, net.ErrClosed
	}
}

func (c *memConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	c.out <- sent{pkt: append([]byte(nil), p...), to: addr.String()}
	return len(p), nil
}

func (c *memConn) Close() error {
	if c.closed != nil {
		c.once.Do(func() { close(c.closed) })
	}
	return nil
}
func (c *memConn) LocalAddr() net.Addr              { return &net.UDPAddr{Port: ServerPort} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

func TestRun(t *testing.T) {
	t.Parallel()
	conn := newMemConn()
	inv := dhcptest.NewInventory(bindingA)
	s, err := New(Config{Listeners: []Listener{{Conn: conn, Interface: "eth0", Addr: serverAddr}}, Inventory: inv})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	conn.in <- []byte("garbage")
	conn.in <- msg(t, macUnknown, dhcpv4.MessageTypeDiscover)
	conn.in <- msg(t, macA, dhcpv4.MessageTypeDiscover)
	select {
	case r := <-conn.out:
		m, err := dhcpv4.FromBytes(r.pkt)
		if err != nil {
			t.Fatal(err)
		}
		if m.MessageType() != dhcpv4.MessageTypeOffer || !m.YourIPAddr.Equal(ip("10.200.1.10")) || r.to != "255.255.255.255:68" {
			t.Errorf("got %s to %s", m.Summary(), r.to)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no offer")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	select {
	case <-conn.closed:
	default:
		t.Error("Run left the socket open")
	}
	select {
	case r := <-conn.out:
		t.Errorf("answered more: %q", r.pkt)
	default:
	}
	if err := s.Run(t.Context()); err == nil {
		t.Error("a second Run did not fail")
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	inv := dhcptest.NewInventory()
	for name, cfg := range map[string]Config{
		"no inventory":       {Interfaces: []string{"eth0"}},
		"no interface":       {Inventory: inv},
		"listener no socket": {Inventory: inv, Listeners: []Listener{{Interface: "x", Addr: serverAddr}}},
		"listener no addr":   {Inventory: inv, Listeners: []Listener{{Interface: "x", Conn: newMemConn()}}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}
