package dhcp

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"

	"hummingbird.io/hummingbird/internal/mgmtnet"
)

// link is the interface a packet arrived on.
type link struct {
	iface string
	addr  netip.Addr // its IPv4 address: server identifier, link of direct requests
}

// request is a decoded packet that passed the checks of parse.
type request struct {
	msg     *dhcpv4.DHCPv4
	typ     dhcpv4.MessageType
	mac     net.HardwareAddr
	ciaddr  netip.Addr // invalid when zero
	giaddr  netip.Addr // invalid when zero (not relayed)
	reqIP   netip.Addr // option 50, invalid when absent
	server  netip.Addr // option 54, invalid when absent
	relayed bool
}

// handle answers one raw packet received on in. It returns the reply and
// where to send it, or nil when nothing is to be sent. It calls the
// inventory and logs, and never panics.
func (s *Server) handle(ctx context.Context, in link, pkt []byte) (*dhcpv4.DHCPv4, *net.UDPAddr) {
	req, reason := parse(pkt)
	if req == nil {
		s.logLimited(ctx, slog.LevelDebug, "ignored a DHCP packet", "interface", in.iface, "reason", reason)
		return nil, nil
	}
	log := []any{"interface", in.iface, "mac", req.mac.String(), "type", req.typ.String()}
	if req.relayed && !s.relays[req.giaddr] {
		s.logLimited(ctx, slog.LevelWarn, "ignored a DHCP request relayed by an unknown relay agent: name it with --dhcp-relay if it is one",
			append(log, "giaddr", req.giaddr.String())...)
		return nil, nil
	}

	// The address that names the requester's subnet: the relay's, else the
	// client's own when it has one (renewing: unicast straight to us, maybe
	// from a routed subnet), else the receiving interface's.
	lnk := in.addr
	switch {
	case req.relayed:
		lnk = req.giaddr
	case req.ciaddr.IsValid() && req.typ != dhcpv4.MessageTypeDiscover:
		lnk = req.ciaddr
	}
	if !lnk.IsValid() {
		s.logLimited(ctx, slog.LevelWarn, "no subnet for a DHCP request: the interface has no IPv4 address", log...)
		return nil, nil
	}
	log = append(log, "link", lnk.String())

	switch req.typ {
	case dhcpv4.MessageTypeDecline:
		s.logLimited(ctx, slog.LevelWarn, "a DHCP client declined its address: another host may use it", append(log, "address", req.reqIP.String())...)
		return nil, nil
	case dhcpv4.MessageTypeRequest:
		// Selecting: the client chose another server's offer.
		if req.server.IsValid() && !s.isOurs(req.server, in) {
			return nil, nil
		}
	}

	b, err := s.inv.Binding(ctx, req.mac, lnk)
	switch {
	case errors.Is(err, mgmtnet.ErrUnknownMAC):
		if req.typ == dhcpv4.MessageTypeRelease {
			return nil, nil
		}
		s.discovered(ctx, req.mac, lnk, log)
		return nil, nil
	case errors.Is(err, mgmtnet.ErrNotHere):
		s.logLimited(ctx, slog.LevelInfo, "a known host asked for an address on a subnet where it has none", log...)
		return nil, nil
	case err != nil:
		s.logLimited(ctx, slog.LevelError, "cannot look up a DHCP binding", append(log, "error", err)...)
		return nil, nil
	}
	ip, ok := usable(b)
	if !ok {
		s.logLimited(ctx, slog.LevelError, "the inventory gave an unusable DHCP binding", append(log, "address", b.IP.String(), "network", b.Network.String())...)
		return nil, nil
	}

	switch req.typ {
	case dhcpv4.MessageTypeDiscover:
		return s.reply(req, in, dhcpv4.MessageTypeOffer, b, ip)

	case dhcpv4.MessageTypeRequest:
		var asked netip.Addr
		switch {
		case req.reqIP.IsValid(): // selecting or init-reboot
			asked = req.reqIP
		case req.ciaddr.IsValid(): // renewing or rebinding
			asked = req.ciaddr
		default:
			s.logLimited(ctx, slog.LevelDebug, "ignored a DHCP request that names no address", log...)
			return nil, nil
		}
		if asked != ip {
			s.logLimited(ctx, slog.LevelInfo, "refused a DHCP request for another address", append(log, "asked", asked.String(), "address", ip.String())...)
			return s.nak(req, in)
		}
		lease := leaseOf(b)
		if err := s.inv.Leased(ctx, b, s.now().Add(lease)); err != nil {
			// Nothing is acknowledged that is not recorded: the client
			// asks again.
			s.logLimited(ctx, slog.LevelError, "cannot record a DHCP lease", append(log, "error", err)...)
			return nil, nil
		}
		s.log.Debug("leased an address", append(log, "address", ip.String(), "lease", lease)...)
		return s.reply(req, in, dhcpv4.MessageTypeAck, b, ip)

	case dhcpv4.MessageTypeInform:
		return s.reply(req, in, dhcpv4.MessageTypeAck, b, netip.Addr{})

	case dhcpv4.MessageTypeRelease:
		if req.ciaddr != ip {
			return nil, nil
		}
		if err := s.inv.Released(ctx, req.mac); err != nil {
			s.logLimited(ctx, slog.LevelError, "cannot record a DHCP release", append(log, "error", err)...)
		}
		return nil, nil
	}
	return nil, nil
}

