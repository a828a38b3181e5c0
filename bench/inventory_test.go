package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/store"
)

// inventorySize is the number of hosts BenchmarkHostList10k lists.
const inventorySize = 10_000

// racks is the number of racks of the inventory (inventoryHost): one rack
// holds a hundred hosts of 100,000.
const racks = 1000

// pageSize is the page a client asks for: the API's largest.
const pageSize = 1000

// parallelClients is the number of clients adding hosts at once in
// BenchmarkHostAdd/*/parallel16.
const parallelClients = 16

// BenchmarkHostAdd measures POST /v1/hosts of distinct edgeworkers (static
// management network: a unique MAC and address each) from one client and
// from parallelClients clients at once, and reports adds/s and the p50 and
// p99 latency of one add. Each backend's controller starts empty and keeps
// the hosts its cases add.
func BenchmarkHostAdd(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			s := startController(b, be.db(b))
			var next atomic.Int64
			b.Run("sequential", func(b *testing.B) {
				var lat latencies
				b.ResetTimer()
				for range b.N {
					h := edgeworker(int(next.Add(1)))
					t0 := time.Now()
					if _, err := s.addHost(h); err != nil {
						b.Fatal(err)
					}
					lat.add(time.Since(t0))
				}
				b.StopTimer()
				reportAdds(b, &lat)
			})
			b.Run(fmt.Sprintf("parallel%d", parallelClients), func(b *testing.B) {
				procs := runtime.GOMAXPROCS(0)
				b.SetParallelism((parallelClients + procs - 1) / procs)
				var lat latencies
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					var mine []time.Duration
					defer func() { lat.add(mine...) }()
					for pb.Next() {
						h := edgeworker(int(next.Add(1)))
						t0 := time.Now()
						if _, err := s.addHost(h); err != nil {
							b.Error(err)
							return
						}
						mine = append(mine, time.Since(t0))
					}
				})
				b.StopTimer()
				reportAdds(b, &lat)
			})
		})
	}
}

func reportAdds(b *testing.B, lat *latencies) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "adds/s")
	lat.report(b)
}

// BenchmarkHostList10k measures, in an inventory of inventorySize hosts
// (a tenth workers, the rest edgeworkers, spread over 100 sites and 1,000
// racks), the latency a client sees for: the first page of 1000 hosts, the
// last page, the whole inventory page by page, the workers (personality
// filter), one site and one rack (label filters) and host-show of a random
// host by name. The time includes TLS, authentication, the query, JSON
// encoding and decoding.
func BenchmarkHostList10k(b *testing.B) { benchHostList(b, inventorySize) }

// BenchmarkHostList100k is BenchmarkHostList10k at 100,000 hosts: a rack
// there holds the 100 hosts of the label filter the inventory-scale issue
// times.
func BenchmarkHostList100k(b *testing.B) { benchHostList(b, 100_000) }

func benchHostList(b *testing.B, n int) {
	bin := buildController(b)
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			s := startInventory(b, bin, be.db(b), n)
			ops, err := listOps(s, n, pageSize)
			if err != nil {
				b.Fatal(err)
			}
			for _, op := range ops {
				b.Run(op.name, func(b *testing.B) { timeReads(b, op.run, "hosts/op") })
			}
		})
	}
}

// startInventory runs hb-controller (bin) as a process of its own, as an
// operator runs it and apart from the client's collector and scheduler, on
// db (see backend) holding the hosts 1..n of the inventory, and returns a
// client of it.
func startInventory(tb testing.TB, bin, db string, n int) *server {
	tb.Helper()
	dir := tb.TempDir()
	dsn := db
	if dsn == "" {
		dsn = store.SQLitePath(dir)
	}
	// The first start makes the schema, the CA, the first admin token and
	// the management pool the hosts draw from.
	startControllerProcess(tb, bin, dir, db).stop(tb)
	st, err := store.Open(tb.Context(), dsn)
	if err != nil {
		tb.Fatal(err)
	}
	t0 := time.Now()
	err = preload(tb.Context(), st, 1, n+1, 1000)
	st.Close()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Logf("preloaded %d hosts in %v", n, time.Since(t0).Round(time.Millisecond))
	return startControllerProcess(tb, bin, dir, db).client(tb, dir)
}

