package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"hummingbird.io/hummingbird/internal/mgmtnet/dhcp/dhcptest"
)

// envVIPTrials is the number of failovers BenchmarkVIPFailoverKeepalived
// measures per variant (default 20).
const envVIPTrials = "HB_BENCH_VIP_TRIALS"

// The VIP bed's addresses: the two members, the client and the VIP, all on
// one /24.
const (
	vipMemberA = "10.201.0.1"
	vipMemberB = "10.201.0.2"
	vipClient  = "10.201.0.100"
	vipAddr    = "10.201.0.10"
)

const (
	vipProbeEvery   = 10 * time.Millisecond // a new probe every 10 ms ...
	vipProbeTimeout = 50 * time.Millisecond // ... each given 50 ms
)

// vipVariant is one way of running keepalived.
type vipVariant struct {
	name    string
	version int           // vrrp_version
	advert  time.Duration // advert_int
}

var vipVariants = []vipVariant{
	{"vrrp2-advert1s", 2, time.Second},
	{"vrrp3-advert100ms", 3, 100 * time.Millisecond},
}

// vipBed is four network namespaces: a bridge (br0) with three ports, one
// per other namespace, each joined to it by a veth pair whose far end is
// eth0: member A, member B and the client. Each member serves HTTP on port
// 80 of every address, answering with its name ("A" or "B"); the client
// probes http://VIP/ on a new connection every 10 ms.
type vipBed struct {
	br, cli string
	ns      map[string]string // member name -> namespace
	probes  *vipProber
}

func newVIPBed(tb testing.TB) *vipBed {
	tb.Helper()
	dhcptest.Require(tb, "keepalived")
	d := &vipBed{
		br:  dhcptest.Netns(tb, "hbvbr"),
		cli: dhcptest.Netns(tb, "hbvc"),
		ns:  map[string]string{"A": dhcptest.Netns(tb, "hbva"), "B": dhcptest.Netns(tb, "hbvb")},
	}
	dhcptest.IP(tb, "-n", d.br, "link", "add", "br0", "type", "bridge")
	dhcptest.IP(tb, "-n", d.br, "link", "set", "br0", "up")
	for _, p := range []struct{ port, ns, addr string }{
		{"port-a", d.ns["A"], vipMemberA}, {"port-b", d.ns["B"], vipMemberB}, {"port-c", d.cli, vipClient},
	} {
		dhcptest.Veth(tb, d.br, p.port, p.ns, "eth0", "")
		dhcptest.IP(tb, "-n", d.br, "link", "set", p.port, "master", "br0")
		dhcptest.IP(tb, "-n", p.ns, "addr", "add", p.addr+"/24", "dev", "eth0")
	}
	for name, ns := range d.ns {
		var l net.Listener
		if err := dhcptest.In(ns, func() (err error) {
			l, err = net.Listen("tcp4", ":80")
			return err
		}); err != nil {
			tb.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, name)
		})}
		go srv.Serve(l)
		tb.Cleanup(func() { srv.Close() })
	}
	d.probes = startVIPProber(tb, d.cli)
	return d
}

