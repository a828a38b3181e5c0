package failover

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// Addresses puts an app's VIP on this node and takes it off. The real one
// runs iproute2's ip and sends gratuitous ARP on a packet socket.
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
}

// hostAddresses is Addresses on this node's interfaces.
type hostAddresses struct{}

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

func (hostAddresses) Add(ctx context.Context, vip netip.Prefix) error {
	ifi, err := vipInterface(vip)
	if err != nil {
		return err
	}
	// ARP requests from this node name its own address, never the VIP:
	// an old active's kernel, still finishing connections it took before
	// the VIP moved, would otherwise point its neighbours back at itself.
	if err := arpAnnounceOwnAddress(ifi.Name); err != nil {
		return err
	}
	if holder(vip) == nil {
		if out, err := exec.CommandContext(ctx, "ip", "addr", "replace", vip.String(), "dev", ifi.Name).CombinedOutput(); err != nil {
			return fmt.Errorf("ip addr replace %s dev %s: %w: %s", vip, ifi.Name, err, out)
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
// interface's own address as the sender of ARP requests) unless it is so.
func arpAnnounceOwnAddress(ifname string) error {
	p := "/proc/sys/net/ipv4/conf/" + ifname + "/arp_announce"
	if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == "2" {
		return nil
	}
	if err := os.WriteFile(p, []byte("2\n"), 0o644); err != nil {
		return fmt.Errorf("setting net.ipv4.conf.%s.arp_announce to 2: %w", ifname, err)
	}
	return nil
}

func (hostAddresses) Announce(vip netip.Prefix) error {
	ifi := holder(vip)
	if ifi == nil {
		return nil
	}
	return garp(ifi, vip.Addr())
}

func (hostAddresses) Remove(ctx context.Context, vip netip.Prefix) error {
	ifi := holder(vip)
	if ifi == nil {
		return nil
	}
	if out, err := exec.CommandContext(ctx, "ip", "addr", "del", vip.String(), "dev", ifi.Name).CombinedOutput(); err != nil {
		if holder(vip) == nil {
			return nil
		}
		return fmt.Errorf("ip addr del %s dev %s: %w: %s", vip, ifi.Name, err, out)
	}
	return nil
}

// garp broadcasts an ARP request for ip from ip on ifi, which makes
// neighbours that know ip point it at ifi's MAC.
func garp(ifi *net.Interface, ip netip.Addr) error {
	if !ip.Is4() {
		return nil // IPv6 uses unsolicited neighbour advertisements, sent by the kernel
	}
	if len(ifi.HardwareAddr) != 6 {
		return errors.New("the interface has no Ethernet address")
	}
	const ethPArp = 0x0806
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, int(htons(ethPArp)))
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	bcast := [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	frame := make([]byte, 0, 42)
	frame = append(frame, bcast[:6]...)
	frame = append(frame, ifi.HardwareAddr...)
	frame = binary.BigEndian.AppendUint16(frame, ethPArp)
	frame = binary.BigEndian.AppendUint16(frame, 1)      // Ethernet
	frame = binary.BigEndian.AppendUint16(frame, 0x0800) // IPv4
	frame = append(frame, 6, 4)
	frame = binary.BigEndian.AppendUint16(frame, 1) // request
	a4 := ip.As4()
	frame = append(frame, ifi.HardwareAddr...)
	frame = append(frame, a4[:]...)
	frame = append(frame, 0, 0, 0, 0, 0, 0)
	frame = append(frame, a4[:]...)
	sa := &syscall.SockaddrLinklayer{Protocol: htons(ethPArp), Ifindex: ifi.Index, Halen: 6, Addr: bcast}
	return syscall.Sendto(fd, frame, 0, sa)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
