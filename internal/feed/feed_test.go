package feed_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/feed"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// appendEvents writes one transaction of events with these actions.
func appendEvents(t *testing.T, st store.Store, actions ...string) {
	t.Helper()
	err := st.Write(context.Background(), func(tx store.Tx) error {
		for _, a := range actions {
			if err := tx.AppendEvent(&store.Event{UUID: a + time.Now().String(), Time: time.Now().UTC().Truncate(time.Microsecond),
				Code: "200.000", EntityType: "host", EntityID: "host=edge-01", Action: a, Actor: "test"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// kicks counts a subscription's kicks.
type kicks struct{ n atomic.Int32 }

func (k *kicks) kick() { k.n.Add(1) }

// waitKicks waits up to within for k to reach n kicks, and checks it stays there a moment.
func waitKicks(t *testing.T, what string, k *kicks, n int32, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for k.n.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d kicks after %v, want %d", what, k.n.Load(), within, n)
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if got := k.n.Load(); got != n {
		t.Errorf("%s: %d kicks, want %d", what, got, n)
	}
}

// TestFeed: a write through the feed's store that appends an event kicks the subscriptions
// whose prefixes match it at once, one kick per batch; another controller's write is seen at
// the next poll; events from before the feed started kick nothing.
func TestFeed(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			dsn := b.DSN(t)
			st := storetest.Open(t, dsn)
			appendEvents(t, st, "host.label.assign") // before the feed: nothing
			f := feed.New(st, time.Hour, nil)
			var hosts, apps kicks
			f.On("hosts", hosts.kick, "host.label.", "host.update")
			f.On("apps", apps.kick, "app.")
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- f.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("the feed ended with %v", err)
				}
			}()
			time.Sleep(50 * time.Millisecond)
			if hosts.n.Load() != 0 || apps.n.Load() != 0 {
				t.Fatalf("kicks for events from before the start: hosts %d, apps %d", hosts.n.Load(), apps.n.Load())
			}

			ours := f.Store()
			appendEvents(t, ours, "host.label.assign", "host.update", "token.create")
			waitKicks(t, "a batch of host events", &hosts, 1, time.Second)
			if apps.n.Load() != 0 {
				t.Errorf("host events kicked the apps' subscription")
			}
			appendEvents(t, ours, "app.add")
			waitKicks(t, "an app event", &apps, 1, time.Second)
			appendEvents(t, ours, "token.delete")
			time.Sleep(50 * time.Millisecond)
			if hosts.n.Load() != 1 || apps.n.Load() != 1 {
				t.Errorf("an event nobody subscribed to kicked: hosts %d, apps %d", hosts.n.Load(), apps.n.Load())
			}
		})
	}
}

// TestFeedPolls: writes of another controller (another store on the same database) are seen
// at the feed's next poll.
func TestFeedPolls(t *testing.T) {
	t.Parallel()
	dsn := storetest.PostgresDSN(t)
	st := storetest.Open(t, dsn)
	other := storetest.Open(t, dsn)
	f := feed.New(st, 100*time.Millisecond, nil)
	var hosts kicks
	f.On("hosts", hosts.kick, "host.")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	defer func() { cancel(); <-done }()
	time.Sleep(50 * time.Millisecond)
	appendEvents(t, other, "host.add")
	waitKicks(t, "another controller's event", &hosts, 1, time.Second)
}
