package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/testbed"
)

// envLeaseRuns lists the loads BenchmarkLeaseRenewal drives, as
// LEASESxPERIOD separated by commas (the format of HB_BENCH_HEARTBEAT,
// without :handshake).
const envLeaseRuns = "HB_BENCH_LEASE"

// defaultLeaseRuns are the offered rates of the heartbeat benchmark's
// figures: 1,000 and 1,667 renewals/s.
const defaultLeaseRuns = "8000x8s,8000x4.8s"

// envLeaseMeasure is how long a lease load is measured after its warm-up
// (default: one period, at least 30 s).
const envLeaseMeasure = "HB_BENCH_LEASE_MEASURE"

// leaseNamespace is where kubelets keep their node Leases.
const leaseNamespace = "kube-node-lease"

// requireBed is the end-to-end tests' gate: tb is skipped unless the test
// bed was asked for (HB_E2E=1, as .ci/run does), and fails when it was
// but this process is not root. A bed that cannot come up (no
// test/bed/prepare) fails it too.
func requireBed(tb testing.TB) {
	tb.Helper()
	if os.Getenv("HB_E2E") != "1" {
		tb.Skip("needs the test bed: set HB_E2E=1 and run as root after test/bed/prepare")
	}
	if os.Geteuid() != 0 {
		tb.Fatal("HB_E2E=1 but not root: the test bed needs root")
	}
}

