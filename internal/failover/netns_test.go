package failover_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/failover"
	"hummingbird.io/hummingbird/internal/failover/failovertest"
	"hummingbird.io/hummingbird/internal/mgmtnet/dhcp/dhcptest"
	"hummingbird.io/hummingbird/internal/wire"
)

var (
	agentOnce sync.Once
	agentBin  string
	agentErr  error
	agentDir  string
)

func TestMain(m *testing.M) {
	agentDir, _ = os.MkdirTemp("", "hb-failover-test")
	code := m.Run()
	os.RemoveAll(agentDir)
	os.Exit(code)
}

// agent builds hb-agent once for every test of the package.
func agent(t *testing.T) string {
	agentOnce.Do(func() { agentBin, agentErr = failovertest.BuildAgent(agentDir) })
	if agentErr != nil {
		t.Fatal(agentErr)
	}
	return agentBin
}

// activeOf waits until exactly one of the app members holds the VIP and
// answers the probes, and returns it.
func activeOf(t *testing.T, d *failovertest.Bed, g *failovertest.Group, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		h := d.Holders(t)
		if len(h) == 1 && d.Probes.LastAll(10, h[0]) {
			return h[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no single active member within %v (VIP held by %v; last probes %v)\n%s", timeout, h, d.Probes.Last(10), g.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func other(m string) string { return map[string]string{"A": "B", "B": "A"}[m] }

// checkProbes fails t when the probes since from were answered by a
// member after another had taken over.
func checkProbes(t *testing.T, d *failovertest.Bed, from time.Time, g *failovertest.Group) {
	t.Helper()
	if bad := failovertest.Interleaved(d.Probes.Since(from)); len(bad) > 0 {
		var ps []string
		for _, p := range d.Probes.Since(from) {
			ps = append(ps, fmt.Sprintf("%s+%d:%s", p.Sent.Format("05.000"), p.Done.Sub(p.Sent).Milliseconds(), p))
		}
		t.Errorf("two members answered at the VIP, or it flapped: %v\nprobes: %s\n%s", bad, strings.Join(ps, " "), g.Logs())
	}
}

func TestLinkCut(t *testing.T) {
	d := failovertest.New(t, "A", "B", "W")
	d.StopApp("W")
	start := time.Now()
	g := d.StartGroup(t, agent(t), wire.App{Name: "press"}, "W")
	act := activeOf(t, d, g, 10*time.Second)
	t.Logf("%s active %v after start", act, time.Since(start))
	fault := d.SetLink(t, act, false)
	first, ok := d.Probes.First(fault, other(act), 5*time.Second)
	if !ok {
		t.Fatalf("%s did not answer within 5 s of %s's link going down\n%s", other(act), act, g.Logs())
	}
	t.Logf("failover in %v", first.Done.Sub(fault))
	time.Sleep(500 * time.Millisecond)
	if slices.Contains(d.Holders(t), act) {
		t.Errorf("%s still holds the VIP 500 ms after it lost its link", act)
	}
	checkProbes(t, d, fault, g)
	d.SetLink(t, act, true)
	time.Sleep(time.Second)
	if got := activeOf(t, d, g, 5*time.Second); got != other(act) {
		t.Errorf("after %s's link came back, %s is active: the group should not move back", act, got)
	}
	checkProbes(t, d, fault, g)
	// The new active said that the member cut off did not follow it, and
	// that it follows again once its link is back.
	for _, want := range []string{`msg="a member does not follow the active"`, `msg="a member follows again"`} {
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(g.Agents[other(act)].Output(), want) {
			if time.Now().After(deadline) {
				t.Errorf("the new active's log lacks %s 5 s after the link came back\n%s", want, g.Logs())
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// TestCutAgainSoonAfterReturn cuts the active's link, brings it back, and
// cuts the new active's link 1.1 s later, under lean probing (a heartbeat
// time of 100 ms, 3 probes). The member that came back must have the
// group's log by then and win the election itself: it lacked the entries
// of its successor's takeover, which raft's leader sent it only at its
// next commit message, a heartbeat time or more after its first answer,
// and the witness had to be elected first and hand over (500 to 850 ms).
func TestCutAgainSoonAfterReturn(t *testing.T) {
	d, g, act := start(t, wire.App{HeartbeatMillis: 100, Probes: 3, LeanProbes: true})
	fault := d.SetLink(t, act, false)
	took := takeover(t, d, g, fault, other(act))
	t.Logf("%s's link cut; %s answers after %v", act, other(act), took)
	// The new active's attempts to reach the member cut off each wait
	// for their timeout, 10 heartbeat times: its second is under way when
	// the link comes back, and ends 2 s after the takeover, the entries
	// unsent. Raft's leader tries again at its next commit message, 0.5
	// to 1 s later under lean probing: the second cut comes before that.
	first := fault.Add(took)
	time.Sleep(time.Until(first.Add(1300 * time.Millisecond)))
	back := d.SetLink(t, act, true)
	time.Sleep(time.Until(first.Add(2400 * time.Millisecond)))
	act = other(act)
	again := d.SetLink(t, act, false)
	took = takeover(t, d, g, again, other(act))
	t.Logf("%s's link cut %v after the other's came back; %s answers after %v", act, again.Sub(back).Round(time.Millisecond), other(act), took)
	if took > 400*time.Millisecond {
		t.Errorf("failover took %v, want well under 400 ms; what happened when:\n%s", took,
			timeline(d, g, fault, event{At: fault, Who: "test", What: other(act) + "'s link cut"},
				event{At: back, Who: "test", What: other(act) + "'s link back"}, event{At: again, Who: "test", What: act + "'s link cut"}))
	}
	d.SetLink(t, act, true)
	checkProbes(t, d, again, g)
}

// start runs a group of A, B and the witness W (which serves no app) and
// returns it with its first active member.
func start(t *testing.T, app wire.App) (*failovertest.Bed, *failovertest.Group, string) {
	t.Helper()
	d := failovertest.New(t, "A", "B", "W")
	d.StopApp("W")
	if app.Name == "" {
		app.Name = "press"
	}
	g := d.StartGroup(t, agent(t), app, "W")
	activeOf(t, d, g, 10*time.Second)
	// A member elected before its app's first check passed hands the role
	// to one whose check did: the test starts from the role as it stays.
	time.Sleep(300 * time.Millisecond)
	return d, g, activeOf(t, d, g, 5*time.Second)
}

// takeover waits for the first probe answered by m after fault.
func takeover(t *testing.T, d *failovertest.Bed, g *failovertest.Group, fault time.Time, m string) time.Duration {
	t.Helper()
	first, ok := d.Probes.First(fault, m, 5*time.Second)
	if !ok {
		t.Fatalf("%s did not answer within 5 s of the fault (last probes %v)\n%s", m, d.Probes.Last(10), g.Logs())
	}
	return first.Done.Sub(fault)
}

func TestAgentKilled(t *testing.T) {
	d, g, act := start(t, wire.App{})
	fault := time.Now()
	g.Agents[act].Signal(syscall.SIGKILL)
	t.Logf("%s's agent killed; %s answers after %v", act, other(act), takeover(t, d, g, fault, other(act)))
	time.Sleep(500 * time.Millisecond)
	checkProbes(t, d, fault, g)
	// The killed agent could not take the VIP off; its next run does, at
	// once, and joins as a standby.
	g.Agents[act].Wait(t.Context())
	g.Start(t, act)
	deadline := time.Now().Add(5 * time.Second)
	for slices.Contains(d.Holders(t), act) {
		if time.Now().After(deadline) {
			t.Fatalf("the restarted agent of %s did not remove the VIP\n%s", act, g.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := activeOf(t, d, g, 5*time.Second); got != other(act) {
		t.Errorf("after %s's agent restarted, %s is active", act, got)
	}
	checkProbes(t, d, fault, g)
}

// TestLockedNeverActive: a member whose host is locked is never the active
// member: not at the start, and not when the active member's agent is
// killed, when the app stops rather than move to it; it comes back to the
// unlocked member when that one's agent runs again.
func TestLockedNeverActive(t *testing.T) {
	d := failovertest.New(t, "A", "B", "W")
	d.StopApp("W")
	d.Locked = map[string]bool{"B": true}
	g := d.StartGroup(t, agent(t), wire.App{Name: "press"}, "W")
	if act := activeOf(t, d, g, 10*time.Second); act != "A" {
		t.Fatalf("%s is active, want A: B's host is locked\n%s", act, g.Logs())
	}
	time.Sleep(time.Second)
	if h := d.Holders(t); !slices.Equal(h, []string{"A"}) {
		t.Fatalf("the VIP is held by %v a second later, want A alone\n%s", h, g.Logs())
	}
	g.Agents["A"].Signal(syscall.SIGKILL)
	g.Agents["A"].Wait(t.Context())
	// A's VIP stays on its interface (nobody took it off): B must not add
	// its own.
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if d.HoldsVIP(t, "B") {
			t.Fatalf("the locked member B took the VIP after A's agent was killed\n%s", g.Logs())
		}
	}
	g.Start(t, "A")
	if act := activeOf(t, d, g, 10*time.Second); act != "A" {
		t.Errorf("after A's agent came back, %s is active, want A\n%s", act, g.Logs())
	}
}

func TestAgentFrozen(t *testing.T) {
	d, g, act := start(t, wire.App{})
	fault := time.Now()
	g.Agents[act].Signal(syscall.SIGSTOP)
	t.Logf("%s's agent stopped; %s answers after %v", act, other(act), takeover(t, d, g, fault, other(act)))
	time.Sleep(300 * time.Millisecond)
	resumed := time.Now()
	g.Agents[act].Signal(syscall.SIGCONT)
	// Its lease ran out while it was frozen: it drops the VIP at once.
	deadline := resumed.Add(time.Second)
	for slices.Contains(d.Holders(t), act) {
		if time.Now().After(deadline) {
			t.Fatalf("%s still holds the VIP 1 s after its agent resumed\n%s", act, g.Logs())
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("%s dropped the VIP %v after resuming", act, time.Since(resumed))
	time.Sleep(500 * time.Millisecond)
	if got := activeOf(t, d, g, 5*time.Second); got != other(act) {
		t.Errorf("after %s's agent resumed, %s is active", act, got)
	}
	checkProbes(t, d, fault, g)
}

func TestAppCrash(t *testing.T) {
	d, g, act := start(t, wire.App{Health: wire.Health{IntervalMillis: 100, Failures: 2}})
	fault := time.Now()
	d.StopApp(act)
	t.Logf("%s's app stopped; %s answers after %v", act, other(act), takeover(t, d, g, fault, other(act)))
	if got := activeOf(t, d, g, 5*time.Second); got != other(act) {
		t.Fatalf("%s is active after %s's app crashed", got, act)
	}
	// The app comes back: it is a healthy standby, and the role stays.
	d.StartApp(t, act)
	time.Sleep(time.Second)
	if got := activeOf(t, d, g, 5*time.Second); got != other(act) {
		t.Errorf("%s is active after %s's app came back: the role should stay", got, act)
	}
	checkProbes(t, d, fault, g)
}

// TestAppsStartLate starts the group while no member's app answers its
// health check yet (pods still starting): whoever wins the first
// election, a member takes the active role and keeps it until a healthy
// one can take it (a witness that won used to keep the leadership, and
// every member stayed a standby for good), and once the apps answer,
// exactly one member is active and answers at the VIP.
func TestAppsStartLate(t *testing.T) {
	d := failovertest.New(t, "A", "B", "W")
	for _, m := range d.Members {
		d.StopApp(m)
	}
	g := d.StartGroup(t, agent(t), wire.App{Name: "press", Health: wire.Health{IntervalMillis: 100, Failures: 2}}, "W")
	deadline := time.Now().Add(10 * time.Second)
	for h := d.Holders(t); len(h) != 1; h = d.Holders(t) {
		if time.Now().After(deadline) {
			t.Fatalf("no member holds the VIP 10 s after the start with no app up (held by %v)\n%s", h, g.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	from := time.Now()
	d.StartApp(t, "A")
	d.StartApp(t, "B")
	act := activeOf(t, d, g, 5*time.Second)
	time.Sleep(time.Second)
	if got := activeOf(t, d, g, time.Second); got != act {
		t.Errorf("%s is active a second after %s was, with both apps up: the role should stay", got, act)
	}
	checkProbes(t, d, from, g)
}

// TestNoHealthyStandby stops the standby's app, then the active's: the
// active keeps the role with no healthy member to hand it to, and asks
// the standby whether it can take over at doubling intervals up to a
// second, not at every renewal (50 new TLS connections a second at the
// defaults). Once the standby's app is back, the role moves to it.
func TestNoHealthyStandby(t *testing.T) {
	d, g, act := start(t, wire.App{Health: wire.Health{IntervalMillis: 100, Failures: 2}})
	d.StopApp(other(act))
	time.Sleep(500 * time.Millisecond)
	d.StopApp(act)
	time.Sleep(2 * time.Second)
	if h := d.Holders(t); !slices.Equal(h, []string{act}) {
		t.Fatalf("VIP held by %v with no healthy member, want %s to keep it\n%s", h, act, g.Logs())
	}
	// At most one handover attempt a second, each a status query (the
	// active counts its peers from their answers to its probes).
	rate := d.Dialled(t, other(act), act, wire.FailoverPort, 3*time.Second)
	t.Logf("%s dials %s %.1f times a second while neither app is healthy", act, other(act), rate)
	if rate > 5 {
		t.Errorf("%s dials %s %.1f times a second while neither app is healthy, want at most 2 (5 with retried dials)", act, other(act), rate)
	}
	from := time.Now()
	d.StartApp(t, other(act))
	d.WaitActive(t, other(act), 5*time.Second, g.Logs)
	t.Logf("%s active %v after its app came back", other(act), time.Since(from).Round(time.Millisecond))
	checkProbes(t, d, from, g)
}

// ready probes member m's readiness listener for app as a kubelet does:
// HTTPS on the node's loopback, the certificate not verified.
func ready(t *testing.T, d *failovertest.Bed, m, app string) int {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
			if ierr := dhcptest.In(d.NS[m], func() error {
				var dl net.Dialer
				c, err = dl.DialContext(ctx, network, addr)
				return nil
			}); ierr != nil {
				return nil, ierr
			}
			return c, err
		}}}
	resp, err := c.Get("https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(wire.ReadyPort)) + wire.ReadyPath(app))
	if err != nil {
		t.Fatalf("readiness probe on %s: %v", m, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestReadyProbe: the pods' readiness probe is 200 on the active member
// only, follows a switchover, and is 404 for an app the node does not run.
func TestReadyProbe(t *testing.T) {
	d, g, act := start(t, wire.App{})
	// The kubelet probes every second: the probe may lag the VIP by a
	// little, not by a second.
	check := func(act string) {
		t.Helper()
		want := map[string]int{act: http.StatusOK, other(act): http.StatusServiceUnavailable, "W": http.StatusServiceUnavailable}
		deadline := time.Now().Add(time.Second)
		for {
			got := map[string]int{}
			for m := range want {
				got[m] = ready(t, d, m, "press")
			}
			if maps.Equal(got, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("readiness of press with %s active: %v, want %v", act, got, want)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	check(act)
	if got := ready(t, d, act, "mixer"); got != http.StatusNotFound {
		t.Errorf("readiness of an app %s does not run: %d, want 404", act, got)
	}
	if code, body := localSwitchover(t, g, act); code != http.StatusOK {
		t.Fatalf("switchover: %d %s\n%s", code, body, g.Logs())
	}
	d.WaitActive(t, other(act), 5*time.Second, g.Logs)
	check(other(act))
}

// checkNoGap fails t when a probe since from found nobody answering at
// the VIP, or was reset: a connection whose handshake reached the old
// member just before the flip and whose request reached the new one,
// which must pass it on to the old one.
func checkNoGap(t *testing.T, d *failovertest.Bed, g *failovertest.Group, from time.Time, what string) {
	t.Helper()
	var gaps, resets []string
	for _, p := range d.Probes.Since(from) {
		line := fmt.Sprintf("%s+%v: %v", p.Sent.Format("15:04:05.000"), p.Done.Sub(p.Sent).Round(time.Millisecond), p.Err)
		switch {
		case p.Reset():
			resets = append(resets, line)
		case p.Member == "":
			gaps = append(gaps, line)
		}
	}
	if len(gaps) > 0 || len(resets) > 0 {
		t.Errorf("%s: %d probes found nobody at the VIP, %d connections reset:\n%s\n%s", what, len(gaps), len(resets),
			strings.Join(append(gaps, resets...), "\n"), g.Logs())
	}
}

// localSwitchover asks member m's agent for a planned move, on the app's
// own socket.
func localSwitchover(t *testing.T, g *failovertest.Group, m string) (int, string) {
	t.Helper()
	return localPost(t, failover.AppSocket(g.Socket(m), "press"), "press")
}

// localPost asks for app's switchover on the unix socket path.
func localPost(t *testing.T, path, app string) (int, string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}}
	resp, err := c.Post("http://agent/v1/apps/"+app+"/switchover", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestPlannedSwitchoverLosesNothing(t *testing.T) {
	d, g, act := start(t, wire.App{})
	// The node's socket reads; only the app's own socket moves it, and
	// that socket moves no other app.
	if code, body := localPost(t, g.Socket(act), "press"); code != http.StatusForbidden || !strings.Contains(body, failover.AppSocket(g.Socket(act), "press")) {
		t.Errorf("switchover asked on the node's socket: %d %s, want 403 naming the app's socket", code, body)
	}
	if code, body := localPost(t, failover.AppSocket(g.Socket(act), "press"), "paint"); code != http.StatusNotFound {
		t.Errorf("switchover of another app asked on press's socket: %d %s, want 404", code, body)
	}
	if code, body := localSwitchover(t, g, other(act)); code != http.StatusConflict {
		t.Errorf("switchover asked of the standby: %d %s, want 409", code, body)
	}
	for i := range 10 {
		from := time.Now()
		code, body := localSwitchover(t, g, act)
		if code != http.StatusOK {
			t.Fatalf("switchover %d: %d %s\n%s", i, code, body, g.Logs())
		}
		t.Logf("switchover %d from %s: %v", i, act, takeover(t, d, g, from, other(act)))
		act = activeOf(t, d, g, 5*time.Second)
		time.Sleep(300 * time.Millisecond)
		checkNoGap(t, d, g, from, fmt.Sprintf("switchover %d", i))
		checkProbes(t, d, from, g)
	}
}

// TestPlannedSwitchoverKeepsConnections opens a connection to the VIP
// on the active member, moves the role, and sends its request once the
// new active answers: the request reaches the new active, which passes
// it on to the old one while that drains, and the old one answers it
// (without that, the new active knew no such connection and reset it).
// From the second move on, the connection comes from a client port that
// the new active served when it was active before, so that it holds a
// TIME_WAIT socket for it: that socket must not take the request in (it
// would answer with an ACK of its old connection, and the request would
// wait for a retransmission).
func TestPlannedSwitchoverKeepsConnections(t *testing.T) {
	d, g, act := start(t, wire.App{})
	// Ports below the client's ephemeral range: no probe uses them.
	port := func(i int) int { return 20000 + i }
	get := func(c net.Conn) (string, error) {
		c.SetDeadline(time.Now().Add(2 * time.Second))
		defer c.Close()
		if _, err := io.WriteString(c, "GET / HTTP/1.0\r\n\r\n"); err != nil {
			return "", err
		}
		b, err := io.ReadAll(c)
		return string(b), err
	}
	for i := range 4 {
		// The active member serves port i+1 now (it closes first, and
		// keeps a TIME_WAIT socket), and takes the role back in move i+1.
		if resp, err := get(d.DialVIP(t, port(i+1))); err != nil || !strings.HasSuffix(resp, act) {
			t.Fatalf("move %d: a request to %s from port %d: %q %v", i, act, port(i+1), resp, err)
		}
		c := d.DialVIP(t, port(i))
		from := time.Now()
		// The request goes as soon as the new active answers, while the
		// old one drains; the switchover's answer comes later.
		done := make(chan string, 1)
		go func() {
			if code, body := localSwitchover(t, g, act); code != http.StatusOK {
				done <- fmt.Sprintf("%d %s", code, body)
			}
			close(done)
		}()
		for answered := false; !answered; {
			if len(done) > 0 { // the switchover was refused
				t.Fatalf("move %d: %s\n%s", i, <-done, g.Logs())
			}
			if time.Since(from) > 5*time.Second {
				t.Fatalf("move %d: %s did not answer within 5 s\n%s", i, other(act), g.Logs())
			}
			time.Sleep(2 * time.Millisecond)
			answered = slices.ContainsFunc(d.Probes.Since(from), func(p failovertest.Probe) bool { return p.Member == other(act) })
		}
		resp, err := get(c)
		if failed, ok := <-done; ok {
			t.Fatalf("move %d: %s\n%s", i, failed, g.Logs())
		}
		if err != nil || !strings.HasSuffix(resp, act) {
			t.Errorf("move %d: the connection from port %d opened to %s before the move answered %q, %v; want %s's answer\n%s",
				i, port(i), act, resp, err, act, g.Logs())
		}
		act = activeOf(t, d, g, 5*time.Second)
		time.Sleep(300 * time.Millisecond)
		// The forwarding ended with the old active's drain.
		for _, m := range []string{"A", "B"} {
			out, err := exec.Command("ip", "netns", "exec", d.NS[m], "iptables-save", "-t", "mangle").CombinedOutput()
			if err != nil || strings.Contains(string(out), "HB-DRAIN") {
				t.Errorf("move %d: %s's mangle table 300 ms after the move (%v):\n%s", i, m, err, out)
			}
		}
	}
}

func TestActiveCutOffFromPeers(t *testing.T) {
	d, g, act := start(t, wire.App{})
	// The client still reaches the old active: it must stop answering
	// before the new one starts.
	fault := d.Block(t, act, other(act), true)
	d.Block(t, act, "W", true)
	t.Logf("%s cut off from its peers; %s answers after %v", act, other(act), takeover(t, d, g, fault, other(act)))
	time.Sleep(2 * time.Second)
	if h := d.Holders(t); !slices.Equal(h, []string{other(act)}) {
		t.Errorf("VIP held by %v while %s is cut off, want only %s\n%s", h, act, other(act), g.Logs())
	}
	d.Block(t, act, other(act), false)
	d.Block(t, act, "W", false)
	time.Sleep(2 * time.Second)
	if got := activeOf(t, d, g, 5*time.Second); got != other(act) {
		t.Errorf("after the partition healed, %s is active", got)
	}
	checkProbes(t, d, fault, g)
	if n := failovertest.Switches(d.Probes.Since(fault.Add(-time.Second))); n != 1 {
		t.Errorf("%d switchovers, want 1", n)
	}
}

func TestGroupCutOffFromController(t *testing.T) {
	// The agents' controller never answers (StartGroup points them at an
	// address nobody has): the group started, and fails over, on its own.
	// Here the standby is also cut off from the active and the witness
	// from nobody: the witness and the active still make a majority, so
	// nothing moves.
	d, g, act := start(t, wire.App{})
	from := d.Block(t, other(act), act, true)
	time.Sleep(2 * time.Second)
	if got := activeOf(t, d, g, 5*time.Second); got != act {
		t.Errorf("%s is active after the standby lost the active: a standby with no majority must not take over", got)
	}
	d.Block(t, other(act), act, false)
	time.Sleep(time.Second)
	if n := failovertest.Switches(d.Probes.Since(from)); n != 0 {
		t.Errorf("%d switchovers while the active kept its majority", n)
	}
	checkProbes(t, d, from, g)
}

// TestPacketLoss loses 20 % of the packets every member receives on its
// link: at the default heartbeat time nothing moves while every member is
// alive, and cutting the active's link moves the role exactly once.
func TestPacketLoss(t *testing.T) {
	d, g, _ := start(t, wire.App{})
	from := time.Now()
	for _, m := range d.Members {
		d.Loss(t, m, 20)
	}
	time.Sleep(20 * time.Second)
	logs := g.Logs()
	t.Logf("under 20%% loss for 20 s: %d lapsed leases, %d elections begun (3 at the start)", strings.Count(logs, `why="lease expired"`), strings.Count(logs, "starting election"))
	ps := d.Probes.Since(from)
	lossNote := event{At: from, Who: "test", What: "20 % loss on every member's link begins"}
	if n := failovertest.Switches(ps); n > 0 {
		t.Errorf("%d switchovers under 20%% loss with every member alive, want none (flapping); what happened when:\n%s\nthe agents' logs:\n%s",
			n, timeline(d, g, from, lossNote), g.Logs())
	}
	checkProbes(t, d, from, g)
	// The client's probes see the loss too; the active is the one that
	// answered last.
	act := ps[len(ps)-1].Member
	for i := len(ps) - 1; act == "" && i > 0; i-- {
		act = ps[i].Member
	}
	fault := d.SetLink(t, act, false)
	t.Logf("under 20%% loss, %s's link cut; %s answers after %v", act, other(act), takeover(t, d, g, fault, other(act)))
	time.Sleep(5 * time.Second)
	// Counted from the start of the loss: under load the client may see no
	// answer from the old active for a while before the cut, and a window
	// that starts just before it would miss the one switchover.
	if n := failovertest.Switches(d.Probes.Since(from)); n != 1 {
		t.Errorf("%d switchovers from the start of the loss to 5 s after the active's link was cut, want 1; what happened when:\n%s",
			n, timeline(d, g, from, lossNote, event{At: fault, Who: "test", What: act + "'s link cut"}))
	}
	checkProbes(t, d, fault, g)
}

// TestAgentStopHandsOver stops the active's agent as a node shutdown
// would (SIGTERM): it hands the role over, loses no request, takes the
// VIP off and exits.
func TestAgentStopHandsOver(t *testing.T) {
	d, g, act := start(t, wire.App{})
	from := time.Now()
	g.Agents[act].Signal(syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := g.Agents[act].Wait(ctx); ctx.Err() != nil {
		t.Fatalf("the agent of %s did not exit within 5 s of SIGTERM: %v\n%s", act, err, g.Logs())
	}
	t.Logf("%s's agent stopped in %v", act, time.Since(from))
	if got := activeOf(t, d, g, 5*time.Second); got != other(act) {
		t.Fatalf("%s active after %s's agent stopped", got, act)
	}
	time.Sleep(300 * time.Millisecond)
	checkNoGap(t, d, g, from, "the handover")
	checkProbes(t, d, from, g)
}

// TestMemberFootprint keeps an agent running an app's group under the
// agent's memory target, 15 MiB of peak resident memory (bench's
// TestAgentFootprint guards an agent without apps).
func TestMemberFootprint(t *testing.T) {
	_, g, act := start(t, wire.App{})
	time.Sleep(5 * time.Second)
	for m, p := range g.Agents {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
		if err != nil {
			t.Fatal(err)
		}
		var hwm int
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
				hwm, _ = strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			}
		}
		role := "standby"
		if m == act {
			role = "active"
		} else if m == "W" {
			role = "witness"
		}
		t.Logf("%s (%s): peak RSS %.1f MiB", m, role, float64(hwm)/1024)
		if hwm == 0 || hwm > 15*1024 {
			t.Errorf("%s's agent (%s) peaked at %d kB, want under 15 MiB", m, role, hwm)
		}
	}
}