// timeReads runs read b.N times and reports ms/op, the p50 and p99 of one
// read, and how many things a read returned (unit, like "hosts/op").
func timeReads(b *testing.B, read func() (int, error), unit string) {
	var (
		lat   latencies
		items int
	)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		n, err := read()
		lat.add(time.Since(t0))
		if err != nil {
			b.Fatal(err)
		}
		items += n
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed())/float64(time.Millisecond)/float64(b.N), "ms/op")
	lat.report(b)
	b.ReportMetric(float64(items)/float64(b.N), unit)
}

// listOp is one read a client makes; run returns how many hosts it got and
// an error when the answer is not the one the inventory calls for.
type listOp struct {
	name string
	run  func() (int, error)
}

// countHosts counts the hosts 1..n of the inventory that match.
func countHosts(n int, match func(apitype.HostCreate) bool) int {
	c := 0
	for i := 1; i <= n; i++ {
		if match(inventoryHost(i)) {
			c++
		}
	}
	return c
}

// listOps returns the reads BenchmarkHostList10k measures, for an
// inventory of hosts 1..n (and nothing else) on s, paging by limit.
func listOps(s *server, n, limit int) ([]listOp, error) {
	all, _, err := s.listAll(nil, limit)
	if err != nil {
		return nil, err
	}
	if len(all) != n {
		return nil, fmt.Errorf("the inventory has %d hosts, want %d", len(all), n)
	}
	// The marker that fetches the last page.
	lastMarker := ""
	if n > limit {
		lastMarker = strconv.FormatInt(all[n-limit-1].ID, 10)
	}
	const site = "site-042"
	workers := countHosts(n, func(h apitype.HostCreate) bool { return h.Personality == apitype.PersonalityWorker })
	atSite := countHosts(n, func(h apitype.HostCreate) bool { return h.Labels["site"] == site })
	const rack = "rack-0042"
	inRack := countHosts(n, func(h apitype.HostCreate) bool { return h.Labels["rack"] == rack })
	pages := (n + limit - 1) / limit
	rnd := rand.New(rand.NewPCG(1, 2))
	var mu sync.Mutex

	page := func(q url.Values, want int, wantNext bool) func() (int, error) {
		return func() (int, error) {
			p, err := s.listPage(q)
			if err != nil {
				return 0, err
			}
			if len(p.Hosts) != want || (p.Next != "") != wantNext {
				return len(p.Hosts), fmt.Errorf("GET /v1/hosts?%s: %d hosts, next %q; want %d hosts, next set %v", q.Encode(), len(p.Hosts), p.Next, want, wantNext)
			}
			return len(p.Hosts), nil
		}
	}
	every := func(q url.Values, want, wantPages int) func() (int, error) {
		return func() (int, error) {
			hosts, got, err := s.listAll(q, limit)
			if err != nil {
				return len(hosts), err
			}
			if len(hosts) != want || got != wantPages {
				return len(hosts), fmt.Errorf("paging GET /v1/hosts?%s by %d: %d hosts in %d requests; want %d in %d", q.Encode(), limit, len(hosts), got, want, wantPages)
			}
			return len(hosts), nil
		}
	}
	limitQ := func(kv ...string) url.Values {
		q := url.Values{"limit": {strconv.Itoa(limit)}}
		for i := 0; i+1 < len(kv); i += 2 {
			q.Add(kv[i], kv[i+1])
		}
		return q
	}
	return []listOp{
		{"page1000", page(limitQ(), min(n, limit), n > limit)},
		{"lastpage", page(limitQ("marker", lastMarker), min(n, limit), false)},
		{"all", every(nil, n, pages)},
		{"personality", every(url.Values{"personality": {apitype.PersonalityWorker}}, workers, max(1, (workers+limit-1)/limit))},
		{"label", every(url.Values{"label": {"site=" + site}}, atSite, max(1, (atSite+limit-1)/limit))},
		{"rack", every(url.Values{"label": {"rack=" + rack}}, inRack, max(1, (inRack+limit-1)/limit))},
		{"show", func() (int, error) {
			mu.Lock()
			i := 1 + rnd.IntN(n)
			mu.Unlock()
			want := inventoryHost(i).Hostname
			h, err := s.showHost(want)
			if err != nil {
				return 0, err
			}
			if h.Hostname != want {
				return 1, fmt.Errorf("host-show %s answered host %s", want, h.Hostname)
			}
			return 1, nil
		}},
	}, nil
}

