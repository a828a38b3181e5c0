package bench

import (
	"maps"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/kube"
	"hummingbird.io/hummingbird/internal/kube/kubefake"
	"hummingbird.io/hummingbird/internal/nodes"
	"hummingbird.io/hummingbird/internal/store"
)

// envNodeSyncNodes is the number of hosts, and of their Nodes, BenchmarkNodeSync runs with
// (default 100,000).
const envNodeSyncNodes = "HB_BENCH_NODES"

// nodeSyncPeriods is how many periods each run of BenchmarkNodeSync measures.
const nodeSyncPeriods = 10

// nodeSyncBed is an inventory of n hosts on a real store, a fake API server with their n Nodes,
// all Ready and labelled as the reconciler wants them, and a reconciler that has made its first
// pass.
type nodeSyncBed struct {
	st    store.Store
	api   *kubefake.Server
	r     *nodes.Reconciler
	hosts []store.Host
	// startup is from the first list request until the cache was synced; firstPass the whole
	// first Sync, the cache's start and its list included.
	startup, firstPass time.Duration
	// cacheBytes is how much the heap grew by the first Sync, per Node: what the cache keeps.
	cacheBytes float64
}

// newNodeSyncBed builds the inventory (preload, then every host's Node recorded Ready) on db
// (see backend), the fake API server, and the reconciler, and makes its first pass, which must
// change nothing.
func newNodeSyncBed(tb testing.TB, db string, n int) *nodeSyncBed {
	tb.Helper()
	ctx := tb.Context()
	if db == "" {
		db = store.SQLitePath(tb.TempDir())
	}
	st, err := store.Open(ctx, db)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	inv := inventory.New(st, inventory.Options{})
	if _, _, err := inv.EnsureManagementPool(ctx, "static", mgmtSubnet, []string{"10.0.0.1", "10.0.0.2"}); err != nil {
		tb.Fatal(err)
	}
	if err := preload(ctx, st, 1, n+1, 1000); err != nil {
		tb.Fatal(err)
	}
	bed := &nodeSyncBed{st: st}
	if err := st.Read(ctx, func(tx store.Tx) (err error) {
		bed.hosts, err = tx.ListHosts(store.HostFilter{})
		return err
	}); err != nil {
		tb.Fatal(err)
	}
	if len(bed.hosts) != n {
		tb.Fatalf("%d hosts preloaded, want %d", len(bed.hosts), n)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	for lo := 0; lo < n; lo += 1000 {
		if err := st.Write(ctx, func(tx store.Tx) error {
			for _, h := range bed.hosts[lo:min(lo+1000, n)] {
				if err := tx.SetHostNode(store.HostNode{HostID: h.ID, State: "Ready", KubeletVersion: "v1.37.2", UpdatedAt: now}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			tb.Fatal(err)
		}
	}
	bed.api = kubefake.Start(tb, kubefake.Options{Nodes: n, Node: func(i int) *corev1.Node {
		h := bed.hosts[i]
		want := nodes.Labels(h, nil)
		labels := maps.Clone(want)
		labels[kube.LabelHost] = h.UUID
		node := kubefake.NewNode(h.Hostname, labels, true)
		node.Annotations[kube.ManagedLabelsAnnotation] = strings.Join(slices.Sorted(maps.Keys(want)), ",")
		return node
	}})
	// The controller's own client: its request limits (kube.Load) hold.
	cluster, err := kube.FromConfig(bed.api.Config())
	if err != nil {
		tb.Fatal(err)
	}
	bed.r = nodes.New(st, cluster, nodes.Config{})

	before := heapAlloc()
	start := time.Now()
	if err := bed.r.Sync(ctx); err != nil {
		tb.Fatal(err)
	}
	bed.firstPass = time.Since(start)
	bed.cacheBytes = float64(heapAlloc()-before) / float64(n)
	bed.startup = bed.r.Cache().Stats().FirstList
	if c := bed.api.Counts(); c.Lists != 1 || c.Unpaged != 0 || c.Patches != 0 {
		tb.Fatalf("requests of the first pass %+v: want one paged list and no patch (every Node as wanted)", c)
	}
	if s := bed.r.Stats(); s.Hosts != n || s.Labelled != 0 {
		tb.Fatalf("first pass %+v: want %d hosts compared, none labelled", s, n)
	}
	return bed
}

// heapAlloc is the live heap after a collection.
func heapAlloc() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// cpuTime is the CPU time the process used so far, user and system.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// nodeSyncResult is what periods of node sync cost, each.
type nodeSyncResult struct {
	// cpu is the process's CPU time per period: following the watch and the pass; changeCPU
	// the fake API server's making of the changes, apart.
	cpu, changeCPU time.Duration
	// pass is the wall time of a pass.
	pass time.Duration
	// lists are the list requests per period, events the watch events the cache handled.
	lists, events float64
	// hosts are the hosts each pass compared.
	hosts float64
}

// periods runs count periods of node sync: in each, a share of the Nodes (none when churn is 0)
// changes on the API server, the watch brings the changes, and a pass over what changed records
// them. With churn c, the Nodes of a slice of c/2 of them go NotReady, and those of the period
// before are Ready again: c of the Nodes change in each period after the first.
func (bed *nodeSyncBed) periods(tb testing.TB, count int, churn float64, first int) nodeSyncResult {
	tb.Helper()
	ctx := tb.Context()
	n := len(bed.hosts)
	slice := int(churn / 2 * float64(n))
	cache := bed.r.Cache()
	pages0, events0, hosts0 := bed.api.Counts().Pages, cache.Stats().Events, bed.r.Stats().Hosts
	var res nodeSyncResult
	for p := first; p < first+count; p++ {
		bed.api.HoldWatches()
		cpu0 := cpuTime(tb)
		changes := 0
		set := func(from int, ready bool) {
			for i := from; i < from+slice; i++ {
				name := bed.hosts[i%n].Hostname
				if err := bed.api.Update(name, func(n *corev1.Node) { kubefake.SetReady(n, ready) }); err != nil {
					tb.Fatal(err)
				}
				changes++
			}
		}
		if slice > 0 {
			set(p*slice, false)
			if p > 0 {
				set((p-1)*slice, true)
			}
		}
		cpu1 := cpuTime(tb)
		want := cache.Stats().Events + changes
		bed.api.ReleaseWatches()
		for cache.Stats().Events < want {
			if ctx.Err() != nil {
				tb.Fatal(ctx.Err())
			}
			time.Sleep(time.Millisecond)
		}
		start := time.Now()
		if err := bed.r.SyncChanges(ctx); err != nil {
			tb.Fatal(err)
		}
		res.pass += time.Since(start)
		res.changeCPU += cpu1 - cpu0
		res.cpu += cpuTime(tb) - cpu1
	}
	per := time.Duration(count)
	res.cpu, res.changeCPU, res.pass = res.cpu/per, res.changeCPU/per, res.pass/per
	res.lists = float64(bed.api.Counts().Pages-pages0) / float64(count)
	res.events = float64(cache.Stats().Events-events0) / float64(count)
	res.hosts = float64(bed.r.Stats().Hosts-hosts0) / float64(count)
	if res.lists != 0 {
		tb.Fatalf("%.1f list requests per period, want none after the first list", res.lists)
	}
	return res
}

// resyncCPU is the CPU time of a full pass, the one every nodes.DefaultResync: every host compared
// with its Node from the cache, without a list.
func (bed *nodeSyncBed) resyncCPU(tb testing.TB) time.Duration {
	tb.Helper()
	pages := bed.api.Counts().Pages
	cpu0 := cpuTime(tb)
	if err := bed.r.Sync(tb.Context()); err != nil {
		tb.Fatal(err)
	}
	cpu := cpuTime(tb) - cpu0
	if got := bed.api.Counts().Pages; got != pages {
		tb.Fatalf("a full pass sent %d list requests, want none", got-pages)
	}
	return cpu
}

// BenchmarkNodeSync measures node sync with HB_BENCH_NODES hosts (default 100,000) in the
// inventory and as many Nodes on a generated fake API server (kubefake), all Ready and labelled
// as wanted: the start-up (the paged list until the cache is synced), the heap the cache takes
// per Node, the CPU time of the full pass made every nodes.DefaultResync, and, per period, the
// process's CPU time, the list requests (none), the watch events and the hosts a pass compares:
// steady (nothing changes) and with 1% of the Nodes changing their Ready state each period. The
// CPU time of a period counts following the watch and the pass; the fake server's making of the
// changes is reported apart (change-cpu-s/period). For comparison, full-list is the CPU time of
// the one unpaged list of every Node that each period cost before the cache, besides a full
// pass. b.N runs of 10 periods each; run with -benchtime 1x.
func BenchmarkNodeSync(b *testing.B) {
	n := 100_000
	if v := os.Getenv(envNodeSyncNodes); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 200 {
			b.Fatalf("%s=%q: want a number of Nodes of at least 200", envNodeSyncNodes, v)
		}
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			bed := newNodeSyncBed(b, be.db(b), n)
			b.Logf("%s: %d hosts and Nodes: list to synced %v, first pass %v, %.0f B of heap per Node cached",
				be.name, n, bed.startup.Round(time.Millisecond), bed.firstPass.Round(time.Millisecond), bed.cacheBytes)
			period := 0
			for _, c := range []struct {
				name  string
				churn float64
			}{{"steady", 0}, {"churn-1pct", 0.01}} {
				b.Run(c.name, func(b *testing.B) {
					var res nodeSyncResult
					for range b.N {
						res = bed.periods(b, nodeSyncPeriods, c.churn, period)
						period += nodeSyncPeriods
					}
					b.ReportMetric(bed.startup.Seconds(), "startup-s")
					b.ReportMetric(bed.cacheBytes, "cache-B/node")
					b.ReportMetric(res.cpu.Seconds(), "cpu-s/period")
					b.ReportMetric(res.pass.Seconds(), "pass-s")
					b.ReportMetric(res.lists, "lists/period")
					b.ReportMetric(res.events, "events/period")
					b.ReportMetric(res.hosts, "hosts/period")
					if c.churn > 0 {
						b.ReportMetric(res.changeCPU.Seconds(), "change-cpu-s/period")
					}
				})
			}
			b.Run("resync", func(b *testing.B) {
				var cpu time.Duration
				for range b.N {
					cpu = bed.resyncCPU(b)
				}
				b.ReportMetric(cpu.Seconds(), "cpu-s/pass")
			})
			// For comparison, what every period cost before the cache besides a full pass: one
			// list of every Node, unpaged, as the reconciler sent it.
			b.Run("full-list", func(b *testing.B) {
				cs, err := kubernetes.NewForConfig(bed.api.Config())
				if err != nil {
					b.Fatal(err)
				}
				var cpu time.Duration
				for range b.N {
					cpu0 := cpuTime(b)
					l, err := cs.CoreV1().Nodes().List(b.Context(), metav1.ListOptions{})
					if err != nil {
						b.Fatal(err)
					}
					cpu = cpuTime(b) - cpu0
					if len(l.Items) != n {
						b.Fatalf("listed %d Nodes, want %d", len(l.Items), n)
					}
				}
				b.ReportMetric(cpu.Seconds(), "cpu-s/list")
			})
		})
	}
}

// TestNodeSyncSetup runs BenchmarkNodeSync's code with 2,000 hosts and Nodes, on SQLite (and
// PostgreSQL when HB_TEST_POSTGRES is set), so that go test ./... catches a broken benchmark: it
// fails on errors, on a list request in a period, and on a pass that does not record what
// changed, not on time.
func TestNodeSyncSetup(t *testing.T) {
	t.Parallel()
	const n = 2000
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			bed := newNodeSyncBed(t, be.db(t), n)
			steady := bed.periods(t, 3, 0, 0)
			if steady.events != 0 || steady.hosts != 0 {
				t.Errorf("steady periods: %+v, want no event and no host compared", steady)
			}
			churn := bed.periods(t, 3, 0.01, 0)
			// Periods 0, 1, 2: 10 Nodes NotReady each, and those of the period before Ready again.
			if math.Round(3*churn.events) != 50 {
				t.Errorf("periods with churn: %.1f events each, want 50 in 3 periods", churn.events)
			}
			var got []string
			if err := bed.st.Read(t.Context(), func(tx store.Tx) error {
				for _, h := range bed.hosts[:40] {
					h, err := tx.HostByID(h.ID)
					if err != nil {
						return err
					}
					got = append(got, h.NodeState)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			for i, state := range got {
				want := "Ready"
				if i >= 20 && i < 30 {
					want = "NotReady"
				}
				if state != want {
					t.Errorf("host %s: node state %s, want %s", bed.hosts[i].Hostname, state, want)
				}
			}
			if cpu := bed.resyncCPU(t); cpu <= 0 {
				t.Errorf("full pass: %v of CPU", cpu)
			}
			t.Logf("%d Nodes: start-up %v, %.0f B/node; steady %+v; 1%% churn %+v", n, bed.startup, bed.cacheBytes, steady, churn)
		})
	}
}
