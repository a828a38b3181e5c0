package cli_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/controller/controllertest"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/wire"
)

// TestApps adds, shows, lists and deletes an app, with its flags on the command line and
// in HB_ variables.
func TestApps(t *testing.T) {
	t.Parallel()
	h := newHbctl(t)
	h.ok("group-add", "press")
	h.ok("host-add", "-n", "edge-01", "-p", "edgeworker", "-i", "192.168.204.10", "--group", "press")
	h.ok("host-add", "-n", "edge-02", "-p", "edgeworker", "-i", "192.168.204.11", "--group", "press")
	h.ok("host-add", "-n", "edge-03", "-p", "edgeworker", "-i", "192.168.204.12")

	if code, _, errs := h.run("", "app-add", "plc-bridge", "--group", "press"); code != 2 || !strings.Contains(errs, "--image") {
		t.Errorf("app-add without --image: %d %q", code, errs)
	}
	if code, _, errs := h.run("", "app-add", "--group", "press", "--image", "plc:1"); code != 2 || !strings.Contains(errs, "NAME") {
		t.Errorf("app-add without a name: %d %q", code, errs)
	}
	if code, _, errs := h.run("", "app-add", "hmi", "--group", "press", "--image", "hmi:1", "--members", "edge-01,edge-03"); code != 1 ||
		!strings.Contains(errs, "host edge-03 is in no group") {
		t.Errorf("app-add with a member outside the group: %d %q", code, errs)
	}
	if code, _, errs := h.run("", "app-add", "hmi", "--group", "press", "--image", "hmi:1", "--vip", "10.20.0.255/24"); code != 1 ||
		!strings.Contains(errs, "broadcast address") {
		t.Errorf("app-add with a broadcast vip: %d %q", code, errs)
	}

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--heartbeat-time", "1500us"}, 2, "--heartbeat-time 1.5ms: give a whole number of milliseconds"},
		{[]string{"--heartbeat-time", "10ms"}, 1, "heartbeat time 10 ms: give 20 to 60000 ms"},
		{[]string{"--probes", "2"}, 1, "2 probes in a heartbeat time: give 3 to 50"},
		{[]string{"--heartbeat-time", "20ms", "--probes", "5"}, 1, "5 probes in 20 ms is a probe every 4.0 ms: at most one every 5 ms, so give at most 4 probes or a heartbeat time of at least 25 ms"},
	} {
		args := append([]string{"app-add", "hmi", "--group", "press", "--image", "hmi:1"}, c.args...)
		if code, _, errs := h.run("", args...); code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("app-add %v: %d %q, want %d and %q", c.args, code, errs, c.code, c.want)
		}
	}
	// The failure detection set, in the table and in JSON; --lean-probes,
	// which changes nothing any more, is still accepted and kept.
	if got := h.ok("app-add", "hmi", "--group", "press", "--image", "hmi:1", "--heartbeat-time", "300ms", "--probes", "3", "--lean-probes",
		"-c", "heartbeat", "-f", "value"); got != "300 ms, 3 probes\n" {
		t.Errorf("app-add --heartbeat-time 300ms --probes 3 --lean-probes: %q", got)
	}
	var hmi apitype.App
	if err := json.Unmarshal([]byte(h.ok("app-show", "hmi", "-f", "json")), &hmi); err != nil ||
		hmi.HeartbeatMillis != 300 || hmi.Probes != 3 || !hmi.LeanProbes {
		t.Errorf("app-show hmi: %+v (%v)", hmi, err)
	}
	h.ok("app-delete", "hmi", "--yes")

	out := h.ok("app-add", "plc-bridge", "--group", "press", "--image", "registry.example/plc-bridge:1.4", "--port", "502",
		"--vip", "10.20.0.50/24", "--members", "edge-02,edge-01")
	for _, want := range []string{"| name | plc-bridge ", "| vip | 10.20.0.50/24 ", "| members | edge-02 (offline), edge-01 (offline) ", "| active | "} {
		if !strings.Contains(squeeze(out), want) {
			t.Errorf("app-add table lacks %q:\n%s", want, out)
		}
	}

	// Flags from HB_ variables; without --members, every edgeworker of the group.
	h.env["HB_GROUP"], h.env["HB_IMAGE"] = "press", "historian:2"
	if got := h.ok("app-add", "historian", "-c", "members", "-c", "port", "-c", "vip", "-f", "value"); got != "edge-01 (offline), edge-02 (offline)\n\n\n" {
		t.Errorf("app-add from HB_GROUP and HB_IMAGE: %q", got)
	}
	delete(h.env, "HB_GROUP")
	delete(h.env, "HB_IMAGE")

	if got := h.ok("app-list", "-c", "name", "-c", "group", "-f", "value"); got != "historian press\nplc-bridge press\n" {
		t.Errorf("app-list: %q", got)
	}
	var ap apitype.App
	if err := json.Unmarshal([]byte(h.ok("app-show", "plc-bridge", "-f", "json")), &ap); err != nil ||
		ap.Port != 502 || len(ap.Members) != 2 || ap.Members[0].Hostname != "edge-02" || ap.Members[0].Position != 1 || ap.Active != "" || ap.Epoch != 0 ||
		ap.HeartbeatMillis != wire.DefaultHeartbeatMillis || ap.Probes != wire.DefaultProbes || ap.LeanProbes {
		t.Errorf("app-show: %+v (%v)", ap, err)
	}
	if code, _, errs := h.run("", "app-show", "nope"); code != 1 || !strings.Contains(errs, `no app "nope"`) {
		t.Errorf("app-show of an unknown app: %d %q", code, errs)
	}

	// The group and the members stay while the apps do.
	if code, _, errs := h.run("", "group-delete", "press", "--yes"); code != 1 || !strings.Contains(errs, "group press has apps: historian, plc-bridge") {
		t.Errorf("group-delete with apps: %d %q", code, errs)
	}
	if code, _, errs := h.run("", "host-delete", "edge-01", "--yes"); code != 1 || !strings.Contains(errs, "member of app(s) historian, plc-bridge") {
		t.Errorf("host-delete of a member: %d %q", code, errs)
	}

	if code, _, errs := h.run("", "app-delete", "plc-bridge"); code != 1 || !strings.Contains(errs, "--yes") {
		t.Errorf("app-delete without a terminal: %d %q", code, errs)
	}
	if _, _, errs := h.run("y\n", "app-delete", "plc-bridge"); !strings.Contains(errs, "Deleted app plc-bridge.") {
		t.Errorf("app-delete: %q", errs)
	}
	h.ok("app-delete", "historian", "--yes")
	if got := h.ok("app-list", "-f", "json"); strings.TrimSpace(got) != "[]" {
		t.Errorf("app-list after the deletes: %q", got)
	}
	if got := h.ok("event-list", "-c", "action", "-c", "entity", "-f", "value", "--limit", "4"); !strings.HasPrefix(got, "app.delete app=historian\napp.delete app=plc-bridge\n") {
		t.Errorf("event-list: %q", got)
	}
}

