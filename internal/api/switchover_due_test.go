package api_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/controller/controllertest"
	"hummingbird.io/hummingbird/internal/wire"
)

// TestSwitchoverAwaitsHeartbeat: a planned switchover names the active
// member whose agent learns of it with its next heartbeat's reply, and
// when that heartbeat is due: the last one and the interval its reply gave.
func TestSwitchoverAwaitsHeartbeat(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	in := controllertest.Start(t, "", nil)
	c := in.Client(t, in.AdminToken)
	if _, err := c.AddGroup(ctx, apitype.GroupCreate{Name: "press"}); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"edge-01", "edge-02", "edge-03"} {
		if _, err := c.AddHost(ctx, apitype.HostCreate{Hostname: name, Personality: "edgeworker",
			MgmtIP: fmt.Sprintf("192.168.204.%d", 10+i), Group: "press"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.AddApp(ctx, apitype.AppCreate{Name: "plc", Group: "press", Image: "plc:1", Port: 502}); err != nil {
		t.Fatal(err)
	}
	agents := []*testAgent{newTestAgent(t, in, "edge-01"), newTestAgent(t, in, "edge-02"), newTestAgent(t, in, "edge-03")}
	first := &wire.AppSwitch{Epoch: 1, To: agents[0].uuid, At: time.Now().UTC().Truncate(time.Millisecond), Reason: "first"}
	var beforeBeat time.Time
	var interval time.Duration
	for i, a := range agents {
		st := wire.AppStatus{Name: "plc", Role: wire.RoleStandby, Active: agents[0].uuid, Epoch: 1, Healthy: true, Last: first}
		if i == 0 {
			st.Role, st.Peers = wire.RoleActive, 2
			beforeBeat = time.Now()
		}
		r := a.beat(st)
		if i == 0 {
			interval = time.Duration(r.IntervalMillis) * time.Millisecond
		}
	}
	afterBeat := time.Now()
	got, err := c.SwitchoverApp(ctx, "plc", "")
	if err != nil {
		t.Fatal(err)
	}
	shown, err := c.GetApp(ctx, "plc")
	if err != nil {
		t.Fatal(err)
	}
	for what, ap := range map[string]apitype.App{"switchover's answer": got, "app-show": shown} {
		p := ap.PendingSwitchover
		if p == nil || p.Awaits != "edge-01" || p.DueAt == nil {
			t.Errorf("%s: pending %+v; want it to await edge-01's heartbeat with its time", what, p)
			continue
		}
		if p.DueAt.Before(beforeBeat.Add(interval).Add(-time.Millisecond)) || p.DueAt.After(afterBeat.Add(interval)) {
			t.Errorf("%s: due at %v; want the heartbeat of %v-%v and %v", what, p.DueAt, beforeBeat, afterBeat, interval)
		}
	}
}
