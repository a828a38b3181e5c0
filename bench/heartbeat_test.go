package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"hummingbird.io/hummingbird/internal/controller"
	"hummingbird.io/hummingbird/internal/controller/controllertest"
	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/pki"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/wire"
)

// envHeartbeatRuns lists the loads BenchmarkHeartbeat drives, as
// AGENTSxPERIOD separated by commas, e.g. "10000x10s,100000x60s".
const envHeartbeatRuns = "HB_BENCH_HEARTBEAT"

// defaultHeartbeatRuns: a rate sweep with 8,000 agents on keep-alive
// connections (two open files each: both ends live in this process), then
// the target of issue 4, 100,000 agents at a 60 s period (1,667
// heartbeats/s), each heartbeat on a new TLS connection: 100,000 kept connections need a file
// limit above 200,000 (run "100000x60s" where the limit allows it).
const defaultHeartbeatRuns = "8000x8s,8000x4s,8000x3s,8000x2s,100000x60s:handshake"

// envHeartbeatMeasure is how long the load is measured after its warm-up
// (default: one period, at least 30 s).
const envHeartbeatMeasure = "HB_BENCH_HEARTBEAT_MEASURE"

// benchInventoryHash is the inventory hash every simulated agent reports
// and the controller holds, so that no reply asks for an inventory.
const benchInventoryHash = "sha256:bench"

// heartbeatLoad is one load: agents simulated agents, each sending a
// heartbeat every period, on a keep-alive connection or, with handshake, on
// a new TLS connection for every heartbeat.
type heartbeatLoad struct {
	agents    int
	period    time.Duration
	handshake bool
}

func (l heartbeatLoad) String() string {
	conn := "keepalive"
	if l.handshake {
		conn = "handshake"
	}
	return fmt.Sprintf("agents=%d/period=%s/conn=%s", l.agents, l.period, conn)
}

// rate is the offered load in heartbeats per second.
func (l heartbeatLoad) rate() float64 { return float64(l.agents) / l.period.Seconds() }

func parseHeartbeatLoads(s string) ([]heartbeatLoad, error) {
	var out []heartbeatLoad
	for _, f := range strings.Split(s, ",") {
		f, handshake := strings.CutSuffix(strings.TrimSpace(f), ":handshake")
		n, p, ok := strings.Cut(f, "x")
		agents, err := strconv.Atoi(n)
		if !ok || err != nil || agents < 1 {
			return nil, fmt.Errorf("%s: %q is not AGENTSxPERIOD, such as 10000x10s", envHeartbeatRuns, f)
		}
		period, err := time.ParseDuration(p)
		if err != nil || period < 100*time.Millisecond {
			return nil, fmt.Errorf("%s: %q: the period must be a duration of at least 100ms", envHeartbeatRuns, f)
		}
		out = append(out, heartbeatLoad{agents, period, handshake})
	}
	return out, nil
}

// BenchmarkHeartbeat drives simulated agents against one controller over
// real mutual TLS: every agent holds its own keep-alive TLS connection with
// its own client certificate and sends wire.Heartbeat (its boot id, a
// growing seq) every period, spread evenly over the period. One run of a
// load (b.N is ignored: run with -benchtime 1x) connects every agent, warms
// up for one period (every agent is heard once), then measures: heartbeats/s
// answered, the latency of each from its scheduled time to its decoded
// reply (p50, p99, max), late heartbeats (an agent's previous one still
// unanswered when the next was due), errors, and the process CPU time per
// 1,000 heartbeats (controller and driver together: they share the
// process).
func BenchmarkHeartbeat(b *testing.B) {
	spec := os.Getenv(envHeartbeatRuns)
	if spec == "" {
		spec = defaultHeartbeatRuns
	}
	loads, err := parseHeartbeatLoads(spec)
	if err != nil {
		b.Fatal(err)
	}
	var measure time.Duration
	if s := os.Getenv(envHeartbeatMeasure); s != "" {
		if measure, err = time.ParseDuration(s); err != nil {
			b.Fatalf("%s: %v", envHeartbeatMeasure, err)
		}
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			for _, l := range loads {
				b.Run(l.String(), func(b *testing.B) {
					m := measure
					if m == 0 {
						m = max(l.period, 30*time.Second)
					}
					res := runHeartbeatLoad(b, be.db(b), l, l.period, m)
					res.report(b)
				})
			}
		})
	}
}

