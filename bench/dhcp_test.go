package bench

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/mgmtnet"
	"hummingbird.io/hummingbird/internal/mgmtnet/dhcp"
	"hummingbird.io/hummingbird/internal/mgmtnet/dhcp/dhcptest"
	"hummingbird.io/hummingbird/internal/store"
)

// dhcpClients is the number of distinct clients (MACs) the DHCP benchmark
// cycles through; both servers know all of them.
const dhcpClients = 1000

// dhcpBed is two network namespaces joined by a veth pair: the server's
// (eth0, 10.200.0.1/20) and the client's (eth0, no address), and a client
// socket on the client's side.
type dhcpBed struct {
	srv, cli string
	client   *dhcptest.Client
	inv      *dhcptest.Inventory
	macs     []net.HardwareAddr
	ips      []netip.Addr
}

var (
	dhcpNet     = netip.MustParsePrefix("10.200.0.0/20")
	dhcpServer  = "10.200.0.1"
	dhcpGateway = netip.MustParseAddr("10.200.0.254")
	dhcpDNS     = netip.MustParseAddr("10.200.0.2")
	dhcpNTP     = netip.MustParseAddr("10.200.0.3")
)

func newDHCPBed(tb testing.TB) *dhcpBed {
	tb.Helper()
	dhcptest.Require(tb)
	d := &dhcpBed{srv: dhcptest.Netns(tb, "hbbs"), cli: dhcptest.Netns(tb, "hbbc")}
	dhcptest.Veth(tb, d.srv, "eth0", d.cli, "eth0", "")
	dhcptest.IP(tb, "-n", d.srv, "addr", "add", dhcpServer+"/20", "dev", "eth0")
	var bs []mgmtnet.Binding
	ip := netip.MustParseAddr("10.200.1.0")
	for i := range dhcpClients {
		mac := net.HardwareAddr{0x02, 0x00, 0x00, 0x10, byte(i >> 8), byte(i)}
		d.macs = append(d.macs, mac)
		d.ips = append(d.ips, ip)
		bs = append(bs, mgmtnet.Binding{
			HostID: int64(i + 1), Hostname: fmt.Sprintf("edge-%04d", i), MAC: mac,
			IP: ip, Network: dhcpNet, Gateway: dhcpGateway,
			DNS: []netip.Addr{dhcpDNS}, NTP: []netip.Addr{dhcpNTP}, Lease: 30 * time.Minute,
		})
		ip = ip.Next()
	}
	d.inv = dhcptest.NewInventory(bs...)
	if err := dhcptest.In(d.cli, func() (err error) {
		d.client, err = dhcptest.ListenClient("eth0")
		return err
	}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.client.Close() })
	return d
}

// hummingbird starts the Hummingbird DHCP server on the fake inventory in
// the server's namespace and returns its stop function.
func (d *dhcpBed) hummingbird(tb testing.TB) func() { return d.serve(tb, d.inv) }

// hummingbirdSQLite starts it on the controller's real inventory on an
// embedded SQLite store holding the same hosts (in a static edge pool of
// the same network), so every ACK commits its lease as in the controller.
func (d *dhcpBed) hummingbirdSQLite(tb testing.TB) func() {
	tb.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.SQLitePath(tb.TempDir()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	inv := inventory.New(st, inventory.Options{})
	if _, _, err := inv.EnsureManagementPool(ctx, "static", "192.168.204.0/24", nil); err != nil {
		tb.Fatal(err)
	}
	if _, err := inv.AddPool(ctx, "bench", apitype.PoolCreate{
		Name: "bench", Network: dhcpNet.String(), Mode: "static", Gateway: dhcpGateway.String(),
		DNS: []string{dhcpDNS.String()}, NTP: []string{dhcpNTP.String()}, Reserved: []string{dhcpServer},
		LeaseSeconds: int64((30 * time.Minute).Seconds()),
	}); err != nil {
		tb.Fatal(err)
	}
	for i := range dhcpClients {
		if _, err := inv.Add(ctx, "bench", apitype.HostCreate{
			Hostname: fmt.Sprintf("edge-%04d", i), Personality: "edgeworker",
			MgmtMAC: d.macs[i].String(), MgmtIP: d.ips[i].String(), Pool: "bench",
		}); err != nil {
			tb.Fatal(err)
		}
	}
	return d.serve(tb, inv)
}

func (d *dhcpBed) serve(tb testing.TB, inv mgmtnet.Inventory) func() {
	tb.Helper()
	var l dhcp.Listener
	if err := dhcptest.In(d.srv, func() (err error) {
		l, err = dhcp.Listen("eth0")
		return err
	}); err != nil {
		tb.Fatal(err)
	}
	s, err := dhcp.New(dhcp.Config{Listeners: []dhcp.Listener{l}, Inventory: inv})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Run: %v", err)
		}
	}
}

// dnsmasq starts dnsmasq in the server's namespace, configured as
// StarlingX configures it: a static range that answers only the MACs of
// its hosts file, here the same clients, addresses, names and options, and
// a lease file it writes (and fsyncs) on every ACK.
func (d *dhcpBed) dnsmasq(tb testing.TB) func() { return d.startDnsmasq(tb, true) }

