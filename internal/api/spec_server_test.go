package api_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/controller"
	"hummingbird.io/hummingbird/internal/pki"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// specServer is a controller of its own for one family of spec cases, with a token per role.
type specServer struct {
	c                       *controller.Controller
	h                       http.Handler
	admin, operator, reader string
}

// envControllers set to 2 runs the spec cases against two controllers on one PostgreSQL
// database, each request going to the next one (test/run does, after the pass with one).
const envControllers = "HB_TEST_CONTROLLERS"

// specServerStart starts a controller on the defaults, in a temporary data directory, without
// serving: cases go straight to its handler. With HB_TEST_CONTROLLERS=2, two controllers on
// one PostgreSQL database, sharing a CA, take the cases in turns; c is the first.
func (sh *specHarness) specServerStart(t *testing.T) specServer {
	t.Helper()
	start := func(dsn, dir string) *controller.Controller {
		t.Helper()
		cfg := controller.Defaults()
		cfg.DataDir, cfg.Listen, cfg.DB = dir, "127.0.0.1:0", dsn
		c, err := controller.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("controller: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	var s specServer
	switch n := os.Getenv(envControllers); n {
	case "", "1":
		c := start("", t.TempDir())
		s = specServer{c: c, h: c.API().Handler(), admin: c.AdminToken}
	case "2":
		dsn := storetest.PostgresDSN(t)
		first, second := t.TempDir(), t.TempDir()
		c := start(dsn, first)
		for _, name := range []string{pki.CACertFile, pki.CAKeyFile} {
			b, err := os.ReadFile(filepath.Join(first, name))
			if err == nil {
				err = os.WriteFile(filepath.Join(second, name), b, 0o600)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		other := start(dsn, second)
		s = specServer{c: c, h: &inTurns{hs: []http.Handler{c.API().Handler(), other.API().Handler()}}, admin: c.AdminToken}
	default:
		t.Fatalf("%s=%q: want 1 or 2", envControllers, n)
	}
	s.operator = sh.specCreateToken(t, s.h, s.admin, `{"role":"operator"}`)
	s.reader = sh.specCreateToken(t, s.h, s.admin, `{"role":"reader"}`)
	return s
}

// inTurns serves each request with the next of its handlers: several controllers behind one
// client.
type inTurns struct {
	hs []http.Handler
	n  atomic.Int64
}

func (h *inTurns) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.hs[int(h.n.Add(1))%len(h.hs)].ServeHTTP(w, r)
}

// specRefused runs a case against h and checks that its error message says want.
func (sh *specHarness) specRefused(t *testing.T, h http.Handler, tc specCase, want string) {
	t.Helper()
	var e apitype.Error
	if err := json.Unmarshal(sh.do(t, h, tc), &e); err != nil || !strings.Contains(e.Error.Message, want) {
		t.Errorf("%s: error %+v (%v); want a message with %q", tc.name, e.Error, err, want)
	}
}