// keepalived starts keepalived on both members with the variant's
// settings, each with its own configuration and pid files, and returns a
// function that stops both and one that returns their logs.
func (d *vipBed) keepalived(tb testing.TB, v vipVariant) (stop func(), logs func() string) {
	tb.Helper()
	dir := tb.TempDir()
	var procs []*dhcptest.Proc
	for _, m := range []struct {
		name, state string
		prio        int
	}{{"A", "MASTER", 150}, {"B", "BACKUP", 100}} {
		advert := strconv.FormatFloat(v.advert.Seconds(), 'f', -1, 64)
		conf := fmt.Sprintf(`global_defs {
	router_id hb-bench-%[1]s
	vrrp_version %[2]d
}
vrrp_instance VI_BENCH {
	state %[3]s
	interface eth0
	virtual_router_id 51
	priority %[4]d
	advert_int %[5]s
	virtual_ipaddress {
		%[6]s/24 dev eth0
	}
}
`, m.name, v.version, m.state, m.prio, advert, vipAddr)
		f := filepath.Join(dir, m.name+".conf")
		if err := os.WriteFile(f, []byte(conf), 0o644); err != nil {
			tb.Fatal(err)
		}
		procs = append(procs, dhcptest.Start(tb, d.ns[m.name], "keepalived",
			"--dont-fork", "--log-console", "--log-detail", "--no-syslog", "--vrrp",
			"--use-file="+f,
			"--pid="+filepath.Join(dir, m.name+".pid"),
			"--vrrp_pid="+filepath.Join(dir, m.name+"-vrrp.pid")))
	}
	logs = func() string {
		neigh, _ := exec.Command("ip", "-n", d.cli, "neigh").CombinedOutput()
		return fmt.Sprintf("keepalived on A:\n%s\nkeepalived on B:\n%s\nclient's neighbours:\n%s",
			procs[0].Output(), procs[1].Output(), neigh)
	}
	return func() {
		for _, p := range procs {
			p.Stop()
		}
		// The VRRP child may outlive its parent for a moment; the VIP
		// must be gone before the next variant starts.
		deadline := time.Now().Add(5 * time.Second)
		for d.holdsVIP(tb, "A") || d.holdsVIP(tb, "B") {
			if time.Now().After(deadline) {
				tb.Fatalf("the VIP is still held 5 s after keepalived was stopped")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}, logs
}

// holdsVIP reports whether member m has the VIP on its eth0.
func (d *vipBed) holdsVIP(tb testing.TB, m string) bool {
	tb.Helper()
	var has bool
	if err := dhcptest.In(d.ns[m], func() error {
		ifc, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		addrs, err := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.String() == vipAddr {
				has = true
			}
		}
		return err
	}); err != nil {
		tb.Fatal(err)
	}
	return has
}

// setLink sets member m's eth0 up or down and returns the time just before
// the change.
func (d *vipBed) setLink(tb testing.TB, m string, up bool) time.Time {
	tb.Helper()
	var at time.Time
	if err := dhcptest.In(d.ns[m], func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		ifr, err := unix.NewIfreq("eth0")
		if err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
			return err
		}
		flags := ifr.Uint16()
		if up {
			flags |= unix.IFF_UP
		} else {
			flags &^= unix.IFF_UP
		}
		ifr.SetUint16(flags)
		at = time.Now()
		return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
	}); err != nil {
		tb.Fatalf("set %s's eth0 up=%v: %v", m, up, err)
	}
	return at
}