// TestHeartbeatBenchSetup runs BenchmarkHeartbeat's setup and driver with a
// few agents for a few seconds, so that go test ./... catches a broken
// benchmark: every heartbeat must be answered.
func TestHeartbeatBenchSetup(t *testing.T) {
	l := heartbeatLoad{agents: 40, period: 500 * time.Millisecond}
	res := runHeartbeatLoad(t, "", l, 500*time.Millisecond, 2*time.Second)
	t.Logf("%+v", res)
	if res.errors > 0 || res.late > 0 {
		t.Fatalf("%d errors, %d late heartbeats (first error: %v)", res.errors, res.late, res.firstErr)
	}
	if want := int(l.rate() * 2 * 0.9); res.beats < want {
		t.Fatalf("%d heartbeats answered in 2 s, want at least %d", res.beats, want)
	}
}

// heartbeatResult is what one run measured.
type heartbeatResult struct {
	load         heartbeatLoad
	enroll       time.Duration // storing the hosts and signing their certificates
	connect      time.Duration // every agent's TLS handshake
	beats        int           // answers that arrived in the measured window (tallyWindow)
	answeredLate int           // due in the window, answered after it
	window       time.Duration
	lat          *latencies
	maxLat       time.Duration
	late         int // not sent: the agent's previous heartbeat was still unanswered
	errors       int
	firstErr     error
	reconnects   int
	cpu          time.Duration // process CPU (user+system) in the window
	rssBytes     int64         // process VmRSS at the end of the window
	goroutines   int
	availableEnd int // hosts the monitor holds as available at the end
}

func (r heartbeatResult) report(b *testing.B) {
	b.ReportMetric(float64(r.beats)/r.window.Seconds(), "beats/s")
	b.ReportMetric(r.load.rate(), "offered/s")
	r.lat.report(b)
	b.ReportMetric(float64(r.maxLat), "max-ns")
	b.ReportMetric(float64(r.cpu.Milliseconds())/float64(max(r.beats, 1))*1000, "cpu-ms/1k-beats")
	b.ReportMetric(r.cpu.Seconds()/r.window.Seconds(), "cores")
	b.ReportMetric(float64(r.late), "late")
	b.ReportMetric(float64(r.errors), "errors")
	b.ReportMetric(float64(r.rssBytes)/(1<<20), "rss-MiB")
	b.ReportMetric(r.connect.Seconds(), "connect-s")
	if r.firstErr != nil {
		b.Logf("first error: %v", r.firstErr)
	}
	load, _ := os.ReadFile("/proc/loadavg")
	b.ReportMetric(float64(r.answeredLate), "answered-after")
	b.Logf("%s: %d answered in %s (%.0f/s of %.0f offered; %d due in it answered after it), p50 %s p99 %s max %s, late %d, errors %d, reconnects %d; "+
		"CPU %.1f ms per 1,000 heartbeats (%.2f cores); RSS %d MiB, %d goroutines; enroll %s, connect %s; available at end %d; loadavg %s",
		r.load, r.beats, r.window.Round(time.Millisecond), float64(r.beats)/r.window.Seconds(), r.load.rate(), r.answeredLate,
		r.lat.percentile(0.5).Round(10*time.Microsecond), r.lat.percentile(0.99).Round(10*time.Microsecond), r.maxLat.Round(time.Millisecond),
		r.late, r.errors, r.reconnects, float64(r.cpu.Microseconds())/float64(max(r.beats, 1)), r.cpu.Seconds()/r.window.Seconds(),
		r.rssBytes>>20, r.goroutines, r.enroll.Round(time.Millisecond), r.connect.Round(time.Millisecond), r.availableEnd, strings.TrimSpace(string(load)))
}

