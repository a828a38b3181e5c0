package store_test

import (
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// envPlanEvents sets the number of events TestListPlans stores (default
// 20,000); HB_TEST_PLAN_EVENTS=1000000 shows the plans at fleet scale.
const envPlanEvents = "HB_TEST_PLAN_EVENTS"

// TestListPlans: every filter of the event and alarm lists, and the
// marker, is read from an index on both databases, with the log shaped
// like a fleet's: most events about hosts, few of them host.add. SQLite,
// which keeps no statistics, must read the index of the most selective
// filter given, in the list's order (no sort); PostgreSQL plans by the
// statistics autovacuum keeps (the test runs ANALYZE) and must not scan
// the table (it sorts the few rows a selective filter matches).
func TestListPlans(t *testing.T) {
	t.Parallel()
	n := 20_000
	if v := os.Getenv(envPlanEvents); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 2_000 {
			t.Fatalf("%s=%q: give a number of events, at least 2000", envPlanEvents, v)
		}
	}
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			dsn := b.DSN(t)
			s := storetest.Open(t, dsn)
			driver := map[string]string{"sqlite": "sqlite", "postgres": "pgx"}[s.Dialect()]
			db, err := sql.Open(driver, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			fill := map[string][]string{
				"sqlite": {`WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $1)
					INSERT INTO events SELECT i, 'u' || i, '2026-01-01 00:00:00+00:00', '200.022',
					CASE WHEN i % 20 = 0 THEN 'app' ELSE 'host' END,
					CASE WHEN i % 20 = 0 THEN 'app=a' || (i % 50) ELSE 'host=edge-' || (i * 7919 % ($1 / 100)) END,
					CASE WHEN i % 1000 = 3 THEN 'host.add' WHEN i % 10 = 1 THEN 'alarm.set' WHEN i % 10 = 2 THEN 'alarm.clear'
					     WHEN i % 10 = 0 THEN 'host.update' ELSE 'host.state' END, 'mtce', 'r' FROM s`,
					`WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $1 / 10)
					INSERT INTO alarms SELECT i, 'u' || i, '200.005', 'host', 'host=edge-' || i,
					CASE WHEN i % 100 = 0 THEN 'critical' ELSE 'major' END, 'r', 'communication', 'c', 'a', true,
					'2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00' FROM s`},
				"postgres": {`INSERT INTO events SELECT i, 'u' || i, '2026-01-01', '200.022',
					CASE WHEN i % 20 = 0 THEN 'app' ELSE 'host' END,
					CASE WHEN i % 20 = 0 THEN 'app=a' || (i % 50) ELSE 'host=edge-' || (i::bigint * 7919 % ($1 / 100)) END,
					CASE WHEN i % 1000 = 3 THEN 'host.add' WHEN i % 10 = 1 THEN 'alarm.set' WHEN i % 10 = 2 THEN 'alarm.clear'
					     WHEN i % 10 = 0 THEN 'host.update' ELSE 'host.state' END, 'mtce', 'r' FROM generate_series(1, $1::bigint) i`,
					`INSERT INTO alarms SELECT i, 'u' || i, '200.005', 'host', 'host=edge-' || i,
					CASE WHEN i % 100 = 0 THEN 'critical' ELSE 'major' END, 'r', 'communication', 'c', 'a', true,
					'2026-01-01', '2026-01-01' FROM generate_series(1, $1::bigint / 10) i`,
					`ANALYZE events`, `ANALYZE alarms`},
			}[s.Dialect()]
			for _, q := range fill {
				var args []any
				if strings.Contains(q, "$1") {
					args = append(args, n)
				}
				if _, err := db.Exec(q, args...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			marker := int64(n / 2)
			for _, c := range []struct {
				f     store.EventFilter
				index string // SQLite's
			}{
				{store.EventFilter{}, "sqlite_autoindex_events_1"},
				{store.EventFilter{BeforeID: marker}, "sqlite_autoindex_events_1"},
				{store.EventFilter{EntityType: "host"}, "events_type_idx"},
				{store.EventFilter{EntityType: "token"}, "events_type_idx"},
				{store.EventFilter{EntityID: "host=edge-42"}, "events_entity_id_idx"},
				{store.EventFilter{EntityType: "host", EntityID: "host=edge-42", BeforeID: marker}, "events_entity_id_idx"},
				{store.EventFilter{Action: "host.add"}, "events_action_idx"},
				{store.EventFilter{Action: "token.create", BeforeID: marker}, "events_action_idx"},
				{store.EventFilter{EntityType: "host", Action: "host.add"}, "events_action_idx"},
				{store.EventFilter{EntityID: "host=edge-42", Action: "alarm.set", BeforeID: marker}, "events_entity_id_idx"},
			} {
				c.f.Limit = 1001
				q, args := store.EventsQuery(s.Dialect(), c.f)
				checkPlan(t, db, s.Dialect(), fmt.Sprintf("events %+v", c.f), "events", c.index, q, args)
			}
			if s.Dialect() == "postgres" {
				checkCustomPlan(t, db, store.EventFilter{Action: "host.add", Limit: 1001})
			}
			for _, c := range []struct {
				f     store.AlarmFilter
				index string
			}{
				{store.AlarmFilter{}, "sqlite_autoindex_alarms_1"},
				{store.AlarmFilter{AfterID: marker / 10}, "sqlite_autoindex_alarms_1"},
				{store.AlarmFilter{EntityInstance: "host=edge-42"}, "alarms_entity_idx"},
				{store.AlarmFilter{Severity: "critical", AfterID: 10}, "alarms_severity_idx"},
				{store.AlarmFilter{EntityInstance: "host=edge-42", Severity: "major"}, "alarms_entity_idx"},
			} {
				c.f.Limit = 1001
				q, args := store.AlarmsQuery(s.Dialect(), c.f)
				checkPlan(t, db, s.Dialect(), fmt.Sprintf("alarms %+v", c.f), "alarms", c.index, q, args)
			}
		})
	}
}

