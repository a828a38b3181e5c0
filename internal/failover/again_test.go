package failover

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestAskAgain: after failed handovers the waits double from the first
// up to askAgainMax, and an attempt is due only once its wait has passed.
func TestAskAgain(t *testing.T) {
	t.Parallel()
	var a askAgain
	now := time.Unix(1000, 0)
	if !a.due(now) {
		t.Fatal("a first attempt is not due")
	}
	var waits []time.Duration
	for range 9 {
		a.failed(now, 20*time.Millisecond)
		waits = append(waits, a.next.Sub(now))
		if a.due(a.next.Add(-time.Millisecond)) || !a.due(a.next) {
			t.Fatalf("after a wait of %v: due a millisecond before %t, at its end %t", a.wait, a.due(a.next.Add(-time.Millisecond)), a.due(a.next))
		}
		now = a.next
	}
	ms := time.Millisecond
	want := []time.Duration{20 * ms, 40 * ms, 80 * ms, 160 * ms, 320 * ms, 640 * ms, time.Second, time.Second, time.Second}
	if diff := cmp.Diff(want, waits); diff != "" {
		t.Errorf("waits after failed attempts (-want +got):\n%s", diff)
	}
}
