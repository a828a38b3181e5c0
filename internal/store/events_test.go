package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// TestAlarmPages: alarms come by ascending id, page after page, each
// alarm once, with and without filters; no limit gives every alarm.
func TestAlarmPages(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := storetest.Open(t, b.DSN(t))
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
}
