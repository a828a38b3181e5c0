package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"hummingbird.io/hummingbird/internal/leader"
	"hummingbird.io/hummingbird/internal/pki"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/testbed"
)

// envFailoverTrials sets how many times BenchmarkLeaderFailover faults a leader, per system
// and fault (default 20).
const envFailoverTrials = "HB_BENCH_FAILOVER_TRIALS"

// envFailoverFaults lists the faults BenchmarkLeaderFailover makes, comma-separated (default
// kill,stop,partition).
const envFailoverFaults = "HB_BENCH_FAILOVER_FAULTS"

// envFailoverSystems set to hummingbird leaves client-go's election out.
const envFailoverSystems = "HB_BENCH_FAILOVER_SYSTEMS"

// envElector makes the test binary a client-go elector (see TestLeaseElector): its identity.
const envElector = "HB_BENCH_ELECTOR"

// candidate is one of three processes that elect a leader, faulted in turn.
type candidate struct {
	name  string
	start func() *exec.Cmd
	cmd   *exec.Cmd
	// proxy carries all the candidate's connections to the database or the API server: cut,
	// the candidate is partitioned from it (and so from the others).
	proxy *cutProxy
}

func (c *candidate) run(tb testing.TB) {
	tb.Helper()
	c.cmd = c.start()
	if err := c.cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", c.name, err)
	}
}

func (c *candidate) kill() {
	if c.cmd != nil && c.cmd.Process != nil {
		c.cmd.Process.Signal(syscall.SIGCONT)
		c.cmd.Process.Kill()
		c.cmd.Wait()
	}
}

// election is a system under test: who leads now, in which term.
type election struct {
	name  string
	cands []*candidate
	// leader says which candidate leads and a term that grows with each new leader; ok false
	// while nobody is known to lead.
	leader func() (name string, term int64, ok bool)
}

// BenchmarkLeaderFailover measures how long the duties that must run once are without a
// leader after the leader is killed (SIGKILL) or stopped (SIGSTOP), from the fault to the
// moment a new leader's claim is visible: three hb-controller processes on one PostgreSQL
// database with the default lease (2 s), and, in the same run, client-go's Lease election
// (leaderelection with its documented timings: LeaseDuration 15 s, RenewDeadline 10 s,
// RetryPeriod 2 s) of three processes on the test bed's kube-apiserver. A killed leader is
// started again as a follower, a stopped one continued, before the next trial.
func BenchmarkLeaderFailover(b *testing.B) {
	if os.Getenv("HB_E2E") != "1" {
		skip(b, "set HB_E2E=1 (root, after test/bed/prepare): client-go's election runs on the test bed's kube-apiserver")
	}
	trials := 20
	if v := os.Getenv(envFailoverTrials); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("%s=%q: give a number of trials", envFailoverTrials, v)
		}
		trials = n
	}
	db := postgresDB(b)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
	defer cancel()
	systems := []*election{hummingbirdElection(b, ctx, db)}
	if os.Getenv(envFailoverSystems) != "hummingbird" {
		bed := testbed.Start(b, ctx, testbed.Options{})
		systems = append(systems, clientGoElection(b, bed.ControlPlane.Kubeconfig))
	}
	faults := []string{"kill", "stop", "partition"}
	if v := os.Getenv(envFailoverFaults); v != "" {
		faults = strings.Split(v, ",")
		for _, f := range faults {
			if !slices.Contains([]string{"kill", "stop", "partition"}, f) {
				b.Fatalf("%s=%q: give faults among kill, stop and partition", envFailoverFaults, v)
			}
		}
	}
	for range b.N {
		for _, e := range systems {
			for _, fault := range faults {
				var took []time.Duration
				for i := range trials {
					d, err := faultLeader(ctx, e, fault)
					if err != nil {
						b.Fatalf("%s, %s, trial %d: %v", e.name, fault, i+1, err)
					}
					took = append(took, d)
				}
				slices.Sort(took)
				p := func(q float64) float64 {
					return float64(took[min(len(took)-1, int(q*float64(len(took))))].Milliseconds())
				}
				b.Logf("%s, leader %s: p50 %.0f ms, p99 %.0f ms, min %v, max %v over %d trials", e.name, fault, p(0.5), p(0.99),
					took[0].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond), trials)
				b.ReportMetric(p(0.5), e.name+"-"+fault+"-p50-ms")
				b.ReportMetric(p(0.99), e.name+"-"+fault+"-p99-ms")
			}
		}
	}
}

