package failover

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"hummingbird.io/hummingbird/internal/wire"
)

// healthCheck runs one app's health check on this member's copy of it.
// An app with a check is unhealthy until its first check succeeds (a
// member whose pod is still starting is no standby to move to), turns
// unhealthy after Failures failed checks in a row, and healthy again after
// one success. An app without a check is always healthy.
type healthCheck struct {
	kind     string
	url      string // http
	addr     string // tcp and http
	interval time.Duration
	failures int
	healthy  atomic.Bool
	changed  func()
}

func newHealthCheck(app wire.App, changed func()) (*healthCheck, error) {
	h := &healthCheck{kind: app.Health.Kind, interval: 200 * time.Millisecond, failures: 3, changed: changed}
	if app.Health.IntervalMillis > 0 {
		h.interval = time.Duration(app.Health.IntervalMillis) * time.Millisecond
	}
	if app.Health.Failures > 0 {
		h.failures = app.Health.Failures
	}
	if h.kind == "" {
		h.kind = "none"
		if app.Port > 0 {
			h.kind = "tcp"
		}
	}
	h.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(app.Port))
	switch h.kind {
	case "none":
	case "tcp", "http":
		if app.Port <= 0 {
			return nil, fmt.Errorf("app %s: a %s health check needs the app's port", app.Name, h.kind)
		}
		h.url = "http://" + h.addr + app.Health.Path
	default:
		return nil, fmt.Errorf("app %s: health check %q is not tcp, http or none", app.Name, h.kind)
	}
	h.healthy.Store(h.kind == "none")
	return h, nil
}

// run checks until ctx ends.
func (h *healthCheck) run(ctx context.Context) {
	if h.kind == "none" {
		return
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	fails := h.failures // unhealthy until the first success
	t := time.NewTicker(h.interval)
	defer t.Stop()
	// The first check is at once, not an interval later: the group's
	// first election comes within a heartbeat time of the start, and a
	// member elected before its check had passed would hand the role on
	// to the first member whose check did.
	for {
		if h.once(ctx, client) {
			fails = 0
		} else {
			fails++
		}
		now := fails < h.failures
		if h.healthy.Swap(now) != now {
			h.changed()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (h *healthCheck) once(ctx context.Context, client *http.Client) bool {
	ctx, cancel := context.WithTimeout(ctx, h.interval)
	defer cancel()
	if h.kind == "tcp" {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", h.addr)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	req, err := http.NewRequestWithContext(ctx, "GET", h.url, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode < 400
}
