package bench

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/controller"
	"hummingbird.io/hummingbird/internal/eventlog"
	"hummingbird.io/hummingbird/internal/fm"
	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/supervisor"
)

// The sizes of BenchmarkEventList and BenchmarkEventPrune.
const (
	// envBenchEvents is the number of events stored (default 1,000,000).
	envBenchEvents = "HB_BENCH_EVENTS"
	// envBenchAlarms is the number of active alarms (default 10,000).
	envBenchAlarms = "HB_BENCH_ALARMS"
	// pruneEvents is how many events one BenchmarkEventPrune op prunes.
	pruneEvents = 100_000
	// preloadBatch is the events or alarms one preload transaction writes.
	preloadBatch = 5000
)

// benchSize reads a size from the environment variable env, def when it
// is unset; it must be at least least.
func benchSize(tb testing.TB, env string, def, least int) int {
	tb.Helper()
	v := os.Getenv(env)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < least {
		tb.Fatalf("%s=%q: give a whole number of at least %d", env, v, least)
	}
	return n
}

// fleetEvent is event k (from 0) of a log of n: a fleet's, about n/100
// hosts (edge-0000001…), each with its state changes, alarm raises and
// clears and updates, a few app switchovers (1 in 20), and a rare action,
// host.add (1 in 997), spread evenly over the 100 days before end.
func fleetEvent(k, n int, end time.Time) store.Event {
	// r mixes k, so that which host an event is about does not decide its
	// action.
	r := uint64(k) * 2654435761 % 4294967291
	e := store.Event{
		Time:  end.Add(-time.Duration(n-k) * (100 * 24 * time.Hour / time.Duration(n))).UTC().Truncate(time.Microsecond),
		Actor: "mtce",
	}
	if r%20 == 19 {
		app := fmt.Sprintf("app-%02d", k%50)
		e.EntityType, e.EntityID, e.Action, e.Actor = "app", "app="+app, "app.switchover", "app"
		e.Reason = "app " + app + " switched over from edge-0000001 to edge-0000002 in 112 ms: the active member failed"
		return e
	}
	host := fmt.Sprintf("edge-%07d", (k*7919)%fleetHosts(n)+1)
	e.EntityType, e.EntityID = "host", "host="+host
	switch {
	case k%997 == 996:
		e.Code, e.Action, e.Actor = inventory.CodeHostAdded, "host.add", "admin"
		e.Reason = "host " + host + " added with personality edgeworker"
	case r/20%10 == 1:
		e.Code, e.Action = fm.AlarmHeartbeatLoss, "alarm.set"
		e.Reason = host + ": management heartbeat loss (degraded) (major)"
	case r/20%10 == 2:
		e.Code, e.Action = fm.AlarmHeartbeatLoss, "alarm.clear"
		e.Reason = "host " + host + " heard again"
	case r/20%10 == 0:
		e.Code, e.Action, e.Actor = "200.021", "host.update", "admin"
		e.Reason = "host " + host + " updated: location"
	default:
		e.Code, e.Action = "200.022", "host.state"
		e.Reason = "host " + host + " available → degraded: 3 heartbeats missed"
	}
	return e
}

// fleetHosts is the number of hosts a log of n events is about.
func fleetHosts(n int) int { return max(n/100, 1) }

// fleetAlarm is active alarm i (from 0): heartbeat loss of host i+1,
// critical for every tenth, major otherwise.
func fleetAlarm(i int, at time.Time) store.Alarm {
	host := fmt.Sprintf("edge-%07d", i+1)
	a := store.Alarm{
		UUID: uuid.NewString(), AlarmID: fm.AlarmHeartbeatLoss, EntityType: "host", EntityInstance: "host=" + host,
		Severity: fm.Major, Reason: host + ": management heartbeat loss (degraded)", AlarmType: "communication",
		ProbableCause: "loss of signal", RaisedAt: at, UpdatedAt: at,
		ProposedRepairAction: "Check the node's power and its network path to the controller, and that hb-agent runs on it (systemctl status hb-agent).",
	}
	if i%10 == 9 {
		a.Severity, a.ServiceAffecting = fm.Critical, true
		a.Reason = host + ": management heartbeat loss (failed)"
	}
	return a
}

