package failover

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestRaftLogger: raft's errors come out as warnings; a failure with the
// same peer repeated within a minute is held back and counted, and logged
// again with the count after a minute; another peer's, and elections, are
// logged each time.
func TestRaftLogger(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	now := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	l := newRaftLogger("raft.press", &out, func() time.Time { return now })
	for i := range 900 { // 15 minutes of a failure every second
		l.Error("failed to heartbeat to", "peer", "10.0.0.2:6386", "backoff time", "10ms", "error", "dial tcp: i/o timeout")
		if i%300 == 0 {
			l.Error("failed to heartbeat to", "peer", "10.0.0.3:6386", "error", "dial tcp: i/o timeout")
			l.Warn("heartbeat timeout reached, starting election", "last-leader-addr", "10.0.0.1:6386")
		}
		now = now.Add(time.Second)
	}
	l.Info("entering follower state")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	count := func(sub string) int {
		n := 0
		for _, line := range lines {
			if strings.Contains(line, sub) {
				n++
			}
		}
		return n
	}
	if n := count("[ERROR]"); n != 0 {
		t.Errorf("%d lines at ERROR, want none:\n%s", n, out.String())
	}
	if n := count("peer=10.0.0.2:6386"); n != 15 {
		t.Errorf("%d lines for the peer failing every second for 15 minutes, want 15 (one a minute):\n%s", n, out.String())
	}
	if n := count("repeated=59"); n != 14 {
		t.Errorf("%d lines saying the 59 repeats held back, want 14", n)
	}
	if n := count("peer=10.0.0.3:6386"); n != 3 {
		t.Errorf("%d lines for the peer failing every 5 minutes, want 3", n)
	}
	if n := count("starting election"); n != 3 {
		t.Errorf("%d election lines, want 3", n)
	}
	if count("entering follower state") != 0 {
		t.Error("an info line was logged")
	}
}