// BenchmarkLeaseRenewal is the Kubernetes counterpart of BenchmarkHeartbeat:
// it brings up a test bed control plane (etcd, kube-apiserver, controller
// manager, scheduler; no hosts), creates N coordination.k8s.io/v1 Leases in
// kube-node-lease as kubelets do, and renews them open-loop at the load's
// rate: renewal k is due at start + k·period/N for Lease k mod N, an HTTP/1.1
// PUT of the whole Lease (its last resourceVersion, a new spec.renewTime),
// as the kubelet's lease controller updates its Lease, on the Lease's own
// keep-alive TLS connection with the bed's admin client certificate. After
// one period of warm-up it measures renewals/s answered (200), the latency
// from due time to decoded reply (p50, p99, max), late renewals (the Lease's
// previous one still unanswered), errors, and CPU per 1,000 renewals: this
// process's (the driver only: the API server and etcd are processes of
// their own) and, from /proc/PID/stat, kube-apiserver's and etcd's. b.N is
// ignored: run with -benchtime 1x.
func BenchmarkLeaseRenewal(b *testing.B) {
	requireBed(b)
	spec := os.Getenv(envLeaseRuns)
	if spec == "" {
		spec = defaultLeaseRuns
	}
	if strings.Contains(spec, ":") {
		b.Fatalf("%s: %q: only LEASESxPERIOD loads", envLeaseRuns, spec)
	}
	loads, err := parseHeartbeatLoads(spec)
	if err != nil {
		b.Fatal(strings.ReplaceAll(err.Error(), envHeartbeatRuns, envLeaseRuns))
	}
	var measure time.Duration
	if s := os.Getenv(envLeaseMeasure); s != "" {
		if measure, err = time.ParseDuration(s); err != nil {
			b.Fatalf("%s: %v", envLeaseMeasure, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lb := startLeaseBed(b, ctx)
	for i, l := range loads {
		b.Run(fmt.Sprintf("leases=%d/period=%s", l.agents, l.period), func(b *testing.B) {
			m := measure
			if m == 0 {
				m = max(l.period, 30*time.Second)
			}
			// Every load has Leases of its own, so that each run starts
			// from Leases just created.
			lb.run(b, fmt.Sprintf("bench-%d-", i), l, l.period, m).report(b)
		})
	}
}

// TestControlPlaneBenchSetup runs, on one bed without hosts, what
// BenchmarkLeaseRenewal and BenchmarkAppSync measure there, briefly, so
// that CI sees them work: 50 Leases renewed every second (1 s of warm-up,
// 2 s measured), then the app sync with 2,000 hosts and 20 apps, whose
// first pass makes every app's objects and whose steady passes write
// nothing. It is skipped and fails as the end-to-end tests are
// (requireBed).
func TestControlPlaneBenchSetup(t *testing.T) {
	requireBed(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bed := testbed.Start(t, ctx, testbed.Options{})
	t.Run("lease", func(t *testing.T) {
		lb := leaseBedOn(t, bed)
		l := heartbeatLoad{agents: 50, period: time.Second}
		res := lb.run(t, "smoke-", l, time.Second, 2*time.Second)
		t.Logf("%d renewals answered in %v (%.0f/s offered), p50 %v, late %d, errors %d; CPU: driver %v, %v",
			res.renewals, res.window, l.rate(), res.lat.percentile(0.5), res.late, res.errors, res.cpu, res.peerCPU)
		if res.errors > 0 {
			t.Errorf("%d renewals failed (first: %v)", res.errors, res.firstErr)
		}
		if want := int(l.rate() * res.window.Seconds() / 2); res.renewals < want {
			t.Errorf("%d renewals answered in %v, want at least %d (half of those offered)", res.renewals, res.window, want)
		}
		for _, p := range []string{"apiserver", "etcd"} {
			if res.peerCPU[p] <= 0 || res.peerRSS[p] <= 0 {
				t.Errorf("%s: CPU %v and RSS %d bytes read from /proc, want both above 0", p, res.peerCPU[p], res.peerRSS[p])
			}
		}
	})
	t.Run("appsync", func(t *testing.T) {
		r := measureAppSync(t, ctx, bed, 2000, 20, 2)
		if r.first <= 0 || r.wall <= 0 {
			t.Errorf("measured %+v", r)
		}
	})
}

// leaseBed is a bed control plane under lease loads: its client and the
// processes whose CPU is measured (name: pid).
type leaseBed struct {
	client *leaseClient
	peers  map[string]int
}

// startLeaseBed brings up a bed without hosts for tb and finds its
// kube-apiserver and etcd.
func startLeaseBed(tb testing.TB, ctx context.Context) *leaseBed {
	tb.Helper()
	return leaseBedOn(tb, testbed.Start(tb, ctx, testbed.Options{}))
}

// leaseBedOn finds bed's kube-apiserver and etcd.
func leaseBedOn(tb testing.TB, bed *testbed.Bed) *leaseBed {
	tb.Helper()
	lc, err := newLeaseClient(bed)
	if err != nil {
		tb.Fatal(err)
	}
	apiPID, err := bedProcess(bed.Index, "control", "kube-apiserver")
	if err != nil {
		tb.Fatal(err)
	}
	etcdPID, err := bedProcess(bed.Index, "control", "etcd")
	if err != nil {
		tb.Fatal(err)
	}
	return &leaseBed{client: lc, peers: map[string]int{"apiserver": apiPID, "etcd": etcdPID}}
}

// run creates the load's Leases, named prefix plus a number, renews them
// for warmup and then measure, and closes their connections when tb ends.
func (lb *leaseBed) run(tb testing.TB, prefix string, l heartbeatLoad, warmup, measure time.Duration) leaseResult {
	tb.Helper()
	raiseFileLimit(tb, l.agents+1024)
	leases, err := lb.client.createLeases(prefix, l.agents)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		for _, s := range leases {
			s.close()
		}
	})
	return driveLeases(leases, lb.client, l, warmup, measure, lb.peers)
}

// leaseClient holds what every simulated kubelet shares: the API server's
// address and the TLS configuration with the admin client certificate.
type leaseClient struct {
	endpoint string
	tls      *tls.Config
}

// newLeaseClient reads the bed's admin kubeconfig (its CA and client
// certificate, as kubectl would).
func newLeaseClient(bed *testbed.Bed) (*leaseClient, error) {
	cp := bed.ControlPlane
	data, err := os.ReadFile(cp.Kubeconfig)
	if err != nil {
		return nil, err
	}
	// The bed writes its kubeconfigs as JSON (a subset of YAML).
	var kc struct {
		Users []struct {
			User struct {
				Cert []byte `json:"client-certificate-data"`
				Key  []byte `json:"client-key-data"`
			} `json:"user"`
		} `json:"users"`
	}
	if err := json.Unmarshal(data, &kc); err != nil || len(kc.Users) != 1 {
		return nil, fmt.Errorf("%s: not the bed's JSON kubeconfig with one user (%v)", cp.Kubeconfig, err)
	}
	certPEM, keyPEM := kc.Users[0].User.Cert, kc.Users[0].User.Key
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("the admin client certificate of %s: %w", cp.Kubeconfig, err)
	}
	ca, err := cp.CA()
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	host, _, _ := net.SplitHostPort(cp.Endpoint)
	return &leaseClient{endpoint: cp.Endpoint, tls: &tls.Config{
		RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS12,
		Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"},
	}}, nil
}

// lease is the part of a coordination.k8s.io/v1 Lease that is written.
type lease struct {
	APIVersion string        `json:"apiVersion"`
	Kind       string        `json:"kind"`
	Metadata   leaseMetadata `json:"metadata"`
	Spec       leaseSpec     `json:"spec"`
}

type leaseMetadata struct {
	Name            string `json:"name"`
	Namespace       string `json:"namespace"`
	ResourceVersion string `json:"resourceVersion,omitempty"`
}

type leaseSpec struct {
	HolderIdentity       string `json:"holderIdentity"`
	LeaseDurationSeconds int    `json:"leaseDurationSeconds"`
	RenewTime            string `json:"renewTime"`
}

// microTime is the format of a Kubernetes MicroTime.
const microTime = "2006-01-02T15:04:05.000000Z07:00"

// simKubelet is one simulated kubelet: its Lease and its connection.
type simKubelet struct {
	lease lease
	busy  atomic.Bool
	conn  *tls.Conn
	br    *bufio.Reader
}

func (s *simKubelet) close() {
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}

// createLeases connects n simulated kubelets, 32 at a time, and creates
// each one's Lease on its connection.
func (lc *leaseClient) createLeases(prefix string, n int) ([]*simKubelet, error) {
	ks := make([]*simKubelet, n)
	var (
		wg   sync.WaitGroup
		next atomic.Int64
		errs = make(chan error, 1)
	)
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				name := fmt.Sprintf("%s%05d", prefix, i)
				k := &simKubelet{lease: lease{
					APIVersion: "coordination.k8s.io/v1", Kind: "Lease",
					Metadata: leaseMetadata{Name: name, Namespace: leaseNamespace},
					Spec:     leaseSpec{HolderIdentity: name, LeaseDurationSeconds: 40},
				}}
				ks[i] = k
				if err := lc.write(k, http.MethodPost, "/apis/coordination.k8s.io/v1/namespaces/"+leaseNamespace+"/leases", http.StatusCreated); err != nil {
					select {
					case errs <- fmt.Errorf("creating Lease %s: %w", name, err):
					default:
					}
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		for _, k := range ks {
			if k != nil {
				k.close()
			}
		}
		return nil, err
	default:
		return ks, nil
	}
}

// renew PUTs the kubelet's Lease with a new renewTime.
func (lc *leaseClient) renew(k *simKubelet) error {
	return lc.write(k, http.MethodPut, "/apis/coordination.k8s.io/v1/namespaces/"+leaseNamespace+"/leases/"+k.lease.Metadata.Name, http.StatusOK)
}

// write sends the kubelet's Lease, with renewTime now, by method to path on
// its keep-alive connection (made again if it broke), and keeps the
// resourceVersion of the reply.
func (lc *leaseClient) write(k *simKubelet, method, path string, want int) error {
	if k.conn == nil {
		d := net.Dialer{Timeout: 30 * time.Second}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		raw, err := d.DialContext(ctx, "tcp", lc.endpoint)
		if err != nil {
			return err
		}
		c := tls.Client(raw, lc.tls)
		if err := c.HandshakeContext(ctx); err != nil {
			raw.Close()
			return err
		}
		k.conn, k.br = c, bufio.NewReaderSize(c, 4096)
	}
	k.lease.Spec.RenewTime = time.Now().UTC().Format(microTime)
	body, err := json.Marshal(k.lease)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(method, "https://"+lc.endpoint+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "lease-bench")
	k.conn.SetDeadline(time.Now().Add(20 * time.Second))
	var buf bytes.Buffer
	if err := req.Write(&buf); err != nil {
		return err
	}
	if _, err := k.conn.Write(buf.Bytes()); err != nil {
		k.close()
		return err
	}
	resp, err := http.ReadResponse(k.br, req)
	if err != nil {
		k.close()
		return err
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		k.close()
		return err
	}
	if resp.Close {
		defer k.close()
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	var got struct {
		Metadata leaseMetadata `json:"metadata"`
	}
	if err := json.Unmarshal(data, &got); err != nil {
		return fmt.Errorf("%s %s: reply: %w", method, path, err)
	}
	if got.Metadata.ResourceVersion == "" {
		return fmt.Errorf("%s %s: reply without a resourceVersion", method, path)
	}
	k.lease.Metadata.ResourceVersion = got.Metadata.ResourceVersion
	return nil
}

// leaseResult is what one lease load measured.
type leaseResult struct {
	load         heartbeatLoad
	renewals     int // answers that arrived in the measured window (tallyWindow)
	answeredLate int // due in the window, answered after it
	window       time.Duration
	lat          *latencies
	maxLat       time.Duration
	late         int
	errors       int
	firstErr     error
	cpu          time.Duration            // this process (the driver)
	peerCPU      map[string]time.Duration // kube-apiserver, etcd
	peerRSS      map[string]int64
	rssBytes     int64
	reconnected  int
}

func (r leaseResult) report(b *testing.B) {
	per1k := func(d time.Duration) float64 {
		return float64(d.Microseconds()) / 1000 / float64(max(r.renewals, 1)) * 1000
	}
	total := r.cpu
	b.ReportMetric(float64(r.renewals)/r.window.Seconds(), "renewals/s")
	b.ReportMetric(r.load.rate(), "offered/s")
	r.lat.report(b)
	b.ReportMetric(float64(r.maxLat), "max-ns")
	b.ReportMetric(per1k(r.cpu), "driver-cpu-ms/1k")
	var peers []string
	for _, name := range []string{"apiserver", "etcd"} {
		d, ok := r.peerCPU[name]
		if !ok {
			continue
		}
		total += d
		b.ReportMetric(per1k(d), name+"-cpu-ms/1k")
		b.ReportMetric(float64(r.peerRSS[name])/(1<<20), name+"-rss-MiB")
		peers = append(peers, fmt.Sprintf("%s %.1f ms (%.2f cores, RSS %d MiB)", name, per1k(d), d.Seconds()/r.window.Seconds(), r.peerRSS[name]>>20))
	}
	b.ReportMetric(per1k(total), "total-cpu-ms/1k")
	b.ReportMetric(total.Seconds()/r.window.Seconds(), "cores")
	b.ReportMetric(float64(r.late), "late")
	b.ReportMetric(float64(r.errors), "errors")
	if r.firstErr != nil {
		b.Logf("first error: %v", r.firstErr)
	}
	load, _ := os.ReadFile("/proc/loadavg")
	b.ReportMetric(float64(r.answeredLate), "answered-after")
	b.Logf("%d Leases every %s: %d renewals answered in %s (%.0f/s of %.0f offered; %d due in it answered after it), p50 %s p99 %s max %s, late %d, errors %d, reconnects %d; "+
		"CPU per 1,000 renewals: driver %.1f ms (%.2f cores, RSS %d MiB), %s; total %.1f ms (%.2f cores); loadavg %s",
		r.load.agents, r.load.period, r.renewals, r.window.Round(time.Millisecond), float64(r.renewals)/r.window.Seconds(), r.load.rate(), r.answeredLate,
		r.lat.percentile(0.5).Round(10*time.Microsecond), r.lat.percentile(0.99).Round(10*time.Microsecond), r.maxLat.Round(time.Millisecond),
		r.late, r.errors, r.reconnected, per1k(r.cpu), r.cpu.Seconds()/r.window.Seconds(), r.rssBytes>>20, strings.Join(peers, ", "),
		per1k(total), total.Seconds()/r.window.Seconds(), strings.TrimSpace(string(load)))
}

// driveLeases renews the Leases open-loop as drive sends heartbeats, takes
// the CPU time of this process and of the peers (name: pid) over the
// measured window, and counts it as tallyWindow does: the answers that
// arrived in it, and the latency and errors of the renewals due in it.
func driveLeases(ks []*simKubelet, lc *leaseClient, l heartbeatLoad, warmup, measure time.Duration, peers map[string]int) leaseResult {
	n := len(ks)
	res := leaseResult{load: l, lat: &latencies{}, peerCPU: map[string]time.Duration{}, peerRSS: map[string]int64{}}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		outs []outcome
	)
	start := time.Now().Add(10 * time.Millisecond)
	from, to := start.Add(warmup), start.Add(warmup+measure)
	var cpuFrom time.Duration
	peerFrom := map[string]time.Duration{}
	cpuTaken := false
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for k := 0; ; {
		now := <-tick.C
		if !cpuTaken && !now.Before(from) {
			cpuFrom, cpuTaken = processCPU(), true
			for name, pid := range peers {
				peerFrom[name] = pidCPU(pid)
			}
		}
		if !now.Before(to) {
			break
		}
		for ; ; k++ {
			due := start.Add(time.Duration(float64(k) * float64(l.period) / float64(n)))
			if due.After(now) || !due.Before(to) {
				break
			}
			s := ks[k%n]
			if !s.busy.CompareAndSwap(false, true) {
				if !due.Before(from) {
					mu.Lock()
					res.late++
					mu.Unlock()
				}
				continue
			}
			wg.Go(func() {
				defer s.busy.Store(false)
				re := s.conn == nil
				err := lc.renew(s)
				o := outcome{due: due, done: time.Now(), err: err, reconnected: re}
				mu.Lock()
				outs = append(outs, o)
				mu.Unlock()
			})
		}
	}
	res.cpu = processCPU() - cpuFrom
	for name, pid := range peers {
		res.peerCPU[name] = pidCPU(pid) - peerFrom[name]
		res.peerRSS[name] = procStatusBytes(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:")
	}
	res.window = to.Sub(from)
	res.rssBytes = procStatusBytes("/proc/self/status", "VmRSS:")
	wg.Wait()
	t := tallyWindow(outs, from, to)
	res.renewals, res.answeredLate, res.errors, res.reconnected = t.answered, t.answeredLate, t.errors, t.reconnects
	res.maxLat, res.firstErr = t.maxLat, t.firstErr
	res.lat.add(t.lat...)
	return res
}

// pidCPU is a process's user and system CPU time from /proc/PID/stat
// (utime+stime, in ticks of 10 ms), or 0 when it cannot be read.
func pidCPU(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// bedProcess finds the process called comm in the cgroup
// hummingbird/bed<index>/<group> (or below it) of any hierarchy.
func bedProcess(index int, group, comm string) (int, error) {
	cg := fmt.Sprintf(":/hummingbird/bed%d/%s", index, group)
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	var found []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		c, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil || strings.TrimSpace(string(c)) != comm {
			continue
		}
		cgs, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cgroup"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(cgs), "\n") {
			if i := strings.Index(line, cg); i >= 0 {
				if rest := line[i+len(cg):]; rest == "" || strings.HasPrefix(rest, "/") {
					found = append(found, pid)
					break
				}
			}
		}
	}
	if len(found) != 1 {
		return 0, fmt.Errorf("%d processes called %s in the cgroup hummingbird/bed%d/%s: %v", len(found), comm, index, group, found)
	}
	return found[0], nil
}
