package bench

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
)

// envFleetHosts is the number of hosts BenchmarkFleetAdd adds (default
// 100,000).
const envFleetHosts = "HB_BENCH_FLEET_HOSTS"

// fleetStep is how many adds each rate of BenchmarkFleetAdd covers.
const fleetStep = 1000

// fleetHost is host i as a fleet add sends it: a hostname, a MAC and a
// label, the address left to the controller's dynamic pool.
func fleetHost(i int) apitype.HostCreate {
	return apitype.HostCreate{
		Hostname:    fmt.Sprintf("edge-%07d", i),
		Personality: apitype.PersonalityEdgeworker,
		MgmtMAC:     fmt.Sprintf("02:00:00:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff),
		Labels:      map[string]string{"site": fmt.Sprintf("site-%03d", i%sites)},
	}
}

// fleetStepResult is what one step of fleetStep new hosts measured: their
// adds per second, then their first DHCP leases per second (the DHCP
// server's inventory calls for each: the binding its DISCOVER and REQUEST
// look up, the lease its ACK commits).
type fleetStepResult struct {
	adds, leases float64
}

// addFleet adds hosts 0..n-1 to s, whose management pool is dynamic, in
// steps of fleetStep: parallelClients clients at once add a step's hosts,
// then give each of them its first lease. Every host must get an address
// of the pool, each a different one, and its lease.
func addFleet(tb testing.TB, s *server, n int) []fleetStepResult {
	tb.Helper()
	ctx := tb.Context()
	seen := make(map[string]string, n)
	addrs := make([]string, n)
	var mu sync.Mutex
	// parallel runs do(i) for i in lo..hi-1 with parallelClients clients
	// and returns how long that took.
	parallel := func(lo, hi int, do func(i int) error) time.Duration {
		var (
			next   atomic.Int64
			failed atomic.Pointer[error]
			wg     sync.WaitGroup
		)
		next.Store(int64(lo))
		start := time.Now()
		for range parallelClients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for failed.Load() == nil {
					i := int(next.Add(1)) - 1
					if i >= hi {
						return
					}
					if err := do(i); err != nil {
						failed.CompareAndSwap(nil, &err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if err := failed.Load(); err != nil {
			tb.Fatal(*err)
		}
		return time.Since(start)
	}
	var steps []fleetStepResult
	for lo := 0; lo+fleetStep <= n; lo += fleetStep {
		added := parallel(lo, lo+fleetStep, func(i int) error {
			req := fleetHost(i)
			h, err := s.addHost(req)
			if err != nil {
				return err
			}
			if h.MgmtIP == "" {
				return fmt.Errorf("host %s got no management address", req.Hostname)
			}
			mu.Lock()
			defer mu.Unlock()
			if other, ok := seen[h.MgmtIP]; ok {
				return fmt.Errorf("hosts %s and %s both got %s", other, req.Hostname, h.MgmtIP)
			}
			seen[h.MgmtIP], addrs[i] = req.Hostname, h.MgmtIP
			return nil
		})
		leased := parallel(lo, lo+fleetStep, func(i int) error {
			return firstLease(ctx, s, fleetHost(i).MgmtMAC, addrs[i])
		})
		steps = append(steps, fleetStepResult{adds: fleetStep / added.Seconds(), leases: fleetStep / leased.Seconds()})
	}
	return steps
}

// firstLease makes the inventory calls of the DHCP server's first lease of
// the host with mac, whose address is ip: the binding of its DISCOVER and
// REQUEST, checked, and the lease its ACK commits.
func firstLease(ctx context.Context, s *server, mac, ip string) error {
	hw, err := net.ParseMAC(mac)
	if err != nil {
		return err
	}
	addr := netip.MustParseAddr(ip)
	b, err := s.ctrl.Inventory.Binding(ctx, hw, addr)
	if err != nil {
		return fmt.Errorf("binding of %s: %w", mac, err)
	}
	if b.IP != addr {
		return fmt.Errorf("binding of %s: %s, want %s", mac, b.IP, addr)
	}
	return s.ctrl.Inventory.Leased(ctx, b, time.Now().Add(b.Lease))
}

// BenchmarkFleetAdd adds HB_BENCH_FLEET_HOSTS hosts (default 100,000)
// through POST /v1/hosts with parallelClients clients at once, each with
// a hostname, a MAC and a label, to a controller whose management pool
// (10.0.0.0/8) is dynamic: the controller allocates every address. It
// reports the adds per second of the first and the last fleetStep adds,
// their ratio (last/first: 1 is flat) and the slowest step's rate, and
// likewise the first DHCP leases per second of each step's new hosts (the
// inventory's part of a lease: the server's own packet work does not grow
// with the inventory, see BenchmarkDHCP); it logs every step's. Adds and
// leases take turns, a step at a time, each measured alone. b.N is
// ignored: run with -benchtime 1x.
func BenchmarkFleetAdd(b *testing.B) {
	n := 100_000
	if v := os.Getenv(envFleetHosts); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 2*fleetStep {
			b.Fatalf("%s=%q: want a number of hosts of at least %d", envFleetHosts, v, 2*fleetStep)
		}
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			s := startControllerMode(b, be.db(b), "dynamic")
			res := addFleet(b, s, n)
			first, last := res[0], res[len(res)-1]
			slowest, slowestLease := first.adds, first.leases
			var steps []string
			for i, r := range res {
				slowest, slowestLease = min(slowest, r.adds), min(slowestLease, r.leases)
				steps = append(steps, fmt.Sprintf("%d:%.0f/%.0f", (i+1)*fleetStep, r.adds, r.leases))
			}
			b.ReportMetric(first.adds, "first-adds/s")
			b.ReportMetric(last.adds, "last-adds/s")
			b.ReportMetric(last.adds/first.adds, "last/first")
			b.ReportMetric(slowest, "slowest-adds/s")
			b.ReportMetric(first.leases, "first-leases/s")
			b.ReportMetric(last.leases, "last-leases/s")
			b.ReportMetric(slowestLease, "slowest-leases/s")
			b.Logf("%s: %d hosts added; per %d new hosts (hosts so far:adds/s/first leases/s): %s", be.name, n, fleetStep, strings.Join(steps, " "))
		})
	}
}

// TestFleetAddSetup adds 2,000 hosts as BenchmarkFleetAdd does, on SQLite
// (and PostgreSQL when HB_TEST_POSTGRES is set), so that go test ./...
// catches a broken benchmark: it fails on errors and on two hosts with
// one address, not on time.
func TestFleetAddSetup(t *testing.T) {
	t.Parallel()
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			s := startControllerMode(t, be.db(t), "dynamic")
			res := addFleet(t, s, 2*fleetStep)
			t.Logf("%s: per %d adds: %+v", be.name, fleetStep, res)
		})
	}
}
