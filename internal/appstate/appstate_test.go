package appstate_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/appstate"
	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
	"hummingbird.io/hummingbird/internal/wire"
)

// fixture is a real database holding app plc (members edge-01 and edge-02,
// witness edge-03) and a host in no app (edge-04), all available, and a
// clock the test moves.
type fixture struct {
	st    store.Store
	inv   *inventory.Service
	now   time.Time
	hosts map[string]store.Host
	n     int
}

func newFixture(t *testing.T, dsn string) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{st: storetest.Open(t, dsn), now: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC), hosts: map[string]store.Host{}}
	f.inv = inventory.New(f.st, inventory.Options{})
	if _, _, err := f.inv.EnsureManagementPool(ctx, "static", "192.168.204.0/24", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.inv.AddGroup(ctx, "t", "press", ""); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"edge-01", "edge-02", "edge-03", "edge-04"} {
		group := "press"
		if name == "edge-03" {
			group = "" // the witness is in no group
		}
		h, err := f.inv.Add(ctx, "t", apitype.HostCreate{Hostname: name, Personality: "edgeworker",
			MgmtIP: fmt.Sprintf("192.168.204.%d", 10+i), Group: group})
		if err != nil {
			t.Fatal(err)
		}
		f.hosts[name] = h
		f.setAvailability(t, name, inventory.AvailAvailable)
	}
	if _, err := f.inv.AddApp(ctx, "t", apitype.AppCreate{Name: "plc", Group: "press", Image: "plc:1", Port: 502,
		VIP: "10.20.0.50/24", Members: []string{"edge-01", "edge-02"}, Witness: "edge-03"}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) setAvailability(t *testing.T, name, availability string) {
	t.Helper()
	if err := f.st.Write(context.Background(), func(tx store.Tx) error {
		return tx.SetHostState(f.hosts[name].ID, availability, inventory.OperEnabled, f.now)
	}); err != nil {
		t.Fatal(err)
	}
}

// tracker is a Tracker as a controller starts it: loaded from the store.
func (f *fixture) tracker(t *testing.T) *appstate.Tracker {
	t.Helper()
	tr := appstate.New(f.st, appstate.Config{Clock: func() time.Time { return f.now },
		NewUUID: func() string { f.n++; return fmt.Sprintf("00000000-0000-4000-8000-%012d", f.n) }})
	if err := tr.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	return tr
}

// beat sends a heartbeat of capability 2 of host name with these statuses.
func (f *fixture) beat(tr *appstate.Tracker, name string, apps ...wire.AppStatus) (uint64, bool) {
	return tr.Heartbeat(context.Background(), f.hosts[name], wire.Heartbeat{Capability: 2, Seq: 1, Boot: "b", Apps: apps})
}