// checkPlan explains q and fails the test unless it reads table through
// an index: on SQLite through index, without a sort.
func checkPlan(t *testing.T, db *sql.DB, dialect, name, table, index, q string, args []any) {
	t.Helper()
	explain := "EXPLAIN QUERY PLAN "
	if dialect == "postgres" {
		explain = "EXPLAIN "
	}
	rows, err := db.Query(explain+q, args...)
	if err != nil {
		t.Fatalf("%s: explain %s: %v", name, q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var lines []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, fmt.Sprint(vals[len(vals)-1]))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	plan := strings.Join(lines, "\n")
	t.Logf("%s:\n%s", name, plan)
	var bad bool
	switch dialect {
	case "sqlite":
		bad = !strings.Contains(plan, table+" USING INDEX "+index) || strings.Contains(plan, "TEMP B-TREE")
	case "postgres":
		bad = strings.Contains(plan, "Seq Scan")
	}
	if bad {
		t.Errorf("%s: %s is not read through an index in order (want %s on SQLite):\n%s\n%s", name, table, index, q, plan)
	}
}

// checkCustomPlan runs f's query as a statement prepared once, as pgx
// does, seven times after store.CustomPlansSQL, and checks that the plan
// is still made for the argument: for a rare action, through the action's
// index, not backwards through every id. Without it PostgreSQL may switch
// to a generic plan after five runs; the plan it would be is logged.
func checkCustomPlan(t *testing.T, db *sql.DB, f store.EventFilter) {
	t.Helper()
	ctx := t.Context()
	q, args := store.EventsQuery("postgres", f)
	for _, custom := range []bool{false, true} {
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		stmts := []string{"SET LOCAL plan_cache_mode = force_generic_plan", "PREPARE list AS " + q}
		if custom {
			stmts[0] = store.CustomPlansSQL
		}
		for _, q := range stmts {
			if _, err := tx.Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		// EXECUTE takes no parameters: the arguments are written out.
		var lits []string
		for _, a := range args {
			if s, ok := a.(string); ok {
				lits = append(lits, "'"+strings.ReplaceAll(s, "'", "''")+"'")
			} else {
				lits = append(lits, fmt.Sprint(a))
			}
		}
		execute := "EXECUTE list(" + strings.Join(lits, ", ") + ")"
		for range 7 {
			if _, err := tx.Exec(execute); err != nil {
				t.Fatalf("%s: %v", execute, err)
			}
		}
		var lines []string
		rows, err := tx.Query("EXPLAIN " + execute)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, line)
		}
		rows.Close()
		tx.Rollback()
		if _, err := conn.ExecContext(ctx, "DEALLOCATE list"); err != nil {
			t.Fatal(err)
		}
		conn.Close()
		plan := strings.Join(lines, "\n")
		generic := strings.Contains(plan, "events_pkey")
		t.Logf("events %+v, prepared, the eighth run, custom plans %v (else generic):\n%s", f, custom, plan)
		if custom && generic {
			t.Errorf("events %+v: with %s the eighth run of a prepared list reads every id:\n%s", f, store.CustomPlansSQL, plan)
		}
	}
}
