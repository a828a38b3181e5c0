package failover

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// Capabilities the redundant apps' features need (deploy/README.md, "What
// the agent needs"): the VIP, arp_announce and iptables need CAP_NET_ADMIN,
// gratuitous ARP and iptables CAP_NET_RAW. Bits as in linux/capability.h.
var neededCaps = []struct {
	name string
	bit  uint
	for_ string
}{
	{"CAP_NET_ADMIN", 12, "holding the VIP and passing connections on"},
	{"CAP_NET_RAW", 13, "announcing the VIP with gratuitous ARP"},
}

// MissingCapabilities lists the capabilities redundant apps need that this
// process does not have in effect, each with what it is for; nil when it
// has them all, or when they cannot be read (not Linux).
func MissingCapabilities() []string {
	eff, ok := effectiveCaps()
	if !ok {
		return nil
	}
	var out []string
	for _, c := range neededCaps {
		if eff&(1<<c.bit) == 0 {
			out = append(out, c.name+" ("+c.for_+")")
		}
	}
	return out
}

// hasCap says whether this process has capability bit in effect; true when
// that cannot be read.
func hasCap(bit uint) bool {
	eff, ok := effectiveCaps()
	return !ok || eff&(1<<bit) != 0
}

// effectiveCaps reads CapEff of /proc/self/status.
func effectiveCaps() (uint64, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return n, err == nil
		}
	}
	return 0, false
}
