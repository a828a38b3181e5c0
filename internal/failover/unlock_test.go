package failover

import (
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/wire"
)

// TestUnlockedLeaderTakesRole: a member whose host is locked, elected
// leader with no other member to take the role, holds no VIP; unlocked,
// it takes the role itself (it used to keep looking for another member
// for good, leaving the app without an active member). Locked again with
// nobody to take over, it lets the VIP go; unlocked, it is active again.
func TestUnlockedLeaderTakesRole(t *testing.T) {
	t.Parallel()
	addrs := &slowAddresses{}
	mb := leaseMember(t, addrs)
	mb.missing = nil // as root or not: the capabilities are not what is tested
	mb.setLocked(true)
	stop, done := mb.startLeading(t.Context())
	defer func() { stop(); <-done }()

	// waitRole waits up to 3 s for the member's role and the VIP on its
	// node to be as wanted.
	waitRole := func(when string, active bool) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for {
			held, overlaps := addrs.state()
			if overlaps > 0 {
				t.Fatalf("%s: %d changes of the VIP ran while another was under way", when, overlaps)
			}
			if role := mb.role(); held == active && (role == wire.RoleActive) == active {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: role %s, VIP on the node %v after 3 s; want active %v", when, mb.role(), held, active)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if held, _ := addrs.state(); held || mb.role() == wire.RoleActive {
		t.Fatalf("locked leader: role %s, VIP on the node %v; want neither", mb.role(), held)
	}
	mb.setLocked(false)
	waitRole("unlocked", true)
	mb.setLocked(true)
	waitRole("locked again, nobody to take over", false)
	mb.setLocked(false)
	waitRole("unlocked again", true)
}
