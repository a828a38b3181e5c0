package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 123456000, time.UTC)

func host(id int64, name string) store.Host {
	return store.Host{
		ID: id, UUID: fmt.Sprintf("00000000-0000-4000-8000-%012d", id), Hostname: name,
		Personality: "edgeworker", Administrative: "locked", Operational: "disabled",
		Availability: "offline", InvProvision: "unprovisioned", Labels: map[string]string{},
		CreatedAt: t0, UpdatedAt: t0,
	}
}

func TestStore(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			t.Run("hosts", func(t *testing.T) { t.Parallel(); testHosts(t, storetest.Open(t, b.DSN(t))) })
			t.Run("host pages", func(t *testing.T) { t.Parallel(); testHostPages(t, storetest.Open(t, b.DSN(t))) })
			t.Run("tokens", func(t *testing.T) { t.Parallel(); testTokens(t, storetest.Open(t, b.DSN(t))) })
			t.Run("events", func(t *testing.T) { t.Parallel(); testEvents(t, storetest.Open(t, b.DSN(t))) })
			t.Run("counters", func(t *testing.T) { t.Parallel(); testCounters(t, storetest.Open(t, b.DSN(t))) })
			t.Run("reopen", func(t *testing.T) { t.Parallel(); testReopen(t, b.DSN(t)) })
		})
	}
}

