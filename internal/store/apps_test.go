package store_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// TestApps: an app reads back with its members in order of preference; its
// group and its members' hosts cannot go while it exists; deleting it
// deletes its members.
func TestApps(t *testing.T) {
	t.Parallel()
	for _, be := range storetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			st := storetest.Open(t, be.DSN(t))
			ctx := t.Context()
			t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
			write := func(fn func(tx store.Tx) error) error { return st.Write(ctx, fn) }
			app := store.App{UUID: "00000000-0000-4000-8000-0000000000a1", Name: "plc-bridge", Group: "press",
				Image: "registry.example/plc-bridge:1.4", Port: 502, VIP: "10.20.0.50/24", CreatedAt: t0, UpdatedAt: t0,
				Members: []store.AppMember{{HostID: 2, Position: 1}, {HostID: 1, Position: 2}}}
			if err := write(func(tx store.Tx) error {
				for _, g := range []string{"press", "paint"} {
					if err := tx.InsertGroup(&store.Group{Name: g, CreatedAt: t0, UpdatedAt: t0}); err != nil {
						return err
					}
				}
				for i, name := range []string{"edge-1", "edge-2", "edge-3"} {
					h := store.Host{ID: int64(i + 1), UUID: "00000000-0000-4000-8000-00000000000" + string(rune('1'+i)), Hostname: name,
						Personality: "edgeworker", Administrative: "locked", Operational: "disabled", Availability: "offline",
						InvProvision: "unprovisioned", Group: "press", CreatedAt: t0, UpdatedAt: t0}
					if err := tx.InsertHost(&h); err != nil {
						return err
					}
				}
				id, err := tx.NextID("apps")
				if err != nil {
					return err
				}
				app.ID = id
				return tx.InsertApp(&app)
			}); err != nil {
				t.Fatal(err)
			}
			if app.ID != 1 {
				t.Errorf("first app id = %d, want 1", app.ID)
			}
			want := app
			want.Members = []store.AppMember{
				{HostID: 2, Hostname: "edge-2", HostUUID: "00000000-0000-4000-8000-000000000002", Availability: "offline", Locked: true, Position: 1},
				{HostID: 1, Hostname: "edge-1", HostUUID: "00000000-0000-4000-8000-000000000001", Availability: "offline", Locked: true, Position: 2},
			}
			if err := st.Read(ctx, func(tx store.Tx) error {
				got, err := tx.AppByName("plc-bridge")
				if err != nil {
					return err
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("AppByName (-want +got):\n%s", diff)
				}
				if _, err := tx.AppByName("nope"); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("AppByName of an unknown app: %v, want ErrNotFound", err)
				}
				for what, f := range map[string]func() ([]store.App, error){
					"ListApps":           tx.ListApps,
					"AppsOfHost(1)":      func() ([]store.App, error) { return tx.AppsOfHost(1) },
					"AppsOfGroup(press)": func() ([]store.App, error) { return tx.AppsOfGroup("press") },
				} {
					got, err := f()
					if err != nil {
						return err
					}
					if diff := cmp.Diff([]store.App{want}, got); diff != "" {
						t.Errorf("%s (-want +got):\n%s", what, diff)
					}
				}
				for what, f := range map[string]func() ([]store.App, error){
					"AppsOfHost(3)":      func() ([]store.App, error) { return tx.AppsOfHost(3) },
					"AppsOfGroup(paint)": func() ([]store.App, error) { return tx.AppsOfGroup("paint") },
				} {
					if got, err := f(); err != nil || len(got) != 0 {
						t.Errorf("%s = %+v, %v; want none", what, got, err)
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}

			// The name is unique; the group and the members' hosts stay while the app does.
			dup := app
			dup.ID, dup.UUID, dup.Members = 99, "00000000-0000-4000-8000-0000000000a2", nil
			if err := write(func(tx store.Tx) error { return tx.InsertApp(&dup) }); !problem.Is(err, problem.Conflict) || problem.FieldOf(err) != "name" {
				t.Errorf("a second app named plc-bridge: %v, want a conflict on name", err)
			}
			if err := write(func(tx store.Tx) error { return tx.DeleteHost(1) }); err == nil {
				t.Error("deleting a member's host succeeded; want the foreign key to refuse it")
			}
			if err := write(func(tx store.Tx) error { return tx.DeleteHost(3) }); err != nil {
				t.Errorf("deleting a host that is no member: %v", err)
			}

			// Deleting the app deletes its members, and frees its hosts.
			if err := write(func(tx store.Tx) error {
				if err := tx.DeleteApp(app.ID); err != nil {
					return err
				}
				return tx.DeleteHost(1)
			}); err != nil {
				t.Fatalf("delete the app, then a former member: %v", err)
			}
			if err := write(func(tx store.Tx) error { return tx.DeleteApp(app.ID) }); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("deleting a deleted app: %v, want ErrNotFound", err)
			}
			if err := st.Read(ctx, func(tx store.Tx) error {
				apps, err := tx.ListApps()
				if err == nil && len(apps) != 0 {
					t.Errorf("apps after the delete: %+v", apps)
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestAppsGroupStays: a group with an app cannot be deleted.
func TestAppsGroupStays(t *testing.T) {
	t.Parallel()
	for _, be := range storetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			st := storetest.Open(t, be.DSN(t))
			ctx := t.Context()
			t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
			if err := st.Write(ctx, func(tx store.Tx) error {
				if err := tx.InsertGroup(&store.Group{Name: "press", CreatedAt: t0, UpdatedAt: t0}); err != nil {
					return err
				}
				return tx.InsertApp(&store.App{ID: 1, UUID: "u-1", Name: "a", Group: "press", Image: "a:1", CreatedAt: t0, UpdatedAt: t0})
			}); err != nil {
				t.Fatal(err)
			}
			if err := st.Write(ctx, func(tx store.Tx) error { return tx.DeleteGroup("press") }); err == nil {
				t.Error("deleting a group with an app succeeded; want the foreign key to refuse it")
			}
		})
	}
}

// TestAppState: an app keeps its witness and health check; the reported active member and
// the last switchover only move forward in epoch; member statuses read back with the app;
// a planned switchover is pending until a member reports its sequence number done; the
// witness's host stays while the app does.
func TestAppState(t *testing.T) {
	t.Parallel()
	for _, be := range storetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			st := storetest.Open(t, be.DSN(t))
			ctx := t.Context()
			t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
			write := func(fn func(tx store.Tx) error) error { return st.Write(ctx, fn) }
			read := func() store.App {
				t.Helper()
				var a store.App
				if err := st.Read(ctx, func(tx store.Tx) error {
					var err error
					a, err = tx.AppByName("plc")
					return err
				}); err != nil {
					t.Fatal(err)
				}
				return a
			}
			uuidOf := func(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i) }
			if err := write(func(tx store.Tx) error {
				if err := tx.InsertGroup(&store.Group{Name: "press", CreatedAt: t0, UpdatedAt: t0}); err != nil {
					return err
				}
				for i := 1; i <= 3; i++ {
					h := store.Host{ID: int64(i), UUID: uuidOf(i), Hostname: fmt.Sprintf("edge-%d", i),
						Personality: "edgeworker", Administrative: "locked", Operational: "disabled", Availability: "offline",
						InvProvision: "unprovisioned", Group: "press", MgmtIP: fmt.Sprintf("192.168.204.%d", 10+i), CreatedAt: t0, UpdatedAt: t0}
					if err := tx.InsertHost(&h); err != nil {
						return err
					}
				}
				return tx.InsertApp(&store.App{ID: 1, UUID: "u-1", Name: "plc", Group: "press", Image: "plc:1", Port: 502,
					HealthKind: "http", HealthPath: "/healthz", Witness: &store.AppMember{HostID: 3},
					HeartbeatMillis: 300, Probes: 3, LeanProbes: true,
					Members:   []store.AppMember{{HostID: 1, Position: 1}, {HostID: 2, Position: 2}},
					CreatedAt: t0, UpdatedAt: t0})
			}); err != nil {
				t.Fatal(err)
			}
			a := read()
			want := &store.AppMember{HostID: 3, Hostname: "edge-3", HostUUID: uuidOf(3), MgmtIP: "192.168.204.13", Availability: "offline"}
			if diff := cmp.Diff(want, a.Witness); diff != "" || a.HealthKind != "http" || a.HealthPath != "/healthz" || a.Epoch != 0 ||
				a.HeartbeatMillis != 300 || a.Probes != 3 || !a.LeanProbes ||
				a.ActiveHostID != 0 || a.Switchover != (store.AppSwitchover{}) || a.LastSwitch != (store.AppSwitch{}) {
				t.Errorf("a new app: %+v; want witness edge-3 (-want +got):\n%s", a, diff)
			}

			// The active member follows the highest epoch; a lower or equal one changes nothing.
			for _, step := range []struct {
				host, epoch int64
				changed     bool
			}{{1, 2, true}, {2, 1, false}, {2, 2, false}, {2, 3, true}, {1, 3, false}} {
				var changed bool
				if err := write(func(tx store.Tx) error {
					var err error
					changed, err = tx.SetAppActive(1, step.host, step.epoch)
					return err
				}); err != nil {
					t.Fatal(err)
				}
				if changed != step.changed {
					t.Errorf("SetAppActive(edge-%d, epoch %d) changed = %v, want %v", step.host, step.epoch, changed, step.changed)
				}
			}
			if a := read(); a.ActiveHostID != 2 || a.ActiveHostname != "edge-2" || a.Epoch != 3 {
				t.Errorf("active after the reports: %d %q epoch %d; want edge-2 in epoch 3", a.ActiveHostID, a.ActiveHostname, a.Epoch)
			}

			sw := store.AppSwitch{Epoch: 3, At: t0.Add(time.Minute), FromHostID: 1, ToHostID: 2, DurationMillis: 312, Reason: "failure"}
			for i, s := range []store.AppSwitch{sw, {Epoch: 2, At: t0, ToHostID: 1, Reason: "first"}, sw} {
				var changed bool
				if err := write(func(tx store.Tx) error {
					var err error
					changed, err = tx.SetAppLastSwitch(1, s)
					return err
				}); err != nil {
					t.Fatal(err)
				}
				if changed != (i == 0) {
					t.Errorf("SetAppLastSwitch #%d (epoch %d) changed = %v", i, s.Epoch, changed)
				}
			}
			sw.FromHostname, sw.ToHostname = "edge-1", "edge-2"
			if diff := cmp.Diff(sw, read().LastSwitch); diff != "" {
				t.Errorf("last switch (-want +got):\n%s", diff)
			}

			// Member statuses, replaced by the next report.
			for _, s := range []store.AppMemberStatus{
				{HostID: 1, Role: "standby", Healthy: false, ReportedAt: t0},
				{HostID: 1, Role: "standby", Healthy: true, ReportedAt: t0.Add(time.Second)},
				{HostID: 2, Role: "active", Healthy: true, ReportedAt: t0.Add(2 * time.Second)},
			} {
				if err := write(func(tx store.Tx) error { return tx.SetAppMemberStatus(1, s) }); err != nil {
					t.Fatal(err)
				}
			}
			var got []store.AppMemberStatus
			for _, m := range read().Members {
				got = append(got, store.AppMemberStatus{HostID: m.HostID, Role: m.Role, Healthy: m.Healthy, ReportedAt: m.ReportedAt})
			}
			if diff := cmp.Diff([]store.AppMemberStatus{
				{HostID: 1, Role: "standby", Healthy: true, ReportedAt: t0.Add(time.Second)},
				{HostID: 2, Role: "active", Healthy: true, ReportedAt: t0.Add(2 * time.Second)},
			}, got); diff != "" {
				t.Errorf("member statuses (-want +got):\n%s", diff)
			}
			if err := write(func(tx store.Tx) error {
				return tx.SetAppMemberStatus(1, store.AppMemberStatus{HostID: 3, Role: "witness"})
			}); err == nil {
				t.Error("a status for the witness, which is no member, was stored")
			}

			// Planned switchovers: each request has the next number; one ends when a member
			// reports it (or a later one) done.
			var seqs []int64
			for _, to := range []int64{1, 0} {
				if err := write(func(tx store.Tx) error {
					seq, err := tx.RequestAppSwitchover(1, to, t0.Add(time.Hour))
					seqs = append(seqs, seq)
					return err
				}); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff([]int64{1, 2}, seqs); diff != "" {
				t.Errorf("switchover numbers (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(store.AppSwitchover{Seq: 2, Pending: true, RequestedAt: t0.Add(time.Hour)}, read().Switchover); diff != "" {
				t.Errorf("pending switchover (-want +got):\n%s", diff)
			}
			for _, step := range []struct {
				done  int64
				ended bool
			}{{1, false}, {2, true}, {2, false}} {
				var ended bool
				if err := write(func(tx store.Tx) error {
					var err error
					ended, err = tx.EndAppSwitchover(1, step.done)
					return err
				}); err != nil {
					t.Fatal(err)
				}
				if ended != step.ended {
					t.Errorf("EndAppSwitchover(%d) = %v, want %v", step.done, ended, step.ended)
				}
			}
			if a := read(); a.Switchover.Pending || a.Switchover.Seq != 2 {
				t.Errorf("switchover after its end: %+v", a.Switchover)
			}

			// The witness's host stays while the app does; the app is among the host's apps.
			if err := st.Read(ctx, func(tx store.Tx) error {
				apps, err := tx.AppsOfHost(3)
				if err == nil && (len(apps) != 1 || apps[0].Name != "plc") {
					t.Errorf("apps of the witness: %+v, want plc", apps)
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if err := write(func(tx store.Tx) error { return tx.DeleteHost(3) }); err == nil {
				t.Error("deleting the witness's host succeeded; want the foreign key to refuse it")
			}
			if err := write(func(tx store.Tx) error {
				if err := tx.DeleteApp(1); err != nil {
					return err
				}
				return tx.DeleteHost(3)
			}); err != nil {
				t.Errorf("delete the app, then its witness: %v", err)
			}
		})
	}
}
