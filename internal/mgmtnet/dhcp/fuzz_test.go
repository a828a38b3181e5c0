package dhcp

import (
	"net/netip"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"hummingbird.io/hummingbird/internal/mgmtnet/dhcp/dhcptest"
)

// FuzzDHCP feeds raw packets to the handler, as received directly and
// through a relay's interface. The server must never panic, never answer a
// MAC the inventory does not know, never offer or acknowledge another
// address than the one the inventory holds for the MAC, and never record a
// lease of another address.
func FuzzDHCP(f *testing.F) {
	sid := opt(dhcpv4.OptServerIdentifier(ip("10.200.1.1")))
	for _, mac := range []string{macA.String(), macB.String(), macUnknown.String()} {
		m := mustMAC(mac)
		f.Add(msg(f, m, dhcpv4.MessageTypeDiscover))
		f.Add(msg(f, m, dhcpv4.MessageTypeDiscover, dhcpv4.WithGatewayIP(ip("10.200.2.1"))))
		f.Add(msg(f, m, dhcpv4.MessageTypeRequest, sid, opt(dhcpv4.OptRequestedIPAddress(ip("10.200.1.10")))))
		f.Add(msg(f, m, dhcpv4.MessageTypeRequest, dhcpv4.WithGatewayIP(ip("10.200.2.1")), opt(dhcpv4.OptRequestedIPAddress(ip("10.200.2.20")))))
		f.Add(msg(f, m, dhcpv4.MessageTypeRequest, dhcpv4.WithClientIP(ip("10.200.1.10"))))
		f.Add(msg(f, m, dhcpv4.MessageTypeInform, dhcpv4.WithClientIP(ip("10.200.2.20"))))
		f.Add(msg(f, m, dhcpv4.MessageTypeRelease, dhcpv4.WithClientIP(ip("10.200.1.10"))))
		f.Add(msg(f, m, dhcpv4.MessageTypeDecline, opt(dhcpv4.OptRequestedIPAddress(ip("10.200.1.10")))))
	}
	for _, pkt := range malformed(f) {
		f.Add(pkt)
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		inv := dhcptest.NewInventory(bindingA, bindingB, bindingC)
		s, _ := newTestServer(t, inv, 4)
		for _, in := range []link{direct, {iface: "eth1", addr: netip.MustParseAddr("10.200.2.1")}, {iface: "eth2"}} {
			m, dst := s.handle(t.Context(), in, pkt)
			if m == nil {
				continue
			}
			if dst == nil {
				t.Fatalf("answer without a destination: %v", m.Summary())
			}
			b, ok := inv.Held(m.ClientHWAddr)
			if !ok {
				t.Fatalf("answered unknown MAC %v: %v", m.ClientHWAddr, m.Summary())
			}
			switch m.MessageType() {
			case dhcpv4.MessageTypeOffer, dhcpv4.MessageTypeAck:
				y, _ := netip.AddrFromSlice(m.YourIPAddr.To4())
				if !y.IsUnspecified() && y != b.IP {
					t.Fatalf("answered %v with %v, the inventory holds %v", m.ClientHWAddr, y, b.IP)
				}
			case dhcpv4.MessageTypeNak:
				if !m.YourIPAddr.IsUnspecified() {
					t.Fatalf("NAK with an address: %v", m.Summary())
				}
			default:
				t.Fatalf("answered with %v", m.MessageType())
			}
			if _, err := dhcpv4.FromBytes(m.ToBytes()); err != nil {
				t.Fatalf("the answer does not decode: %v", err)
			}
		}
		for _, l := range inv.Leases() {
			b, ok := inv.Held(mustMAC(l.MAC))
			if !ok || l.IP != b.IP {
				t.Fatalf("leased %v to %v", l.IP, l.MAC)
			}
		}
	})
}
