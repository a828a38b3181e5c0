package bench

import (
	"context"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/controller"
	"hummingbird.io/hummingbird/internal/kube"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/testbed"
	"hummingbird.io/hummingbird/internal/workloads"
)

// envAppSyncApps is the number of redundant apps BenchmarkAppSync keeps in
// the cluster (default fleetApps, 1,000).
const envAppSyncApps = "HB_BENCH_APPSYNC_APPS"

// appSyncPasses is how many steady passes BenchmarkAppSync measures.
const appSyncPasses = 10

// BenchmarkAppSync measures the app sync (package workloads: each app's
// DaemonSet and Service kept as the inventory says) against the bed's real
// kube-apiserver, with HB_BENCH_FLEET_HOSTS hosts (default 100,000) in the
// inventory and HB_BENCH_APPSYNC_APPS apps (default 1,000, three hosts
// each). The first pass makes the apps' objects; the benchmark then makes
// appSyncPasses passes that find everything in order and reports the CPU
// one pass costs this process (the store's reads, the lists of the apps'
// DaemonSets, Services and pods, the comparisons) and the API server, its
// wall time, and the share of one core it is at the controller's default
// interval. A steady pass must write nothing. b.N is ignored: run with
// -benchtime 1x.
func BenchmarkAppSync(b *testing.B) {
	requireBed(b)
	n := benchSize(b, envFleetHosts, 100_000, 1)
	apps := benchSize(b, envAppSyncApps, fleetApps, 1)
	if 3*apps > n {
		b.Fatalf("%d apps need %d hosts; %s is %d", apps, 3*apps, envFleetHosts, n)
	}
	ctx, cancel := context.WithTimeout(b.Context(), 20*time.Minute)
	defer cancel()
	r := measureAppSync(b, ctx, testbed.Start(b, ctx, testbed.Options{}), n, apps, appSyncPasses)
	every := controller.Defaults().AppSyncInterval
	b.ReportMetric(r.first.Seconds(), "first-pass-s")
	b.ReportMetric(float64(r.cpu.Milliseconds()), "cpu-ms/pass")
	b.ReportMetric(float64(r.apiCPU.Milliseconds()), "apiserver-cpu-ms/pass")
	b.ReportMetric(float64(r.wall.Milliseconds()), "wall-ms/pass")
	share := r.cpu.Seconds() / every.Seconds()
	b.ReportMetric(100*share, "cpu-%@interval")
	b.Logf("%d hosts, %d apps: first pass %v; a steady pass %v wall, %v CPU here and %v in kube-apiserver: %.2f %% of a core every %v",
		n, apps, r.first.Round(time.Millisecond), r.wall.Round(time.Millisecond), r.cpu.Round(time.Millisecond),
		r.apiCPU.Round(time.Millisecond), 100*share, every)
	if share > maxFleetIdleCPU {
		b.Errorf("the app sync takes %.2f %% of a core at its default interval, over %.0f %%", 100*share, 100*maxFleetIdleCPU)
	}
}

// appSyncResult is what measureAppSync measured: the first pass's time,
// and per steady pass its wall time and the CPU of this process and of the
// API server.
type appSyncResult struct {
	first, wall, cpu, apiCPU time.Duration
}

// measureAppSync measures n hosts and apps on bed's API server, passes
// steady passes after the first.
func measureAppSync(tb testing.TB, ctx context.Context, bed *testbed.Bed, n, apps, passes int) appSyncResult {
	tb.Helper()
	cluster, err := kube.Load(bed.ControlPlane.Kubeconfig)
	if err != nil {
		tb.Fatal(err)
	}
	apiPID, err := bedProcess(bed.Index, "control", "kube-apiserver")
	if err != nil {
		tb.Fatal(err)
	}
	// A bare store, so that no controller's parts share this process's
	// CPU with the passes measured.
	st, err := store.Open(ctx, store.SQLitePath(tb.TempDir()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	t0 := time.Now()
	if err := preloadFleet(ctx, st, n, apps); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("stored %d hosts and %d apps in %v", n, apps, time.Since(t0).Round(time.Millisecond))

	r := workloads.New(st, cluster, workloads.Config{})
	var res appSyncResult
	t0 = time.Now()
	p, err := r.Sync(ctx)
	res.first = time.Since(t0)
	if err != nil {
		tb.Fatalf("first pass: %v", err)
	}
	if want := 1 + 2*apps; p.Created != want {
		tb.Fatalf("the first pass made %d objects, want %d (the namespace, and each app's DaemonSet and Service)", p.Created, want)
	}
	cpu0, api0, w0 := cpuTime(tb), procCPU(tb, apiPID), time.Now()
	for i := range passes {
		p, err := r.Sync(ctx)
		if err != nil {
			tb.Fatalf("steady pass %d: %v", i+1, err)
		}
		if p.Writes() != 0 {
			tb.Fatalf("steady pass %d wrote %+v, want nothing", i+1, p)
		}
	}
	res.wall = time.Since(w0) / time.Duration(passes)
	res.cpu = (cpuTime(tb) - cpu0) / time.Duration(passes)
	res.apiCPU = (procCPU(tb, apiPID) - api0) / time.Duration(passes)
	return res
}