// waitActive waits until member m holds the VIP, the other does not, and
// the last 10 probes (100 ms) were all answered by m.
func (d *vipBed) waitActive(tb testing.TB, m string, timeout time.Duration, explain func() string) {
	tb.Helper()
	other := map[string]string{"A": "B", "B": "A"}[m]
	deadline := time.Now().Add(timeout)
	for {
		if d.holdsVIP(tb, m) && !d.holdsVIP(tb, other) && d.probes.lastAll(10, m) {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s not the only active member within %v (A holds VIP %v, B %v; last probes %v)\n%s",
				m, timeout, d.holdsVIP(tb, "A"), d.holdsVIP(tb, "B"), d.probes.last(10), explain())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// vipTrial is what one failover measured.
type vipTrial struct {
	failover time.Duration // from A's link down to the first answer from B
	lost     int           // probes sent after the fault that got no answer before B's first
	flips    int           // probes answered by the member that was no longer active
	restore  time.Duration // from A's link up to the first answer from A again
}

// trial cuts A's link at a random point of the advert period, waits for B
// to answer, keeps watching for 4 advert intervals (more than the master
// down interval), then brings A's link back, waits until A is the only
// active member again (keepalived preempts by default) and watches as long
// again.
func (d *vipBed) trial(tb testing.TB, v vipVariant, explain func() string) vipTrial {
	tb.Helper()
	var r vipTrial
	watch := 4 * v.advert // longer than the master down interval, 3 adverts plus the skew
	time.Sleep(rand.N(v.advert))
	fault := d.setLink(tb, "A", false)
	firstB, ok := d.probes.first(fault, "B", 30*time.Second)
	if !ok {
		d.setLink(tb, "A", true)
		tb.Fatalf("no answer from B within 30 s of A's link going down (last probes %v)\n%s", d.probes.last(10), explain())
	}
	r.failover = firstB.done.Sub(fault)
	time.Sleep(watch)
	for _, p := range d.probes.since(fault) {
		switch {
		case p.member == "" && p.done.Before(firstB.done):
			r.lost++
		case p.member == "A":
			r.flips++
		}
	}
	up := d.setLink(tb, "A", true)
	firstA, ok := d.probes.first(up, "A", 30*time.Second)
	if !ok {
		tb.Fatalf("no answer from A within 30 s of its link coming back (last probes %v)\n%s", d.probes.last(10), explain())
	}
	r.restore = firstA.done.Sub(up)
	d.waitActive(tb, "A", 30*time.Second, explain)
	time.Sleep(watch)
	for _, p := range d.probes.since(firstA.sent) {
		if p.member == "B" && p.sent.After(firstA.done) {
			r.flips++
		}
	}
	return r
}

// runVIPTrials starts keepalived with v's settings, waits until A is
// active, and measures n failovers.
func (d *vipBed) runVIPTrials(tb testing.TB, v vipVariant, n int) []vipTrial {
	tb.Helper()
	stop, explain := d.keepalived(tb, v)
	defer stop()
	d.waitActive(tb, "A", 30*time.Second, explain)
	var trials []vipTrial
	for range n {
		trials = append(trials, d.trial(tb, v, explain))
	}
	return trials
}

// BenchmarkVIPFailoverKeepalived measures how long keepalived takes to move
// a VIP from a member whose link is cut to the backup, as a client sees it:
// the time from A's link going down (eth0 set down in A's namespace: A can
// send nothing more, not even a priority-0 advert) to the first HTTP answer
// from B at the VIP, over HB_BENCH_VIP_TRIALS trials (default 20), for
// VRRPv2 with 1 s adverts (keepalived's default) and VRRPv3 with 0.1 s
// adverts. b.N is ignored: run with -benchtime 1x. Metrics: p50-ms, p99-ms,
// max-ms of the failover time; lost (probes without an answer per
// failover); flips (probes answered by the member that was not active:
// must be 0); restore-ms (A's link up to A answering again, p50).
//
// It is the baseline for the failover of Hummingbird's redundant apps,
// which will be measured on the same bed.
func BenchmarkVIPFailoverKeepalived(b *testing.B) {
	n := 20
	if s := os.Getenv(envVIPTrials); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 {
			b.Fatalf("%s=%q: want a positive number", envVIPTrials, s)
		}
	}
	d := newVIPBed(b)
	for _, v := range vipVariants {
		b.Run(v.name, func(b *testing.B) {
			trials := d.runVIPTrials(b, v, n)
			var fo, re latencies
			lost, flips := 0, 0
			var list []string
			for _, t := range trials {
				fo.add(t.failover)
				re.add(t.restore)
				lost += t.lost
				flips += t.flips
				list = append(list, strconv.FormatInt(t.failover.Milliseconds(), 10))
			}
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
			b.ReportMetric(ms(fo.percentile(0.5)), "p50-ms")
			b.ReportMetric(ms(fo.percentile(0.99)), "p99-ms")
			b.ReportMetric(ms(fo.percentile(1)), "max-ms")
			b.ReportMetric(ms(fo.percentile(0)), "min-ms")
			b.ReportMetric(float64(lost)/float64(len(trials)), "lost")
			b.ReportMetric(float64(flips), "flips")
			b.ReportMetric(ms(re.percentile(0.5)), "restore-ms")
			load, _ := os.ReadFile("/proc/loadavg")
			b.Logf("%s: %d failovers: p50 %.0f ms, p99 %.0f ms, min %.0f ms, max %.0f ms; %.1f probes lost per failover; %d flips; restore p50 %.0f ms; all (ms): %s; loadavg %s",
				v.name, len(trials), ms(fo.percentile(0.5)), ms(fo.percentile(0.99)), ms(fo.percentile(0)), ms(fo.percentile(1)),
				float64(lost)/float64(len(trials)), flips, ms(re.percentile(0.5)), strings.Join(list, " "), strings.TrimSpace(string(load)))
		})
	}
}

// TestVIPBenchSetup runs BenchmarkVIPFailoverKeepalived's bed with one
// VRRPv3 failover, so that go test ./... catches a broken benchmark.
func TestVIPBenchSetup(t *testing.T) {
	d := newVIPBed(t)
	v := vipVariants[1]
	r := d.runVIPTrials(t, v, 1)[0]
	t.Logf("%s: %+v", v.name, r)
	if r.flips > 0 {
		t.Errorf("%d probes answered by the member that was not active", r.flips)
	}
	if r.failover > 2*time.Second {
		t.Errorf("failover took %v, want well under 2 s with 0.1 s adverts", r.failover)
	}
}

// vipProbe is one HTTP GET of http://VIP/ by the client.
type vipProbe struct {
	sent, done time.Time
	member     string // who answered; empty when the probe failed
	err        error
}

func (p vipProbe) String() string {
	if p.member == "" {
		return "error"
	}
	return p.member
}

// vipProber starts a probe every 10 ms, each on a new TCP connection opened
// in the client's namespace and given 50 ms, whatever the earlier ones
// still wait for, and keeps every result.
type vipProber struct {
	mu     sync.Mutex
	probes []vipProbe // in the order they ended
}

func startVIPProber(tb testing.TB, ns string) *vipProber {
	dialer := &net.Dialer{}
	client := &http.Client{
		Timeout: vipProbeTimeout,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
				if ierr := dhcptest.In(ns, func() error {
					c, err = dialer.DialContext(ctx, network, addr)
					return nil
				}); ierr != nil {
					return nil, ierr
				}
				return c, err
			},
		},
	}
	p := &vipProber{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(vipProbeEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			wg.Go(func() {
				r := vipProbe{sent: time.Now()}
				resp, err := client.Get("http://" + vipAddr + "/")
				if err == nil {
					var body []byte
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode == http.StatusOK {
						r.member = string(body)
					} else if err == nil {
						err = fmt.Errorf("status %s", resp.Status)
					}
				}
				r.done, r.err = time.Now(), err
				p.mu.Lock()
				p.probes = append(p.probes, r)
				p.mu.Unlock()
			})
		}
	})
	tb.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return p
}

