package failover

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// Addresses puts an app's VIP on this node and takes it off. The real one
// changes the interface's addresses through rtnetlink (no process to
// start: at the default timings the new active's first lease is 55 ms)
// and sends gratuitous ARP on a packet socket.
type Addresses interface {
	// Add puts vip on the interface that holds an address of its network
	// and announces it; it does nothing more when the address is there.
	Add(ctx context.Context, vip netip.Prefix) error
	// Remove takes vip off whichever interface holds it.
	Remove(ctx context.Context, vip netip.Prefix) error
	// Announce repeats the gratuitous ARP for vip when this node holds
	// it: neighbours that learnt another node's address for it (a frozen
	// old active's kernel still answers ARP) come back.
	Announce(vip netip.Prefix) error
	// Forward passes the packets for vip of TCP connections this node
	// does not know on to old, until stop is called. After a planned
	// move, a connection whose handshake reached the old active in the
	// instant before the VIP moved ends there, while it keeps the VIP and
	// drains; this node would reset it.
	Forward(ctx context.Context, vip netip.Prefix, old netip.Addr) (stop func(), err error)
}

// hostAddresses is Addresses on this node's interfaces.
type hostAddresses struct{ log *slog.Logger }

// vipInterface finds the interface with an address (other than vip
// itself) in vip's network.
func vipInterface(vip netip.Prefix) (*net.Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	for i := range ifs {
		addrs, err := ifs[i].Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(n.IP)
			if !ok {
				continue
			}
			ip = ip.Unmap()
			if ip != vip.Addr() && vip.Masked().Contains(ip) {
				return &ifs[i], nil
			}
		}
	}
	return nil, fmt.Errorf("no interface has an address in %s: give this member an address in the VIP's network", vip.Masked())
}

// holder is the interface holding vip, or nil.
func holder(vip netip.Prefix) *net.Interface {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	for i := range ifs {
		addrs, _ := ifs[i].Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap() == vip.Addr() {
					return &ifs[i]
				}
			}
		}
	}
	return nil
}

func (a hostAddresses) Add(_ context.Context, vip netip.Prefix) error {
	ifi, err := vipInterface(vip)
	if err != nil {
		return err
	}
	// ARP requests from this node name its own address, never the VIP:
	// an old active's kernel, still finishing connections it took before
	// the VIP moved, would otherwise point its neighbours back at itself.
	// Without it the VIP still works: a warning, not a failure.
	if err := arpAnnounceOwnAddress(ifi); err != nil && a.log != nil {
		a.log.Warn("ARP requests may name the VIP", "vip", vip.String(), "err", err)
	}
	if holder(vip) == nil {
		if err := changeAddress(syscall.RTM_NEWADDR, syscall.NLM_F_CREATE|syscall.NLM_F_REPLACE, ifi.Index, vip); err != nil {
			return fmt.Errorf("adding %s to %s: %w", vip, ifi.Name, err)
		}
	}
	// Neighbours update an entry they have from a gratuitous ARP request;
	// the active member repeats it (Announce) while its lease is valid.
	if err := garp(ifi, vip.Addr()); err != nil {
		return fmt.Errorf("gratuitous ARP for %s on %s: %w", vip.Addr(), ifi.Name, err)
	}
	return nil
}

// arpAnnounceOwnAddress sets the interface's arp_announce to 2 (use the
// interface's own address as the sender of ARP requests) unless it is so:
// through rtnetlink, which works where /proc/sys is read-only (in a
// container with CAP_NET_ADMIN), else through /proc/sys.
func arpAnnounceOwnAddress(ifi *net.Interface) error {
	p := "/proc/sys/net/ipv4/conf/" + ifi.Name + "/arp_announce"
	if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == "2" {
		return nil
	}
	nerr := setARPAnnounce(ifi.Index, 2)
	if nerr == nil {
		return nil
	}
	if err := os.WriteFile(p, []byte("2\n"), 0o644); err != nil {
		return fmt.Errorf("setting net.ipv4.conf.%s.arp_announce to 2: %w (through rtnetlink: %w)", ifi.Name, err, nerr)
	}
	return nil
}

// ipv4DevconfARPAnnounce is IPV4_DEVCONF_ARP_ANNOUNCE of linux/ip.h.
const ipv4DevconfARPAnnounce = 18