// faultLeader faults e's leader once and returns the time until another leads, with the faulted
// one back as a follower.
func faultLeader(ctx context.Context, e *election, fault string) (time.Duration, error) {
	name, term, ok := waitLeader(ctx, e, 2*time.Minute, func(string, int64) bool { return true })
	if !ok {
		return 0, fmt.Errorf("no leader within 2 minutes")
	}
	var c *candidate
	for _, x := range e.cands {
		if x.name == name {
			c = x
		}
	}
	if c == nil {
		return 0, fmt.Errorf("the leader %q is none of the candidates", name)
	}
	start := time.Now()
	switch fault {
	case "kill":
		c.cmd.Process.Kill()
	case "stop":
		c.cmd.Process.Signal(syscall.SIGSTOP)
	case "partition":
		c.proxy.setCut(true)
	}
	_, _, ok = waitLeader(ctx, e, 2*time.Minute, func(n string, t int64) bool { return n != name && t > term })
	took := time.Since(start)
	if !ok {
		return 0, fmt.Errorf("no other leader within 2 minutes of the fault")
	}
	switch fault {
	case "kill":
		c.cmd.Wait()
		c.run(testingNone{})
	case "stop":
		c.cmd.Process.Signal(syscall.SIGCONT)
	case "partition":
		c.proxy.setCut(false)
	}
	// The faulted one settles as a follower before the next trial.
	time.Sleep(3 * time.Second)
	return took, nil
}

// testingNone is a testing.TB for run, whose start fails the trial instead.
type testingNone struct{ testing.TB }

func (testingNone) Helper()                   {}
func (testingNone) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }

// waitLeader polls e every 5 ms until ok accepts its leader, within d.
func waitLeader(ctx context.Context, e *election, d time.Duration, ok func(string, int64) bool) (string, int64, bool) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if n, t, known := e.leader(); known && ok(n, t) {
			return n, t, true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return "", 0, false
}

// hummingbirdElection starts three hb-controller processes on db, sharing the first one's CA.
func hummingbirdElection(b *testing.B, ctx context.Context, db string) *election {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "hb-controller")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "hummingbird.io/hummingbird/cmd/hb-controller").CombinedOutput(); err != nil {
		b.Fatalf("build hb-controller: %v\n%s", err, out)
	}
	st, err := store.Open(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	e := &election{name: "hummingbird"}
	base := b.TempDir()
	network, address, err := postgresServer(db)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 3 {
		name := fmt.Sprintf("ctl-%d", i+1)
		dir := filepath.Join(base, name)
		port := freePort(b)
		logf, err := os.Create(filepath.Join(base, name+".log"))
		if err != nil {
			b.Fatal(err)
		}
		proxy := newCutProxy(b, func() (net.Conn, error) { return net.Dial(network, address) })
		dsn := throughProxy(b, db, proxy.addr())
		c := &candidate{name: name, proxy: proxy, start: func() *exec.Cmd {
			cmd := exec.Command(bin, "--name", name, "--data-dir", dir, "--db", dsn, "--listen", "127.0.0.1:"+strconv.Itoa(port),
				"--mgmt-subnet", "10.0.0.0/8", "--mgmt-controller-ips", "10.0.0.1")
			cmd.Stdout, cmd.Stderr = logf, logf
			return cmd
		}}
		if i > 0 {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				b.Fatal(err)
			}
			first := filepath.Join(base, "ctl-1")
			for _, f := range []string{pki.CACertFile, pki.CAKeyFile} {
				data, err := os.ReadFile(filepath.Join(first, f))
				if err != nil {
					b.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, f), data, 0o600); err != nil {
					b.Fatal(err)
				}
			}
		}
		c.run(b)
		b.Cleanup(c.kill)
		e.cands = append(e.cands, c)
		if i == 0 {
			for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
				if _, err := os.Stat(filepath.Join(dir, pki.CACertFile)); err == nil {
					break
				}
				if time.Now().After(deadline) {
					b.Fatal("the first controller made no CA within a minute")
				}
			}
		}
	}
	e.leader = func() (string, int64, bool) {
		var (
			l    store.Leadership
			rows []store.Controller
		)
		err := st.Read(ctx, func(tx store.Tx) error {
			var err error
			if l, err = tx.Leadership(leader.Duty); err != nil {
				return err
			}
			rows, err = tx.ListControllers()
			return err
		})
		if err != nil || l.Holder == "" {
			return "", 0, false
		}
		for _, r := range rows {
			if r.RunID == l.Holder {
				return r.Name, l.Epoch, true
			}
		}
		return "", 0, false
	}
	return e
}

