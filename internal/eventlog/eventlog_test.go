package eventlog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/eventlog"
	"hummingbird.io/hummingbird/internal/fm"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

var t0 = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

// appendEvents stores n host events, the i-th at t0 plus first+i minutes.
func appendEvents(t *testing.T, st store.Store, first, n int) {
	t.Helper()
	if err := st.Write(context.Background(), func(tx store.Tx) error {
		for i := first; i < first+n; i++ {
			if err := tx.AppendEvent(&store.Event{UUID: fmt.Sprintf("ev-%d", i), Time: t0.Add(time.Duration(i) * time.Minute),
				Code: "200.022", EntityType: "host", EntityID: "host=edge-01", Action: "host.state", Actor: "mtce",
				Reason: "host edge-01 available → degraded"}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func span(from, to int64) []int64 {
	out := []int64{}
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// TestPrune: a pass deletes what the count or the age policy does not
// keep, whichever keeps less, from the oldest event, in batches; a pass
// with nothing to delete deletes nothing; it logs its counts.
func TestPrune(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			for _, c := range []struct {
				name    string
				policy  eventlog.Policy
				deleted int
				batches int
			}{
				// 25 events, at t0 + 0..24 minutes; the clock is at t0 + 30m.
				{"count", eventlog.Policy{Count: 10}, 15, 4},
				{"age", eventlog.Policy{Age: 20 * time.Minute}, 10, 3},
				{"count keeps less", eventlog.Policy{Count: 3, Age: 20 * time.Minute}, 22, 6},
				{"age keeps less", eventlog.Policy{Count: 20, Age: 10 * time.Minute}, 20, 6}, // the sixth finds none left
				{"every event too old", eventlog.Policy{Age: time.Minute}, 25, 7},
				{"within the policy", eventlog.Policy{Count: 25, Age: time.Hour}, 0, 0},
				{"no policy", eventlog.Policy{}, 0, 0},
			} {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					st := storetest.Open(t, b.DSN(t))
					appendEvents(t, st, 0, 25)
					var logs bytes.Buffer
					p := eventlog.New(eventlog.Config{Store: st, Policy: c.policy, Batch: 4, Pause: time.Millisecond,
						Clock: func() time.Time { return t0.Add(30 * time.Minute) }, Log: slog.New(slog.NewJSONHandler(&logs, nil))})
					pass, err := p.Prune(context.Background())
					if err != nil {
						t.Fatal(err)
					}
					if pass.Deleted != c.deleted || pass.Batches != c.batches || pass.Reader != "" {
						t.Errorf("pass %+v; want %d deleted in %d batches, no reader", pass, c.deleted, c.batches)
					}
					if diff := cmp.Diff(span(int64(c.deleted)+1, 25), storetest.EventIDs(t, st)); diff != "" {
						t.Errorf("kept (-want +got):\n%s", diff)
					}
					if again, err := p.Prune(context.Background()); err != nil || again.Deleted != 0 || again.Batches != 0 {
						t.Errorf("a second pass: %+v, %v; want nothing done", again, err)
					}
					var line struct {
						Msg     string `json:"msg"`
						Logger  string `json:"logger"`
						Deleted int    `json:"deleted"`
					}
					if c.deleted > 0 {
						if err := json.Unmarshal(logs.Bytes(), &line); err != nil || line.Msg != "pruned the event log" ||
							line.Logger != "eventlog" || line.Deleted != c.deleted {
							t.Errorf("log %q (%v); want one line saying %d deleted", logs.String(), err, c.deleted)
						}
					} else if logs.Len() > 0 {
						t.Errorf("a pass that deleted nothing logged %q", logs.String())
					}
				})
			}
		})
	}
}

// receiver is a webhook endpoint that answers 503 until told otherwise.
type receiver struct {
	mu    sync.Mutex
	up    bool
	tries int
	got   []int64
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tries++
	if !r.up {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	var n fm.Notification
	if err := json.NewDecoder(req.Body).Decode(&n); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.got = append(r.got, n.EventID)
}

func (r *receiver) state() (tries int, got []int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tries, append([]int64(nil), r.got...)
}

// TestPruneKeepsUndelivered: the alarms a webhook has not delivered stay
// in the log however far past its retention, and the pass names the
// reader; once delivered, they go.
func TestPruneKeepsUndelivered(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			st := storetest.Open(t, b.DSN(t))
			appendEvents(t, st, 0, 5) // history before the webhook: ids 1-5
			rcv := &receiver{}
			srv := httptest.NewServer(rcv)
			defer srv.Close()
			w := &fm.Webhook{URL: srv.URL, Store: st, Poll: 5 * time.Millisecond, Base: 5 * time.Millisecond, Max: 20 * time.Millisecond}
			done := make(chan error, 1)
			go func() { done <- w.Run(ctx) }()
			defer func() { cancel(); <-done }()
			waitFor(t, "the webhook's cursor", func() bool {
				var ok bool
				_ = st.Read(ctx, func(tx store.Tx) (err error) { _, ok, err = tx.Cursor("alarm-webhook"); return err })
				return ok
			})
			for i := range 5 { // ids 6-10
				if err := st.Write(ctx, func(tx store.Tx) error {
					return fm.Raise(tx, store.Alarm{UUID: fmt.Sprintf("a-%d", i), AlarmID: fm.AlarmHeartbeatLoss, EntityType: "host",
						EntityInstance: fmt.Sprintf("host=edge-%02d", i), Severity: fm.Major, Reason: "heartbeat lost",
						AlarmType: "communication", ProbableCause: "loss of signal", ProposedRepairAction: "Check the node."},
						fmt.Sprintf("alarm-ev-%d", i), t0.Add(time.Hour))
				}); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, "a failed delivery", func() bool { tries, _ := rcv.state(); return tries > 0 })

			p := eventlog.New(eventlog.Config{Store: st, Policy: eventlog.Policy{Count: 1}, Batch: 2, Pause: time.Millisecond})
			pass, err := p.Prune(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if pass.Deleted != 5 || pass.Reader != "alarm-webhook" || pass.Cursor != 5 {
				t.Errorf("pass with the alarms undelivered: %+v; want the 5 events before the webhook's cursor deleted, the webhook named", pass)
			}
			if diff := cmp.Diff(span(6, 10), storetest.EventIDs(t, st)); diff != "" {
				t.Errorf("kept with the alarms undelivered (-want +got):\n%s", diff)
			}

			rcv.mu.Lock()
			rcv.up = true
			rcv.mu.Unlock()
			waitFor(t, "the alarms delivered and the cursor stored", func() bool {
				var at int64
				_ = st.Read(ctx, func(tx store.Tx) (err error) { at, _, err = tx.Cursor("alarm-webhook"); return err })
				return at == 10
			})
			if _, got := rcv.state(); !cmp.Equal(got, span(6, 10)) {
				t.Errorf("delivered %v, want %v", got, span(6, 10))
			}
			if pass, err = p.Prune(ctx); err != nil || pass.Deleted != 4 || pass.Reader != "" {
				t.Errorf("pass once delivered: %+v, %v; want 4 deleted, no reader named", pass, err)
			}
			if diff := cmp.Diff(span(10, 10), storetest.EventIDs(t, st)); diff != "" {
				t.Errorf("kept once delivered (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRunFenced: the pruner's writes run under the leader's fence, and a
// refused one ends Run with ErrFenced, for the supervisor to end the term.
func TestRunFenced(t *testing.T) {
	t.Parallel()
	st := storetest.Open(t, storetest.SQLiteDSN(t))
	appendEvents(t, st, 0, 5)
	ctx, cancel := context.WithTimeout(store.WithFence(context.Background(), store.Fence{Duty: "controller", Epoch: 7}), 10*time.Second)
	defer cancel()
	err := eventlog.New(eventlog.Config{Store: st, Policy: eventlog.Policy{Count: 1}}).Run(ctx)
	if !errors.Is(err, store.ErrFenced) {
		t.Errorf("Run under a stale fence: %v, want ErrFenced", err)
	}
	if diff := cmp.Diff(span(1, 5), storetest.EventIDs(t, st)); diff != "" {
		t.Errorf("kept after a fenced pass (-want +got):\n%s", diff)
	}
}

func TestPolicyCheck(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		p    eventlog.Policy
		want string
	}{
		{eventlog.DefaultPolicy(), ""},
		{eventlog.Policy{}, ""},
		{eventlog.Policy{Count: -1}, "--event-retention-count -1"},
		{eventlog.Policy{Age: -time.Hour}, "--event-retention-age -1h0m0s"},
	} {
		err := c.p.Check()
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: %v, want %q", c.p, err, c.want)
		}
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