// since returns the probes sent at or after t.
func (p *vipProber) since(t time.Time) []vipProbe {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := len(p.probes)
	// Probes end at most 50 ms (plus scheduling) after they are sent, in
	// about the order they end: a second back is safely before t.
	for i > 0 && p.probes[i-1].done.After(t.Add(-time.Second)) {
		i--
	}
	var out []vipProbe
	for _, r := range p.probes[i:] {
		if !r.sent.Before(t) {
			out = append(out, r)
		}
	}
	return out
}

// first waits until a probe sent at or after t is answered by member m and
// returns the one answered first.
func (p *vipProber) first(t time.Time, m string, timeout time.Duration) (vipProbe, bool) {
	deadline := time.Now().Add(timeout)
	for {
		var best vipProbe
		found := false
		for _, r := range p.since(t) {
			if r.member == m && (!found || r.done.Before(best.done)) {
				best, found = r, true
			}
		}
		// Probes still in flight may end earlier than the one found: wait
		// out their timeout before deciding.
		if found && time.Since(best.done) > 2*vipProbeTimeout {
			return best, true
		}
		if time.Now().After(deadline) {
			return best, found
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// last returns the last n probes to end.
func (p *vipProber) last(n int) []vipProbe {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.probes[max(len(p.probes)-n, 0):])
}

// lastAll reports whether the last n probes to end were all answered by m.
func (p *vipProber) lastAll(n int, m string) bool {
	l := p.last(n)
	if len(l) < n {
		return false
	}
	for _, r := range l {
		if r.member != m {
			return false
		}
	}
	return true
}
