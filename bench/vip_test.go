package bench

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/failover"
	"hummingbird.io/hummingbird/internal/failover/failovertest"
	"hummingbird.io/hummingbird/internal/mgmtnet/dhcp/dhcptest"
	"hummingbird.io/hummingbird/internal/wire"
)

// envVIPTrials is the number of failovers BenchmarkVIPFailover measures
// per variant (default 20).
const envVIPTrials = "HB_BENCH_VIP_TRIALS"

// envVIPLogs, when set, logs when each trial cut a link and got its
// first answer, and the agents' logs after a Hummingbird variant: the
// timeline of a slow failover.
const envVIPLogs = "HB_BENCH_VIP_LOGS"

// vipVariant is one way of moving the VIP: keepalived (version, advert)
// or Hummingbird's failover (heartbeat).
type vipVariant struct {
	name      string
	version   int           // keepalived: vrrp_version
	advert    time.Duration // keepalived: advert_int
	heartbeat time.Duration // Hummingbird: the app's heartbeat time
	probes    int           // Hummingbird: probes per heartbeat time (0: the default)
	sweep     bool          // Hummingbird: one of the sweep's, held to bound
	loss      int           // percent of the packets every member's link drops (0: none)
}

func (v vipVariant) hummingbird() bool { return v.heartbeat > 0 }

// peerOf is the member other than m of the two that serve the VIP.
func peerOf(m string) string { return map[string]string{"A": "B", "B": "A"}[m] }

// period is how often the variant's members hear from the active one.
func (v vipVariant) period() time.Duration {
	if v.hummingbird() {
		_, probes := wire.Detection(0, v.probes)
		return v.heartbeat / time.Duration(probes)
	}
	return v.advert
}

// vipVariants are every variant BenchmarkVIPFailover runs, in order:
// keepalived at its defaults and at 100, 30 and 10 ms adverts, then
// Hummingbird at its defaults and over the sweep of heartbeat times
// (20 ms to 1 s) with 3 and 5 probes, where a probe interval stays at
// least wire.MinProbeMillis. (Lean probing, a variant of its own once,
// is what every group does now.) Name one with -bench 'VIPFailover/NAME$'.
var vipVariants = func() []vipVariant {
	vs := []vipVariant{
		{name: "keepalived-vrrp2-advert1s", version: 2, advert: time.Second},
		{name: "keepalived-vrrp3-advert100ms", version: 3, advert: 100 * time.Millisecond},
		{name: "keepalived-vrrp3-advert30ms", version: 3, advert: 30 * time.Millisecond},
		{name: "keepalived-vrrp3-advert10ms", version: 3, advert: 10 * time.Millisecond},
		{name: "hummingbird-default", heartbeat: wire.DefaultHeartbeatMillis * time.Millisecond},
	}
	for _, ms := range []int{20, 30, 50, 100, 200, 300, 500, 1000} {
		for _, probes := range []int{3, 5} {
			if ms/probes < wire.MinProbeMillis {
				continue
			}
			name := fmt.Sprintf("hummingbird-hb%dms-p%d", ms, probes)
			vs = append(vs, vipVariant{name: name, heartbeat: time.Duration(ms) * time.Millisecond, probes: probes, sweep: true})
		}
	}
	// Under loss, keepalived and Hummingbird at about the same packets per
	// second at the standby.
	for _, pair := range [][2]string{
		{"keepalived-vrrp3-advert30ms", "hummingbird-hb100ms-p3"},
		{"keepalived-vrrp3-advert10ms", "hummingbird-hb30ms-p3"},
	} {
		for _, pct := range []int{5, 20} {
			for _, name := range pair {
				i := slices.IndexFunc(vs, func(v vipVariant) bool { return v.name == name })
				v := vs[i]
				v.name, v.loss, v.sweep = fmt.Sprintf("%s-loss%d", name, pct), pct, false
				vs = append(vs, v)
			}
		}
	}
	return vs
}()

