package bench

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// outcome is what became of one request of an open-loop load (a heartbeat,
// a Lease renewal): when it was due, when its answer or error came, and
// whether it had to connect anew.
type outcome struct {
	due, done   time.Time
	err         error
	reconnected bool
}

// tally is what the measured window [from, to) of an open-loop load saw.
//
// answered counts the answers that arrived in the window, whenever their
// requests were due, so that it and the CPU time taken over the window
// cover the same interval: an overloaded server still answers a backlog
// after the window, and the CPU it spends on that is not in the window.
// The latencies, errors and reconnects are those of the requests due in
// the window, whenever they ended: a backlog's latency is its own.
type tally struct {
	answered     int             // answers that arrived in the window
	answeredLate int             // due in the window, answered after it
	errors       int             // due in the window, failed
	firstErr     error           // the first of those
	reconnects   int             // due in the window, sent on a new connection
	lat          []time.Duration // due in the window and answered, from due to answer
	maxLat       time.Duration
}

// tallyWindow counts outs over the window [from, to).
func tallyWindow(outs []outcome, from, to time.Time) tally {
	var t tally
	in := func(at time.Time) bool { return !at.Before(from) && at.Before(to) }
	for _, o := range outs {
		if o.err == nil && in(o.done) {
			t.answered++
		}
		if !in(o.due) {
			continue
		}
		if o.reconnected {
			t.reconnects++
		}
		if o.err != nil {
			t.errors++
			if t.firstErr == nil {
				t.firstErr = o.err
			}
			continue
		}
		if !o.done.Before(to) {
			t.answeredLate++
		}
		d := o.done.Sub(o.due)
		t.lat = append(t.lat, d)
		t.maxLat = max(t.maxLat, d)
	}
	return t
}

func TestTallyWindow(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	from, to := at(10), at(20)
	refused := errors.New("connection refused")
	tests := []struct {
		name string
		outs []outcome
		want tally
	}{
		{
			name: "steady: due and answered in the window",
			outs: []outcome{{due: at(10), done: at(10.002)}, {due: at(15), done: at(15.003), reconnected: true}},
			want: tally{answered: 2, reconnects: 1, lat: []time.Duration{2 * time.Millisecond, 3 * time.Millisecond}, maxLat: 3 * time.Millisecond},
		},
		{
			// The CPU time stops at the window's end: answers that come
			// after it are not in the count either, but their latency is.
			name: "overloaded: a backlog answered after the window",
			outs: []outcome{{due: at(12), done: at(19)}, {due: at(18), done: at(25)}, {due: at(19), done: at(20)}},
			want: tally{answered: 1, answeredLate: 2, lat: []time.Duration{7 * time.Second, 7 * time.Second, time.Second}, maxLat: 7 * time.Second},
		},
		{
			name: "a warm-up request answered in the window counts as an answer only",
			outs: []outcome{{due: at(8), done: at(11), reconnected: true}},
			want: tally{answered: 1},
		},
		{
			name: "errors count by due time, never as answers",
			outs: []outcome{{due: at(9), done: at(11), err: refused}, {due: at(11), done: at(12), err: refused}, {due: at(19), done: at(21), err: refused}},
			want: tally{errors: 2, firstErr: refused},
		},
		{
			name: "nothing in the window",
			outs: []outcome{{due: at(1), done: at(2)}, {due: at(20), done: at(20.1)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tallyWindow(tt.outs, from, to)
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(tally{}), cmp.Comparer(func(a, b error) bool { return a == b })); diff != "" {
				t.Errorf("tallyWindow (-want +got):\n%s", diff)
			}
		})
	}
}
