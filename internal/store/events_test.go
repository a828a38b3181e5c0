package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// TestAlarmPages: alarms come by ascending id, page after page, each
// alarm once, with and without filters; no limit gives every alarm.
func TestAlarmPages(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		severities := []string{"warning", "minor", "major", "critical"}
		const n = 23
		if err := s.Write(ctx, func(tx store.Tx) error {
			for i := range n {
				a := store.Alarm{
					UUID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), AlarmID: "200.005", EntityType: "host",
					EntityInstance: fmt.Sprintf("host=edge-%02d", i%5), Severity: severities[i%4],
					Reason: "heartbeat lost", AlarmType: "communication", ProbableCause: "loss of signal",
					ProposedRepairAction: "Check the node.", RaisedAt: t0, UpdatedAt: t0,
				}
				if i >= 5 {
					a.AlarmID = fmt.Sprintf("900.%03d", i) // a new alarm of the entity
				}
				if _, err := tx.RaiseAlarm(&a); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		list := func(f store.AlarmFilter) []store.Alarm {
			t.Helper()
			var out []store.Alarm
			if err := s.Read(ctx, func(tx store.Tx) (err error) { out, err = tx.ListAlarms(f); return err }); err != nil {
				t.Fatal(err)
			}
			return out
		}
		ids := func(as []store.Alarm) []int64 {
			out := []int64{}
			for _, a := range as {
				out = append(out, a.ID)
			}
			return out
		}
		for _, f := range []store.AlarmFilter{{}, {EntityInstance: "host=edge-03"}, {Severity: "major"},
			{EntityInstance: "host=edge-02", Severity: "major"}, {EntityInstance: "host=none"}} {
			all := list(f)
			want := []int64{}
			for _, a := range list(store.AlarmFilter{}) {
				if (f.EntityInstance == "" || a.EntityInstance == f.EntityInstance) && (f.Severity == "" || a.Severity == f.Severity) {
					want = append(want, a.ID)
				}
			}
			if f == (store.AlarmFilter{}) && len(all) != n {
				t.Fatalf("every alarm: %d, want %d", len(all), n)
			}
			if diff := cmp.Diff(want, ids(all)); f != (store.AlarmFilter{}) && diff != "" {
				t.Errorf("%+v (-want +got):\n%s", f, diff)
			}
			for i := 1; i < len(all); i++ {
				if all[i].ID <= all[i-1].ID {
					t.Fatalf("%+v: ids %v are not ascending", f, ids(all))
				}
			}
			for _, limit := range []int{1, 2, 7, n, n + 1} {
				paged := []int64{}
				f := f
				f.Limit = limit
				for pages := 0; ; pages++ {
					if pages > n+1 {
						t.Fatalf("%+v: more pages than alarms", f)
					}
					p := list(f)
					if len(p) > limit {
						t.Fatalf("%+v: a page of %d", f, len(p))
					}
					paged = append(paged, ids(p)...)
					if len(p) < limit {
						break
					}
					f.AfterID = p[len(p)-1].ID
				}
				if diff := cmp.Diff(ids(all), paged); diff != "" {
					t.Errorf("%+v paged by %d (-every +pages):\n%s", f, limit, diff)
				}
			}
		}
	})
}

