package store_test

import (
	"context"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// TestIdleInTransaction: PostgreSQL ends a session of the store that idles inside a transaction
// for store.IdleInTransaction (a controller cut off, or stopped, in the middle of one), so that
// its row locks do not outlive it; the store goes on with its other connections.
func TestIdleInTransaction(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t, storetest.PostgresDSN(t))
	ctx := context.Background()
	runs := 0
	err := s.Write(ctx, func(tx store.Tx) error {
		runs++
		if _, err := tx.NextID("hosts"); err != nil {
			return err
		}
		time.Sleep(store.IdleInTransaction + time.Second)
		_, err := tx.NextID("hosts")
		return err
	})
	if err == nil {
		t.Fatalf("a transaction idle for %v committed; want its session ended", store.IdleInTransaction+time.Second)
	}
	t.Logf("the idle transaction (%d run): %v", runs, err)
	if err := s.Write(ctx, func(tx store.Tx) error { _, err := tx.NextID("hosts"); return err }); err != nil {
		t.Errorf("a write after the ended session: %v", err)
	}
}
