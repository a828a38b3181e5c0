package mtce_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/appstate"
	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/mtce"
	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
	"hummingbird.io/hummingbird/internal/wire"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func setup(t *testing.T, dsn string) (store.Store, store.Host, *clock, func() *mtce.Monitor) {
	t.Helper()
	st := storetest.Open(t, dsn)
	ctx := context.Background()
	inv := inventory.New(st, inventory.Options{})
	if _, _, err := inv.EnsureManagementPool(ctx, "static", "192.168.204.0/24", nil); err != nil {
		t.Fatal(err)
	}
	h, err := inv.Add(ctx, "t", apitype.HostCreate{Hostname: "edge-01", Personality: "edgeworker", MgmtIP: "192.168.204.10"})
	if err != nil {
		t.Fatal(err)
	}
	// In service, as after host-unlock; TestLockedStaysDisabled locks it again.
	if err := st.Write(ctx, func(tx store.Tx) error {
		h.Administrative = inventory.AdminUnlocked
		if err := tx.UpdateHost(&h); err != nil {
			return err
		}
		return tx.SetHostAgent(h.ID, "1234")
	}); err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	n := 0
	mk := func() *mtce.Monitor {
		m := mtce.New(st, mtce.Config{Timing: mtce.Timing{Interval: 10 * time.Second, DegradeAfter: 3, FailAfter: 6},
			Personalities: map[string]mtce.Timing{"worker": {Interval: time.Second, DegradeAfter: 2, FailAfter: 4}}, Clock: c.now,
			NewUUID: func() string { n++; return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }})
		if err := m.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return m
	}
	return st, h, c, mk
}

type state struct {
	Availability, Operational string
	Alarms                    []string
}

