// Package controllertest runs a real controller in-process for tests: its
// own data directory, a real database, real TLS on a loopback port, and
// the first admin token.
package controllertest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"

	"hummingbird.io/hummingbird/internal/client"
	"hummingbird.io/hummingbird/internal/controller"
	"hummingbird.io/hummingbird/internal/pki"
)

// Instance is a running controller.
type Instance struct {
	URL        string
	CAPEM      []byte
	AdminToken string
	DataDir    string
	Controller *controller.Controller
}

// Start runs a controller on the database dsn ("" for SQLite in a
// temporary data directory) until the test ends. mutate, when given,
// adjusts the configuration first; the API listens on its Listen
// (127.0.0.1:0 unless mutate says otherwise, such as a test bed's bridge
// address that agents reach).
func Start(t testing.TB, dsn string, mutate func(*controller.Config)) *Instance {
	t.Helper()
	cfg := controller.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.DB = dsn
	if mutate != nil {
		mutate(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := controller.New(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatalf("start controller: %v", err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("controller stopped with: %v", err)
		}
		c.Close()
	})
	return &Instance{
		URL: "https://" + ln.Addr().String(), CAPEM: c.CA.PEM, AdminToken: c.AdminToken,
		DataDir: cfg.DataDir, Controller: c,
	}
}

// Client returns an API client that trusts the instance's CA and sends
// token.
func (in *Instance) Client(t testing.TB, token string) *client.Client {
	t.Helper()
	pool, err := pki.Pool(in.CAPEM)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Options{URL: in.URL, Token: token, Roots: pool})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
