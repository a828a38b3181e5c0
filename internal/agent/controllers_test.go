package agent

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/controller/controllertest"
	"hummingbird.io/hummingbird/internal/pki"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// enrollToken adds the edgeworker host to in's inventory and returns an enroll token for it.
func enrollToken(t *testing.T, in *controllertest.Instance, host string) string {
	t.Helper()
	api := in.Client(t, in.AdminToken)
	ctx := context.Background()
	if _, err := api.AddHost(ctx, apitype.HostCreate{Hostname: host, Personality: "edgeworker", MgmtIP: "192.168.204.10"}); err != nil {
		t.Fatal(err)
	}
	tok, err := api.CreateToken(ctx, apitype.TokenCreate{Type: "enroll", Host: host})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Secret
}

// TestSeveralControllers: an agent told several controllers joins through the first that
// answers, heartbeats to one, and goes on through another when that one stops.
func TestSeveralControllers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := storetest.PostgresDSN(t)
	a := controllertest.Start(t, dsn, nil)
	b := controllertest.Start(t, dsn, controllertest.ShareCA(t, a))
	tok := enrollToken(t, a, "edge-01")
	dir := t.TempDir()
	// Nothing listens on port 1: the first controller named cannot be reached.
	list := "https://127.0.0.1:1," + a.URL + ", " + b.URL + "/"
	if _, err := Join(ctx, JoinOptions{Controller: list, Token: tok, CAHash: pki.CAHash(a.Controller.CA.Cert),
		Hostname: "edge-01", StateDir: dir}); err != nil {
		t.Fatalf("join through %s: %v", list, err)
	}
	kept, err := os.ReadFile(filepath.Join(dir, ControllerFile))
	if err != nil || string(kept) != "https://127.0.0.1:1,"+a.URL+","+b.URL+"\n" {
		t.Errorf("the controllers kept: %q (%v)", kept, err)
	}
	s := &session{o: RunOptions{StateDir: dir, Log: slog.New(slog.DiscardHandler)}, controllers: splitControllers(string(kept))}
	if err := s.connect(); err != nil {
		t.Fatal(err)
	}
	s.boot = "b"
	if _, err := s.beat(ctx); err != nil || s.controllers[s.cur] != a.URL {
		t.Fatalf("a heartbeat: %v, to %s; want it answered by %s", err, s.controllers[s.cur], a.URL)
	}
	a.Stop(t)
	if _, err := s.beat(ctx); err != nil || s.controllers[s.cur] != b.URL {
		t.Fatalf("a heartbeat with %s stopped: %v, to %s; want it answered by %s", a.URL, err, s.controllers[s.cur], b.URL)
	}
	b.Stop(t)
	if _, err := s.beat(ctx); err == nil {
		t.Error("a heartbeat with every controller stopped was answered")
	}
}
