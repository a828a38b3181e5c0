package testbed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The bed's addresses: bed N owns 10.251.N.0/24 on its bridge hb<N>br, which has .1; host i has
// .(10+i) and the MAC 02:68:62:NN:00:ii. Nothing routes the subnet anywhere else.
const (
	bedNet       = "10.251"
	hostAddrBase = 10
)

func bridgeName(index int) string { return fmt.Sprintf("hb%dbr", index) }

func bridgeIP(index int) net.IP { return net.ParseIP(fmt.Sprintf("%s.%d.1", bedNet, index)) }

func hostIP(index, i int) net.IP {
	return net.ParseIP(fmt.Sprintf("%s.%d.%d", bedNet, index, hostAddrBase+i))
}

func hostMAC(index, i int) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0x68, 0x62, byte(index), 0x00, byte(i)}
}

// linkPrefix starts the name of every link of bed index.
func linkPrefix(index int) string { return fmt.Sprintf("hb%d", index) }

// netnsPrefix starts the name of every network namespace of bed index.
func netnsPrefix(index int) string { return fmt.Sprintf("hb%d-", index) }

// makeBridge makes the bed's bridge with its address. It fails if the bridge exists, which is
// what makes a bed index taken.
func makeBridge(ctx context.Context, index int) error {
	br := bridgeName(index)
	if _, err := run(ctx, "ip", "link", "add", br, "type", "bridge"); err != nil {
		return fmt.Errorf("making the bridge: %w", err)
	}
	steps := [][]string{
		{"addr", "add", bridgeIP(index).String() + "/24", "dev", br},
		{"link", "set", br, "up"},
	}
	for _, s := range steps {
		if _, err := run(ctx, "ip", s...); err != nil {
			return fmt.Errorf("setting up the bridge: %w", err)
		}
	}
	return nil
}

// plugHost makes the network namespace ns with an eth0 that has the given MAC and address and a
// peer, link, on the bed's bridge. The host boots into that namespace.
func plugHost(ctx context.Context, index int, ns, link string, mac net.HardwareAddr, ip net.IP) error {
	steps := [][]string{
		{"netns", "add", ns},
		{"link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"-n", ns, "link", "set", "eth0", "address", mac.String()},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "link", "set", "eth0", "up"},
		{"link", "set", link, "master", bridgeName(index)},
		{"link", "set", link, "up"},
	}
	if ip != nil {
		steps = append(steps, []string{"-n", ns, "addr", "add", ip.String() + "/24", "dev", "eth0"})
	}
	for _, s := range steps {
		if _, err := run(ctx, "ip", s...); err != nil {
			return fmt.Errorf("plugging %s into the bed: %w", ns, err)
		}
	}
	// A Kubernetes node forwards its pods' traffic; this holds in the host's namespace only.
	if _, err := run(ctx, "ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"); err != nil {
		return fmt.Errorf("plugging %s into the bed: %w", ns, err)
	}
	return nil
}

// removeNetwork deletes the bed's network namespaces and links. Processes must be gone first:
// a namespace lives on while a process is in it.
func removeNetwork(ctx context.Context, index int) error {
	var errs []error
	entries, err := os.ReadDir("/run/netns")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("listing network namespaces: %w", err))
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), netnsPrefix(index)) {
			if _, err := run(ctx, "ip", "netns", "delete", e.Name()); err != nil {
				errs = append(errs, err)
			}
		}
	}
	links, err := os.ReadDir("/sys/class/net")
	if err != nil {
		errs = append(errs, fmt.Errorf("listing links: %w", err))
	}
	for _, l := range links {
		if isBedLink(index, l.Name()) {
			if _, err := run(ctx, "ip", "link", "delete", l.Name()); err != nil && fileExists(filepath.Join("/sys/class/net", l.Name())) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// isBedLink tells whether a link name belongs to bed index: hb<N>br or hb<N>h<i>.
func isBedLink(index int, name string) bool {
	rest, ok := strings.CutPrefix(name, linkPrefix(index))
	if !ok {
		return false
	}
	if rest == "br" {
		return true
	}
	host, ok := strings.CutPrefix(rest, "h")
	return ok && isDigits(host)
}

// bedIndexOf returns the bed index that names a link (hb<N>br, hb<N>h<i>) or a network namespace
// (hb<N>-<host>), and false for names of no bed.
func bedIndexOf(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, "hb")
	if !ok {
		return 0, false
	}
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	index, err := strconv.Atoi(rest[:end])
	if err != nil || index < 1 || index > maxBeds {
		return 0, false
	}
	if isBedLink(index, name) || strings.HasPrefix(name, netnsPrefix(index)) {
		return index, true
	}
	return 0, false
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