// appendEvents stores n events, the i-th (from 0) at start plus i minutes,
// and returns their ids.
func appendEvents(t *testing.T, s store.Store, n int, start time.Time) []int64 {
	t.Helper()
	var ids []int64
	if err := s.Write(context.Background(), func(tx store.Tx) error {
		ids = ids[:0]
		for i := range n {
			e := store.Event{UUID: fmt.Sprintf("ev-%d-%d", start.Unix(), i), Time: start.Add(time.Duration(i) * time.Minute),
				Code: "200.022", EntityType: "host", EntityID: "host=edge-01", Action: "host.state", Actor: "mtce", Reason: "r"}
			if err := tx.AppendEvent(&e); err != nil {
				return err
			}
			ids = append(ids, e.ID)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestPruneEvents: the prune deletes the oldest events in batches, below
// the id it is given and never after the lowest cursor; FirstEventSince
// and EventIDs find the bounds a retention policy prunes to.
func TestPruneEvents(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		var lo, hi int64
		if err := s.Read(ctx, func(tx store.Tx) (err error) { lo, hi, err = tx.EventIDs(); return err }); err != nil || lo != 0 || hi != 0 {
			t.Fatalf("EventIDs of an empty log: %d, %d, %v; want 0, 0", lo, hi, err)
		}
		// Times with and without fractions of a second, which SQLite
		// stores as text: the comparison must still be by time.
		start := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
		ids := appendEvents(t, s, 10, start)
		if err := s.Write(ctx, func(tx store.Tx) error {
			e := store.Event{UUID: "frac", Time: start.Add(10*time.Minute + 500*time.Millisecond), Code: "200.022",
				EntityType: "host", EntityID: "host=edge-01", Action: "host.state", Actor: "mtce", Reason: "r"}
			err := tx.AppendEvent(&e)
			ids = append(ids, e.ID)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		read := func(fn func(tx store.Tx) error) {
			t.Helper()
			if err := s.Read(ctx, fn); err != nil {
				t.Fatal(err)
			}
		}
		read(func(tx store.Tx) (err error) { lo, hi, err = tx.EventIDs(); return err })
		if lo != ids[0] || hi != ids[10] {
			t.Errorf("EventIDs: %d, %d; want %d, %d", lo, hi, ids[0], ids[10])
		}
		for _, c := range []struct {
			at     time.Time
			want   int64
			wantOK bool
		}{
			{start.Add(-time.Hour), ids[0], true},
			{start, ids[0], true},
			{start.Add(time.Nanosecond * 1000), ids[1], true},
			{start.Add(3*time.Minute + time.Second), ids[4], true},
			{start.Add(10 * time.Minute), ids[10], true},
			{start.Add(10*time.Minute + 499*time.Millisecond), ids[10], true},
			{start.Add(10*time.Minute + 500*time.Millisecond), ids[10], true},
			{start.Add(10*time.Minute + 501*time.Millisecond), 0, false},
		} {
			var (
				id int64
				ok bool
			)
			read(func(tx store.Tx) (err error) { id, ok, err = tx.FirstEventSince(c.at); return err })
			if id != c.want || ok != c.wantOK {
				t.Errorf("FirstEventSince(%v): %d, %v; want %d, %v", c.at, id, ok, c.want, c.wantOK)
			}
		}

		prune := func(before int64, limit int) int {
			t.Helper()
			var n int
			if err := s.Write(ctx, func(tx store.Tx) (err error) { n, err = tx.PruneEvents(before, limit); return err }); err != nil {
				t.Fatal(err)
			}
			return n
		}
		// Batches of 2 up to id 6: 2, 2, 1, then nothing.
		for _, want := range []int{2, 2, 1, 0} {
			if n := prune(ids[5], 2); n != want {
				t.Fatalf("prune below %d by 2: %d, want %d", ids[5], n, want)
			}
		}
		if diff := cmp.Diff(ids[5:], storetest.EventIDs(t, s)); diff != "" {
			t.Errorf("after pruning below %d (-want +got):\n%s", ids[5], diff)
		}

		// A reader at ids[6] keeps what comes after it, another
		// reader further on does not lower that.
		if err := s.Write(ctx, func(tx store.Tx) error {
			if err := tx.SetCursor("alarm-webhook", ids[6]); err != nil {
				return err
			}
			return tx.SetCursor("z-reader", ids[9])
		}); err != nil {
			t.Fatal(err)
		}
		var (
			name string
			at   int64
			ok   bool
		)
		read(func(tx store.Tx) (err error) { name, at, ok, err = tx.MinCursor(); return err })
		if name != "alarm-webhook" || at != ids[6] || !ok {
			t.Errorf("MinCursor: %q %d %v, want alarm-webhook %d true", name, at, ok, ids[6])
		}
		if n := prune(hi+1, 100); n != 2 {
			t.Errorf("prune everything with a reader at %d: %d deleted, want 2", ids[6], n)
		}
		if diff := cmp.Diff(ids[7:], storetest.EventIDs(t, s)); diff != "" {
			t.Errorf("after pruning with a reader at %d (-want +got):\n%s", ids[6], diff)
		}
		// The first reader moves on: the prune follows the lowest,
		// up to its id.
		if err := s.Write(ctx, func(tx store.Tx) error { return tx.SetCursor("alarm-webhook", hi) }); err != nil {
			t.Fatal(err)
		}
		if n := prune(hi+1, 100); n != 3 {
			t.Errorf("prune everything with the readers at %d and %d: %d deleted, want 3", ids[9], hi, n)
		}
		if diff := cmp.Diff(ids[10:], storetest.EventIDs(t, s)); diff != "" {
			t.Errorf("after the reader moved on (-want +got):\n%s", diff)
		}
		if err := s.Write(ctx, func(tx store.Tx) (err error) { _, err = tx.PruneEvents(hi, 0); return err }); err == nil {
			t.Error("PruneEvents with limit 0 succeeded; want an error")
		}

		// A reader gone for good is forgotten: what it held goes (id
		// 11), what the other reader has not read stays.
		ids = append(ids, appendEvents(t, s, 3, start.Add(time.Hour))...)
		var deleted [2]bool
		if err := s.Write(ctx, func(tx store.Tx) (err error) {
			if deleted[0], err = tx.DeleteCursor("z-reader"); err != nil {
				return err
			}
			deleted[1], err = tx.DeleteCursor("z-reader")
			return err
		}); err != nil || deleted != [2]bool{true, false} {
			t.Errorf("DeleteCursor twice: %v, %v; want true, then false", deleted, err)
		}
		if n := prune(ids[13]+1, 100); n != 1 {
			t.Errorf("prune everything with the reader at %d left: %d deleted, want 1", hi, n)
		}
		if diff := cmp.Diff(ids[11:], storetest.EventIDs(t, s)); diff != "" {
			t.Errorf("after forgetting a reader (-want +got):\n%s", diff)
		}
	})
}

// TestMinCursorNone: with no reader, the prune is bound only by its
// caller.
func TestMinCursorNone(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		ids := appendEvents(t, s, 3, t0)
		err := s.Write(ctx, func(tx store.Tx) error {
			if _, _, ok, err := tx.MinCursor(); err != nil || ok {
				return fmt.Errorf("MinCursor of a new database: ok %v, %v; want none", ok, err)
			}
			n, err := tx.PruneEvents(ids[2]+1, 10)
			if err == nil && n != 3 {
				err = fmt.Errorf("pruned %d, want 3", n)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// TestListFilters: each filter of the event list alone and together, in a
// read-only transaction, newest first.
func TestListFilters(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		kinds := []struct{ typ, id, action string }{
			{"host", "host=edge-01", "host.add"}, {"host", "host=edge-02", "host.add"},
			{"host", "host=edge-01", "host.state"}, {"token", "token=abc", "token.create"},
			{"host", "host=edge-02", "host.state"}, {"host", "host=edge-01", "alarm.set"},
		}
		if err := s.Write(ctx, func(tx store.Tx) error {
			for i, k := range kinds {
				if err := tx.AppendEvent(&store.Event{UUID: fmt.Sprintf("f-%d", i), Time: t0, EntityType: k.typ,
					EntityID: k.id, Action: k.action, Actor: "a", Reason: "r"}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			f    store.EventFilter
			want []int64
		}{
			{store.EventFilter{Action: "host.add"}, []int64{2, 1}},
			{store.EventFilter{EntityType: "token"}, []int64{4}},
			{store.EventFilter{EntityType: "host", Action: "host.state"}, []int64{5, 3}},
			{store.EventFilter{EntityID: "host=edge-01"}, []int64{6, 3, 1}},
			{store.EventFilter{EntityType: "host", EntityID: "host=edge-01", Action: "host.state"}, []int64{3}},
			{store.EventFilter{Action: "host.state", BeforeID: 5, Limit: 1}, []int64{3}},
			{store.EventFilter{Action: "nope"}, []int64{}},
		} {
			got := []int64{}
			if err := s.Read(ctx, func(tx store.Tx) error {
				evs, err := tx.ListEvents(c.f)
				for _, e := range evs {
					got = append(got, e.ID)
				}
				return err
			}); err != nil {
				t.Fatalf("%+v: %v", c.f, err)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("%+v (-want +got):\n%s", c.f, diff)
			}
		}
	})
}