// variant is the variant named name.
func variant(tb testing.TB, name string) vipVariant {
	tb.Helper()
	i := slices.IndexFunc(vipVariants, func(v vipVariant) bool { return v.name == name })
	if i < 0 {
		tb.Fatalf("no VIP variant %q", name)
	}
	return vipVariants[i]
}

// bound is the sweep's goal for the variant's p99 failover: the
// heartbeat time, two probe intervals and 15 ms.
func (v vipVariant) bound() time.Duration {
	return v.heartbeat + 2*v.period() + 15*time.Millisecond
}

// keepalived starts keepalived on both members with the variant's
// settings, each with its own configuration and pid files, and returns a
// function that stops both and one that returns their logs.
func keepalived(d *failovertest.Bed, tb testing.TB, v vipVariant) (stop func(), logs func() string) {
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
`, m.name, v.version, m.state, m.prio, advert, failovertest.VIP)
		f := filepath.Join(dir, m.name+".conf")
		if err := os.WriteFile(f, []byte(conf), 0o644); err != nil {
			tb.Fatal(err)
		}
		procs = append(procs, dhcptest.Start(tb, d.NS[m.name], "keepalived",
			"--dont-fork", "--log-console", "--log-detail", "--no-syslog", "--vrrp",
			"--use-file="+f,
			"--pid="+filepath.Join(dir, m.name+".pid"),
			"--vrrp_pid="+filepath.Join(dir, m.name+"-vrrp.pid")))
	}
	logs = func() string {
		neigh, _ := exec.Command("ip", "-n", d.NS["A"], "neigh").CombinedOutput()
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
		for d.HoldsVIP(tb, "A") || d.HoldsVIP(tb, "B") {
			if time.Now().After(deadline) {
				tb.Fatalf("the VIP is still held 5 s after keepalived was stopped")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}, logs
}

// vipTrial is what one failover measured.
type vipTrial struct {
	failover time.Duration // from the active's link down to the first answer from the other
	lost     int           // probes sent from the fault until the other's first answer that got no answer (lostProbes)
	flips    int           // probes answered by a member after another had taken over
	restore  time.Duration // keepalived: from A's link up to the first answer from A again
}

// trial cuts the active member's link at a random point of the variant's
// period, waits for the other to answer, keeps watching, then brings the
// link back. keepalived preempts: A takes the VIP back, and that return
// is timed too. Hummingbird does not: the role stays where it moved.
// Under loss the role may move again by itself (a flip): every change of
// the answering member since since (the end of the trial before) beyond
// the failover (and keepalived's return) is counted as one.
func trial(tb testing.TB, d *failovertest.Bed, v vipVariant, act string, since time.Time, explain func() string) vipTrial {
	tb.Helper()
	var r vipTrial
	other := peerOf(act)
	watch := max(4*v.period(), time.Second)
	time.Sleep(rand.N(v.period()))
	fault := d.SetLink(tb, act, false)
	first, ok := d.Probes.First(fault, other, 30*time.Second)
	if !ok {
		d.SetLink(tb, act, true)
		tb.Fatalf("no answer from %s within 30 s of %s's link going down (last probes %v)\n%s", other, act, d.Probes.Last(10), explain())
	}
	r.failover = first.Done.Sub(fault)
	if os.Getenv(envVIPLogs) != "" {
		tb.Logf("%s: %s's link cut at %s, first answer from %s at %s (%v)", v.name, act, fault.Format("15:04:05.000"), other, first.Done.Format("15:04:05.000"), r.failover)
	}
	// watch (1 s or more) outlasts the timeout of every probe sent
	// before the first answer: their results are in.
	time.Sleep(watch)
	r.lost = lostProbes(d.Probes.Since(fault), fault, first.Done)
	up := d.SetLink(tb, act, true)
	if !v.hummingbird() {
		firstA, ok := d.Probes.First(up, act, 30*time.Second)
		if !ok {
			tb.Fatalf("no answer from %s within 30 s of its link coming back (last probes %v)\n%s", act, d.Probes.Last(10), explain())
		}
		r.restore = firstA.Done.Sub(up)
		d.WaitActive(tb, act, 30*time.Second, explain)
	} else if v.loss == 0 {
		d.WaitActive(tb, other, 30*time.Second, explain)
	} else {
		holder(tb, d, explain)
	}
	time.Sleep(watch)
	switch {
	case v.loss > 0:
		want := 1
		if !v.hummingbird() {
			want = 2
		}
		r.flips = max(failovertest.Switches(d.Probes.Since(since))-want, 0)
		if os.Getenv(envVIPLogs) != "" {
			for _, p := range failovertest.Answerers(d.Probes.Since(since)) {
				tb.Logf("%s: answers from %s from the probe sent at %s", v.name, p.Member, p.Sent.Format("15:04:05.000"))
			}
		}
	case v.hummingbird():
		r.flips = len(failovertest.Interleaved(d.Probes.Since(fault)))
	default:
		// A's return is expected: count only answers that break the
		// order after it.
		r.flips = max(len(failovertest.Interleaved(d.Probes.Since(fault)))-1, 0)
	}
	return r
}

// lostProbes counts what a client sees lost in a failover: the probes
// sent from the fault until the first answer of the new active (at) that
// got no answer, whenever they ended. A probe sent to the lost member
// fails only at its own timeout (200 ms), often after the new active has
// answered: counting only the failures that came before that answer
// counts none in a failover shorter than the timeout.
func lostProbes(probes []failovertest.Probe, fault, at time.Time) int {
	n := 0
	for _, p := range probes {
		if p.Member == "" && !p.Sent.Before(fault) && p.Sent.Before(at) {
			n++
		}
	}
	return n
}

// holder waits until exactly one of A and B holds the VIP and answers.
func holder(tb testing.TB, d *failovertest.Bed, explain func() string) string {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if h := d.Holders(tb); len(h) == 1 && d.Probes.LastAll(10, h[0]) {
			return h[0]
		}
		if time.Now().After(deadline) {
			tb.Fatalf("no single active member within 30 s (VIP held by %v)\n%s", d.Holders(tb), explain())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// plannedResult counts the probes of planned switchovers that found
// nobody at the VIP (lost) and the connections reset because the VIP
// moved between their handshake and their request (reset).
type plannedResult struct {
	lost, reset int
	// refused counts the switchovers the active member refused (its
	// lease had lapsed a moment before, or no standby answered its
	// status query in time); more than half refused fail the variant.
	refused int
	// back counts, under loss, the switchovers after which the old
	// active had the role again before the next one (the new active
	// lost its lease or its leadership to the loss): flips of their own.
	// failed counts those whose new active never answered.
	back, failed int
	what         []string // when and how each of them failed
}

// quietWatch is how long a variant under loss is watched, with no fault
// but the loss, for switches of the answering member.
const quietWatch = 10 * time.Second

// withLoss makes every member's link (in members) drop pct percent of
// the packets it receives from the other members (the client's probes
// are left alone: they are what the trials read), watches quietWatch
// for switches of the answering member, and returns them with the
// function that ends the loss.
func withLoss(tb testing.TB, d *failovertest.Bed, members []string, pct int) (quiet int, end func()) {
	tb.Helper()
	for _, m := range members {
		d.MemberLoss(tb, m, pct)
	}
	from := time.Now()
	time.Sleep(quietWatch)
	return failovertest.Switches(d.Probes.Since(from)), func() {
		for _, m := range members {
			d.MemberLoss(tb, m, 0)
		}
	}
}

// traffic is what the members of a variant send and receive while the
// active serves, in packets per second: what the standby receives from
// the active (heard), every packet the standby receives and sends on its
// link, and every packet the witness (Hummingbird's third voter) does.
type traffic struct {
	heard, standbyIn, standbyOut, witness float64
}

// standby is what the standby receives and sends in all.
func (t traffic) standby() float64 { return t.standbyIn + t.standbyOut }

// settleFor is how long a group (or keepalived) runs after its first
// active before measureTraffic counts its packets.
const settleFor = 2 * time.Second

// measureTraffic counts the traffic of d's members over 3 s with act
// active and (witness) W voting. The caller lets the group settle first
// (settleFor): what a running group costs, not its start (the members'
// first connections, elections and catch-up).
func measureTraffic(tb testing.TB, d *failovertest.Bed, act string, witness bool) traffic {
	tb.Helper()
	sb := peerOf(act)
	rx0, tx0 := d.Counters(tb, sb)
	var wrx0, wtx0 uint64
	if witness {
		wrx0, wtx0 = d.Counters(tb, "W")
	}
	start := time.Now()
	t := traffic{heard: d.Received(tb, sb, act, 3*time.Second)}
	rx1, tx1 := d.Counters(tb, sb)
	var wrx1, wtx1 uint64
	if witness {
		wrx1, wtx1 = d.Counters(tb, "W")
	}
	secs := time.Since(start).Seconds()
	t.standbyIn, t.standbyOut = float64(rx1-rx0)/secs, float64(tx1-tx0)/secs
	t.witness = float64(wrx1-wrx0+wtx1-wtx0) / secs
	return t
}

// runVIPTrials starts v's members on d, waits for an active one, counts
// its members' traffic over 3 s, and measures n failovers; for
// Hummingbird, it then makes n planned switchovers and counts what their
// probes saw.
func runVIPTrials(tb testing.TB, d *failovertest.Bed, bin string, v vipVariant, n int) (trials []vipTrial, planned plannedResult, tr traffic, quiet int) {
	tb.Helper()
	var explain func() string
	if v.hummingbird() {
		g := d.StartGroup(tb, bin, wire.App{Name: "bench", HeartbeatMillis: int(v.heartbeat.Milliseconds()), Probes: v.probes}, "W")
		explain = g.Logs
		defer func() {
			// Stopped agents hand over and leave: the next variant
			// starts on a bed without a VIP.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for _, p := range g.Agents {
				p.Signal(syscall.SIGTERM)
			}
			for m, p := range g.Agents {
				if err := p.Wait(ctx); ctx.Err() != nil {
					tb.Errorf("the agent of %s did not stop within 10 s of SIGTERM (%v)\n%s", m, err, explain())
				}
			}
		}()
		// A member elected before its app's first check passed hands
		// the role to one whose check did: the holder is asked again
		// once the group has settled, and must not change while its
		// traffic is counted (one sweep counted the active's traffic
		// as the standby's, and its first trial cut the standby).
		holder(tb, d, explain)
		time.Sleep(settleFor)
		act := holder(tb, d, explain)
		tr = measureTraffic(tb, d, act, true)
		if now := holder(tb, d, explain); now != act {
			tb.Fatalf("the active role moved from %s to %s while the group's traffic was counted, with no fault\n%s", act, now, explain())
		}
		if v.loss > 0 {
			var end func()
			quiet, end = withLoss(tb, d, []string{"A", "B", "W"}, v.loss)
			defer end()
			act = holder(tb, d, explain)
		}
		since := time.Now()
		for range n {
			trials = append(trials, trial(tb, d, v, act, since, explain))
			since = time.Now()
			act = holder(tb, d, explain)
		}
		for range n {
			from := time.Now()
			if out, err := exec.Command("ip", "netns", "exec", d.NS[act], "curl", "-sS", "--fail-with-body", "--unix-socket",
				failover.AppSocket(g.Socket(act), "bench"), "-X", "POST", "http://agent/v1/apps/bench/switchover").CombinedOutput(); err != nil {
				// The active refuses when its lease lapsed a moment
				// before (under loss, or at 20 ms, whose 11 ms lease a
				// late answer can outlast): counted, and the next
				// switchover starts from whoever holds the role then.
				planned.refused++
				if planned.refused > n/2 {
					tb.Fatalf("planned switchover on %s refused %d times: %v: %s\n%s", act, planned.refused, err, bytes.TrimSpace(out), explain())
				}
				planned.what = append(planned.what, fmt.Sprintf("%s: switchover on %s refused: %s", from.Format("15:04:05.000"), act, bytes.TrimSpace(out)))
				act = holder(tb, d, explain)
				continue
			}
			// The old active keeps the VIP until the new one announces
			// it: wait for the other member, not for any holder. Under
			// loss the role may go back (the new active's first
			// renewals lost): the switchover is done when the new
			// active answered, and the next one starts from whoever
			// holds the role then.
			next := peerOf(act)
			if v.loss == 0 {
				d.WaitActive(tb, next, 30*time.Second, explain)
			} else if _, ok := d.Probes.First(from, next, 10*time.Second); !ok {
				planned.failed++
				planned.what = append(planned.what, fmt.Sprintf("%s: switchover from %s accepted, %s never answered", from.Format("15:04:05.000"), act, next))
			}
			time.Sleep(300 * time.Millisecond)
			lost := planned.lost + planned.reset
			for _, p := range d.Probes.Since(from) {
				switch {
				case p.Reset():
					planned.reset++
				case p.Member == "":
					planned.lost++
				default:
					continue
				}
				planned.what = append(planned.what, fmt.Sprintf("%s+%v: %v", p.Sent.Format("15:04:05.000"), p.Done.Sub(p.Sent).Round(time.Millisecond), p.Err))
			}
			if planned.lost+planned.reset > lost {
				var seen []string
				for _, p := range d.Probes.Since(from) {
					seen = append(seen, fmt.Sprintf("%s+%v %v", p.Sent.Format("15:04:05.000"), p.Done.Sub(p.Sent).Round(time.Millisecond), p))
				}
				tb.Logf("%s: a planned switchover from %s lost or reset %d probes; its probes: %s; the agents' logs:\n%s", v.name, act, planned.lost+planned.reset-lost, strings.Join(seen, ", "), explain())
			}
			if v.loss == 0 {
				act = next
			} else if act = holder(tb, d, explain); act != next {
				planned.back++
				planned.what = append(planned.what, fmt.Sprintf("%s: switchover from %s done, the role back on %s", from.Format("15:04:05.000"), peerOf(next), act))
			}
		}
		if os.Getenv(envVIPLogs) != "" {
			tb.Log(explain())
		}
		return trials, planned, tr, quiet
	}
	stop, logs := keepalived(d, tb, v)
	defer stop()
	explain = logs
	d.WaitActive(tb, "A", 30*time.Second, explain)
	time.Sleep(settleFor)
	tr = measureTraffic(tb, d, "A", false)
	if v.loss > 0 {
		var end func()
		quiet, end = withLoss(tb, d, []string{"A", "B"}, v.loss)
		defer end()
		d.WaitActive(tb, "A", 30*time.Second, explain)
	}
	for range n {
		trials = append(trials, trial(tb, d, v, "A", time.Now(), explain))
	}
	return trials, plannedResult{}, tr, quiet
}

// BenchmarkVIPFailover measures how long a VIP takes to move from a member
// that is lost to the other, as a client sees it: the time from the active
// member's link going down (eth0 set down in its namespace: it can send
// nothing more) to the first HTTP answer from the other member at the VIP,
// over HB_BENCH_VIP_TRIALS trials (default 20) per variant, all on one bed
// of namespaces: members A and B (and W, Hummingbird's witness, which
// serves no app), and the client. Variants (vipVariants): keepalived with
// VRRPv2 and 1 s adverts (its defaults) and VRRPv3 with 100, 30 and 10 ms
// adverts; Hummingbird at its defaults (a heartbeat time of 100 ms with
// 4 probes) and the sweep: heartbeat times of 20 ms to 1 s with 3 and 5
// probes; and under 5 % and 20 % loss on every member's link, keepalived
// at 30 and 10 ms adverts each beside the Hummingbird variant of about
// its packet rate (100 and 30 ms with 3 probes: the -lossN variants). b.N is
// ignored: run with -benchtime 1x.
// Metrics: heard-pkt/s (the packets per second the standby receives from
// the active before the trials), standby-pkt/s (every packet the standby
// receives and sends on its link once the group settled: probes, answers,
// TCP acknowledgements, ARP), witness-pkt/s (the same at Hummingbird's
// witness); p50-ms, p99-ms, max-ms, min-ms of the failover time; bound-ms
// (the sweep's goal for p99: the heartbeat time, two probe intervals and
// 15 ms); lost (per failover, the probes sent from the cut until the first
// answer that got no answer, whenever their timeout ended them); flips
// (probes that broke the order of answering members: must be 0);
// restore-ms (keepalived: A's link up to A answering again, p50);
// quiet-switches (under loss: changes of the answering member over 10 s of
// loss and no fault, before the trials: must be 0); planned-lost
// (Hummingbird: probes that found nobody at the VIP over as many planned
// switchovers as trials: must be 0) and planned-reset (connections reset
// because the VIP moved between their handshake and their request, which
// the new active passes on to the old one: must be 0 too);
// planned-refused (switchovers the active refused: it had just lost its
// lease, or no standby answered in time; more than half fail the
// variant); under loss, planned-back (switchovers after
// which the role went back to the old active: a flip the loss made) and
// planned-failed (the new active never answered). The last line is a table of
// every variant run.
func BenchmarkVIPFailover(b *testing.B) {
	n := 20
	if s := os.Getenv(envVIPTrials); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 {
			b.Fatalf("%s=%q: want a positive number", envVIPTrials, s)
		}
	}
	dhcptest.Require(b, "keepalived", "curl")
	bin, err := failovertest.BuildAgent(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	d := failovertest.New(b, "A", "B", "W")
	d.StopApp("W")
	var rows []string
	for _, v := range vipVariants {
		b.Run(v.name, func(b *testing.B) {
			trials, planned, tr, quiet := runVIPTrials(b, d, bin, v, n)
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
			b.ReportMetric(tr.heard, "heard-pkt/s")
			b.ReportMetric(tr.standby(), "standby-pkt/s")
			if v.loss > 0 {
				b.ReportMetric(float64(quiet), "quiet-switches")
			}
			within := "n/a"
			if v.hummingbird() {
				b.ReportMetric(tr.witness, "witness-pkt/s")
				b.ReportMetric(float64(planned.lost), "planned-lost")
				b.ReportMetric(float64(planned.reset), "planned-reset")
				b.ReportMetric(float64(planned.refused), "planned-refused")
				if v.loss > 0 {
					b.ReportMetric(float64(planned.back), "planned-back")
					b.ReportMetric(float64(planned.failed), "planned-failed")
				}
				if len(planned.what) > 0 {
					b.Logf("%s: planned switchovers' failed probes: %s", v.name, strings.Join(planned.what, "; "))
				}
				if v.sweep {
					b.ReportMetric(ms(v.bound()), "bound-ms")
					within = fmt.Sprintf("%t (%.0f ms)", fo.percentile(0.99) <= v.bound(), ms(v.bound()))
				}
			} else {
				b.ReportMetric(ms(re.percentile(0.5)), "restore-ms")
			}
			load, _ := os.ReadFile("/proc/loadavg")
			b.Logf("%s: the standby receives %.1f packets/s from the active, %.1f in all, and sends %.1f; the witness receives and sends %.1f; %d failovers: p50 %.0f ms, p99 %.0f ms, min %.0f ms, max %.0f ms; %.1f probes lost per failover; %d flips; over %d planned switchovers %d probes lost and %d reset, %d refused, %d went back, %d failed; all (ms): %s; loadavg %s",
				v.name, tr.heard, tr.standbyIn, tr.standbyOut, tr.witness, len(trials), ms(fo.percentile(0.5)), ms(fo.percentile(0.99)), ms(fo.percentile(0)), ms(fo.percentile(1)),
				float64(lost)/float64(len(trials)), flips, len(trials), planned.lost, planned.reset, planned.refused, planned.back, planned.failed, strings.Join(list, " "), strings.TrimSpace(string(load)))
			rows = append(rows, fmt.Sprintf("| %s | %.0f | %.0f | %.0f ms | %.0f ms | %s | %d | %d |", v.name, tr.standby(), tr.witness,
				ms(fo.percentile(0.5)), ms(fo.percentile(0.99)), within, flips, quiet))
		})
	}
	b.Logf("all variants run:\n| variant | standby pkt/s (in+out) | witness pkt/s | p50 | p99 | p99 within the bound | flips | quiet switches |\n|---|---|---|---|---|---|---|---|\n%s", strings.Join(rows, "\n"))
}

// TestVIPBenchSetup runs BenchmarkVIPFailover's bed with one failover of
// tuned keepalived and one of Hummingbird at its defaults, so that go test
// ./... catches a broken benchmark.
func TestVIPBenchSetup(t *testing.T) {
	dhcptest.Require(t, "keepalived", "curl")
	bin, err := failovertest.BuildAgent(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d := failovertest.New(t, "A", "B", "W")
	d.StopApp("W")
	for _, name := range []string{"keepalived-vrrp3-advert100ms", "hummingbird-default"} {
		v := variant(t, name)
		trials, planned, tr, _ := runVIPTrials(t, d, bin, v, 1)
		r := trials[0]
		t.Logf("%s: %+v, planned switchover: %+v, traffic: %+v", v.name, r, planned, tr)
		// The two counts run over windows a few milliseconds apart: all
		// the standby receives is at least most of what the active sends.
		if tr.heard == 0 || tr.standbyIn < 0.9*tr.heard {
			t.Errorf("%s: the standby received %.1f packets/s from the active and %.1f in all", v.name, tr.heard, tr.standbyIn)
		}
		if v.hummingbird() && (tr.standbyOut == 0 || tr.witness == 0) {
			t.Errorf("%s: the standby sent %.1f packets/s and the witness sent and received %.1f: every member answers the active", v.name, tr.standbyOut, tr.witness)
		}
		if r.flips > 0 {
			t.Errorf("%s: %d probes answered out of order", v.name, r.flips)
		}
		if r.failover > 2*time.Second {
			t.Errorf("%s: failover took %v, want well under 2 s", v.name, r.failover)
		}
		// A probe starts every 10 ms, and none can be answered between the
		// cut and the new active's first answer: at least half of those
		// sent in that time must count as lost.
		if want := int(r.failover / (20 * time.Millisecond)); r.lost < want {
			t.Errorf("%s: %d probes lost in a failover of %v, want at least %d", v.name, r.lost, r.failover, want)
		}
		if planned.lost > 0 || planned.reset > 0 {
			t.Errorf("%s: in a planned switchover %d probes found nobody at the VIP and %d were reset: %v", v.name, planned.lost, planned.reset, planned.what)
		}
	}
}

func TestLostProbes(t *testing.T) {
	t.Parallel()
	fault := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return fault.Add(time.Duration(n) * time.Millisecond) }
	probe := func(sent, done int, m string) failovertest.Probe {
		return failovertest.Probe{Sent: ms(sent), Done: ms(done), Member: m}
	}
	tests := []struct {
		name   string
		probes []failovertest.Probe
		at     time.Time
		want   int
	}{
		{
			// The new active answers 107 ms after the cut; the probes sent
			// to the lost member before then time out 200 ms after they
			// were sent, after that answer.
			name: "a failover shorter than the probes' timeout",
			probes: []failovertest.Probe{
				probe(0, 200, ""), probe(10, 210, ""), probe(50, 250, ""), probe(90, 290, ""),
				probe(100, 107, "B"), probe(110, 112, "B"),
			},
			at:   ms(107),
			want: 4,
		},
		{
			name:   "a probe that fails at once, before the answer",
			probes: []failovertest.Probe{probe(20, 21, ""), probe(300, 302, "B")},
			at:     ms(302),
			want:   1,
		},
		{
			name:   "failures after the first answer are not the failover's",
			probes: []failovertest.Probe{probe(100, 102, "B"), probe(120, 320, "")},
			at:     ms(102),
			want:   0,
		},
		{
			name:   "answered probes sent before the first answer arrived are not lost",
			probes: []failovertest.Probe{probe(95, 106, "B"), probe(100, 107, "B"), probe(60, 260, "")},
			at:     ms(106),
			want:   1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := lostProbes(tt.probes, fault, tt.at); got != tt.want {
				t.Errorf("lostProbes = %d, want %d", got, tt.want)
			}
		})
	}
}