// TestAppSwitchover adds an app with a witness, asks for a planned switchover while its
// members' reports (written as the agent API would) show a healthy standby, and follows it
// until the standby is active.
func TestAppSwitchover(t *testing.T) {
	t.Parallel()
	in := controllertest.Start(t, "", nil)
	h := newHbctlFor(t, in)
	h.ok("group-add", "press")
	h.ok("host-add", "-n", "edge-01", "-p", "edgeworker", "-i", "192.168.204.10", "--group", "press")
	h.ok("host-add", "-n", "edge-02", "-p", "edgeworker", "-i", "192.168.204.11", "--group", "press")
	h.ok("host-add", "-n", "edge-03", "-p", "edgeworker", "-i", "192.168.204.12")
	if code, _, errs := h.run("", "app-add", "plc", "--group", "press", "--image", "plc:1", "--witness", "edge-01"); code != 1 ||
		!strings.Contains(errs, "edge-01 is a member of the app") {
		t.Errorf("app-add with a member as witness: %d %q", code, errs)
	}
	h.env["HB_WITNESS"] = "edge-03"
	if got := h.ok("app-add", "plc", "--group", "press", "--image", "plc:1", "--port", "502", "--health", "http", "--health-path", "/ready",
		"-c", "witness", "-c", "health", "-f", "value"); got != "edge-03\nhttp /ready\n" {
		t.Errorf("app-add --witness from HB_WITNESS, --health http: %q", got)
	}
	delete(h.env, "HB_WITNESS")
	if code, _, errs := h.run("", "app-switchover", "plc"); code != 1 || !strings.Contains(errs, "no active member yet") {
		t.Errorf("app-switchover before an election: %d %q", code, errs)
	}

	ctx := context.Background()
	ids := map[string]int64{}
	report := func(active string, epoch int64, last store.AppSwitch) {
		t.Helper()
		if err := in.Controller.Store.Write(ctx, func(tx store.Tx) error {
			a, err := tx.AppByName("plc")
			if err != nil {
				return err
			}
			for _, m := range a.Members {
				ids[m.Hostname] = m.HostID
				if err := tx.SetHostState(m.HostID, "available", "enabled", time.Now()); err != nil {
					return err
				}
				role := "standby"
				if m.Hostname == active {
					role = "active"
				}
				if err := tx.SetAppMemberStatus(a.ID, store.AppMemberStatus{HostID: m.HostID, Role: role, Healthy: true, ReportedAt: time.Now()}); err != nil {
					return err
				}
			}
			if _, err := tx.SetAppActive(a.ID, ids[active], epoch); err != nil {
				return err
			}
			last.ToHostID, last.Epoch = ids[active], epoch
			_, err = tx.SetAppLastSwitch(a.ID, last)
			return err
		}); err != nil {
			t.Error(err) // also called from the goroutine below
		}
	}
	report("edge-01", 1, store.AppSwitch{At: time.Now(), Reason: "first"})
	out := squeeze(h.ok("app-show", "plc"))
	for _, want := range []string{"| active | edge-01 |", "| standbys | edge-02 |", "| epoch | 1 |", "| members | edge-01 (available, active), edge-02 (available, standby) |",
		"| last_switchover | (none) → edge-01 in 0 ms (first, epoch 1,"} {
		if !strings.Contains(out, want) {
			t.Errorf("app-show lacks %q:\n%s", want, out)
		}
	}
	if code, _, errs := h.run("", "app-switchover", "plc", "--to", "edge-01"); code != 1 || !strings.Contains(errs, "edge-01 is the active member") {
		t.Errorf("app-switchover to the active member: %d %q", code, errs)
	}
	if got := h.ok("app-switchover", "plc", "-c", "pending_switchover", "-f", "value"); !strings.HasPrefix(got, "1 to any healthy standby, asked ") {
		t.Errorf("app-switchover: %q", got)
	}

	// --follow waits for the members to report the move, then shows the app.
	go func() {
		time.Sleep(1500 * time.Millisecond)
		from := ids["edge-01"]
		report("edge-02", 2, store.AppSwitch{At: time.Now(), FromHostID: from, DurationMillis: 40, Reason: "planned"})
	}()
	code, got, errs := h.run("", "app-switchover", "plc", "--to", "edge-02", "--follow", "-c", "active", "-c", "last_switchover", "-f", "value")
	if code != 0 || !strings.HasPrefix(got, "edge-02\nedge-01 → edge-02 in 40 ms (planned, epoch 2,") {
		t.Errorf("app-switchover --follow: exit %d, stdout %q, stderr %q", code, got, errs)
	}
	// No agent of edge-01 was heard: the controller knows of no heartbeat due.
	if !strings.Contains(errs, "plc: edge-01 active (epoch 1), switching over: waiting for edge-01's agent to heartbeat\n") || !strings.Contains(errs, "plc: edge-02 active (epoch 2): edge-01 → edge-02 in 40 ms") {
		t.Errorf("app-switchover --follow progress: %q", errs)
	}
	// A switchover nobody carries out times out.
	h.env["HB_FOLLOW_TIMEOUT"] = "1500ms"
	if code, _, errs := h.run("", "app-switchover", "plc", "--follow"); code != 1 || !strings.Contains(errs, "did not change within 1.5s") {
		t.Errorf("app-switchover --follow that times out: %d %q", code, errs)
	}

	// A member whose report its group does not confirm is shown unknown, with since when.
	since := time.Date(2026, 12, 6, 8, 3, 0, 0, time.UTC)
	if err := in.Controller.Store.Write(ctx, func(tx store.Tx) error {
		a, err := tx.AppByName("plc")
		if err != nil {
			return err
		}
		return tx.SetAppMemberStatus(a.ID, store.AppMemberStatus{HostID: ids["edge-01"], Role: apitype.RoleUnknown, ReportedAt: since})
	}); err != nil {
		t.Fatal(err)
	}
	if got := h.ok("app-show", "plc", "-c", "members", "-f", "value"); got != "edge-01 (available, unknown since 2026-12-06T08:03:00Z), edge-02 (available, active)\n" {
		t.Errorf("app-show of an unconfirmed member: %q", got)
	}
}
