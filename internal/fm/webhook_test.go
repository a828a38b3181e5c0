package fm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
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

// TestWebhookLogsNoSecret: a webhook URL's password and query values never
// reach the log, neither when the receiver refuses nor when it cannot be
// reached, nor in the error for a URL that is not http(s).
func TestWebhookLogsNoSecret(t *testing.T) {
	t.Parallel()
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no", http.StatusForbidden)
	}))
	t.Cleanup(refusing.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close() // nothing listens there any more
	for name, base := range map[string]string{"refused": refusing.URL, "unreachable": closed.URL} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := storetest.Open(t, storetest.SQLiteDSN(t))
			u := strings.Replace(base, "http://", "http://hook:s3cret-pass@", 1) + "/notify?token=s3cret-token&site=a"
			var logs syncBuffer
			w := &fm.Webhook{URL: u, Store: st, Poll: 10 * time.Millisecond, Base: 5 * time.Millisecond, Max: 10 * time.Millisecond,
				Log: slog.New(slog.NewTextHandler(&logs, nil))}
			ctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			done := make(chan struct{})
			go func() { w.Run(ctx); close(done) }()
			time.Sleep(100 * time.Millisecond) // started: the alarm below is new to it
			if err := st.Write(ctx, func(tx store.Tx) error {
				return fm.Raise(tx, store.Alarm{UUID: "a-1", AlarmID: fm.AlarmHeartbeatLoss, EntityType: "host",
					EntityInstance: "host=edge-01", Severity: fm.Major, Reason: "r", AlarmType: "communication",
					ProbableCause: "c", ProposedRepairAction: "p"}, "e-1", time.Now().UTC().Truncate(time.Microsecond))
			}); err != nil {
				t.Fatal(err)
			}
			<-done
			out := logs.String()
			if !strings.Contains(out, "alarm notification not delivered") {
				t.Fatalf("no failed delivery logged:\n%s", out)
			}
			if strings.Contains(out, "s3cret") {
				t.Errorf("the log has the URL's secrets:\n%s", out)
			}
			if !strings.Contains(out, "token=xxxxx") {
				t.Errorf("the log does not name the URL, redacted:\n%s", out)
			}
		})
	}
	if err := fm.CheckURL("ftp://hook:s3cret@example.net/?token=s3cret"); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("CheckURL of an ftp URL: %v", err)
	}
}

// syncBuffer is a bytes.Buffer that a logger and a test may use at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestWebhookLateCommit: on PostgreSQL an alarm's event id is handed out before its
// transaction commits; an alarm that commits after a later one is still delivered, once.
func TestWebhookLateCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.Open(t, storetest.PostgresDSN(t))
	raise := func(ctx context.Context, entity string, hold <-chan struct{}) error {
		return st.Write(ctx, func(tx store.Tx) error {
			err := fm.Raise(tx, store.Alarm{UUID: "a-" + entity, AlarmID: fm.AlarmHeartbeatLoss, EntityType: "host",
				EntityInstance: entity, Severity: fm.Major, Reason: "r", AlarmType: "communication",
				ProbableCause: "c", ProposedRepairAction: "p"}, "e-"+entity, time.Now().UTC().Truncate(time.Microsecond))
			if hold != nil {
				<-hold
			}
			return err
		})
	}
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	t.Cleanup(srv.Close)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	w := &fm.Webhook{URL: srv.URL, Store: st, Poll: 10 * time.Millisecond, Base: 5 * time.Millisecond, Max: 40 * time.Millisecond}
	go func() { w.Run(wctx); close(done) }()
	defer func() { cancel(); <-done }()
	time.Sleep(100 * time.Millisecond) // started: what follows is new to it

	// edge-01's alarm takes its event id first and commits last.
	hold := make(chan struct{})
	late := make(chan error, 1)
	go func() { late <- raise(ctx, "host=edge-01", hold) }()
	time.Sleep(100 * time.Millisecond)
	if err := raise(ctx, "host=edge-02", nil); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); len(rcv.seen()) < 1 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // the webhook moved past edge-02's event
	close(hold)
	if err := <-late; err != nil {
		t.Fatal(err)
	}
	want := []string{"set 200.005 host=edge-02", "set 200.005 host=edge-01"}
	for deadline := time.Now().Add(5 * time.Second); len(rcv.seen()) < 2 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // a duplicate would show now
	if diff := cmp.Diff(want, rcv.seen()); diff != "" {
		t.Errorf("notifications (-want +got):\n%s", diff)
	}
}
