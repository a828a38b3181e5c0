package dhcp_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/mgmtnet"
	"hummingbird.io/hummingbird/internal/mgmtnet/dhcp"
	"hummingbird.io/hummingbird/internal/mgmtnet/dhcp/dhcptest"
)

// These tests run real DHCP clients (dhclient, udhcpc) and a real relay
// (dhcrelay) against the server in network namespaces joined by veth
// pairs: srv holds the server on 10.200.1.1/24, cli the client; in the
// relay test rtr routes between 10.200.1.0/24 and 10.200.2.0/24 and relays.

var (
	mgmtNet  = netip.MustParsePrefix("10.200.1.0/24")
	edgeNet  = netip.MustParsePrefix("10.200.2.0/24")
	srvAddr  = "10.200.1.1"
	relayIP  = netip.MustParseAddr("10.200.2.1")
	dnsAddrs = []netip.Addr{netip.MustParseAddr("10.200.1.2"), netip.MustParseAddr("10.200.1.3")}
	ntpAddrs = []netip.Addr{netip.MustParseAddr("10.200.1.4")}
)

func binding(mac, addr, hostname string, network netip.Prefix, gw string) mgmtnet.Binding {
	m, err := net.ParseMAC(mac)
	if err != nil {
		panic(err)
	}
	return mgmtnet.Binding{
		HostID: 1, Hostname: hostname, MAC: m,
		IP: netip.MustParseAddr(addr), Network: network, Gateway: netip.MustParseAddr(gw),
		DNS: dnsAddrs, NTP: ntpAddrs, Lease: 30 * time.Minute, PoolName: "test",
	}
}

