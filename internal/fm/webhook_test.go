package fm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/fm"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// receiver is a webhook endpoint that fails its first `fail` requests.
type receiver struct {
	mu   sync.Mutex
	fail int
	got  []fm.Notification
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail > 0 {
		r.fail--
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	var n fm.Notification
	if err := json.NewDecoder(req.Body).Decode(&n); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.got = append(r.got, n)
}

func (r *receiver) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, n := range r.got {
		out = append(out, n.State+" "+n.AlarmID+" "+n.EntityInstanceID)
	}
	return out
}

func TestWebhook(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := storetest.Open(t, b.DSN(t))
			n := 0
			raise := func(entity, id string) {
				t.Helper()
				n++
				err := st.Write(ctx, func(tx store.Tx) error {
					return fm.Raise(tx, store.Alarm{UUID: fmt.Sprintf("a-%d", n), AlarmID: id, EntityType: "host",
						EntityInstance: entity, Severity: fm.Major, Reason: "r", AlarmType: "communication",
						ProbableCause: "c", ProposedRepairAction: "p"}, fmt.Sprintf("e-%d", n), time.Now().UTC().Truncate(time.Microsecond))
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			clear := func(entity, id string) {
				t.Helper()
				n++
				if err := st.Write(ctx, func(tx store.Tx) error {
					return fm.Clear(tx, id, "host", entity, "heard again", fmt.Sprintf("e-%d", n), time.Now().UTC().Truncate(time.Microsecond))
				}); err != nil {
					t.Fatal(err)
				}
			}
			rcv := &receiver{fail: 2}
			srv := httptest.NewServer(rcv)
			t.Cleanup(srv.Close)
			run := func() (stop func()) {
				ctx, cancel := context.WithCancel(ctx)
				done := make(chan struct{})
				w := &fm.Webhook{URL: srv.URL, Store: st, Poll: 10 * time.Millisecond, Base: 5 * time.Millisecond, Max: 40 * time.Millisecond}
				go func() { w.Run(ctx); close(done) }()
				return func() { cancel(); <-done }
			}
			waitFor := func(want []string) {
				t.Helper()
				deadline := time.Now().Add(10 * time.Second)
				for time.Now().Before(deadline) {
					if len(rcv.seen()) >= len(want) {
						break
					}
					time.Sleep(10 * time.Millisecond)
				}
				time.Sleep(50 * time.Millisecond) // a duplicate would show now
				if diff := cmp.Diff(want, rcv.seen()); diff != "" {
					t.Fatalf("notifications (-want +got):\n%s", diff)
				}
			}

			raise("host=old", fm.AlarmHeartbeatLoss) // before the first start: not replayed
			stop := run()
			time.Sleep(50 * time.Millisecond)
			raise("host=edge-01", fm.AlarmHeartbeatLoss)
			raise("host=edge-01", fm.AlarmHostFailed)
			clear("host=edge-01", fm.AlarmHostFailed)
			waitFor([]string{"set 200.005 host=edge-01", "set 200.004 host=edge-01", "clear 200.004 host=edge-01"})
			stop()
			clear("host=edge-01", fm.AlarmHeartbeatLoss) // while stopped: delivered after the restart
			stop = run()
			defer stop()
			waitFor([]string{"set 200.005 host=edge-01", "set 200.004 host=edge-01", "clear 200.004 host=edge-01",
				"clear 200.005 host=edge-01"})
		})
	}
}
