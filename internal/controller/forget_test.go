package controller_test

import (
	"context"
	"strings"
	"testing"

	"hummingbird.io/hummingbird/internal/controller"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// TestForgetReader: forget-reader deletes a reader's cursor in the
// database of a data directory, and says so when there is none.
func TestForgetReader(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := controller.Defaults()
	cfg.DataDir = t.TempDir()
	st := storetest.Open(t, store.SQLitePath(cfg.DataDir))
	if err := st.Write(ctx, func(tx store.Tx) error { return tx.SetCursor("alarm-webhook", 42) }); err != nil {
		t.Fatal(err)
	}
	if err := controller.ForgetReader(ctx, cfg, "alarm-webhook"); err != nil {
		t.Fatal(err)
	}
	if err := st.Read(ctx, func(tx store.Tx) error {
		if _, _, ok, err := tx.MinCursor(); ok || err != nil {
			t.Errorf("a cursor is left: %v, %v", ok, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := controller.ForgetReader(ctx, cfg, "alarm-webhook"); err == nil || !strings.Contains(err.Error(), `no reader "alarm-webhook"`) {
		t.Errorf("forgetting it again: %v, want an error saying there is no such reader", err)
	}
	cfg.DataDir = t.TempDir()
	if err := controller.ForgetReader(ctx, cfg, "alarm-webhook"); err == nil || !strings.Contains(err.Error(), "--data-dir") {
		t.Errorf("in an empty data directory: %v, want an error naming --data-dir", err)
	}
}