func (f *fixture) app(t *testing.T) store.App {
	t.Helper()
	var a store.App
	if err := f.st.Read(context.Background(), func(tx store.Tx) error {
		var err error
		a, err = tx.AppByName("plc")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return a
}

// view is what the store holds of app plc that reports change.
type view struct {
	Active   string
	Epoch    int64
	Last     string   // "epoch reason from→to duration", "" for none
	Members  []string // hostname role healthy
	Alarmed  bool
	Switches int // app.switchover events
}

func (f *fixture) view(t *testing.T) view {
	t.Helper()
	a := f.app(t)
	v := view{Active: a.ActiveHostname, Epoch: a.Epoch}
	if l := a.LastSwitch; l.Epoch != 0 {
		v.Last = fmt.Sprintf("%d %s %s→%s %dms", l.Epoch, l.Reason, l.FromHostname, l.ToHostname, l.DurationMillis)
	}
	for _, m := range a.Members {
		v.Members = append(v.Members, fmt.Sprintf("%s %s %v", m.Hostname, m.Role, m.Healthy))
	}
	if err := f.st.Read(context.Background(), func(tx store.Tx) error {
		alarms, err := tx.ListAlarms(store.AlarmFilter{EntityInstance: "app=plc"})
		if err != nil {
			return err
		}
		for _, al := range alarms {
			v.Alarmed = v.Alarmed || al.AlarmID == "400.002"
		}
		evs, err := tx.ListEvents(store.EventFilter{EntityID: "app=plc", Action: "app.switchover"})
		v.Switches = len(evs)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestTracker(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			t.Run("versions", func(t *testing.T) { t.Parallel(); testVersions(t, newFixture(t, b.DSN(t))) })
			t.Run("reports", func(t *testing.T) { t.Parallel(); testReports(t, newFixture(t, b.DSN(t))) })
			t.Run("switchover", func(t *testing.T) { t.Parallel(); testSwitchover(t, newFixture(t, b.DSN(t))) })
			t.Run("two controllers", func(t *testing.T) { t.Parallel(); testTwoControllers(t, newFixture(t, b.DSN(t))) })
		})
	}
}

// testVersions: a heartbeat's version is the version of the desired state
// the host's agent fetches, the same for every voter of the same apps,
// and 0 for hosts in no app and for agents that know no apps.
func testVersions(t *testing.T, f *fixture) {
	ctx := context.Background()
	tr := f.tracker(t)
	for _, name := range []string{"edge-01", "edge-02", "edge-03", "edge-04"} {
		d, err := tr.Desired(ctx, f.hosts[name].ID)
		if err != nil {
			t.Fatal(err)
		}
		v, fast := f.beat(tr, name)
		if v != d.Version || fast {
			t.Errorf("%s: heartbeat version %d fast %v; its desired state has version %d", name, v, fast, d.Version)
		}
		wantApps := 1
		if name == "edge-04" {
			wantApps = 0
		}
		if len(d.Apps) != wantApps || (wantApps == 0) != (d.Version == 0) {
			t.Errorf("%s: desired state %+v; want %d apps and a version only with apps", name, d, wantApps)
		}
	}
	v1, _ := f.beat(tr, "edge-01")
	if v3, _ := f.beat(tr, "edge-03"); v3 != v1 {
		t.Errorf("the witness's version is %d, a member's %d", v3, v1)
	}
	if v, fast := tr.Heartbeat(ctx, f.hosts["edge-01"], wire.Heartbeat{Capability: 1, Seq: 1, Boot: "b"}); v != 0 || fast {
		t.Errorf("an agent of capability 1: %d, %v; want 0, false", v, fast)
	}
	// A change through the API shows after Refresh, not before.
	if _, err := f.inv.AddApp(ctx, "t", apitype.AppCreate{Name: "hmi", Group: "press", Image: "hmi:1",
		Members: []string{"edge-02", "edge-01"}}); err != nil {
		t.Fatal(err)
	}
	if v, _ := f.beat(tr, "edge-01"); v != v1 {
		t.Errorf("before Refresh: version %d, want the old %d", v, v1)
	}
	if err := tr.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	v2, _ := f.beat(tr, "edge-01")
	if d, _ := tr.Desired(ctx, f.hosts["edge-01"].ID); v2 == v1 || v2 != d.Version || len(d.Apps) != 2 {
		t.Errorf("after a second app: version %d (was %d), desired %+v", v2, v1, d)
	}
	if v, _ := f.beat(tr, "edge-03"); v != v1 {
		t.Errorf("the witness's version changed with an app it is not in: %d, want %d", v, v1)
	}
	for _, name := range []string{"hmi", "plc"} {
		if err := f.inv.DeleteApp(ctx, "t", name); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := f.beat(tr, "edge-01"); v != 0 {
		t.Errorf("after the apps are deleted: version %d, want 0", v)
	}
}

// testReports: what the store shows is what a majority of plc's three
// voters (edge-01, edge-02 and the witness edge-03) report alike, and one
// of them alone changes nothing but its own shown role: the active member
// follows the highest epoch so confirmed and never goes back, a member
// whose report disagrees is unknown, a switchover is stored once when a
// majority report the same record with a reason there is, 400.002
// follows the healthy standbys, reports naming hosts outside the group
// are ignored, and a member that stops reporting the app runs none.
func testReports(t *testing.T, f *fixture) {
	tr := f.tracker(t)
	u := func(name string) string { return f.hosts[name].UUID }
	status := func(role, active string, epoch uint64, last *wire.AppSwitch) wire.AppStatus {
		return wire.AppStatus{Name: "plc", Role: role, Active: u(active), Epoch: epoch,
			Healthy: role == wire.RoleActive || role == wire.RoleStandby, Last: last}
	}
	t0 := f.now
	first := &wire.AppSwitch{Epoch: 1, To: u("edge-01"), At: t0, Reason: wire.SwitchFirst}
	failover := &wire.AppSwitch{Epoch: 2, From: u("edge-01"), To: u("edge-02"), At: t0.Add(time.Minute), DurationMillis: 300,
		Reason: wire.SwitchFailure}
	back := &wire.AppSwitch{Epoch: 3, From: u("edge-02"), To: u("edge-01"), At: t0.Add(2 * time.Minute), DurationMillis: 200,
		Reason: wire.SwitchFailure}
	unhealthy := func(reason string, millis int64) *wire.AppSwitch {
		return &wire.AppSwitch{Epoch: 4, From: u("edge-01"), To: u("edge-02"), At: t0.Add(3 * time.Minute), DurationMillis: millis,
			Reason: reason}
	}
	type beat struct {
		host string
		apps []wire.AppStatus // nil: the host reports no app
	}
	one := func(host string, st wire.AppStatus) beat { return beat{host, []wire.AppStatus{st}} }
	const (
		lastFirst    = "1 first →edge-01 0ms"
		lastFailover = "2 failure edge-01→edge-02 300ms"
		lastBack     = "3 failure edge-02→edge-01 200ms"
	)
	steps := []struct {
		name  string
		beats []beat
		want  view
	}{
		{"nothing reported yet", []beat{{"edge-04", nil}},
			view{Members: []string{"edge-01  false", "edge-02  false"}}},
		{"an active member not in the group is ignored, even when a majority names it", []beat{
			one("edge-01", status(wire.RoleStandby, "edge-04", 5, &wire.AppSwitch{Epoch: 5, To: u("edge-04"), At: t0, Reason: wire.SwitchFirst})),
			one("edge-03", status(wire.RoleWitness, "edge-04", 5, &wire.AppSwitch{Epoch: 5, To: u("edge-04"), At: t0, Reason: wire.SwitchFirst})),
		}, view{Members: []string{"edge-01 standby true", "edge-02  false"}}},
		{"one member alone reporting the first election is not confirmed", []beat{
			one("edge-01", status(wire.RoleActive, "edge-01", 1, first)),
		}, view{Members: []string{"edge-01 unknown false", "edge-02  false"}}},
		{"the witness confirms the first election, no standby yet", []beat{
			one("edge-03", status(wire.RoleWitness, "edge-01", 1, first)),
		}, view{Active: "edge-01", Epoch: 1, Last: lastFirst, Members: []string{"edge-01 active true", "edge-02  false"},
			Alarmed: true, Switches: 1}},
		{"the same reports again change nothing", []beat{
			one("edge-01", status(wire.RoleActive, "edge-01", 1, first)),
			one("edge-03", status(wire.RoleWitness, "edge-01", 1, first)),
		}, view{Active: "edge-01", Epoch: 1, Last: lastFirst, Members: []string{"edge-01 active true", "edge-02  false"},
			Alarmed: true, Switches: 1}},
		{"a healthy standby clears 400.002; its report of the same election adds no switchover", []beat{
			one("edge-02", status(wire.RoleStandby, "edge-01", 1, first)),
		}, view{Active: "edge-01", Epoch: 1, Last: lastFirst, Members: []string{"edge-01 active true", "edge-02 standby true"},
			Switches: 1}},
		{"one member alone reporting a failover in epoch 2 is unknown", []beat{
			one("edge-02", status(wire.RoleActive, "edge-02", 2, failover)),
		}, view{Active: "edge-01", Epoch: 1, Last: lastFirst, Members: []string{"edge-01 active true", "edge-02 unknown false"},
			Alarmed: true, Switches: 1}},
		{"the witness confirms the failover: the old active, still reporting epoch 1, is unknown", []beat{
			one("edge-03", status(wire.RoleWitness, "edge-02", 2, failover)),
		}, view{Active: "edge-02", Epoch: 2, Last: lastFailover, Members: []string{"edge-01 unknown false", "edge-02 active true"},
			Alarmed: true, Switches: 2}},
		{"stale reports of epoch 1, even of a majority, do not move the active back", []beat{
			one("edge-01", status(wire.RoleStandby, "edge-01", 1, first)),
			one("edge-03", status(wire.RoleWitness, "edge-01", 1, first)),
		}, view{Active: "edge-02", Epoch: 2, Last: lastFailover, Members: []string{"edge-01 unknown false", "edge-02 active true"},
			Alarmed: true, Switches: 2}},
		{"edge-01 rejoins as a standby of epoch 2", []beat{
			one("edge-01", status(wire.RoleStandby, "edge-02", 2, failover)),
			one("edge-03", status(wire.RoleWitness, "edge-02", 2, failover)),
		}, view{Active: "edge-02", Epoch: 2, Last: lastFailover, Members: []string{"edge-01 standby true", "edge-02 active true"},
			Switches: 2}},
		{"a role no member has is down", []beat{
			one("edge-01", status("candidate", "edge-02", 2, failover)),
		}, view{Active: "edge-02", Epoch: 2, Last: lastFailover, Members: []string{"edge-01 down false", "edge-02 active true"},
			Alarmed: true, Switches: 2}},
		{"a member that does not report the app runs none", []beat{{"edge-02", nil}},
			view{Active: "edge-02", Epoch: 2, Last: lastFailover, Members: []string{"edge-01 down false", "edge-02  false"},
				Alarmed: true, Switches: 2}},
		{"the witness alone electing edge-01 in epoch 3 changes nothing", []beat{
			one("edge-03", status(wire.RoleWitness, "edge-01", 3, back)),
		}, view{Active: "edge-02", Epoch: 2, Last: lastFailover, Members: []string{"edge-01 down false", "edge-02  false"},
			Alarmed: true, Switches: 2}},
		{"edge-01 confirms its election in epoch 3", []beat{
			one("edge-01", status(wire.RoleActive, "edge-01", 3, back)),
		}, view{Active: "edge-01", Epoch: 3, Last: lastBack, Members: []string{"edge-01 active true", "edge-02  false"},
			Alarmed: true, Switches: 3}},
		{"one member alone claiming an epoch past what the store holds changes nothing", []beat{
			one("edge-02", status(wire.RoleActive, "edge-02", 1<<63, nil)),
		}, view{Active: "edge-01", Epoch: 3, Last: lastBack, Members: []string{"edge-01 active true", "edge-02 unknown false"},
			Alarmed: true, Switches: 3}},
		{"an epoch past what the store holds, confirmed, is clamped, not wrapped", []beat{
			one("edge-03", status(wire.RoleWitness, "edge-02", 1<<63, nil)),
		}, view{Active: "edge-02", Epoch: 1 << 62, Last: lastBack, Members: []string{"edge-01 unknown false", "edge-02 active true"},
			Alarmed: true, Switches: 3}},
		{"a switchover with a reason there is not is not stored, even by a majority", []beat{
			one("edge-01", status(wire.RoleDown, "", 0, unhealthy("takeover", 90))),
			one("edge-03", status(wire.RoleWitness, "", 0, unhealthy("takeover", 90))),
		}, view{Active: "edge-02", Epoch: 1 << 62, Last: lastBack, Members: []string{"edge-01 down false", "edge-02 active true"},
			Alarmed: true, Switches: 3}},
		{"two reports of a switchover that differ store neither", []beat{
			one("edge-01", status(wire.RoleDown, "", 0, unhealthy(wire.SwitchUnhealthy, 90))),
			one("edge-03", status(wire.RoleWitness, "", 0, unhealthy(wire.SwitchUnhealthy, 120))),
		}, view{Active: "edge-02", Epoch: 1 << 62, Last: lastBack, Members: []string{"edge-01 down false", "edge-02 active true"},
			Alarmed: true, Switches: 3}},
		{"a switchover reported alike by a majority without an active member is stored", []beat{
			one("edge-03", status(wire.RoleWitness, "", 0, unhealthy(wire.SwitchUnhealthy, 90))),
		}, view{Active: "edge-02", Epoch: 1 << 62, Last: "4 unhealthy edge-01→edge-02 90ms",
			Members: []string{"edge-01 down false", "edge-02 active true"}, Alarmed: true, Switches: 4}},
	}
	for _, s := range steps {
		f.now = f.now.Add(time.Second)
		for _, b := range s.beats {
			f.beat(tr, b.host, b.apps...)
		}
		if diff := cmp.Diff(s.want, f.view(t)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", s.name, diff)
		}
	}
	// The same report again does not write: the member's status and its
	// stored report keep the time they changed.
	reportedAt := func() (status, report time.Time) {
		t.Helper()
		a := f.app(t)
		if err := f.st.Read(context.Background(), func(tx store.Tx) error {
			reports, err := tx.AppReports(a.ID)
			for _, r := range reports {
				if r.HostID == f.hosts["edge-02"].ID {
					report = r.ReportedAt
				}
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return a.Members[1].ReportedAt, report
	}
	status0, report0 := reportedAt()
	if report0.IsZero() {
		t.Fatal("edge-02's report is not stored")
	}
	f.now = f.now.Add(time.Minute)
	f.beat(tr, "edge-02", status(wire.RoleActive, "edge-02", 1<<63, nil))
	if status1, report1 := reportedAt(); !status1.Equal(status0) || !report1.Equal(report0) {
		t.Errorf("an unchanged report was written: status reported at %v (was %v), report at %v (was %v)",
			status1, status0, report1, report0)
	}
}

// testSwitchover: a planned switchover makes the voters beat fast and
// changes their desired state until a majority of them report it done;
// one member alone reporting it done does not end it.
func testSwitchover(t *testing.T, f *fixture) {
	ctx := context.Background()
	tr := f.tracker(t)
	u := func(name string) string { return f.hosts[name].UUID }
	first := &wire.AppSwitch{Epoch: 1, To: u("edge-01"), At: f.now, Reason: wire.SwitchFirst}
	f.beat(tr, "edge-01", wire.AppStatus{Name: "plc", Role: wire.RoleActive, Active: u("edge-01"), Epoch: 1, Healthy: true, Last: first})
	f.beat(tr, "edge-03", wire.AppStatus{Name: "plc", Role: wire.RoleWitness, Active: u("edge-01"), Epoch: 1, Last: first})
	standby2 := wire.AppStatus{Name: "plc", Role: wire.RoleStandby, Active: u("edge-01"), Epoch: 1, Healthy: true, Last: first}
	before, _ := f.beat(tr, "edge-02", standby2)
	if _, err := f.inv.RequestSwitchover(ctx, "t", "plc", "edge-02"); err != nil {
		t.Fatal(err)
	}
	if err := tr.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"edge-01", "edge-02", "edge-03"} {
		if v, fast := f.beat(tr, name); !fast || v == before {
			t.Errorf("%s with a switchover pending: version %d (was %d), fast %v; want a new version, fast", name, v, before, fast)
		}
	}
	if _, fast := f.beat(tr, "edge-04"); fast {
		t.Error("a host in no app beats fast while a switchover is pending elsewhere")
	}
	d, err := tr.Desired(ctx, f.hosts["edge-02"].ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&wire.Switchover{Seq: 1, To: u("edge-02")}, d.Apps[0].Switchover); diff != "" {
		t.Errorf("the switchover in the desired state (-want +got):\n%s", diff)
	}
	// Reports of an earlier switchover, even of every voter, do not end
	// it.
	f.beat(tr, "edge-01", wire.AppStatus{Name: "plc", Role: wire.RoleActive, Active: u("edge-01"), Epoch: 1, Healthy: true, Last: first})
	f.beat(tr, "edge-03", wire.AppStatus{Name: "plc", Role: wire.RoleWitness, Active: u("edge-01"), Epoch: 1, Last: first})
	if _, fast := f.beat(tr, "edge-02", standby2); !fast {
		t.Error("reports without the switchover ended it")
	}
	// One member alone reporting it done does not end it, nor move the
	// active member.
	planned := &wire.AppSwitch{Epoch: 2, From: u("edge-01"), To: u("edge-02"), At: f.now, DurationMillis: 40, Reason: wire.SwitchPlanned}
	if v, fast := f.beat(tr, "edge-02", wire.AppStatus{Name: "plc", Role: wire.RoleActive, Active: u("edge-02"), Epoch: 2, Healthy: true,
		SwitchoverSeq: 1, Last: planned}); !fast || v == before {
		t.Errorf("after one member alone reported the switchover done: version %d (was %d), fast %v; want a new version, fast",
			v, before, fast)
	}
	if a := f.app(t); !a.Switchover.Pending || a.ActiveHostname != "edge-01" || a.LastSwitch.Reason != wire.SwitchFirst {
		t.Errorf("after one member alone reported the planned switchover: %+v; want it pending, edge-01 active", a)
	}
	// The old active reporting it done as well, a majority, ends it.
	v, fast := f.beat(tr, "edge-01", wire.AppStatus{Name: "plc", Role: wire.RoleStandby, Active: u("edge-02"), Epoch: 2, Healthy: true,
		SwitchoverSeq: 1, Last: planned})
	if fast || v != before {
		t.Errorf("after a majority reported the switchover done: version %d, fast %v; want %d, false", v, fast, before)
	}
	if a := f.app(t); a.Switchover.Pending || a.ActiveHostname != "edge-02" || a.Epoch != 2 || a.LastSwitch.Reason != wire.SwitchPlanned {
		t.Errorf("after the planned switchover: %+v", a)
	}
	for _, name := range []string{"edge-02", "edge-03"} {
		if v, fast := f.beat(tr, name); fast || v != before {
			t.Errorf("%s after the switchover: %d, %v; want %d, false", name, v, fast, before)
		}
	}
}

// testTwoControllers: two controllers on one database answer the same
// versions, see each other's stored reports after a refresh, and Run
// refreshes on its own; a restarted controller raises 400.002 for an app
// that lost its redundancy while it was away.
func testTwoControllers(t *testing.T, f *fixture) {
	ctx := context.Background()
	a, b := f.tracker(t), f.tracker(t)
	u := func(name string) string { return f.hosts[name].UUID }
	for _, name := range []string{"edge-01", "edge-03", "edge-04"} {
		va, _ := f.beat(a, name)
		vb, _ := f.beat(b, name)
		if va != vb {
			t.Errorf("%s: versions %d and %d from two controllers", name, va, vb)
		}
	}
	first := &wire.AppSwitch{Epoch: 1, To: u("edge-01"), At: f.now, Reason: "first"}
	active1 := wire.AppStatus{Name: "plc", Role: wire.RoleActive, Active: u("edge-01"), Epoch: 1, Healthy: true, Last: first}
	standby2 := wire.AppStatus{Name: "plc", Role: wire.RoleStandby, Active: u("edge-01"), Epoch: 1, Healthy: true, Last: first}
	f.beat(a, "edge-01", active1)
	f.beat(a, "edge-02", standby2)
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	// b knows the election a stored: the same reports through b store
	// nothing more (one switchover event).
	f.beat(b, "edge-01", active1)
	f.beat(b, "edge-02", standby2)
	if v := f.view(t); v.Switches != 1 || v.Alarmed {
		t.Errorf("after the same reports through the second controller: %+v; want one switchover, no alarm", v)
	}

	// edge-02's host goes offline: no standby is left. A controller started
	// now raises 400.002 when it loads the apps.
	f.setAvailability(t, "edge-02", inventory.AvailOffline)
	f.tracker(t)
	if !f.view(t).Alarmed {
		t.Error("400.002 not raised by a controller started with the standby's host offline")
	}
	// Run refreshes on its own: b clears the alarm once the host is back.
	f.setAvailability(t, "edge-02", inventory.AvailAvailable)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	r := appstate.New(f.st, appstate.Config{RefreshInterval: 20 * time.Millisecond})
	go func() { r.Run(runCtx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for f.view(t).Alarmed {
		if time.Now().After(deadline) {
			t.Fatal("Run did not clear 400.002 within 10 s of the standby's host coming back")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMemberLacksCapabilities: a member whose agent reports capabilities
// it lacks gets alarm 400.001 naming the host, the app and the
// capabilities (and nothing else the agent wrote), raised once; it is
// cleared when the agent reports none, and when the app is deleted. The
// witness, which holds no VIP, gets none.
func TestMemberLacksCapabilities(t *testing.T) {
	t.Parallel()
	for _, be := range storetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, be.DSN(t))
			tr := f.tracker(t)
			entity := appstate.MemberEntity("plc", "edge-02")
			alarms := func() []store.Alarm {
				t.Helper()
				var as []store.Alarm
				if err := f.st.Read(context.Background(), func(tx store.Tx) error {
					var err error
					as, err = tx.ListAlarms(store.AlarmFilter{})
					return err
				}); err != nil {
					t.Fatal(err)
				}
				var out []store.Alarm
				for _, a := range as {
					if a.AlarmID == "400.001" {
						out = append(out, a)
					}
				}
				return out
			}
			lacking := wire.AppStatus{Name: "plc", Role: wire.RoleStandby, Missing: []string{
				"CAP_NET_RAW (announcing the VIP with gratuitous ARP)", "CAP_NET_ADMIN (holding the VIP)",
				"CAP_NET_ADMIN again", "\x1b[31mred", "rm -rf /"}}
			for range 3 {
				f.now = f.now.Add(time.Second)
				f.beat(tr, "edge-02", lacking)
				f.beat(tr, "edge-03", wire.AppStatus{Name: "plc", Role: wire.RoleWitness, Missing: lacking.Missing})
			}
			got := alarms()
			if len(got) != 1 || got[0].EntityInstance != entity || got[0].Severity != "major" {
				t.Fatalf("alarms 400.001: %+v, want one, major, on %s", got, entity)
			}
			want := "edge-02 cannot be the active member of app plc: its agent lacks CAP_NET_ADMIN, CAP_NET_RAW; " +
				"it stays a standby that is never elected"
			if got[0].Reason != want {
				t.Errorf("reason %q, want %q", got[0].Reason, want)
			}
			var sets int
			if err := f.st.Read(context.Background(), func(tx store.Tx) error {
				evs, err := tx.ListEvents(store.EventFilter{EntityID: entity, Action: "alarm.set"})
				sets = len(evs)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if sets != 1 {
				t.Errorf("%d alarm.set events, want 1", sets)
			}

			// The agent restarted with its capabilities.
			f.now = f.now.Add(time.Second)
			f.beat(tr, "edge-02", wire.AppStatus{Name: "plc", Role: wire.RoleStandby, Healthy: true})
			if got := alarms(); len(got) != 0 {
				t.Errorf("after a report with nothing missing: %+v", got)
			}
			f.now = f.now.Add(time.Second)
			f.beat(tr, "edge-01", lacking)
			if got := alarms(); len(got) != 1 || got[0].EntityInstance != appstate.MemberEntity("plc", "edge-01") {
				t.Fatalf("edge-01 lacking: %+v", got)
			}
			if err := f.inv.DeleteApp(context.Background(), "t", "plc"); err != nil {
				t.Fatal(err)
			}
			if got := alarms(); len(got) != 0 {
				t.Errorf("after the app was deleted: %+v", got)
			}
		})
	}
}