// parse decodes pkt and keeps only what a DHCP server answers: a
// BOOTREQUEST from an Ethernet unicast MAC with a client message type and
// sane addresses. It returns nil and why otherwise.
func parse(pkt []byte) (*request, string) {
	m, err := dhcpv4.FromBytes(pkt)
	if err != nil {
		return nil, "malformed"
	}
	if m.OpCode != dhcpv4.OpcodeBootRequest {
		return nil, "not a BOOTREQUEST"
	}
	// FromBytes keeps at most 16 bytes of chaddr whatever hlen says.
	if m.HWType != iana.HWTypeEthernet || len(pkt) < 3 || pkt[2] != 6 || len(m.ClientHWAddr) != 6 {
		return nil, "not an Ethernet client"
	}
	mac := m.ClientHWAddr
	if mac[0]&1 != 0 || [6]byte(mac) == [6]byte{} {
		return nil, "not a unicast MAC"
	}
	r := &request{msg: m, typ: m.MessageType(), mac: mac}
	switch r.typ {
	case dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeRelease,
		dhcpv4.MessageTypeDecline, dhcpv4.MessageTypeInform:
	default:
		return nil, "not a client message type"
	}
	var ok bool
	if r.ciaddr, ok = addr4(m.ClientIPAddr); !ok {
		return nil, "bad ciaddr"
	}
	if r.giaddr, ok = addr4(m.GatewayIPAddr); !ok {
		return nil, "bad giaddr"
	}
	r.relayed = r.giaddr.IsValid()
	if v := m.Options.Get(dhcpv4.OptionRequestedIPAddress); v != nil {
		if r.reqIP, ok = addr4(net.IP(v)); !ok || len(v) != 4 || !r.reqIP.IsValid() {
			return nil, "bad requested address"
		}
	}
	if v := m.Options.Get(dhcpv4.OptionServerIdentifier); v != nil {
		if r.server, ok = addr4(net.IP(v)); !ok || len(v) != 4 || !r.server.IsValid() {
			return nil, "bad server identifier"
		}
	}
	if r.typ == dhcpv4.MessageTypeInform && !r.ciaddr.IsValid() {
		return nil, "inform without ciaddr"
	}
	if r.typ == dhcpv4.MessageTypeRelease && !r.ciaddr.IsValid() {
		return nil, "release without ciaddr"
	}
	return r, ""
}

// addr4 converts a packet's address field: the zero address gives an
// invalid Addr and true; an address a host cannot have (broadcast,
// multicast, loopback, not IPv4) gives false.
func addr4(ip net.IP) (netip.Addr, bool) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}, false
	}
	a = a.Unmap()
	if !a.Is4() {
		return netip.Addr{}, false
	}
	if a.IsUnspecified() {
		return netip.Addr{}, true
	}
	if a.IsMulticast() || a.IsLoopback() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return netip.Addr{}, false
	}
	return a, true
}

// isOurs tells whether sid is the server identifier of this server.
func (s *Server) isOurs(sid netip.Addr, in link) bool {
	return sid == in.addr || s.ours[sid]
}

// usable checks that the binding has an IPv4 address inside its IPv4
// network, and returns the address.
func usable(b mgmtnet.Binding) (netip.Addr, bool) {
	ip := b.IP.Unmap()
	if !ip.Is4() || !b.Network.IsValid() || !b.Network.Addr().Is4() || !b.Network.Contains(ip) {
		return netip.Addr{}, false
	}
	return ip, true
}

