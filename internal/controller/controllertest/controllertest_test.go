package controllertest_test

import (
	"testing"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/controller/controllertest"
)

// TestRestart stops a controller and starts it again: it answers at the
// same address, with the same CA and admin token, and keeps what it
// stored; while stopped it answers nothing.
func TestRestart(t *testing.T) {
	t.Parallel()
	in := controllertest.Start(t, "", nil)
	api := in.Client(t, in.AdminToken)
	ctx := t.Context()
	if _, err := api.AddGroup(ctx, apitype.GroupCreate{Name: "press", Description: "hall 2"}); err != nil {
		t.Fatal(err)
	}
	url, ca := in.URL, string(in.CAPEM)
	in.Stop(t)
	if _, err := api.GetGroup(ctx, "press"); err == nil {
		t.Fatal("the stopped controller answered")
	}
	in.Restart(t)
	if in.URL != url || string(in.CAPEM) != ca {
		t.Errorf("restarted at %s with a new CA: %t, want %s and the same CA", in.URL, string(in.CAPEM) != ca, url)
	}
	g, err := api.GetGroup(ctx, "press")
	if err != nil {
		t.Fatalf("the first start's client and token after the restart: %v", err)
	}
	if g.Description != "hall 2" {
		t.Errorf("group after the restart: %+v", g)
	}
}
