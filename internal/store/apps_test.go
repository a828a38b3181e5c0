package store_test

import (
	"errors"
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
				{HostID: 2, Hostname: "edge-2", Availability: "offline", Position: 1},
				{HostID: 1, Hostname: "edge-1", Availability: "offline", Position: 2},
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