// runHeartbeatLoad starts a controller on db whose heartbeat interval is
// the load's period, enrolls the load's agents through the store, connects
// them, and drives them for one warm-up period and then the measured window.
func runHeartbeatLoad(tb testing.TB, db string, l heartbeatLoad, warmup, measure time.Duration) heartbeatResult {
	tb.Helper()
	if l.handshake {
		raiseFileLimit(tb, 4096)
	} else {
		raiseFileLimit(tb, 2*l.agents+1024)
	}
	in := controllertest.Start(tb, db, func(c *controller.Config) {
		c.MgmtSubnet = mgmtSubnet
		c.MgmtControllerIPs = []string{"10.0.0.1", "10.0.0.2"}
		// The monitor's interval is at least a minute, so that no host
		// heard while the others connect is declared degraded before the
		// load starts.
		c.Heartbeat.Interval = max(l.period, time.Minute)
	})
	res := heartbeatResult{load: l, lat: &latencies{}}
	t0 := time.Now()
	agents, err := enrollAgents(context.Background(), in.Controller, l.agents)
	if err != nil {
		tb.Fatal(err)
	}
	res.enroll = time.Since(t0)
	addr := strings.TrimPrefix(in.URL, "https://")
	if !l.handshake {
		t0 = time.Now()
		if err := connectAgents(agents, addr); err != nil {
			tb.Fatal(err)
		}
		res.connect = time.Since(t0)
	}
	tb.Cleanup(func() {
		for _, a := range agents {
			a.close()
		}
	})
	drive(agents, addr, l, warmup, measure, &res)
	res.availableEnd = countAvailable(tb, in.Controller.Store)
	return res
}

// raiseFileLimit makes room for n open files: two per agent (both ends of
// its connection live in this process).
func raiseFileLimit(tb testing.TB, n int) {
	tb.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		tb.Fatal(err)
	}
	if lim.Cur >= uint64(n) {
		return
	}
	want := syscall.Rlimit{Cur: uint64(n), Max: max(lim.Max, uint64(n))}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		skip(tb, "this load needs %d open files (both ends of every agent's connection) and the limit is %d/%d (%v): "+
			"raise the hard limit (ulimit -Hn; needs CAP_SYS_RESOURCE), or use fewer agents or :handshake", n, lim.Cur, lim.Max, err)
	}
}

// simAgent is one simulated hb-agent: its certificate and its connection.
type simAgent struct {
	tls  *tls.Config
	src  net.IP // local address, to spread connections over enough ports
	boot string
	seq  uint64

	busy atomic.Bool
	conn *tls.Conn
	br   *bufio.Reader
}

