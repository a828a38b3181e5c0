// Package controllertest runs a real controller in-process for tests: its
// own data directory, a real database, real TLS on a loopback port, and
// the first admin token.
package controllertest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"hummingbird.io/hummingbird/internal/client"
	"hummingbird.io/hummingbird/internal/controller"
	"hummingbird.io/hummingbird/internal/pki"
)

// instances numbers the controllers started, for their names.
var instances atomic.Int64

// Instance is a running controller.
type Instance struct {
	URL        string
	CAPEM      []byte
	AdminToken string
	DataDir    string
	Controller *controller.Controller

	cfg  controller.Config
	stop func() error // ends the running controller; nil while stopped
	log  logTail      // what the controller logged, shown when the test fails
}

// Name is the controller's name (--name).
func (in *Instance) Name() string { return in.cfg.Name }

// logTail keeps the last logTailMax bytes written to it.
type logTail struct {
	mu  sync.Mutex
	buf []byte
}

// logTailMax bounds what a failing test shows of the controller's log.
const logTailMax = 64 << 10

func (l *logTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	if over := len(l.buf) - 2*logTailMax; over > 0 {
		l.buf = append(l.buf[:0], l.buf[len(l.buf)-logTailMax:]...)
	}
	return len(p), nil
}

// tail is the last logTailMax bytes, from a line's start.
func (l *logTail) tail() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buf[max(0, len(l.buf)-logTailMax):]
	if i := bytes.IndexByte(b, '\n'); i >= 0 && len(b) < len(l.buf) {
		b = b[i+1:]
	}
	return bytes.Clone(b)
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
	// Several controllers of one test, or of tests in parallel, may share a database.
	cfg.Name = fmt.Sprintf("controller-%d", instances.Add(1))
	cfg.DB = dsn
	if mutate != nil {
		mutate(&cfg)
	}
	in := &Instance{DataDir: cfg.DataDir, cfg: cfg}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the end of the controller's log (debug level):\n%s", in.log.tail())
		}
	})
	in.run(t)
	in.AdminToken = in.Controller.AdminToken
	t.Cleanup(func() {
		if in.stop != nil {
			if err := in.stop(); err != nil {
				t.Errorf("controller stopped with: %v", err)
			}
		}
	})
	return in
}

// run starts the controller on in's configuration and listens on its
// address.
func (in *Instance) run(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(&in.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := controller.New(ctx, in.cfg, log)
	if err != nil {
		cancel()
		t.Fatalf("start controller: %v", err)
	}
	ln, err := net.Listen("tcp", in.cfg.Listen)
	if err != nil {
		cancel()
		c.Close()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Serve(ctx, ln) }()
	in.stop = func() error {
		cancel()
		err := <-done
		c.Close()
		return err
	}
	in.Controller, in.CAPEM = c, c.CA.PEM
	in.URL = "https://" + ln.Addr().String()
	// A restart listens where agents and clients already point.
	in.cfg.Listen = ln.Addr().String()
}

// Stop ends the controller as a crash or an operator's stop would, keeping
// its data directory and database for Restart.
func (in *Instance) Stop(t testing.TB) {
	t.Helper()
	if in.stop == nil {
		t.Fatal("the controller is not running")
	}
	err := in.stop()
	in.stop = nil
	if err != nil {
		t.Errorf("controller stopped with: %v", err)
	}
}

// Restart starts the stopped controller again on the same data directory,
// database and address. AdminToken stays the first start's.
func (in *Instance) Restart(t testing.TB) {
	t.Helper()
	if in.stop != nil {
		t.Fatal("the controller is already running")
	}
	in.run(t)
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