// dnsmasqNoLeaseFile is dnsmasq with --leasefile-ro: no lease file, as
// the in-memory inventory of the Hummingbird case records leases.
func (d *dhcpBed) dnsmasqNoLeaseFile(tb testing.TB) func() { return d.startDnsmasq(tb, false) }

func (d *dhcpBed) startDnsmasq(tb testing.TB, leaseFile bool) func() {
	tb.Helper()
	dhcptest.Require(tb, "dnsmasq")
	dir := tb.TempDir()
	var hosts strings.Builder
	for i, mac := range d.macs {
		fmt.Fprintf(&hosts, "%s,%s,edge-%04d\n", mac, d.ips[i], i)
	}
	hostsFile := filepath.Join(dir, "hosts")
	if err := os.WriteFile(hostsFile, []byte(hosts.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	leases := "--dhcp-leasefile=" + filepath.Join(dir, "leases")
	if !leaseFile {
		leases = "--leasefile-ro"
	}
	p := dhcptest.Start(tb, d.srv, "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--port=0",
		"--user=root", "--interface=eth0", "--bind-interfaces", "--log-facility=-", "--quiet-dhcp",
		"--pid-file="+filepath.Join(dir, "pid"), leases,
		"--dhcp-range="+dhcpNet.Addr().String()+",static,255.255.240.0,30m",
		"--dhcp-hostsfile="+hostsFile, "--dhcp-authoritative", "--no-ping",
		"--dhcp-option=option:router,"+dhcpGateway.String(),
		"--dhcp-option=option:dns-server,"+dhcpDNS.String(),
		"--dhcp-option=option:ntp-server,"+dhcpNTP.String())
	// Wait until it answers.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err := d.lease(ctx, 0)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			p.Stop()
			tb.Fatalf("dnsmasq does not answer: %v\n%s", err, p.Output())
		}
	}
	return p.Stop
}

// lease gets a lease for client i and checks the address and options.
func (d *dhcpBed) lease(ctx context.Context, i int) (time.Duration, error) {
	start := time.Now()
	offer, ack, err := d.client.Lease(ctx, d.macs[i])
	took := time.Since(start)
	if err != nil {
		return 0, err
	}
	for _, m := range []string{offer.YourIPAddr.String(), ack.YourIPAddr.String()} {
		if m != d.ips[i].String() {
			return 0, fmt.Errorf("client %d got %s, want %s", i, m, d.ips[i])
		}
	}
	got := fmt.Sprintf("%s router=%v dns=%v ntp=%v host=%s lease=%v", ack.MessageType(), ack.Router(), ack.DNS(), ack.NTPServers(), ack.HostName(), ack.IPAddressLeaseTime(0))
	want := fmt.Sprintf("ACK router=[%s] dns=[%s] ntp=[%s] host=edge-%04d lease=30m0s", dhcpGateway, dhcpDNS, dhcpNTP, i)
	if got != want {
		return 0, fmt.Errorf("client %d got %s, want %s", i, got, want)
	}
	return took, nil
}

// BenchmarkDHCP measures DISCOVER-to-ACK time (one full DISCOVER, OFFER,
// REQUEST, ACK exchange) and leases/s of one client socket in its own
// network namespace, one exchange after another over distinct MACs, against
// the Hummingbird DHCP server and against dnsmasq on the same veth link.
func BenchmarkDHCP(b *testing.B) {
	d := newDHCPBed(b)
	for _, srv := range []struct {
		name  string
		start func(testing.TB) func()
	}{
		{"hummingbird", d.hummingbird}, {"hummingbird-sqlite", d.hummingbirdSQLite},
		{"dnsmasq", d.dnsmasq}, {"dnsmasq-leasefile-ro", d.dnsmasqNoLeaseFile},
	} {
		b.Run(srv.name, func(b *testing.B) {
			stop := srv.start(b)
			defer stop()
			ctx := context.Background()
			// One warm-up exchange, untimed.
			if _, err := d.lease(ctx, 0); err != nil {
				b.Fatal(err)
			}
			var lat latencies
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				took, err := d.lease(ctx, i%dhcpClients)
				cancel()
				if err != nil {
					b.Fatal(err)
				}
				lat.add(took)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "leases/s")
			lat.report(b)
		})
	}
}

// TestDHCPBenchSetup runs the setup of BenchmarkDHCP and a few exchanges
// with each server, so that go test ./... catches a broken benchmark.
func TestDHCPBenchSetup(t *testing.T) {
	d := newDHCPBed(t)
	for _, start := range []func(testing.TB) func(){d.hummingbird, d.hummingbirdSQLite, d.dnsmasq, d.dnsmasqNoLeaseFile} {
		stop := start(t)
		for i := range 5 {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			_, err := d.lease(ctx, i*199)
			cancel()
			if err != nil {
				t.Error(err)
			}
		}
		stop()
	}
}