// nlattr is a netlink attribute of type typ, padded to 4 bytes.
func nlattr(typ uint16, payload []byte) []byte {
	b := binary.NativeEndian.AppendUint16(nil, uint16(4+len(payload)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, payload...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// setARPAnnounce sets arp_announce of interface ifindex to v with one
// RTM_SETLINK (IFLA_AF_SPEC, AF_INET, IFLA_INET_CONF).
func setARPAnnounce(ifindex int, v uint32) error {
	const iflaAFSpec, iflaInetConf = 26, 1 // linux/if_link.h
	spec := nlattr(iflaAFSpec|syscall.NLA_F_NESTED,
		nlattr(syscall.AF_INET|syscall.NLA_F_NESTED,
			nlattr(iflaInetConf|syscall.NLA_F_NESTED,
				nlattr(ipv4DevconfARPAnnounce, binary.NativeEndian.AppendUint32(nil, v)))))
	body := make([]byte, syscall.SizeofIfInfomsg)
	binary.NativeEndian.PutUint32(body[4:], uint32(ifindex))
	return rtnetlink(syscall.RTM_SETLINK, 0, append(body, spec...))
}

// changeAddress adds (RTM_NEWADDR) or removes (RTM_DELADDR) address p on
// interface ifindex, as ip addr replace and ip addr del do.
func changeAddress(typ uint16, flags uint16, ifindex int, p netip.Prefix) error {
	family := uint8(syscall.AF_INET)
	if p.Addr().Is6() {
		family = syscall.AF_INET6
	}
	// struct ifaddrmsg: family, prefix length, flags, scope (universe),
	// interface index.
	body := []byte{family, uint8(p.Bits()), 0, 0}
	body = binary.NativeEndian.AppendUint32(body, uint32(ifindex))
	a := p.Addr().AsSlice()
	body = append(body, nlattr(syscall.IFA_LOCAL, a)...)
	body = append(body, nlattr(syscall.IFA_ADDRESS, a)...)
	return rtnetlink(typ, flags, body)
}

// rtnetlink sends one request of type typ with body to the kernel and
// waits for its answer.
func rtnetlink(typ, flags uint16, body []byte) error {
	msg := binary.NativeEndian.AppendUint32(nil, uint32(syscall.NLMSG_HDRLEN+len(body)))
	msg = binary.NativeEndian.AppendUint16(msg, typ)
	msg = binary.NativeEndian.AppendUint16(msg, syscall.NLM_F_REQUEST|syscall.NLM_F_ACK|flags)
	msg = binary.NativeEndian.AppendUint32(msg, 1) // sequence
	msg = binary.NativeEndian.AppendUint32(msg, 0) // port: the kernel
	msg = append(msg, body...)

	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, syscall.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	tv := syscall.Timeval{Sec: 1}
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		return err
	}
	if err := syscall.Sendto(fd, msg, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	n, _, err := syscall.Recvfrom(fd, buf, 0)
	if err != nil {
		return err
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if m.Header.Type == syscall.NLMSG_ERROR && len(m.Data) >= 4 {
			if code := int32(binary.NativeEndian.Uint32(m.Data)); code != 0 {
				return syscall.Errno(-code)
			}
			return nil
		}
	}
	return errors.New("no answer from the kernel")
}

func (hostAddresses) Announce(vip netip.Prefix) error {
	ifi := holder(vip)
	if ifi == nil {
		return nil
	}
	return garp(ifi, vip.Addr())
}

func (hostAddresses) Remove(_ context.Context, vip netip.Prefix) error {
	ifi := holder(vip)
	if ifi == nil {
		return nil
	}
	if err := changeAddress(syscall.RTM_DELADDR, 0, ifi.Index, vip); err != nil {
		if holder(vip) == nil {
			return nil
		}
		return fmt.Errorf("removing %s from %s: %w", vip, ifi.Name, err)
	}
	return nil
}

// garp broadcasts an ARP request for ip from ip on ifi, which makes
// neighbours that know ip point it at ifi's MAC.
func garp(ifi *net.Interface, ip netip.Addr) error { return arpRequest(ifi, ip, ip) }

// arpRequest broadcasts an ARP request for target from from on ifi.
func arpRequest(ifi *net.Interface, from, target netip.Addr) error {
	if !from.Is4() || !target.Is4() {
		return nil // IPv6 uses unsolicited neighbour advertisements, sent by the kernel
	}
	if len(ifi.HardwareAddr) != 6 {
		return errors.New("the interface has no Ethernet address")
	}
	const ethPArp = 0x0806
	// Protocol 0: the socket only sends, and receives nothing meanwhile.
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	// Closing a packet socket waits for an RCU grace period (12 ms on
	// average here, up to 20): longer than the lease a new active takes
	// the VIP under at short heartbeat times. The frame is on its way when
	// Sendto returns; the socket is closed in the background.
	defer func() { go syscall.Close(fd) }()
	bcast := [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	frame := make([]byte, 0, 42)
	frame = append(frame, bcast[:6]...)
	frame = append(frame, ifi.HardwareAddr...)
	frame = binary.BigEndian.AppendUint16(frame, ethPArp)
	frame = binary.BigEndian.AppendUint16(frame, 1)      // Ethernet
	frame = binary.BigEndian.AppendUint16(frame, 0x0800) // IPv4
	frame = append(frame, 6, 4)
	frame = binary.BigEndian.AppendUint16(frame, 1) // request
	f4, t4 := from.As4(), target.As4()
	frame = append(frame, ifi.HardwareAddr...)
	frame = append(frame, f4[:]...)
	frame = append(frame, 0, 0, 0, 0, 0, 0)
	frame = append(frame, t4[:]...)
	sa := &syscall.SockaddrLinklayer{Protocol: htons(ethPArp), Ifindex: ifi.Index, Halen: 6, Addr: bcast}
	return syscall.Sendto(fd, frame, 0, sa)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Forward puts a chain in the mangle table of iptables (ip6tables for an
// IPv6 VIP) that TCP packets for vip meet before this node takes them in.
// A packet other than a SYN that conntrack does not know as part of an
// established connection of this node belongs to a connection the old
// active took: it is copied to old (TEE, which sends the copy to old's MAC
// unchanged) and dropped here, so that old's socket answers it. Conntrack,
// not the node's sockets, tells them apart: the client may reuse the port
// of a connection this node served before, whose TIME_WAIT socket would
// take the packet in and answer it with an ACK of the old connection (the
// request waits for a retransmission, 200 ms at least). Conntrack sees only
// the client's half of a forwarded connection, which stays NEW. The chain
// goes with stop; one left by an earlier call is replaced.
func (hostAddresses) Forward(ctx context.Context, vip netip.Prefix, old netip.Addr) (func(), error) {
	tables, restore, host := "iptables", "iptables-restore", "/32"
	if vip.Addr().Is6() {
		tables, restore, host = "ip6tables", "ip6tables-restore", "/128"
	}
	h := fnv.New32a()
	h.Write(vip.Addr().AsSlice())
	chain := fmt.Sprintf("HB-DRAIN-%08x", h.Sum32())
	jump := []string{"PREROUTING", "-d", vip.Addr().String() + host, "-p", "tcp", "-j", chain}
	ipt := func(args ...string) error {
		return exec.Command(tables, append([]string{"-w", "-t", "mangle"}, args...)...).Run()
	}
	stop := func() {
		for ipt(append([]string{"-D"}, jump...)...) == nil {
		}
		ipt("-F", chain)
		ipt("-X", chain)
	}
	stop()
	// One iptables-restore: the chain is whole before a packet meets it.
	rules := fmt.Sprintf("*mangle\n:%[1]s - [0:0]\n"+
		"-A %[1]s -p tcp --syn -j RETURN\n"+
		"-A %[1]s -m conntrack --ctstate ESTABLISHED -j RETURN\n"+
		"-A %[1]s -j TEE --gateway %[2]s\n"+
		"-A %[1]s -j DROP\n"+
		"-I %[3]s\nCOMMIT\n", chain, old, strings.Join(jump, " "))
	cmd := exec.CommandContext(ctx, restore, "-w", "--noflush")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		stop()
		hint := ""
		switch {
		case errors.Is(err, exec.ErrNotFound):
			hint = " (install iptables on this node)"
		case !hasCap(12):
			hint = " (the agent lacks CAP_NET_ADMIN: see deploy/README.md, \"What the agent needs\")"
		}
		return nil, fmt.Errorf("forwarding connections for %s to %s: %s: %w: %s%s", vip.Addr(), old, restore, err, bytes.TrimSpace(out), hint)
	}
	return stop, nil
}
