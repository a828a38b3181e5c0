package feed

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/store"
)

// TestCursor: the cursor stops below an id not seen yet, so that an event whose transaction
// commits after a higher id's is still taken, once; a gap open for GapWait is given up.
func TestCursor(t *testing.T) {
	t.Parallel()
	evs := func(ids ...int64) []store.Event {
		var out []store.Event
		for _, id := range ids {
			out = append(out, store.Event{ID: id})
		}
		return out
	}
	ids := func(es []store.Event) []int64 {
		var out []int64
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	tl := NewCursor(10)
	for _, step := range []struct {
		read   []int64 // what EventsAfter(cursor) returned
		after  time.Duration
		fresh  []int64
		cursor int64
	}{
		{read: []int64{11, 13}, fresh: []int64{11, 13}, cursor: 11}, // 12 not committed yet
		{read: []int64{13, 14}, after: time.Second, fresh: []int64{14}, cursor: 11},
		{read: []int64{12, 13, 14}, after: 2 * time.Second, fresh: []int64{12}, cursor: 14}, // 12 came
		{read: []int64{16}, after: 3 * time.Second, fresh: []int64{16}, cursor: 14},         // 15 rolled back?
		{read: []int64{16}, after: 3*time.Second + GapWait - time.Millisecond, cursor: 14},
		{read: []int64{16, 17}, after: 3*time.Second + GapWait, fresh: []int64{17}, cursor: 17}, // given up
		{read: nil, after: 20 * time.Second, cursor: 17},
	} {
		got := tl.take(evs(step.read...), at.Add(step.after))
		if diff := cmp.Diff(step.fresh, ids(got)); diff != "" || tl.At() != step.cursor {
			t.Errorf("after reading %v at +%v: fresh %v, cursor %d; want %v, %d", step.read, step.after, ids(got), tl.At(), step.fresh, step.cursor)
		}
	}
}