// leaseOf is the binding's lease time, DefaultLease when it has none,
// capped to what the option can say (just under infinity).
func leaseOf(b mgmtnet.Binding) time.Duration {
	l := b.Lease.Truncate(time.Second)
	switch {
	case l <= 0:
		return DefaultLease
	case l > 0xfffffffe*time.Second:
		return 0xfffffffe * time.Second
	}
	return l
}

// discovered reports an unknown MAC to the inventory, at most once per
// DiscoveredInterval and within the bounds of the table.
func (s *Server) discovered(ctx context.Context, mac net.HardwareAddr, lnk netip.Addr, log []any) {
	switch s.disc.add(mac, s.now()) {
	case discoveredRecent:
		return
	case discoveredFull:
		s.logLimited(ctx, slog.LevelWarn, "too many unknown MACs: not reporting more for now", log...)
		return
	}
	s.log.Info("an unknown MAC asked for an address", log...)
	if err := s.inv.Discovered(ctx, mac, lnk); err != nil {
		s.logLimited(ctx, slog.LevelError, "cannot record a discovered MAC", append(log, "error", err)...)
	}
}

// reply builds an OFFER or ACK for req from b; an invalid yiaddr makes the
// ACK of an INFORM (no address, no lease).
func (s *Server) reply(req *request, in link, typ dhcpv4.MessageType, b mgmtnet.Binding, yiaddr netip.Addr) (*dhcpv4.DHCPv4, *net.UDPAddr) {
	mods := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(typ),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(in.addr.AsSlice())),
		dhcpv4.WithOption(dhcpv4.OptSubnetMask(net.CIDRMask(b.Network.Bits(), 32))),
	}
	if yiaddr.IsValid() {
		lease := leaseOf(b)
		mods = append(mods,
			dhcpv4.WithYourIP(yiaddr.AsSlice()),
			dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(lease)),
			dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(lease/2)),
			dhcpv4.WithOption(dhcpv4.OptRebindingTimeValue(lease*7/8)),
		)
	}
	if typ == dhcpv4.MessageTypeAck && req.ciaddr.IsValid() {
		mods = append(mods, dhcpv4.WithClientIP(req.ciaddr.AsSlice()))
	}
	if gw := b.Gateway.Unmap(); gw.Is4() && !gw.IsUnspecified() {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptRouter(gw.AsSlice())))
	}
	if ips := ipv4s(b.DNS); len(ips) > 0 {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptDNS(ips...)))
	}
	if ips := ipv4s(b.NTP); len(ips) > 0 {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptNTPServers(ips...)))
	}
	if b.Hostname != "" && len(b.Hostname) <= 255 {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptHostName(b.Hostname)))
	}
	return s.send(req, mods)
}

// nak builds a NAK for req.
func (s *Server) nak(req *request, in link) (*dhcpv4.DHCPv4, *net.UDPAddr) {
	mods := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(dhcpv4.MessageTypeNak),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(in.addr.AsSlice())),
	}
	if req.relayed {
		// RFC 2131 4.3.2: the relay broadcasts it to the client.
		mods = append(mods, dhcpv4.WithBroadcast(true))
	}
	return s.send(req, mods)
}

// send makes the reply and picks its destination (RFC 2131 4.1): the relay
// when relayed, else the client's address when it has one (not for a NAK),
// else broadcast on the link.
func (s *Server) send(req *request, mods []dhcpv4.Modifier) (*dhcpv4.DHCPv4, *net.UDPAddr) {
	m, err := dhcpv4.NewReplyFromRequest(req.msg, mods...)
	if err != nil {
		return nil, nil
	}
	switch {
	case req.relayed:
		return m, &net.UDPAddr{IP: req.giaddr.AsSlice(), Port: ServerPort}
	case req.ciaddr.IsValid() && m.MessageType() != dhcpv4.MessageTypeNak:
		return m, &net.UDPAddr{IP: req.ciaddr.AsSlice(), Port: ClientPort}
	}
	return m, &net.UDPAddr{IP: net.IPv4bcast, Port: ClientPort}
}

// ipv4s returns the IPv4 addresses of addrs as option values, at most maxAddrs.
func ipv4s(addrs []netip.Addr) []net.IP {
	var out []net.IP
	for _, a := range addrs {
		if a = a.Unmap(); a.Is4() && !a.IsUnspecified() && len(out) < maxAddrs {
			out = append(out, a.AsSlice())
		}
	}
	return out
}
