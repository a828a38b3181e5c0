package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"hummingbird.io/hummingbird/internal/apitype"
)

// TestHostLock locks and unlocks a host on a controller without a cluster, where a lock locks
// the record at once; the drains are tested on the test bed.
func TestHostLock(t *testing.T) {
	t.Parallel()
	h := newHbctl(t)
	h.ok("host-add", "-n", "edge-01", "-p", "edgeworker", "-i", "192.168.204.10")
	if code, _, errs := h.run("", "host-lock", "edge-01"); code != 1 || !strings.Contains(errs, "locked already") {
		t.Errorf("host-lock of a new host: %d %q", code, errs)
	}
	if got := h.ok("host-unlock", "edge-01", "-c", "administrative", "-c", "operational", "-f", "value"); got != "unlocked\nenabled\n" {
		t.Errorf("host-unlock: %q", got)
	}
	if code, _, errs := h.run("", "host-unlock", "edge-01"); code != 1 || !strings.Contains(errs, "not locked") {
		t.Errorf("host-unlock of an unlocked host: %d %q", code, errs)
	}
	if code, _, errs := h.run("", "host-lock", "edge-01", "--drain-timeout", "5s"); code != 1 || !strings.Contains(errs, "10s to 1h") {
		t.Errorf("host-lock --drain-timeout 5s: %d %q", code, errs)
	}

	// Without a terminal, a line per change on stderr, then the lock.
	code, out, errs := h.run("", "host-lock", "edge-01", "--drain-timeout", "90s", "-c", "state", "-c", "pods", "-c", "timeout", "-f", "value")
	if code != 0 || out != "locked\n0/0 evicted\n1m30s\n" {
		t.Errorf("host-lock: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if want := "edge-01: locked, 0/0 pods evicted; nothing to drain: the controller manages no Kubernetes cluster\n"; errs != want {
		t.Errorf("host-lock progress: %q, want %q", errs, want)
	}
	if got := h.ok("host-show", "edge-01", "-c", "administrative", "-c", "operational", "-f", "value"); got != "locked\ndisabled\n" {
		t.Errorf("host-show after host-lock: %q", got)
	}
	var op apitype.LockOperation
	if err := json.Unmarshal([]byte(h.ok("host-lock-show", "edge-01", "-f", "json")), &op); err != nil || op.State != "locked" || op.Host != "edge-01" {
		t.Errorf("host-lock-show: %+v (%v)", op, err)
	}
	if code, _, errs := h.run("", "host-lock", "edge-01"); code != 1 || !strings.Contains(errs, "hbctl host-unlock edge-01") {
		t.Errorf("host-lock of a locked host: %d %q", code, errs)
	}
	if got := h.ok("event-list", "--host", "edge-01", "-c", "action", "-f", "value"); got != "alarm.set\nhost.lock\nhost.unlock\nhost.add\n" {
		t.Errorf("event-list: %q", got)
	}

	// --no-wait answers with the lock as it started.
	h.ok("host-unlock", "edge-01")
	if got := h.ok("host-lock", "edge-01", "--no-wait", "--force", "-c", "state", "-c", "force", "-f", "value"); got != "locked\ntrue\n" {
		t.Errorf("host-lock --no-wait: %q", got)
	}
	if code, _, errs := h.run("", "host-lock"); code != 2 || !strings.Contains(errs, "HOST") {
		t.Errorf("host-lock without a host: %d %q", code, errs)
	}
	if code, _, errs := h.run("", "host-lock-show", "edge-99"); code != 1 || !strings.Contains(errs, `no host "edge-99"`) {
		t.Errorf("host-lock-show of an unknown host: %d %q", code, errs)
	}
}