// preloadEvents appends events from..to-1 of a log of n (fleetEvent)
// through the controller's store, preloadBatch to a transaction.
func preloadEvents(ctx context.Context, st store.Store, from, to, n int, end time.Time) error {
	for lo := from; lo < to; lo += preloadBatch {
		hi := min(lo+preloadBatch, to)
		if err := st.Write(ctx, func(tx store.Tx) error {
			for k := lo; k < hi; k++ {
				e := fleetEvent(k%n, n, end) // past n: the same shape again, ending at end
				e.UUID = uuid.NewString()
				if err := tx.AppendEvent(&e); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return fmt.Errorf("preload events %d-%d: %w", lo, hi-1, err)
		}
	}
	return nil
}

// preloadAlarms raises alarms 0..n-1 (fleetAlarm), preloadBatch to a
// transaction.
func preloadAlarms(ctx context.Context, st store.Store, n int) error {
	at := time.Now().UTC().Truncate(time.Microsecond)
	for lo := 0; lo < n; lo += preloadBatch {
		hi := min(lo+preloadBatch, n)
		if err := st.Write(ctx, func(tx store.Tx) error {
			for i := lo; i < hi; i++ {
				a := fleetAlarm(i, at)
				if _, err := tx.RaiseAlarm(&a); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return fmt.Errorf("preload alarms %d-%d: %w", lo, hi-1, err)
		}
	}
	return nil
}

// eventLog is a controller with a preloaded event log and alarms, and what
// its lists must answer.
type eventLog struct {
	s              *server
	dsn            string // the PostgreSQL database ("" for SQLite)
	events, alarms int
	// oldest and newest are the ids of the log, the controller's own
	// events at its start included.
	oldest, newest int64
}

// startEventLog starts a controller on be that prunes nothing by itself,
// and preloads events events and alarms alarms.
func startEventLog(tb testing.TB, be backend, events, alarms int) *eventLog {
	tb.Helper()
	ctx := tb.Context()
	dsn := be.db(tb)
	s := startControllerWith(tb, dsn, func(cfg *controller.Config) { cfg.EventRetention = eventlog.Policy{} })
	t0 := time.Now()
	if err := preloadEvents(ctx, s.ctrl.Store, 0, events, events, t0); err != nil {
		tb.Fatal(err)
	}
	if err := preloadAlarms(ctx, s.ctrl.Store, alarms); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("%s: preloaded %d events and %d alarms in %v", be.name, events, alarms, time.Since(t0).Round(time.Millisecond))
	l := &eventLog{s: s, dsn: dsn, events: events, alarms: alarms}
	if dsn != "" {
		// What autovacuum does soon after a bulk load: the planner's
		// statistics, which a log that grows event by event has.
		if err := l.postgres(ctx, func(db *sql.DB) error { _, err := db.ExecContext(ctx, "ANALYZE"); return err }); err != nil {
			tb.Fatal(err)
		}
	}
	if err := s.ctrl.Store.Read(ctx, func(tx store.Tx) (err error) { l.oldest, l.newest, err = tx.EventIDs(); return err }); err != nil {
		tb.Fatal(err)
	}
	return l
}

// dbSize is the size of the controller's database in MB: the SQLite file
// and its WAL, or the PostgreSQL database.
func (l *eventLog) dbSize(tb testing.TB) float64 {
	tb.Helper()
	var size int64
	if l.dsn == "" {
		for _, suffix := range []string{"", "-wal"} {
			if st, err := os.Stat(store.SQLitePath(l.s.dataDir) + suffix); err == nil {
				size += st.Size()
			}
		}
	} else if err := l.postgres(tb.Context(), func(db *sql.DB) error {
		return db.QueryRowContext(tb.Context(), `SELECT pg_database_size(current_database())`).Scan(&size)
	}); err != nil {
		tb.Fatal(err)
	}
	return float64(size) / 1e6
}

// postgres runs fn on a connection of its own to the controller's
// PostgreSQL database.
func (l *eventLog) postgres(ctx context.Context, fn func(db *sql.DB) error) error {
	db, err := sql.Open("pgx", l.dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	return fn(db)
}

// eventsPage is one GET /v1/events with query q.
func (s *server) eventsPage(q url.Values) (apitype.EventList, error) {
	var out apitype.EventList
	err := s.do("GET", "/v1/events?"+q.Encode(), nil, &out, 200)
	return out, err
}

// alarmsPage is one GET /v1/alarms with query q.
func (s *server) alarmsPage(q url.Values) (apitype.AlarmList, error) {
	var out apitype.AlarmList
	err := s.do("GET", "/v1/alarms?"+q.Encode(), nil, &out, 200)
	return out, err
}

// eventOps are the reads BenchmarkEventList measures on l, each checking
// its answer: the first page of events, a page half way down the log
// (marker), a host's events (as hbctl event-list --host asks), a rare
// action's, the first page of alarms, the critical ones, and every alarm
// page by page. run returns the number of items it got.
func eventOps(l *eventLog) []listOp {
	host := fmt.Sprintf("host=edge-%07d", min(42, fleetHosts(l.events)))
	onHost, added := 0, 0
	for k := range l.events {
		e := fleetEvent(k, l.events, time.Time{})
		if e.EntityID == host {
			onHost++
		}
		if e.Action == "host.add" {
			added++
		}
	}
	critical := 0
	for i := range l.alarms {
		if fleetAlarm(i, time.Time{}).Severity == fm.Critical {
			critical++
		}
	}
	marker := l.newest - int64(l.events/2)
	q := func(kv ...string) url.Values {
		v := url.Values{"limit": {strconv.Itoa(pageSize)}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	events := func(v url.Values, want int, wantNext bool, below int64) func() (int, error) {
		return func() (int, error) {
			p, err := l.s.eventsPage(v)
			if err != nil {
				return 0, err
			}
			if len(p.Events) != want || (p.Next != "") != wantNext {
				return len(p.Events), fmt.Errorf("GET /v1/events?%s: %d events, next %q; want %d, next set %v", v.Encode(), len(p.Events), p.Next, want, wantNext)
			}
			for i, e := range p.Events {
				if e.ID >= below || (i > 0 && e.ID >= p.Events[i-1].ID) {
					return len(p.Events), fmt.Errorf("GET /v1/events?%s: event %d has id %d after %d; want ids below %d, newest first", v.Encode(), i, e.ID, p.Events[max(i-1, 0)].ID, below)
				}
				if (v.Get("entity_id") != "" && e.EntityID != v.Get("entity_id")) || (v.Get("action") != "" && e.Action != v.Get("action")) {
					return len(p.Events), fmt.Errorf("GET /v1/events?%s: event %d does not match: %+v", v.Encode(), e.ID, e)
				}
			}
			if wantNext && p.Next != strconv.FormatInt(p.Events[len(p.Events)-1].ID, 10) {
				return len(p.Events), fmt.Errorf("GET /v1/events?%s: next %q is not the last event's id", v.Encode(), p.Next)
			}
			return len(p.Events), nil
		}
	}
	alarms := func(v url.Values, want int, wantNext bool) func() (int, error) {
		return func() (int, error) {
			p, err := l.s.alarmsPage(v)
			if err != nil {
				return 0, err
			}
			if len(p.Alarms) != want || (p.Next != "") != wantNext {
				return len(p.Alarms), fmt.Errorf("GET /v1/alarms?%s: %d alarms, next %q; want %d, next set %v", v.Encode(), len(p.Alarms), p.Next, want, wantNext)
			}
			return len(p.Alarms), nil
		}
	}
	every := func() (int, error) {
		v := q()
		seen := map[string]bool{}
		for pages := 1; ; pages++ {
			p, err := l.s.alarmsPage(v)
			if err != nil {
				return len(seen), err
			}
			for _, a := range p.Alarms {
				if seen[a.UUID] {
					return len(seen), fmt.Errorf("alarm %s on two pages", a.UUID)
				}
				seen[a.UUID] = true
			}
			if p.Next == "" {
				if len(seen) != l.alarms || pages != (l.alarms+pageSize-1)/pageSize {
					return len(seen), fmt.Errorf("paging GET /v1/alarms by %d: %d alarms in %d pages, want %d", pageSize, len(seen), pages, l.alarms)
				}
				return len(seen), nil
			}
			v.Set("marker", p.Next)
		}
	}
	return []listOp{
		{"events-first-page", events(q(), min(pageSize, int(l.newest-l.oldest+1)), l.newest-l.oldest+1 > pageSize, l.newest+1)},
		{"events-deep-page", events(q("marker", strconv.FormatInt(marker, 10)), min(pageSize, int(marker-l.oldest)), marker-l.oldest > pageSize, marker)},
		{"events-host", events(q("entity_type", "host", "entity_id", host), min(onHost, pageSize), onHost > pageSize, l.newest+1)},
		{"events-action", events(q("action", "host.add"), min(added, pageSize), added > pageSize, l.newest+1)},
		{"alarms-first-page", alarms(q(), min(l.alarms, pageSize), l.alarms > pageSize)},
		{"alarms-critical", alarms(q("severity", fm.Critical), min(critical, pageSize), critical > pageSize)},
		{"alarms-every-page", every},
	}
}

// BenchmarkEventList measures, with HB_BENCH_EVENTS events stored (default
// 1,000,000, shaped like a fleet's log: fleetEvent) and HB_BENCH_ALARMS
// active alarms (default 10,000), the latency a client sees over TLS for
// a page of 1,000: the newest events, events half way down the log, one
// host's events, a rare action's, the first alarms, the critical ones,
// and every alarm page by page. It reports the database's size.
func BenchmarkEventList(b *testing.B) {
	events := benchSize(b, envBenchEvents, 1_000_000, 2*pageSize)
	alarms := benchSize(b, envBenchAlarms, 10_000, 1)
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			l := startEventLog(b, be, events, alarms)
			b.Logf("%s: %d events, ids %d-%d, database %.0f MB", be.name, events, l.oldest, l.newest, l.dbSize(b))
			for _, op := range eventOps(l) {
				b.Run(op.name, func(b *testing.B) { timeReads(b, op.run, "items/op") })
			}
		})
	}
}

// BenchmarkEventPrune measures the retention's pass over a log of
// HB_BENCH_EVENTS events: each op prunes the oldest pruneEvents (100,000)
// as the leader does, in batches of eventlog.DefaultBatch with
// eventlog.DefaultPause between them, then (untimed) appends as many new
// events. It reports the time of the pass, the time spent in its
// transactions (busy-ms) and the longest transaction (longest-batch-ms):
// how long another writer waits on SQLite at most.
func BenchmarkEventPrune(b *testing.B) {
	events := benchSize(b, envBenchEvents, 1_000_000, pruneEvents)
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			l := startEventLog(b, be, events, 0)
			b.Logf("%s: %d events, ids %d-%d, database %.0f MB", be.name, events, l.oldest, l.newest, l.dbSize(b))
			next := events
			b.Run("prune-100k", func(b *testing.B) {
				l.benchPrune(b, &next)
			})
		})
	}
}

// benchPrune is one round of BenchmarkEventPrune: b.N passes over l, the
// events after next (of a log of l.events) appended after each.
func (l *eventLog) benchPrune(b *testing.B, next *int) {
	var busy, longest time.Duration
	var batches int
	b.ResetTimer()
	for range b.N {
		pass, err := l.prune(b, pruneEvents, eventlog.DefaultBatch, eventlog.DefaultPause)
		if err != nil {
			b.Fatal(err)
		}
		busy += pass.Busy
		batches += pass.Batches
		longest = max(longest, pass.Longest)
		b.StopTimer()
		if err := preloadEvents(b.Context(), l.s.ctrl.Store, *next, *next+pruneEvents, l.events, time.Now()); err != nil {
			b.Fatal(err)
		}
		*next += pruneEvents
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed())/float64(time.Millisecond)/float64(b.N), "ms/op")
	b.ReportMetric(float64(busy)/float64(time.Millisecond)/float64(b.N), "busy-ms")
	b.ReportMetric(float64(longest)/float64(time.Millisecond), "longest-batch-ms")
	b.ReportMetric(float64(batches)/float64(b.N), "batches/op")
}

