package failover_test

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/auth"
	"hummingbird.io/hummingbird/internal/controller"
	"hummingbird.io/hummingbird/internal/controller/controllertest"
	"hummingbird.io/hummingbird/internal/failover/failovertest"
	"hummingbird.io/hummingbird/internal/mgmtnet/dhcp/dhcptest"
	"hummingbird.io/hummingbird/internal/pki"
	"hummingbird.io/hummingbird/internal/store"
)

// TestPartitionShownUnknown runs a real controller on the bed's network
// (in the client's namespace, with the bed as its management network) and
// real hb-agents that join it with enroll tokens and get the app from
// their desired state. The active member's link goes down: the standby and
// the witness elect the standby, and the controller, which hears nothing
// more from the old active (its host degraded), shows the new active and
// the old one as unknown, never two members active, for the whole of the
// partition. Back, the old active is a standby again.
func TestPartitionShownUnknown(t *testing.T) {
	d := failovertest.New(t, "A", "B", "W")
	d.StopApp("W")
	bin := agent(t)
	ctx := t.Context()
	var ctl *controllertest.Instance
	if err := d.InClient(func() error {
		ctl = controllertest.Start(t, "", func(c *controller.Config) {
			c.Listen = net.JoinHostPort(failovertest.Client, "0")
			c.MgmtSubnet, c.MgmtControllerIPs = failovertest.Net, []string{failovertest.Client}
			c.Heartbeat.Interval, c.Heartbeat.DegradeAfter, c.Heartbeat.FailAfter = time.Second, 3, 6
		})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	c := ctl.Controller
	if _, err := c.Inventory.AddGroup(ctx, "test", "press", ""); err != nil {
		t.Fatal(err)
	}
	name := func(m string) string { return "edge-" + strings.ToLower(m) }
	byName := map[string]string{}
	for _, m := range d.Members {
		byName[name(m)] = m
		if _, err := c.Inventory.Add(ctx, "test", apitype.HostCreate{Hostname: name(m), Personality: "edgeworker",
			MgmtIP: d.Addr[m], Group: "press"}); err != nil {
			t.Fatal(err)
		}
		tok, err := c.Tokens.CreateSpec(ctx, "test", auth.Spec{Kind: auth.KindEnroll, MaxUses: 1, Host: name(m)})
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), m)
		dhcptest.Exec(t, d.NS[m], bin, "join", "--controller", ctl.URL, "--token", tok.Secret,
			"--ca-hash", pki.CAHash(c.CA.Cert), "--hostname", name(m), "--state-dir", dir)
		p := dhcptest.Start(t, d.NS[m], bin, "run", "--state-dir", dir, "--local-socket", filepath.Join(dir, "agent.sock"))
		t.Cleanup(p.Stop)
	}
	if _, err := c.Inventory.AddApp(ctx, "test", apitype.AppCreate{Name: "press", Group: "press", Image: "press:1", Port: 80,
		VIP: failovertest.VIP + "/24", Members: []string{"edge-a", "edge-b"}, Witness: "edge-w"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Apps.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	read := func() store.App {
		t.Helper()
		var a store.App
		if err := c.Store.Read(ctx, func(tx store.Tx) error {
			var err error
			a, err = tx.AppByName("press")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return a
	}
	role := func(a store.App, m string) store.AppMember {
		for _, am := range a.Members {
			if am.Hostname == name(m) {
				return am
			}
		}
		t.Fatalf("no member %s in %+v", m, a)
		return store.AppMember{}
	}
	wait := func(what string, timeout time.Duration, ok func(store.App) bool) store.App {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for {
			a := read()
			if ok(a) {
				return a
			}
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %s: the controller shows %+v", what, a)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	a := wait("an active member and a standby", 30*time.Second, func(a store.App) bool {
		return a.ActiveHostname != "" && role(a, "A").Role != "" && role(a, "B").Role != "" &&
			role(a, "A").Role != apitype.RoleUnknown && role(a, "B").Role != apitype.RoleUnknown
	})
	act := byName[a.ActiveHostname]
	d.WaitActive(t, act, 5*time.Second, func() string { return "" })
	stby := other(act)
	epoch := a.Epoch
	t.Logf("%s active in epoch %d", act, epoch)

	// The active member is cut off from everyone, the controller too.
	cut := d.SetLink(t, act, false)
	var twice []string
	a = wait("the standby active, the old active degraded and unknown", 30*time.Second, func(a store.App) bool {
		actives := 0
		for _, m := range a.Members {
			if m.Role == "active" {
				actives++
			}
		}
		if actives > 1 {
			twice = append(twice, time.Now().Format("15:04:05.000"))
		}
		old := role(a, act)
		return a.ActiveHostname == name(stby) && a.Epoch > epoch && old.Availability == "degraded" && old.Role == apitype.RoleUnknown
	})
	t.Logf("%v after the cut: %s active in epoch %d, %s %s, unknown since %s", time.Since(cut).Round(time.Millisecond),
		stby, a.Epoch, act, role(a, act).Availability, role(a, act).ReportedAt.Format("15:04:05.000"))
	// And so it stays while the partition lasts.
	for range 20 {
		a = read()
		for _, m := range a.Members {
			if m.Role == "active" && m.Hostname != name(stby) {
				twice = append(twice, time.Now().Format("15:04:05.000"))
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(twice) > 0 {
		t.Errorf("the controller showed two active members at %v", twice)
	}
	if got := role(a, act); got.Role != apitype.RoleUnknown || got.ReportedAt.Before(cut) {
		t.Errorf("the cut-off old active is shown %q since %v, want unknown since after the cut (%v)", got.Role, got.ReportedAt, cut)
	}

	d.SetLink(t, act, true)
	wait("the old active back as a standby", 30*time.Second, func(a store.App) bool {
		return a.ActiveHostname == name(stby) && role(a, act).Role == "standby"
	})
}
