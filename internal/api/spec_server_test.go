package api_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/controller"
)

// specServer is a controller of its own for one family of spec cases, with a token per role.
type specServer struct {
	c                       *controller.Controller
	h                       http.Handler
	admin, operator, reader string
}

// specServerStart starts a controller on the defaults, in a temporary data directory, without
// serving: cases go straight to its handler.
func (sh *specHarness) specServerStart(t *testing.T) specServer {
	t.Helper()
	cfg := controller.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	c, err := controller.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("controller: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	s := specServer{c: c, h: c.API().Handler(), admin: c.AdminToken}
	s.operator = sh.specCreateToken(t, s.h, s.admin, `{"role":"operator"}`)
	s.reader = sh.specCreateToken(t, s.h, s.admin, `{"role":"reader"}`)
	return s
}

// specRefused runs a case against h and checks that its error message says want.
func (sh *specHarness) specRefused(t *testing.T, h http.Handler, tc specCase, want string) {
	t.Helper()
	var e apitype.Error
	if err := json.Unmarshal(sh.do(t, h, tc), &e); err != nil || !strings.Contains(e.Error.Message, want) {
		t.Errorf("%s: error %+v (%v); want a message with %q", tc.name, e.Error, err, want)
	}
}