// enrollAgents stores n edgeworkers as hb-agent join leaves them (the
// agent's certificate serial on the host, an inventory and its hash), in
// transactions of 1000, and returns one simulated agent for each. The
// hosts are stored available: every run starts in the steady state. All
// agents share one key (each has its own certificate) to save time.
func enrollAgents(ctx context.Context, c *controller.Controller, n int) ([]*simAgent, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "bench"}}, key)
	if err != nil {
		return nil, err
	}
	csr := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER})
	roots := x509.NewCertPool()
	roots.AddCert(c.CA.Cert)

	uuids := make([]string, n)
	serials := make([]string, n)
	agents := make([]*simAgent, n)
	now := time.Now()
	sources := (n + 19_999) / 20_000 // local ports: about 28,000 per source address
	var (
		wg       sync.WaitGroup
		next     atomic.Int64
		firstErr error
		errOnce  sync.Once
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				uuids[i] = uuid.NewString()
				certPEM, serial, err := pki.SignAgent(c.CA, csr, uuids[i], "", false, now)
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				block, _ := pem.Decode(certPEM)
				serials[i] = serial
				var boot [8]byte
				rand.Read(boot[:])
				agents[i] = &simAgent{
					tls: &tls.Config{
						RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12,
						Certificates: []tls.Certificate{{Certificate: [][]byte{block.Bytes}, PrivateKey: key}},
					},
					src:  net.IPv4(127, 0, 0, byte(2+i%sources)),
					boot: hex.EncodeToString(boot[:]),
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("sign agent certificates: %w", firstErr)
	}
	inv, err := json.Marshal(wire.Inventory{Kernel: "6.1.0", OS: wire.OS{ID: "debian", VersionID: "12"}})
	if err != nil {
		return nil, err
	}
	const batch = 1000
	for lo := 0; lo < n; lo += batch {
		hi := min(lo+batch, n)
		err := c.Store.Write(ctx, func(tx store.Tx) error {
			t := time.Now().UTC().Truncate(time.Microsecond)
			mgmt, err := tx.ManagementPool()
			if err != nil {
				return err
			}
			for i := lo; i < hi; i++ {
				req := edgeworker(i + 1)
				h := store.Host{
					UUID: uuids[i], Hostname: req.Hostname, Personality: req.Personality,
					Administrative: inventory.AdminUnlocked, Operational: inventory.OperEnabled,
					Availability: inventory.AvailAvailable, InvProvision: inventory.ProvUnprovisioned,
					MgmtMAC: req.MgmtMAC, MgmtIP: req.MgmtIP, PoolID: mgmt.ID, CreatedAt: t, UpdatedAt: t,
				}
				if h.ID, err = tx.NextID("hosts"); err != nil {
					return err
				}
				if err := tx.InsertHost(&h); err != nil {
					return err
				}
				if err := tx.SetHostAgent(h.ID, serials[i]); err != nil {
					return err
				}
				if err := tx.SetHostInventory(h.ID, string(inv), benchInventoryHash); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("enroll hosts %d-%d: %w", lo, hi-1, err)
		}
	}
	return agents, nil
}

// connectAgents makes every agent's TLS connection (a full handshake with
// its client certificate), 32 at a time, and sends its first heartbeat on
// it at once, as hb-agent does (the controller closes a connection on which
// no request comes within its ReadHeaderTimeout).
func connectAgents(agents []*simAgent, addr string) error {
	var (
		wg   sync.WaitGroup
		next atomic.Int64
		errs = make(chan error, 1)
	)
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(agents) {
					return
				}
				if _, err := agents[i].beat(addr, false); err != nil {
					select {
					case errs <- fmt.Errorf("agent %d: %w", i, err):
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
		return err
	default:
		return nil
	}
}

func (a *simAgent) connect(addr string) error {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: a.src}, Timeout: 30 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	c := tls.Client(raw, a.tls)
	if err := c.HandshakeContext(ctx); err != nil {
		raw.Close()
		return err
	}
	a.conn, a.br = c, bufio.NewReaderSize(c, 1024)
	return nil
}

func (a *simAgent) close() {
	if a.conn != nil {
		a.conn.Close()
		a.conn = nil
	}
}

// beat sends one heartbeat on the agent's keep-alive connection, as
// HTTP/1.1, and reads and checks the reply. A broken connection is made
// again at the next heartbeat; reconnected says it was.
func (a *simAgent) beat(addr string, handshake bool) (reconnected bool, err error) {
	if handshake {
		defer a.close()
	}
	if a.conn == nil {
		if err := a.connect(addr); err != nil {
			return true, err
		}
		reconnected = true
	}
	a.seq++
	body, err := json.Marshal(wire.Heartbeat{Capability: wire.CapabilityVersion, Seq: a.seq, Boot: a.boot, InventoryHash: benchInventoryHash})
	if err != nil {
		return reconnected, err
	}
	var req bytes.Buffer
	fmt.Fprintf(&req, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: hb-agent-bench\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
		wire.HeartbeatPath, addr, len(body))
	req.Write(body)
	a.conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := a.conn.Write(req.Bytes()); err != nil {
		a.close()
		return reconnected, err
	}
	resp, err := http.ReadResponse(a.br, nil)
	if err != nil {
		a.close()
		return reconnected, err
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		a.close()
		return reconnected, err
	}
	if resp.StatusCode != http.StatusOK {
		return reconnected, fmt.Errorf("heartbeat: %s: %s", resp.Status, bytes.TrimSpace(data))
	}
	var reply wire.HeartbeatReply
	if err := json.Unmarshal(data, &reply); err != nil {
		return reconnected, fmt.Errorf("heartbeat reply: %w", err)
	}
	if reply.SendInventory || reply.IntervalMillis <= 0 {
		return reconnected, fmt.Errorf("unexpected heartbeat reply %+v", reply)
	}
	if resp.Close {
		a.close()
	}
	return reconnected, nil
}

// drive sends the load's heartbeats open-loop: heartbeat k is due at
// start + k·period/agents and goes to agent k mod agents, whatever happened
// to the earlier ones, so a slow controller cannot slow the offered load
// down. It counts the window after warmup as tallyWindow does: the answers
// that arrived in it, over the process's CPU time in it, and the latency
// and errors of the heartbeats due in it.
func drive(agents []*simAgent, addr string, l heartbeatLoad, warmup, measure time.Duration, res *heartbeatResult) {
	n := len(agents)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		outs []outcome
	)
	start := time.Now().Add(10 * time.Millisecond)
	from, to := start.Add(warmup), start.Add(warmup+measure)
	var cpuFrom, cpuTo time.Duration
	cpuTaken := false
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for k := 0; ; {
		now := <-tick.C
		if !cpuTaken && !now.Before(from) {
			cpuFrom, cpuTaken = processCPU(), true
		}
		if !now.Before(to) {
			break
		}
		for ; ; k++ {
			due := start.Add(time.Duration(float64(k) * float64(l.period) / float64(n)))
			if due.After(now) || !due.Before(to) {
				break
			}
			a := agents[k%n]
			if !a.busy.CompareAndSwap(false, true) {
				if !due.Before(from) {
					mu.Lock()
					res.late++
					mu.Unlock()
				}
				continue
			}
			wg.Go(func() {
				defer a.busy.Store(false)
				re, err := a.beat(addr, l.handshake)
				o := outcome{due: due, done: time.Now(), err: err, reconnected: re && !l.handshake}
				mu.Lock()
				outs = append(outs, o)
				mu.Unlock()
			})
		}
	}
	cpuTo = processCPU()
	res.window = to.Sub(from)
	res.cpu = cpuTo - cpuFrom
	res.rssBytes = procStatusBytes("/proc/self/status", "VmRSS:")
	res.goroutines = runtime.NumGoroutine()
	wg.Wait()
	t := tallyWindow(outs, from, to)
	res.beats, res.answeredLate, res.errors, res.reconnects = t.answered, t.answeredLate, t.errors, t.reconnects
	res.maxLat, res.firstErr = t.maxLat, t.firstErr
	res.lat.add(t.lat...)
}

// processCPU is this process's user and system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procStatusBytes reads a "kB" field, such as VmRSS:, of a
// /proc/PID/status file, in bytes (-1 when absent).
func procStatusBytes(path, field string) int64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return -1
			}
			return kb << 10
		}
	}
	return -1
}

// countAvailable counts the hosts stored as available.
func countAvailable(tb testing.TB, st store.Store) int {
	tb.Helper()
	var n int
	err := st.Read(context.Background(), func(tx store.Tx) error {
		hosts, err := tx.ListHosts(store.HostFilter{Availability: inventory.AvailAvailable})
		n = len(hosts)
		return err
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		tb.Errorf("count available hosts: %v", err)
	}
	return n
}
