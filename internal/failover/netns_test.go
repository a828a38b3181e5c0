package failover_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/failover/failovertest"
	"hummingbird.io/hummingbird/internal/wire"
)

var (
	agentOnce sync.Once
	agentBin  string
)

// agent builds hb-agent once for every test of the package.
func agent(t *testing.T) string {
	agentOnce.Do(func() { agentBin = failovertest.BuildAgent(t) })
	if agentBin == "" {
		t.Fatal("hb-agent was not built")
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
		t.Errorf("two members answered at the VIP, or it flapped: %v\n%s", bad, g.Logs())
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
}
