package hostlock

import (
	"context"
	"sync"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

func TestParseTimeout(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"": DefaultTimeout, "10s": 10 * time.Second, "90s": 90 * time.Second, "1h": time.Hour} {
		if got, err := ParseTimeout(in); err != nil || got != want {
			t.Errorf("ParseTimeout(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"9s", "61m", "-5m", "5", "soon"} {
		if _, err := ParseTimeout(in); !problem.Is(err, problem.Invalid) || problem.FieldOf(err) != "timeout" {
			t.Errorf("ParseTimeout(%q): %v; want an invalid timeout", in, err)
		}
	}
	if got := shortDuration(time.Hour); got != "1h" {
		t.Errorf("shortDuration(1h) = %q", got)
	}
}

// TestConcurrentLocks locks hosts at once without a cluster: of two locks of one host, one
// wins; of the two unlocked controllers locked at once, one stays unlocked.
func TestConcurrentLocks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.Open(t, storetest.SQLiteDSN(t))
	inv := inventory.New(st, inventory.Options{})
	if _, _, err := inv.EnsureManagementPool(ctx, "static", "192.168.204.0/24", []string{"192.168.204.1"}); err != nil {
		t.Fatal(err)
	}
	l := New(st, nil, Config{})
	for i, h := range []apitype.HostCreate{
		{Hostname: "edge-01", Personality: apitype.PersonalityEdgeworker, MgmtIP: "192.168.204.10"},
		{Hostname: "controller-0", Personality: apitype.PersonalityController, MgmtIP: "192.168.204.20"},
		{Hostname: "controller-1", Personality: apitype.PersonalityController, MgmtIP: "192.168.204.21"},
	} {
		if _, err := inv.Add(ctx, "test", h); err != nil {
			t.Fatal(i, err)
		}
		if _, err := l.Unlock(ctx, h.Hostname, "test"); err != nil {
			t.Fatal(err)
		}
	}
	for _, hosts := range [][2]string{{"edge-01", "edge-01"}, {"controller-0", "controller-1"}} {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, host := range hosts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = l.Lock(ctx, Request{Host: host, Actor: "test"})
			}()
		}
		wg.Wait()
		if (errs[0] == nil) == (errs[1] == nil) || !problem.Is(errs[0], problem.Conflict) && !problem.Is(errs[1], problem.Conflict) {
			t.Errorf("two locks of %v at once: %v, %v; want one locked and one conflict", hosts, errs[0], errs[1])
		}
	}
	unlocked, err := inv.List(ctx, store.HostFilter{Personality: apitype.PersonalityController, Administrative: inventory.AdminUnlocked})
	if err != nil || len(unlocked) != 1 {
		t.Errorf("unlocked controllers after locking both at once: %d (%v), want 1", len(unlocked), err)
	}
}