// serve starts the server on interface iface of namespace ns, with its
// socket opened inside ns, and stops it at the end of t or when the
// returned function is called.
func serve(t *testing.T, ns, iface string, inv mgmtnet.Inventory) (stop func()) {
	t.Helper()
	var l dhcp.Listener
	if err := dhcptest.In(ns, func() (err error) {
		l, err = dhcp.Listen(iface)
		return err
	}); err != nil {
		t.Fatalf("listen in %s: %v", ns, err)
	}
	s, err := dhcp.New(dhcp.Config{
		Listeners: []dhcp.Listener{l},
		Relays:    []netip.Addr{relayIP},
		Inventory: inv,
		Logger:    slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		l.Conn.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// link makes namespaces srv and cli joined by a veth pair (eth0 on both
// sides, the client's with MAC mac) and starts the server on srv's end.
func link(t *testing.T, mac string, inv mgmtnet.Inventory) (srv, cli string, stop func()) {
	t.Helper()
	srv = dhcptest.Netns(t, "hbs")
	cli = dhcptest.Netns(t, "hbc")
	dhcptest.Veth(t, srv, "eth0", cli, "eth0", mac)
	dhcptest.IP(t, "-n", srv, "addr", "add", srvAddr+"/24", "dev", "eth0")
	stop = serve(t, srv, "eth0", inv)
	return srv, cli, stop
}

// recorder writes a client script that saves the environment of a bound
// lease to the file it returns.
func recorder(t *testing.T) (script, lease string) {
	t.Helper()
	dir := t.TempDir()
	script = filepath.Join(dir, "record")
	lease = filepath.Join(dir, "lease")
	// BOUND also puts the address on the interface, so that dhclient can
	// renew by unicast; RENEW writes lease.renew.
	body := fmt.Sprintf(`#!/bin/sh
case "${reason:-$1}" in
BOUND|REBOOT|bound|renew)
	[ -n "$new_ip_address" ] && ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface"
	{ env; echo "argv1=$1"; } | sort > %[1]s.tmp && mv %[1]s.tmp %[1]s ;;
RENEW)
	{ env; echo "argv1=$1"; } | sort > %[1]s.tmp && mv %[1]s.tmp %[1]s.renew ;;
esac
exit 0
`, lease)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, lease
}

// envOf parses the recorded environment and keeps the keys of want.
func envOf(t *testing.T, b []byte, want map[string]string) map[string]string {
	t.Helper()
	got := make(map[string]string)
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if _, keep := want[k]; ok && keep {
			got[k] = strings.TrimSpace(v)
		}
	}
	return got
}

// dhclient runs dhclient once on eth0 of ns and returns the process and the
// lease file its script writes.
func dhclient(t *testing.T, ns string, timeout int) (*dhcptest.Proc, string) {
	t.Helper()
	script, lease := recorder(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "dhclient.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`timeout %d;
retry 1;
initial-interval 1;
request subnet-mask, broadcast-address, routers, domain-name-servers, host-name, ntp-servers;
`, timeout)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := dhcptest.Start(t, ns, "dhclient", "-4", "-d", "-1", "-v",
		"-cf", conf, "-sf", script, "-lf", filepath.Join(dir, "leases"), "-pf", filepath.Join(dir, "pid"), "eth0")
	return p, lease
}

// udhcpc runs udhcpc once on eth0 of ns and returns the process and the
// lease file its script writes.
func udhcpc(t *testing.T, ns string, tries int) (*dhcptest.Proc, string) {
	t.Helper()
	script, lease := recorder(t)
	p := dhcptest.Start(t, ns, "udhcpc", "-f", "-q", "-n", "-i", "eth0", "-s", script,
		"-t", fmt.Sprint(tries), "-T", "1", "-A", "1", "-O", "ntpsrv", "-O", "hostname")
	return p, lease
}

var (
	dhclientWant = map[string]string{
		"new_ip_address":             "",
		"new_subnet_mask":            "255.255.255.0",
		"new_routers":                "",
		"new_domain_name_servers":    "10.200.1.2 10.200.1.3",
		"new_ntp_servers":            "10.200.1.4",
		"new_host_name":              "",
		"new_dhcp_lease_time":        "1800",
		"new_dhcp_server_identifier": "10.200.1.1",
	}
	udhcpcWant = map[string]string{
		"ip":       "",
		"subnet":   "255.255.255.0",
		"router":   "",
		"dns":      "10.200.1.2 10.200.1.3",
		"ntpsrv":   "10.200.1.4",
		"hostname": "",
		"lease":    "1800",
		"serverid": "10.200.1.1",
	}
)

func with(m map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func TestClients(t *testing.T) {
	dhcptest.Require(t, "dhclient", "udhcpc")
	t.Parallel()
	tests := []struct {
		name   string
		mac    string
		start  func(t *testing.T, ns string) (*dhcptest.Proc, string)
		want   map[string]string
		ip     string
		router string
	}{{
		name:  "dhclient",
		mac:   "02:00:00:01:00:01",
		start: func(t *testing.T, ns string) (*dhcptest.Proc, string) { return dhclient(t, ns, 10) },
		want:  with(dhclientWant, "new_ip_address", "10.200.1.101", "new_routers", "10.200.1.254", "new_host_name", "edge-dhclient"),
	}, {
		name:  "udhcpc",
		mac:   "02:00:00:01:00:02",
		start: func(t *testing.T, ns string) (*dhcptest.Proc, string) { return udhcpc(t, ns, 10) },
		want:  with(udhcpcWant, "ip", "10.200.1.102", "router", "10.200.1.254", "hostname", "edge-udhcpc"),
	}}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr := fmt.Sprintf("10.200.1.%d", 101+i)
			inv := dhcptest.NewInventory(
				binding(tt.mac, addr, "edge-"+tt.name, mgmtNet, "10.200.1.254"),
				// Another host on the same network, to show each gets its own.
				binding("02:00:00:01:00:99", "10.200.1.199", "other", mgmtNet, "10.200.1.254"),
			)
			_, cli, _ := link(t, tt.mac, inv)
			p, lease := tt.start(t, cli)
			b := dhcptest.WaitFile(t, lease, 20*time.Second, p.Output)
			if diff := cmp.Diff(tt.want, envOf(t, b, tt.want)); diff != "" {
				t.Errorf("%s's lease (-want +got):\n%s\n%s", tt.name, diff, p.Output())
			}
			leases := inv.Leases()
			if len(leases) == 0 || leases[len(leases)-1].IP.String() != addr || leases[len(leases)-1].MAC != tt.mac {
				t.Errorf("inventory leases %v, want %s to %s", leases, addr, tt.mac)
			}
			if d := inv.Discoveries(); len(d) != 0 {
				t.Errorf("discovered %v", d)
			}
		})
	}
}

func TestClientsUnknownMAC(t *testing.T) {
	dhcptest.Require(t, "dhclient", "udhcpc")
	t.Parallel()
	for _, tt := range []struct {
		name  string
		mac   string
		start func(t *testing.T, ns string) (*dhcptest.Proc, string)
	}{
		{"dhclient", "02:00:00:02:00:01", func(t *testing.T, ns string) (*dhcptest.Proc, string) { return dhclient(t, ns, 3) }},
		{"udhcpc", "02:00:00:02:00:02", func(t *testing.T, ns string) (*dhcptest.Proc, string) { return udhcpc(t, ns, 3) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			inv := dhcptest.NewInventory(binding("02:00:00:02:00:99", "10.200.1.199", "other", mgmtNet, "10.200.1.254"))
			_, cli, _ := link(t, tt.mac, inv)
			p, lease := tt.start(t, cli)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			if err := p.Wait(ctx); err == nil {
				t.Errorf("%s succeeded with an unknown MAC:\n%s", tt.name, p.Output())
			} else if ctx.Err() != nil {
				t.Fatalf("%s did not give up: %v\n%s", tt.name, err, p.Output())
			}
			if _, err := os.Stat(lease); err == nil {
				t.Errorf("%s got a lease", tt.name)
			}
			if l := inv.Leases(); len(l) != 0 {
				t.Errorf("leased %v", l)
			}
			want := []dhcptest.Discovery{{MAC: tt.mac, Link: netip.MustParseAddr(srvAddr)}}
			if diff := cmp.Diff(want, inv.Discoveries(), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("discovered (-want +got):\n%s\n%s", diff, p.Output())
			}
		})
	}
}

func TestClientBehindRelay(t *testing.T) {
	dhcptest.Require(t, "dhclient", "dhcrelay")
	t.Parallel()
	const mac = "02:00:00:03:00:01"
	inv := dhcptest.NewInventory(
		binding(mac, "10.200.2.20", "edge-routed", edgeNet, "10.200.2.1"),
		binding("02:00:00:03:00:99", "10.200.1.199", "other", mgmtNet, "10.200.1.254"),
	)
	srv := dhcptest.Netns(t, "hbs")
	rtr := dhcptest.Netns(t, "hbr")
	cli := dhcptest.Netns(t, "hbc")
	dhcptest.Veth(t, srv, "eth0", rtr, "up0", "")
	dhcptest.Veth(t, rtr, "dn0", cli, "eth0", mac)
	dhcptest.IP(t, "-n", srv, "addr", "add", srvAddr+"/24", "dev", "eth0")
	dhcptest.IP(t, "-n", srv, "route", "add", edgeNet.String(), "via", "10.200.1.254")
	dhcptest.IP(t, "-n", rtr, "addr", "add", "10.200.1.254/24", "dev", "up0")
	dhcptest.IP(t, "-n", rtr, "addr", "add", relayIP.String()+"/24", "dev", "dn0")
	dhcptest.Exec(t, rtr, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	serve(t, srv, "eth0", inv)
	relay := dhcptest.Start(t, rtr, "dhcrelay", "-4", "-d", "-pf", filepath.Join(t.TempDir(), "pid"),
		"-id", "dn0", "-iu", "up0", srvAddr)

	p, lease := dhclient(t, cli, 15)
	b := dhcptest.WaitFile(t, lease, 25*time.Second, func() string { return p.Output() + "\nrelay:\n" + relay.Output() })
	want := with(dhclientWant, "new_ip_address", "10.200.2.20", "new_routers", "10.200.2.1", "new_host_name", "edge-routed")
	if diff := cmp.Diff(want, envOf(t, b, want)); diff != "" {
		t.Errorf("lease through the relay (-want +got):\n%s\n%s", diff, p.Output())
	}
	for _, l := range inv.Links() {
		if l != relayIP {
			t.Errorf("the inventory was asked about link %v, want only the relay's %v", l, relayIP)
		}
	}
	if len(inv.Links()) == 0 {
		t.Error("the inventory was never asked")
	}
}

// TestRenewalAcrossRestart: dhclient renews (by unicast, from its address)
// with a server started after it got its lease, and keeps its address.
func TestRenewalAcrossRestart(t *testing.T) {
	dhcptest.Require(t, "dhclient")
	t.Parallel()
	const mac = "02:00:00:04:00:01"
	b := binding(mac, "10.200.1.41", "edge-renew", mgmtNet, "10.200.1.254")
	b.Lease = 6 * time.Second // renews after 3 s
	inv := dhcptest.NewInventory(b)
	srv, cli, stop := link(t, mac, inv)
	p, lease := dhclient(t, cli, 10)
	dhcptest.WaitFile(t, lease, 20*time.Second, p.Output)
	stop()
	serve(t, srv, "eth0", inv) // the restarted server: same inventory, nothing else
	got := dhcptest.WaitFile(t, lease+".renew", 20*time.Second, p.Output)
	want := with(dhclientWant, "new_ip_address", "10.200.1.41", "new_routers", "10.200.1.254",
		"new_host_name", "edge-renew", "new_dhcp_lease_time", "6")
	if diff := cmp.Diff(want, envOf(t, got, want)); diff != "" {
		t.Errorf("renewed lease (-want +got):\n%s\n%s", diff, p.Output())
	}
	if !strings.Contains(p.Output(), "DHCPREQUEST for 10.200.1.41 on eth0 to 10.200.1.1") {
		t.Errorf("dhclient did not renew by unicast to the server:\n%s", p.Output())
	}
}
