package failover

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"hummingbird.io/hummingbird/internal/mgmtnet/dhcp/dhcptest"
)

// TestSetARPAnnounce sets arp_announce through rtnetlink in a namespace of
// its own and reads it back from /proc/sys; an interface that is not there
// is an error.
func TestSetARPAnnounce(t *testing.T) {
	dhcptest.Require(t)
	ns := dhcptest.Netns(t, "hbfarp")
	dhcptest.IP(t, "-n", ns, "link", "add", "d0", "type", "veth", "peer", "name", "d1")
	read := func() string {
		b, err := os.ReadFile("/proc/sys/net/ipv4/conf/d0/arp_announce")
		if err != nil {
			t.Error(err)
		}
		return strings.TrimSpace(string(b))
	}
	err := dhcptest.In(ns, func() error {
		ifi, err := net.InterfaceByName("d0")
		if err != nil {
			return err
		}
		for _, v := range []uint32{2, 1, 2} {
			if err := setARPAnnounce(ifi.Index, v); err != nil {
				t.Errorf("setting arp_announce to %d: %v", v, err)
			}
			if got := read(); got != map[uint32]string{1: "1", 2: "2"}[v] {
				t.Errorf("arp_announce is %s after setting it to %d", got, v)
			}
		}
		if err := setARPAnnounce(ifi.Index+100, 2); !errors.Is(err, syscall.ENODEV) {
			t.Errorf("setting arp_announce of no interface: %v, want ENODEV", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestHostAddresses puts VIPs (IPv4 and IPv6) on an interface of a
// namespace of its own and takes them off through rtnetlink, as ip shows
// them; adding or removing twice changes nothing, and a VIP outside every
// interface's network is refused with what to fix.
func TestHostAddresses(t *testing.T) {
	dhcptest.Require(t)
	ns := dhcptest.Netns(t, "hbfaddr")
	dhcptest.IP(t, "-n", ns, "link", "add", "d0", "type", "veth", "peer", "name", "d1")
	dhcptest.IP(t, "-n", ns, "addr", "add", "10.9.0.1/24", "dev", "d0")
	dhcptest.IP(t, "-n", ns, "addr", "add", "fd00:9::1/64", "dev", "d0", "nodad")
	dhcptest.IP(t, "-n", ns, "link", "set", "d0", "up")
	dhcptest.IP(t, "-n", ns, "link", "set", "d1", "up")
	shown := func(vip netip.Prefix) bool {
		out, err := exec.Command("ip", "-n", ns, "-o", "addr", "show", "dev", "d0").CombinedOutput()
		if err != nil {
			t.Fatalf("ip addr show: %v: %s", err, out)
		}
		return strings.Contains(string(out), " "+vip.String()+" ")
	}
	a := hostAddresses{}
	ctx := context.Background()
	for _, vip := range []netip.Prefix{netip.MustParsePrefix("10.9.0.10/24"), netip.MustParsePrefix("fd00:9::10/64")} {
		err := dhcptest.In(ns, func() error {
			for range 2 {
				if err := a.Add(ctx, vip); err != nil {
					t.Errorf("adding %s: %v", vip, err)
				}
				if !shown(vip) {
					t.Errorf("%s is not on d0 after Add", vip)
				}
				if ifi := holder(vip); ifi == nil || ifi.Name != "d0" {
					t.Errorf("holder of %s: %v, want d0", vip, ifi)
				}
			}
			for range 2 {
				if err := a.Remove(ctx, vip); err != nil {
					t.Errorf("removing %s: %v", vip, err)
				}
				if shown(vip) {
					t.Errorf("%s is still on d0 after Remove", vip)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	err := dhcptest.In(ns, func() error {
		if err := a.Add(ctx, netip.MustParsePrefix("10.8.0.10/24")); err == nil || !strings.Contains(err.Error(), "give this member an address in the VIP's network") {
			t.Errorf("adding a VIP of no interface's network: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestGratuitousARP checks that taking an IPv4 VIP, and announcing it
// again, sends a gratuitous ARP request the other end of the link sees:
// sender and target the VIP, the sender's hardware address the
// interface's.
func TestGratuitousARP(t *testing.T) {
	dhcptest.Require(t)
	ns := dhcptest.Netns(t, "hbfgarp")
	dhcptest.IP(t, "-n", ns, "link", "add", "d0", "type", "veth", "peer", "name", "d1")
	dhcptest.IP(t, "-n", ns, "addr", "add", "10.9.0.1/24", "dev", "d0")
	dhcptest.IP(t, "-n", ns, "link", "set", "d0", "up")
	dhcptest.IP(t, "-n", ns, "link", "set", "d1", "up")
	vip := netip.MustParsePrefix("10.9.0.10/24")
	err := dhcptest.In(ns, func() error {
		d0, err := net.InterfaceByName("d0")
		if err != nil {
			return err
		}
		d1, err := net.InterfaceByName("d1")
		if err != nil {
			return err
		}
		const ethPArp = 0x0806
		fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, int(htons(ethPArp)))
		if err != nil {
			return err
		}
		defer syscall.Close(fd)
		if err := syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: htons(ethPArp), Ifindex: d1.Index}); err != nil {
			return err
		}
		tv := syscall.Timeval{Sec: 2}
		if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		// seen waits for the gratuitous request for vip from d0.
		seen := func(what string) {
			t.Helper()
			buf := make([]byte, 1500)
			for {
				n, _, err := syscall.Recvfrom(fd, buf, 0)
				if err != nil {
					t.Errorf("%s: no gratuitous ARP request for %s reached d1: %v", what, vip.Addr(), err)
					return
				}
				f := buf[:n]
				a4 := vip.Addr().As4()
				if n >= 42 && string(f[6:12]) == string(d0.HardwareAddr) && f[21] == 1 &&
					string(f[22:28]) == string(d0.HardwareAddr) && string(f[28:32]) == string(a4[:]) &&
					string(f[38:42]) == string(a4[:]) {
					return
				}
			}
		}
		a := hostAddresses{}
		if err := a.Add(context.Background(), vip); err != nil {
			t.Fatalf("adding %s: %v", vip, err)
		}
		seen("Add")
		if err := a.Announce(vip); err != nil {
			t.Fatalf("announcing %s: %v", vip, err)
		}
		seen("Announce")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