// freePort is a loopback port nobody listens on now.
func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// clientGoElection starts three client-go electors on the cluster of kubeconfig: this test
// binary again, as TestLeaseElector. Each prints LEADING when it starts leading.
func clientGoElection(b *testing.B, kubeconfig string) *election {
	b.Helper()
	e := &election{name: "client-go"}
	var (
		mu      sync.Mutex
		current string
		term    int64
	)
	raw, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 3 {
		name := fmt.Sprintf("elector-%d", i+1)
		// Each elector reaches the API server through a proxy of its own, named as the server.
		cfg := raw.DeepCopy()
		c := &candidate{name: name}
		for _, cl := range cfg.Clusters {
			u, err := url.Parse(cl.Server)
			if err != nil {
				b.Fatal(err)
			}
			c.proxy = newCutProxy(b, func() (net.Conn, error) { return net.Dial("tcp", u.Host) })
			cl.TLSServerName, cl.Server = u.Hostname(), "https://"+c.proxy.addr()
		}
		own := filepath.Join(b.TempDir(), name+".kubeconfig")
		if err := clientcmd.WriteToFile(*cfg, own); err != nil {
			b.Fatal(err)
		}
		c.start = func() *exec.Cmd {
			cmd := exec.Command(os.Args[0], "-test.run", "^TestLeaseElector$")
			cmd.Env = append(os.Environ(), envElector+"="+name, "KUBECONFIG="+own)
			out, err := cmd.StdoutPipe()
			if err != nil {
				panic(err)
			}
			go func() {
				sc := bufio.NewScanner(out)
				for sc.Scan() {
					if strings.HasPrefix(sc.Text(), "LEADING") {
						mu.Lock()
						current, term = name, term+1
						mu.Unlock()
					}
				}
				io.Copy(io.Discard, out)
			}()
			return cmd
		}
		c.run(b)
		b.Cleanup(c.kill)
		e.cands = append(e.cands, c)
	}
	e.leader = func() (string, int64, bool) {
		mu.Lock()
		defer mu.Unlock()
		return current, term, current != ""
	}
	return e
}

// TestLeaseElector is a client-go elector for BenchmarkLeaderFailover, run as a process of
// its own; without HB_BENCH_ELECTOR it skips (it is no test).
func TestLeaseElector(t *testing.T) {
	id := os.Getenv(envElector)
	if id == "" {
		t.Skip("a client-go elector for BenchmarkLeaderFailover, which runs it")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: "hb-bench-election", Namespace: "default"},
		Client:     cs.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}
	for {
		// The timings client-go documents and kube-controller-manager uses by default.
		leaderelection.RunOrDie(context.Background(), leaderelection.LeaderElectionConfig{
			Lock: lock, LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(ctx context.Context) {
					fmt.Printf("LEADING %s\n", time.Now().Format(time.RFC3339Nano))
					<-ctx.Done()
				},
				OnStoppedLeading: func() { fmt.Printf("STOPPED %s\n", time.Now().Format(time.RFC3339Nano)) },
			},
		})
	}
}

// postgresServer is where the PostgreSQL server of dsn listens: a Unix socket (host=/dir) or a
// TCP address.
func postgresServer(dsn string) (network, address string, err error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", "", err
	}
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	if dir := u.Query().Get("host"); strings.HasPrefix(dir, "/") {
		return "unix", filepath.Join(dir, ".s.PGSQL."+port), nil
	}
	return "tcp", net.JoinHostPort(u.Hostname(), port), nil
}

// throughProxy is dsn reaching its server at addr (a cutProxy), over TCP.
func throughProxy(tb testing.TB, dsn, addr string) string {
	tb.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	q.Del("host")
	u.Host, u.RawQuery = addr, q.Encode()
	return u.String()
}