func observe(t *testing.T, st store.Store) state {
	t.Helper()
	var s state
	err := st.Read(context.Background(), func(tx store.Tx) error {
		h, err := tx.HostByHostname("edge-01")
		if err != nil {
			return err
		}
		s.Availability, s.Operational = h.Availability, h.Operational
		as, err := tx.ListAlarms(store.AlarmFilter{EntityInstance: "host=edge-01"})
		for _, a := range as {
			s.Alarms = append(s.Alarms, a.AlarmID+" "+a.Severity)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMonitor(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st, h, c, mk := setup(t, b.DSN(t))
			m := mk()
			seq := uint64(0)
			beat := func() (wire.HeartbeatReply, error) {
				seq++
				return m.Heartbeat(ctx, h, wire.Heartbeat{Capability: 1, Seq: seq, Boot: "b1"}, "")
			}
			// Enrolled but never heard: offline, and silence changes nothing.
			c.advance(time.Hour)
			m.Check(ctx)
			if s := observe(t, st); s.Availability != "offline" {
				t.Fatalf("before the first heartbeat: %+v", s)
			}
			r, err := beat()
			if err != nil {
				t.Fatal(err)
			}
			if r.IntervalMillis != 10000 || !r.SendInventory {
				t.Errorf("reply %+v: want a 10 s interval and a request for the inventory", r)
			}
			steps := []struct {
				after time.Duration
				want  state
			}{
				{0, state{"available", "enabled", nil}},
				{25 * time.Second, state{"available", "enabled", nil}},                      // 2 missed: no flapping
				{10 * time.Second, state{"degraded", "enabled", []string{"200.005 major"}}}, // 3 missed
				{30 * time.Second, state{"failed", "disabled", []string{"200.004 critical", "200.005 critical"}}},
			}
			for i, s := range steps {
				c.advance(s.after)
				m.Check(ctx)
				got := observe(t, st)
				if diff := cmp.Diff(s.want, got, sortAlarms); diff != "" {
					t.Errorf("step %d (-want +got):\n%s", i, diff)
				}
			}
			// A replayed heartbeat is refused; a new one recovers the host
			// and clears the alarms.
			if _, err := m.Heartbeat(ctx, h, wire.Heartbeat{Capability: 1, Seq: seq, Boot: "b1"}, ""); !problem.Is(err, problem.Conflict) {
				t.Errorf("replay: %v, want a conflict", err)
			}
			if _, err := beat(); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(state{"available", "enabled", nil}, observe(t, st)); diff != "" {
				t.Errorf("after recovery (-want +got):\n%s", diff)
			}
			// A restarted agent starts its sequence again under a new boot id.
			if _, err := m.Heartbeat(ctx, h, wire.Heartbeat{Capability: 1, Seq: 1, Boot: "b2"}, ""); err != nil {
				t.Errorf("new boot: %v", err)
			}

			// A restarted controller gives every host the full thresholds
			// from its start before declaring anything.
			c.advance(5 * time.Minute)
			m2 := mk()
			m2.Check(ctx)
			if s := observe(t, st); s.Availability != "available" {
				t.Errorf("right after a controller restart: %+v", s)
			}
			c.advance(35 * time.Second)
			m2.Check(ctx)
			if s := observe(t, st); s.Availability != "degraded" {
				t.Errorf("3 intervals after the restart: %+v", s)
			}

			var actions []string
			if err := st.Read(ctx, func(tx store.Tx) error {
				evs, err := tx.ListEvents(store.EventFilter{EntityID: "host=edge-01"})
				for i := len(evs) - 1; i >= 0; i-- {
					if evs[i].Action != "host.add" {
						actions = append(actions, evs[i].Action+" "+evs[i].Code)
					}
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
			want := []string{
				"host.state 200.022",                      // offline → available
				"host.state 200.022", "alarm.set 200.005", // degraded
				"host.state 200.022", "alarm.set 200.005", "alarm.set 200.004", // failed
				"host.state 200.022", "alarm.clear 200.004", "alarm.clear 200.005", // available
				"host.state 200.022", "alarm.set 200.005", // degraded after the restart
			}
			if diff := cmp.Diff(want, actions); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

var sortAlarms = cmp.Transformer("sort", func(in []string) []string {
	out := append([]string(nil), in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
})

func TestPersonalityTiming(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, edge, c, mk := setup(t, storetest.SQLiteDSN(t))
	m := mk()
	inv := inventory.New(st, inventory.Options{})
	w, err := inv.Add(ctx, "t", apitype.HostCreate{Hostname: "worker-01", Personality: "worker", MgmtIP: "192.168.204.11"})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []store.Host{edge, w} {
		r, err := m.Heartbeat(ctx, h, wire.Heartbeat{Seq: 1, Boot: "b"}, "")
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int64{"edgeworker": 10000, "worker": 1000}[h.Personality]
		if r.IntervalMillis != want {
			t.Errorf("%s told %d ms, want %d", h.Hostname, r.IntervalMillis, want)
		}
	}
	// 3 s of silence: the worker (1 s, degraded after 2) is degraded, the
	// edgeworker (10 s, after 3) is not.
	c.advance(3 * time.Second)
	m.Check(ctx)
	for name, want := range map[string]string{"edge-01": "available", "worker-01": "degraded"} {
		var got string
		st.Read(ctx, func(tx store.Tx) error {
			h, err := tx.HostByHostname(name)
			got = h.Availability
			return err
		})
		if got != want {
			t.Errorf("%s is %s, want %s", name, got, want)
		}
	}
	// An agent whose inventory hash matches the stored one is not asked again.
	r, err := m.Heartbeat(ctx, edge, wire.Heartbeat{Seq: 2, Boot: "b", InventoryHash: "sha256:aa"}, "sha256:aa")
	if err != nil || r.SendInventory {
		t.Errorf("matching inventory hash: %+v, %v", r, err)
	}
	if _, err := mtce.ParseTiming("10s/3"); err == nil {
		t.Error("ParseTiming accepted a timing without a failure threshold")
	}
	if got, err := mtce.ParseTiming("5s/2/4"); err != nil || got != (mtce.Timing{Interval: 5 * time.Second, DegradeAfter: 2, FailAfter: 4}) {
		t.Errorf("ParseTiming(5s/2/4) = %+v, %v", got, err)
	}
	if err := (mtce.Config{Timing: mtce.Timing{Interval: time.Second, DegradeAfter: 2, FailAfter: 4},
		Personalities: map[string]mtce.Timing{"gateway": {Interval: time.Second, DegradeAfter: 1, FailAfter: 2}}}).Check(); err == nil {
		t.Error("a timing for an unknown personality was accepted")
	}
}

// TestLockedStaysDisabled: a locked host is out of service, so heartbeats make it available but
// never enabled.
func TestLockedStaysDisabled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, h, c, mk := setup(t, storetest.SQLiteDSN(t))
	if err := st.Write(ctx, func(tx store.Tx) error {
		h.Administrative, h.Operational = inventory.AdminLocked, inventory.OperDisabled
		return tx.UpdateHost(&h)
	}); err != nil {
		t.Fatal(err)
	}
	m := mk()
	if _, err := m.Heartbeat(ctx, h, wire.Heartbeat{Capability: 1, Seq: 1, Boot: "b1"}, ""); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(state{"available", "disabled", nil}, observe(t, st)); diff != "" {
		t.Errorf("a locked host heard (-want +got):\n%s", diff)
	}
	c.advance(35 * time.Second)
	m.Check(ctx)
	if got := observe(t, st); got.Availability != "degraded" || got.Operational != "disabled" {
		t.Errorf("a locked host degraded: %+v", got)
	}
}

// TestDegradedRecovers: a heartbeat brings a degraded host back to
// available at once and clears its heartbeat-loss alarm, without waiting
// for it to fail first; on both databases.
func TestDegradedRecovers(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st, h, c, mk := setup(t, b.DSN(t))
			m := mk()
			if _, err := m.Heartbeat(ctx, h, wire.Heartbeat{Capability: 1, Seq: 1, Boot: "b1"}, ""); err != nil {
				t.Fatal(err)
			}
			c.advance(35 * time.Second) // 3 intervals of 10 s missed
			m.Check(ctx)
			if diff := cmp.Diff(state{"degraded", "enabled", []string{"200.005 major"}}, observe(t, st)); diff != "" {
				t.Fatalf("after 3 missed intervals (-want +got):\n%s", diff)
			}
			if _, err := m.Heartbeat(ctx, h, wire.Heartbeat{Capability: 1, Seq: 2, Boot: "b1"}, ""); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(state{"available", "enabled", nil}, observe(t, st)); diff != "" {
				t.Errorf("a degraded host heard again (-want +got):\n%s", diff)
			}
			// Heard again, it counts its intervals from the heartbeat.
			c.advance(25 * time.Second)
			m.Check(ctx)
			if s := observe(t, st); s.Availability != "available" {
				t.Errorf("25 s after the heartbeat that ended degraded: %+v", s)
			}
		})
	}
}

// TestTimingRules: what a heartbeat timing must be, read from a flag and
// checked in a Config.
func TestTimingRules(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want *mtce.Timing // nil: refused
	}{
		{"30s/3/6", &mtce.Timing{Interval: 30 * time.Second, DegradeAfter: 3, FailAfter: 6}},
		{"100ms/1/2", &mtce.Timing{Interval: 100 * time.Millisecond, DegradeAfter: 1, FailAfter: 2}},
		{"99ms/1/2", nil},    // interval under 100 ms
		{"10s/0/2", nil},     // degraded before a missed interval
		{"10s/-1/2", nil},    // negative
		{"10s/3/3", nil},     // failed no later than degraded
		{"10s/3/2", nil},     // failed before degraded
		{"10s/3/6/9", nil},   // a fourth part
		{"10s/3", nil},       // no failure threshold
		{"ten/3/6", nil},     // not a duration
		{"10s/three/6", nil}, // not a number
		{"10s/3/six", nil},
		{"", nil},
	} {
		got, err := mtce.ParseTiming(tc.in)
		if tc.want == nil {
			if err == nil {
				t.Errorf("ParseTiming(%q) = %+v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != *tc.want {
			t.Errorf("ParseTiming(%q) = %+v, %v; want %+v", tc.in, got, err, *tc.want)
		}
	}
	good := mtce.Timing{Interval: time.Second, DegradeAfter: 2, FailAfter: 4}
	bad := mtce.Timing{Interval: time.Second, DegradeAfter: 2, FailAfter: 2}
	for _, tc := range []struct {
		name string
		cfg  mtce.Config
		ok   bool
	}{
		{"the default", mtce.DefaultConfig(), true},
		{"a worker timing", mtce.Config{Timing: good, Personalities: map[string]mtce.Timing{"worker": good}}, true},
		{"a bad default timing", mtce.Config{Timing: bad}, false},
		{"a zero default timing", mtce.Config{Personalities: map[string]mtce.Timing{"worker": good}}, false},
		{"a bad worker timing", mtce.Config{Timing: good, Personalities: map[string]mtce.Timing{"worker": bad}}, false},
		{"an unknown personality", mtce.Config{Timing: good, Personalities: map[string]mtce.Timing{"gateway": good}}, false},
	} {
		if err := tc.cfg.Check(); (err == nil) != tc.ok {
			t.Errorf("%s: Check() = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	if got := mtce.DefaultConfig().Timing; got != (mtce.Timing{Interval: 30 * time.Second, DegradeAfter: 3, FailAfter: 6}) {
		t.Errorf("the default timing is %+v, want 30s/3/6 as documented", got)
	}
}

// TestInventoryHash: the agent is asked for its inventory while the hash
// it sends differs from the stored one, and when none is stored.
func TestInventoryHash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, h, _, mk := setup(t, storetest.SQLiteDSN(t))
	m := mk()
	for i, tc := range []struct {
		sent, stored string
		want         bool
	}{
		{"", "", true},
		{"sha256:aa", "", true},
		{"", "sha256:aa", true},
		{"sha256:bb", "sha256:aa", true},
		{"sha256:aa", "sha256:aa", false},
	} {
		r, err := m.Heartbeat(ctx, h, wire.Heartbeat{Capability: 1, Seq: uint64(i + 1), Boot: "b", InventoryHash: tc.sent}, tc.stored)
		if err != nil || r.SendInventory != tc.want {
			t.Errorf("agent's hash %q, stored %q: %+v, %v; want send_inventory %v", tc.sent, tc.stored, r, err, tc.want)
		}
	}
}

// TestBootRequired: a heartbeat without the agent's boot id is refused
// (replays could not be told from restarts), and changes nothing.
func TestBootRequired(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, h, _, mk := setup(t, storetest.SQLiteDSN(t))
	m := mk()
	if _, err := m.Heartbeat(ctx, h, wire.Heartbeat{Capability: 1, Seq: 1}, ""); !problem.Is(err, problem.Invalid) || problem.FieldOf(err) != "boot" {
		t.Errorf("a heartbeat without a boot id: %v, want invalid boot", err)
	}
	if s := observe(t, st); s.Availability != "offline" {
		t.Errorf("after a heartbeat without a boot id: %+v, want offline as before", s)
	}
}

// TestForget: a host forgotten (its agent removed) is no longer judged by
// its silence.
func TestForget(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, h, c, mk := setup(t, storetest.SQLiteDSN(t))
	m := mk()
	if _, err := m.Heartbeat(ctx, h, wire.Heartbeat{Capability: 1, Seq: 1, Boot: "b1"}, ""); err != nil {
		t.Fatal(err)
	}
	m.Forget(h.ID)
	c.advance(time.Hour)
	m.Check(ctx)
	if diff := cmp.Diff(state{"available", "enabled", nil}, observe(t, st)); diff != "" {
		t.Errorf("an hour after it was forgotten (-want +got):\n%s", diff)
	}
}

// TestRestartKeepsVerdicts: a controller started while a host is degraded
// or failed leaves it so until it is heard (silence never makes a host
// available), and judges it again from its start. A failed host is
// degraded (and enabled) after the degrade threshold, its host-failed
// alarm cleared, and failed again after the failure threshold: this is
// the code's behaviour as it stands, held here so that a change to it is
// deliberate.
func TestRestartKeepsVerdicts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, h, c, mk := setup(t, storetest.SQLiteDSN(t))
	m := mk()
	if _, err := m.Heartbeat(ctx, h, wire.Heartbeat{Capability: 1, Seq: 1, Boot: "b1"}, ""); err != nil {
		t.Fatal(err)
	}
	c.advance(35 * time.Second)
	m.Check(ctx)
	degraded := state{"degraded", "enabled", []string{"200.005 major"}}
	if diff := cmp.Diff(degraded, observe(t, st)); diff != "" {
		t.Fatalf("before the restart (-want +got):\n%s", diff)
	}
	m = mk() // a restart while degraded
	m.Check(ctx)
	if diff := cmp.Diff(degraded, observe(t, st)); diff != "" {
		t.Errorf("right after a restart, unheard (-want +got):\n%s", diff)
	}
	c.advance(35 * time.Second)
	m.Check(ctx)
	c.advance(30 * time.Second)
	m.Check(ctx)
	if diff := cmp.Diff(state{"failed", "disabled", []string{"200.004 critical", "200.005 critical"}}, observe(t, st), sortAlarms); diff != "" {
		t.Fatalf("65 s after the restart (-want +got):\n%s", diff)
	}
	m = mk() // a restart while failed
	m.Check(ctx)
	if s := observe(t, st); s.Availability != "failed" {
		t.Errorf("right after a restart while failed: %+v", s)
	}
	c.advance(35 * time.Second)
	m.Check(ctx)
	if diff := cmp.Diff(degraded, observe(t, st)); diff != "" {
		t.Errorf("35 s after a restart while failed (-want +got):\n%s", diff)
	}
	c.advance(30 * time.Second)
	m.Check(ctx)
	if s := observe(t, st); s.Availability != "failed" {
		t.Errorf("65 s after a restart while failed: %+v", s)
	}
}

// TestHeartbeatApps: with redundant apps (the controller's real
// appstate.Tracker), a reply carries the host's desired-state version, and
// while a planned switchover is pending its voters beat every second, or
// at their own interval when that is shorter.
func TestHeartbeatApps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, _, c, _ := setup(t, storetest.SQLiteDSN(t))
	inv := inventory.New(st, inventory.Options{})
	if _, err := inv.AddGroup(ctx, "t", "press", ""); err != nil {
		t.Fatal(err)
	}
	hosts := map[string]store.Host{}
	for i, name := range []string{"edge-02", "edge-03", "edge-04"} {
		h, err := inv.Add(ctx, "t", apitype.HostCreate{Hostname: name, Personality: "edgeworker", MgmtIP: fmt.Sprintf("192.168.204.%d", 20+i), Group: "press"})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Write(ctx, func(tx store.Tx) error {
			return tx.SetHostState(h.ID, inventory.AvailAvailable, inventory.OperEnabled, c.now())
		}); err != nil {
			t.Fatal(err)
		}
		hosts[name] = h
	}
	if _, err := inv.AddApp(ctx, "t", apitype.AppCreate{Name: "plc", Group: "press", Image: "plc:1", Members: []string{"edge-02", "edge-03"}}); err != nil {
		t.Fatal(err)
	}
	apps := appstate.New(st, appstate.Config{Clock: c.now})
	if err := apps.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	monitor := func(interval time.Duration) *mtce.Monitor {
		return mtce.New(st, mtce.Config{Timing: mtce.Timing{Interval: interval, DegradeAfter: 3, FailAfter: 6}, Clock: c.now, Apps: apps})
	}
	slow, quick := monitor(10*time.Second), monitor(500*time.Millisecond)
	seq := uint64(0)
	beat := func(m *mtce.Monitor, name string, sts ...wire.AppStatus) wire.HeartbeatReply {
		t.Helper()
		seq++
		r, err := m.Heartbeat(ctx, hosts[name], wire.Heartbeat{Capability: 2, Seq: seq, Boot: "b", Apps: sts}, "")
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	d, err := apps.Desired(ctx, hosts["edge-02"].ID)
	if err != nil {
		t.Fatal(err)
	}
	if r := beat(slow, "edge-02"); r.DesiredVersion != d.Version || d.Version == 0 || r.IntervalMillis != 10000 {
		t.Errorf("a member's reply: %+v; want version %d every 10 s", r, d.Version)
	}
	if r := beat(slow, "edge-04"); r.DesiredVersion != 0 {
		t.Errorf("a host in no app: %+v; want version 0", r)
	}
	first := &wire.AppSwitch{Epoch: 1, To: hosts["edge-02"].UUID, At: c.now(), Reason: "first"}
	beat(slow, "edge-02", wire.AppStatus{Name: "plc", Role: wire.RoleActive, Active: hosts["edge-02"].UUID, Epoch: 1, Healthy: true, Last: first})
	beat(slow, "edge-03", wire.AppStatus{Name: "plc", Role: wire.RoleStandby, Active: hosts["edge-02"].UUID, Epoch: 1, Healthy: true, Last: first})
	if _, err := inv.RequestSwitchover(ctx, "t", "plc", "edge-03"); err != nil {
		t.Fatal(err)
	}
	if err := apps.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		m    *mtce.Monitor
		host string
		want int64
	}{
		{slow, "edge-02", 1000}, {quick, "edge-03", 500}, {slow, "edge-04", 10000},
	} {
		if r := beat(tc.m, tc.host); r.IntervalMillis != tc.want {
			t.Errorf("%s with a switchover pending: %+v; want every %d ms", tc.host, r, tc.want)
		}
	}
}

// warnings counts the warnings logged.
type warnings struct {
	mu sync.Mutex
	n  int
}

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnings) Handle(context.Context, slog.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n++
	return nil
}
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }

// TestDeletedHost: a host deleted while watched is forgotten at the next
// check, without a warning then or after.
func TestDeletedHost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, h, c, _ := setup(t, storetest.SQLiteDSN(t))
	w := &warnings{}
	m := mtce.New(st, mtce.Config{Timing: mtce.Timing{Interval: 10 * time.Second, DegradeAfter: 3, FailAfter: 6}, Clock: c.now,
		Log: slog.New(w)})
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Heartbeat(ctx, h, wire.Heartbeat{Capability: 1, Seq: 1, Boot: "b1"}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := inventory.New(st, inventory.Options{}).Delete(ctx, "t", "edge-01"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		c.advance(35 * time.Second)
		m.Check(ctx)
	}
	if w.n != 0 {
		t.Errorf("%d warnings about a deleted host, want none", w.n)
	}
}

// TestRun: Run checks often enough for the shortest interval of any
// personality (a quarter of it), not only the default one.
func TestRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, _, c, mk := setup(t, storetest.SQLiteDSN(t))
	w, err := inventory.New(st, inventory.Options{}).Add(ctx, "t", apitype.HostCreate{Hostname: "worker-01", Personality: "worker", MgmtIP: "192.168.204.11"})
	if err != nil {
		t.Fatal(err)
	}
	m := mk() // every host 10 s, workers 1 s: Run checks every 250 ms
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { m.Run(runCtx); close(done) }()
	defer func() { cancel(); <-done }()
	time.Sleep(50 * time.Millisecond) // Run started: its grace counts from now
	if _, err := m.Heartbeat(ctx, w, wire.Heartbeat{Capability: 1, Seq: 1, Boot: "b1"}, ""); err != nil {
		t.Fatal(err)
	}
	c.advance(3 * time.Second)
	deadline := time.Now().Add(2 * time.Second)
	for {
		var got string
		if err := st.Read(ctx, func(tx store.Tx) error {
			h, err := tx.HostByHostname("worker-01")
			got = h.Availability
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if got == inventory.AvailDegraded {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker-01 is %s 2 s after Run started; want degraded at its first check", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTwoMonitors: two controllers' monitors on one database. A host that
// one declared degraded and the other heard again is available; when the
// first hears it too, nothing is stored twice (one event per change).
func TestTwoMonitors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, h, c, mk := setup(t, storetest.SQLiteDSN(t))
	a, b := mk(), mk()
	if _, err := a.Heartbeat(ctx, h, wire.Heartbeat{Capability: 1, Seq: 1, Boot: "b1"}, ""); err != nil {
		t.Fatal(err)
	}
	c.advance(35 * time.Second)
	a.Check(ctx)
	if _, err := b.Heartbeat(ctx, h, wire.Heartbeat{Capability: 1, Seq: 2, Boot: "b1"}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Heartbeat(ctx, h, wire.Heartbeat{Capability: 1, Seq: 3, Boot: "b1"}, ""); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(state{"available", "enabled", nil}, observe(t, st)); diff != "" {
		t.Errorf("heard by both (-want +got):\n%s", diff)
	}
	var actions []string
	if err := st.Read(ctx, func(tx store.Tx) error {
		evs, err := tx.ListEvents(store.EventFilter{EntityID: "host=edge-01"})
		for i := len(evs) - 1; i >= 0; i-- {
			if evs[i].Action != "host.add" {
				actions = append(actions, evs[i].Action+" "+evs[i].Code)
			}
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"host.state 200.022",                      // offline → available (a)
		"host.state 200.022", "alarm.set 200.005", // degraded (a)
		"host.state 200.022", "alarm.clear 200.005", // available (b)
	}
	if diff := cmp.Diff(want, actions); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// TestLastHeartbeat: the time of the last heartbeat received since the
// monitor started, none before the first, and none after a restart
// until the agent is heard again.
func TestLastHeartbeat(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, h, c, mk := setup(t, storetest.SQLiteDSN(t))
	m := mk()
	if got, ok := m.LastHeartbeat(h.ID); ok {
		t.Errorf("before any heartbeat: %v", got)
	}
	for seq := range uint64(2) {
		c.advance(7 * time.Second)
		if _, err := m.Heartbeat(ctx, h, wire.Heartbeat{Capability: 1, Seq: seq + 1, Boot: "b1"}, ""); err != nil {
			t.Fatal(err)
		}
		if got, ok := m.LastHeartbeat(h.ID); !ok || !got.Equal(c.now()) {
			t.Errorf("after heartbeat %d at %v: %v %v", seq+1, c.now(), got, ok)
		}
	}
	c.advance(time.Minute)
	m.Check(ctx)
	if got, ok := m.LastHeartbeat(h.ID); !ok || !got.Equal(c.now().Add(-time.Minute)) {
		t.Errorf("a minute of silence later: %v %v, want the last heartbeat's time", got, ok)
	}
	m = mk() // a restart
	if got, ok := m.LastHeartbeat(h.ID); ok {
		t.Errorf("after a restart: %v, want none until heard", got)
	}
	if _, err := m.Heartbeat(ctx, h, wire.Heartbeat{Capability: 1, Seq: 1, Boot: "b2"}, ""); err != nil {
		t.Fatal(err)
	}
	m.Forget(h.ID)
	if got, ok := m.LastHeartbeat(h.ID); ok {
		t.Errorf("forgotten: %v", got)
	}
}
