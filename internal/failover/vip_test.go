package failover

import (
	"errors"
	"net"
	"os"
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