// wantHost is what the API shows for host i of the inventory, without the
// fields the controller makes up.
func wantHost(req apitype.HostCreate) apitype.Host {
	labels := req.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	return apitype.Host{
		Hostname: req.Hostname, Personality: req.Personality,
		Administrative: inventory.AdminLocked, Operational: inventory.OperDisabled,
		Availability: inventory.AvailOffline, InvProvision: inventory.ProvUnprovisioned,
		MgmtMAC: req.MgmtMAC, MgmtIP: req.MgmtIP, Pool: inventory.ManagementPoolName, Group: req.Group, Labels: labels,
		Location: req.Location,
	}
}

var ignoreMadeUp = cmpopts.IgnoreFields(apitype.Host{}, "ID", "UUID", "CreatedAt", "UpdatedAt")

// TestBenchSetup runs the benchmarks' setup and every operation they time
// on a small inventory, so that a broken benchmark fails go test ./...
func TestBenchSetup(t *testing.T) {
	const n = 250
	const limit = 40
	bin := buildController(t)
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			s := startController(t, be.db(t))
			ctx := context.Background()
			if err := preload(ctx, s.ctrl.Store, 1, n+1, 100); err != nil {
				t.Fatal(err)
			}

			// A preloaded host looks exactly like one added through the API.
			for _, i := range []int{1, 10, n} {
				got, err := s.showHost(inventoryHost(i).Hostname)
				if err != nil {
					t.Fatal(err)
				}
				if d := cmp.Diff(wantHost(inventoryHost(i)), got, ignoreMadeUp); d != "" {
					t.Errorf("preloaded host %d (-want +got):\n%s", i, d)
				}
			}

			// The reads, on this controller and on one in a process of
			// its own (BenchmarkHostList10k's).
			for _, s := range []*server{s, startInventory(t, bin, be.db(t), n)} {
				ops, err := listOps(s, n, limit)
				if err != nil {
					t.Fatal(err)
				}
				for _, op := range ops {
					got, err := op.run()
					if err != nil {
						t.Errorf("%s: %v", op.name, err)
					}
					if got == 0 {
						t.Errorf("%s: no hosts", op.name)
					}
				}
			}

			// Adds, one client then parallelClients at once, as
			// BenchmarkHostAdd makes them; the inventory's own hosts come
			// through the API unchanged.
			var next atomic.Int64
			next.Store(n)
			for range 3 {
				req := inventoryHost(int(next.Add(1)))
				got, err := s.addHost(req)
				if err != nil {
					t.Fatal(err)
				}
				if d := cmp.Diff(wantHost(req), got, ignoreMadeUp); d != "" {
					t.Errorf("added host (-want +got):\n%s", d)
				}
			}
			var wg sync.WaitGroup
			for range parallelClients {
				wg.Go(func() {
					for range 2 {
						req := edgeworker(int(next.Add(1)))
						got, err := s.addHost(req)
						if err != nil {
							t.Error(err)
							return
						}
						if d := cmp.Diff(wantHost(req), got, ignoreMadeUp); d != "" {
							t.Errorf("added host (-want +got):\n%s", d)
						}
					}
				})
			}
			wg.Wait()
			all, _, err := s.listAll(nil, limit)
			if err != nil {
				t.Fatal(err)
			}
			if want := n + 3 + 2*parallelClients; len(all) != want {
				t.Errorf("after the adds the inventory has %d hosts, want %d", len(all), want)
			}
		})
	}
}