// prune makes one pass of the retention that keeps all but the oldest n
// events, and checks that it deleted exactly those.
func (l *eventLog) prune(tb testing.TB, n, batch int, pause time.Duration) (eventlog.Pass, error) {
	tb.Helper()
	ctx := tb.Context()
	st := l.s.ctrl.Store
	var oldest, newest int64
	if err := st.Read(ctx, func(tx store.Tx) (err error) { oldest, newest, err = tx.EventIDs(); return err }); err != nil {
		return eventlog.Pass{}, err
	}
	p := eventlog.New(eventlog.Config{Store: st, Policy: eventlog.Policy{Count: newest - oldest + 1 - int64(n)}, Batch: batch, Pause: pause})
	pass, err := p.Prune(ctx)
	if err != nil {
		return pass, err
	}
	var after int64
	if err := st.Read(ctx, func(tx store.Tx) (err error) { after, _, err = tx.EventIDs(); return err }); err != nil {
		return pass, err
	}
	// n is a multiple of batch: the last batch finds none left.
	if pass.Deleted != n || after != oldest+int64(n) || pass.Batches != n/batch+1 {
		return pass, fmt.Errorf("pruning %d of ids %d-%d by %d: %+v, oldest kept %d; want %d deleted in %d batches, oldest kept %d",
			n, oldest, newest, batch, pass, after, n, n/batch+1, oldest+int64(n))
	}
	return pass, nil
}

// TestEventListSetup runs BenchmarkEventList's and BenchmarkEventPrune's
// operations on 2,000 events and 2,500 alarms, so that go test ./...
// catches a broken benchmark: it fails on wrong answers (page sizes, next
// markers, what a filter or a prune returns), not on time.
func TestEventListSetup(t *testing.T) {
	t.Parallel()
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			l := startEventLog(t, be, 2000, 2500)
			for _, op := range eventOps(l) {
				if n, err := op.run(); err != nil {
					t.Errorf("%s: %v", op.name, err)
				} else if n == 0 {
					t.Errorf("%s: got nothing", op.name)
				}
			}
			if _, err := l.prune(t, 500, 100, time.Millisecond); err != nil {
				t.Error(err)
			}
			if !slices.ContainsFunc(l.s.ctrl.Parts(), func(s supervisor.State) bool { return s.Name == "retention" && s.Leader }) {
				t.Errorf("the controller's parts %+v have no retention part on the leader", l.s.ctrl.Parts())
			}
		})
	}
}