func testHosts(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := host(1, "edge-01")
	a.MgmtMAC, a.MgmtIP, a.Group = "52:54:00:00:00:01", "192.168.204.10", "line-3"
	a.Labels = map[string]string{"zone": "north", "gpu": "no"}
	b := host(2, "edge-02")
	b.Personality = "worker"
	c := host(3, "edge-03")
	c.Labels = map[string]string{"zone": "south"}
	err := s.Write(ctx, func(tx store.Tx) error {
		for _, h := range []*store.Host{&a, &b, &c} {
			if err := tx.InsertHost(h); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	read := func(fn func(tx store.Tx) (any, error)) any {
		t.Helper()
		var out any
		if err := s.Read(ctx, func(tx store.Tx) error {
			var err error
			out, err = fn(tx)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, lookup := range []func(tx store.Tx) (store.Host, error){
		func(tx store.Tx) (store.Host, error) { return tx.HostByID(1) },
		func(tx store.Tx) (store.Host, error) { return tx.HostByUUID(a.UUID) },
		func(tx store.Tx) (store.Host, error) { return tx.HostByHostname("edge-01") },
		func(tx store.Tx) (store.Host, error) { return tx.HostByMAC("52:54:00:00:00:01") },
		func(tx store.Tx) (store.Host, error) { return tx.HostByIP("192.168.204.10") },
	} {
		got := read(func(tx store.Tx) (any, error) { return lookup(tx) })
		if diff := cmp.Diff(a, got); diff != "" {
			t.Errorf("lookup (-want +got):\n%s", diff)
		}
	}

	names := func(f store.HostFilter) []string {
		hosts := read(func(tx store.Tx) (any, error) { return tx.ListHosts(f) }).([]store.Host)
		var out []string
		for _, h := range hosts {
			out = append(out, h.Hostname)
		}
		return out
	}
	for _, tc := range []struct {
		f    store.HostFilter
		want []string
	}{
		{store.HostFilter{}, []string{"edge-01", "edge-02", "edge-03"}},
		{store.HostFilter{Personality: "edgeworker"}, []string{"edge-01", "edge-03"}},
		{store.HostFilter{Group: "line-3"}, []string{"edge-01"}},
		{store.HostFilter{Labels: []store.LabelSelector{{Key: "zone"}}}, []string{"edge-01", "edge-03"}},
		{store.HostFilter{Labels: []store.LabelSelector{{Key: "zone", Value: "south", HasValue: true}}}, []string{"edge-03"}},
		{store.HostFilter{Labels: []store.LabelSelector{{Key: "zone"}, {Key: "gpu", Value: "no", HasValue: true}}}, []string{"edge-01"}},
		{store.HostFilter{AfterID: 1, Limit: 1}, []string{"edge-02"}},
		{store.HostFilter{Availability: "failed"}, nil},
	} {
		if diff := cmp.Diff(tc.want, names(tc.f)); diff != "" {
			t.Errorf("ListHosts(%+v) (-want +got):\n%s", tc.f, diff)
		}
	}

	// Update replaces the row and the labels; clearing the MAC stores NULL,
	// so another host can clear its MAC too.
	a.MgmtMAC, a.Location, a.Labels = "", "hall 2", map[string]string{"zone": "east"}
	a.UpdatedAt = t0.Add(time.Minute)
	if err := s.Write(ctx, func(tx store.Tx) error { return tx.UpdateHost(&a) }); err != nil {
		t.Fatal(err)
	}
	got := read(func(tx store.Tx) (any, error) { return tx.HostByID(1) })
	if diff := cmp.Diff(a, got); diff != "" {
		t.Errorf("after update (-want +got):\n%s", diff)
	}

	// A duplicate hostname is a conflict, and the failed transaction leaves
	// nothing behind.
	dup := host(4, "edge-02")
	err = s.Write(ctx, func(tx store.Tx) error { return tx.InsertHost(&dup) })
	if !problem.Is(err, problem.Conflict) || problem.FieldOf(err) != "hostname" {
		t.Errorf("duplicate hostname: got %v (field %q), want a conflict on hostname", err, problem.FieldOf(err))
	}
	if err := s.Read(ctx, func(tx store.Tx) error { _, err := tx.HostByID(4); return err }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("host 4 after failed insert: %v, want not found", err)
	}

	if err := s.Write(ctx, func(tx store.Tx) error { return tx.DeleteHost(1) }); err != nil {
		t.Fatal(err)
	}
	err = s.Write(ctx, func(tx store.Tx) error { return tx.DeleteHost(1) })
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second delete: %v, want not found", err)
	}
	if diff := cmp.Diff([]string{"edge-03"}, names(store.HostFilter{Labels: []store.LabelSelector{{Key: "zone"}}})); diff != "" {
		t.Errorf("labels of a deleted host remain (-want +got):\n%s", diff)
	}
}

// testHostPages lists more hosts than a list first makes room for, with
// limits below, at and above the hosts there are, and none.
func testHostPages(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 300
	err := s.Write(ctx, func(tx store.Tx) error {
		for i := int64(1); i <= n; i++ {
			h := host(i, fmt.Sprintf("edge-%03d", i))
			if i%3 == 0 {
				h.Labels = map[string]string{"rack": "r1"}
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
	for _, tc := range []struct {
		f          store.HostFilter
		first, num int64 // the first id listed and how many, every step-th
		step       int64
	}{
		{store.HostFilter{}, 1, n, 1},
		{store.HostFilter{Limit: 1000}, 1, n, 1},
		{store.HostFilter{Limit: 200}, 1, 200, 1},
		{store.HostFilter{Limit: 129, AfterID: 100}, 101, 129, 1},
		{store.HostFilter{Limit: 1000, Labels: []store.LabelSelector{{Key: "rack", Value: "r1", HasValue: true}}}, 3, n / 3, 3},
	} {
		var hosts []store.Host
		if err := s.Read(ctx, func(tx store.Tx) error {
			var err error
			hosts, err = tx.ListHosts(tc.f)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		var want, got []int64
		for i := range tc.num {
			want = append(want, tc.first+i*tc.step)
		}
		for _, h := range hosts {
			got = append(got, h.ID)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("ListHosts(%+v) ids (-want +got):\n%s", tc.f, diff)
		}
	}
}

func testTokens(t *testing.T, s store.Store) {
	ctx := context.Background()
	exp := t0.Add(24 * time.Hour)
	toks := []store.Token{
		{ID: "aaaa", Kind: "api", Role: "admin", SecretSHA256: "00ff", CreatedBy: "bootstrap", CreatedAt: t0},
		{ID: "bbbb", Kind: "api", Role: "reader", SecretSHA256: "11ee", Description: "grafana", CreatedBy: "aaaa", CreatedAt: t0.Add(time.Second), ExpiresAt: &exp},
	}
	if err := s.Write(ctx, func(tx store.Tx) error {
		for i := range toks {
			if err := tx.InsertToken(&toks[i]); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var (
		list []store.Token
		one  store.Token
		n    int
	)
	if err := s.Read(ctx, func(tx store.Tx) error {
		var err error
		if list, err = tx.ListTokens("api"); err != nil {
			return err
		}
		if one, err = tx.TokenByID("bbbb"); err != nil {
			return err
		}
		n, err = tx.CountTokens("api")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(toks, list); diff != "" {
		t.Errorf("ListTokens (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(toks[1], one); diff != "" {
		t.Errorf("TokenByID (-want +got):\n%s", diff)
	}
	if n != 2 {
		t.Errorf("CountTokens = %d, want 2", n)
	}
	if err := s.Write(ctx, func(tx store.Tx) error { return tx.DeleteToken("aaaa") }); err != nil {
		t.Fatal(err)
	}
	err := s.Read(ctx, func(tx store.Tx) error { _, err := tx.TokenByID("aaaa"); return err })
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted token: %v, want not found", err)
	}
}

func testEvents(t *testing.T, s store.Store) {
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		e := store.Event{UUID: fmt.Sprintf("e-%d", i), Time: t0.Add(time.Duration(i) * time.Second),
			Code: "200.021", EntityType: "host", EntityID: fmt.Sprintf("host=edge-0%d", i%2),
			Action: "host.update", Actor: "aaaa", Reason: "updated"}
		if err := s.Write(ctx, func(tx store.Tx) error { return tx.AppendEvent(&e) }); err != nil {
			t.Fatal(err)
		}
		if e.ID != int64(i+1) {
			t.Errorf("event %d got id %d", i, e.ID)
		}
	}
	var got []store.Event
	if err := s.Read(ctx, func(tx store.Tx) error {
		var err error
		got, err = tx.ListEvents(store.EventFilter{EntityID: "host=edge-00", BeforeID: 5, Limit: 2})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, e := range got {
		ids = append(ids, e.ID)
	}
	if diff := cmp.Diff([]int64{3, 1}, ids); diff != "" {
		t.Errorf("ListEvents ids (-want +got):\n%s", diff)
	}
	if len(got) > 0 && !got[0].Time.Equal(t0.Add(2*time.Second)) {
		t.Errorf("event time %v, want %v", got[0].Time, t0.Add(2*time.Second))
	}
}

// testCounters hands out ids from many goroutines: no two are the same.
func testCounters(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 40
	ids := make(chan int64, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Write(ctx, func(tx store.Tx) error {
				id, err := tx.NextID("hosts")
				ids <- id
				return err
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[int64]bool{}
	for id := range ids {
		if seen[id] {
			t.Errorf("id %d handed out twice", id)
		}
		seen[id] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct ids, want %d", len(seen), n)
	}
}

// testReopen opens the same database twice: migrations are not re-applied
// and data stays.
func testReopen(t *testing.T, dsn string) {
	ctx := context.Background()
	s1, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	h := host(1, "edge-01")
	if err := s1.Write(ctx, func(tx store.Tx) error { return tx.InsertHost(&h) }); err != nil {
		t.Fatal(err)
	}
	s1.Close()
	s2 := storetest.Open(t, dsn)
	err = s2.Read(ctx, func(tx store.Tx) error { _, err := tx.HostByHostname("edge-01"); return err })
	if err != nil {
		t.Fatalf("after reopen: %v", err)
	}
}

// TestCancelledWrite: a write whose context ends before it commits fails with the context's
// error (database/sql reports its own rollback as ErrTxDone), and stores nothing.
func TestCancelledWrite(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			s := storetest.Open(t, b.DSN(t))
			ctx, cancel := context.WithCancel(context.Background())
			h := host(1, "edge-01")
			err := s.Write(ctx, func(tx store.Tx) error {
				if err := tx.InsertHost(&h); err != nil {
					return err
				}
				cancel()
				time.Sleep(50 * time.Millisecond) // database/sql rolls back meanwhile
				return nil
			})
			if !errors.Is(err, context.Canceled) {
				t.Errorf("a write cancelled before its commit: %v, want context.Canceled", err)
			}
			if err := s.Read(context.Background(), func(tx store.Tx) error { _, err := tx.HostByHostname("edge-01"); return err }); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("the cancelled write's host: %v, want none", err)
			}
		})
	}
}
