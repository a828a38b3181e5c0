package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// TestLabelsColumnMigration: the labels of hosts stored before hosts had
// a labels column are in the column after the migration, on both
// dialects, and the label filters still find them.
func TestLabelsColumnMigration(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dsn := b.DSN(t)
			db, err := store.OpenAt(ctx, dsn, 23)
			if err != nil {
				t.Fatal(err)
			}
			for i, name := range []string{"edge-01", "edge-02"} {
				if _, err := db.ExecContext(ctx, `INSERT INTO hosts (id, uuid, hostname, personality, administrative,
					operational, availability, invprovision, created_at, updated_at)
					VALUES ($1, $2, $3, 'edgeworker', 'locked', 'disabled', 'offline', 'unprovisioned', $4, $4)`,
					i+1, name+"-uuid", name, t0); err != nil {
					t.Fatal(err)
				}
			}
			for _, l := range [][3]any{{1, "site", "press-hall"}, {1, "rack", "r\"7"}, {1, "zone", ""}} {
				if _, err := db.ExecContext(ctx, `INSERT INTO host_labels (host_id, key, value) VALUES ($1, $2, $3)`, l[0], l[1], l[2]); err != nil {
					t.Fatal(err)
				}
			}
			db.Close()

			s := storetest.Open(t, dsn)
			want := map[string]map[string]string{
				"edge-01": {"site": "press-hall", "rack": "r\"7", "zone": ""},
				"edge-02": {},
			}
			err = s.Read(ctx, func(tx store.Tx) error {
				hs, err := tx.ListHosts(store.HostFilter{})
				if err != nil {
					return err
				}
				got := map[string]map[string]string{}
				for _, h := range hs {
					got[h.Hostname] = h.Labels
				}
				if d := cmp.Diff(want, got); d != "" {
					t.Errorf("labels after the migration (-want +got):\n%s", d)
				}
				hs, err = tx.ListHosts(store.HostFilter{Labels: []store.LabelSelector{{Key: "site", Value: "press-hall", HasValue: true}}})
				if err == nil && (len(hs) != 1 || hs[0].Hostname != "edge-01") {
					t.Errorf("site=press-hall after the migration: %d hosts, want edge-01", len(hs))
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestUpdateHostLabels: an update that keeps the labels keeps them, one
// that changes them changes both what a host shows and what the label
// filters find.
func TestUpdateHostLabels(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		h := host(1, "edge-01")
		h.Labels = map[string]string{"site": "a", "rack": "1"}
		if err := s.Write(ctx, func(tx store.Tx) error { return tx.InsertHost(&h) }); err != nil {
			t.Fatal(err)
		}
		find := func(key, value string) []string {
			var names []string
			err := s.Read(ctx, func(tx store.Tx) error {
				hs, err := tx.ListHosts(store.HostFilter{Labels: []store.LabelSelector{{Key: key, Value: value, HasValue: true}}})
				for _, h := range hs {
					names = append(names, h.Hostname)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return names
		}
		update := func(labels map[string]string) store.Host {
			h.Availability = "online"
			h.Labels = labels
			var got store.Host
			err := s.Write(ctx, func(tx store.Tx) error {
				if err := tx.UpdateHost(&h); err != nil {
					return err
				}
				var err error
				got, err = tx.HostByID(1)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		if got := update(map[string]string{"rack": "1", "site": "a"}); !cmp.Equal(got.Labels, map[string]string{"site": "a", "rack": "1"}) || got.Availability != "online" {
			t.Errorf("after an update with the same labels: %v %s", got.Labels, got.Availability)
		}
		if got := find("site", "a"); !cmp.Equal(got, []string{"edge-01"}) {
			t.Errorf("site=a after an update with the same labels: %v", got)
		}
		if got := update(map[string]string{"site": "b"}); !cmp.Equal(got.Labels, map[string]string{"site": "b"}) {
			t.Errorf("after changing the labels: %v", got.Labels)
		}
		if got := find("site", "a"); len(got) != 0 {
			t.Errorf("site=a after changing it to b: %v", got)
		}
		if got := find("site", "b"); !cmp.Equal(got, []string{"edge-01"}) {
			t.Errorf("site=b after changing it: %v", got)
		}
		if got := find("rack", "1"); len(got) != 0 {
			t.Errorf("rack=1 after removing it: %v", got)
		}
		if got := update(nil); len(got.Labels) != 0 || got.Labels == nil {
			t.Errorf("after removing every label: %#v", got.Labels)
		}
	})
}

// TestListGroupMembers: the members of one group or of every group, by
// group and id, without hosts of no group.
func TestListGroupMembers(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		err := s.Write(ctx, func(tx store.Tx) error {
			for _, g := range []string{"press", "paint"} {
				if err := tx.InsertGroup(&store.Group{Name: g, CreatedAt: t0, UpdatedAt: t0}); err != nil {
					return err
				}
			}
			for i, g := range []string{"press", "", "paint", "press"} {
				h := host(int64(i+1), fmt.Sprintf("edge-%02d", i+1))
				h.Group = g
				if i == 3 {
					h.Availability = "available"
				}
				if err := tx.InsertHost(&h); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		edge := func(group, name, avail string) store.GroupMember {
			return store.GroupMember{Group: group, Hostname: name, Personality: "edgeworker", Availability: avail}
		}
		for _, c := range []struct {
			group string
			want  []store.GroupMember
		}{
			{"", []store.GroupMember{edge("paint", "edge-03", "offline"), edge("press", "edge-01", "offline"), edge("press", "edge-04", "available")}},
			{"press", []store.GroupMember{edge("press", "edge-01", "offline"), edge("press", "edge-04", "available")}},
			{"none", nil},
		} {
			var got []store.GroupMember
			if err := s.Read(ctx, func(tx store.Tx) error {
				var err error
				got, err = tx.ListGroupMembers(c.group)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(c.want, got); d != "" {
				t.Errorf("ListGroupMembers(%q) (-want +got):\n%s", c.group, d)
			}
		}
	})
}
