package controller_test

import (
	"context"
	"strings"
	"testing"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/client"
	"hummingbird.io/hummingbird/internal/controller/controllertest"
	"hummingbird.io/hummingbird/internal/pki"
	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// TestClientMovesOn: a client given several controllers uses the first that answers, reads and
// changes through another when the one it used stops, and says which it could not reach when
// none answers.
func TestClientMovesOn(t *testing.T) {
	t.Parallel()
	dsn := storetest.PostgresDSN(t)
	a := controllertest.Start(t, dsn, nil)
	b := controllertest.Start(t, dsn, controllertest.ShareCA(t, a))
	pool, err := pki.Pool(a.CAPEM)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing listens on port 1: the first controller of the list cannot be reached.
	c, err := client.New(client.Options{URL: "https://127.0.0.1:1, " + a.URL + "," + b.URL, Token: a.AdminToken, Roots: pool})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	add := func(name, ip string) {
		t.Helper()
		if _, err := c.AddHost(ctx, apitype.HostCreate{Hostname: name, Personality: "edgeworker", MgmtIP: ip}); err != nil {
			t.Fatalf("adding %s: %v", name, err)
		}
	}
	count := func() int {
		t.Helper()
		hs, err := c.ListHosts(ctx, client.HostFilter{})
		if err != nil {
			t.Fatalf("listing hosts: %v", err)
		}
		return len(hs)
	}
	add("edge-1", "192.168.204.61")
	if n := count(); n != 1 {
		t.Fatalf("%d hosts, want 1", n)
	}
	a.Stop(t)
	add("edge-2", "192.168.204.62")
	if n := count(); n != 2 {
		t.Fatalf("%d hosts after the first controller stopped, want 2", n)
	}
	b.Stop(t)
	_, err = c.ListHosts(ctx, client.HostFilter{})
	if !problem.Is(err, problem.Unavailable) || !strings.Contains(err.Error(), "127.0.0.1:1") ||
		!strings.Contains(err.Error(), strings.TrimPrefix(b.URL, "https://")) {
		t.Errorf("with no controller up: %v; want unavailable, naming each", err)
	}
}
