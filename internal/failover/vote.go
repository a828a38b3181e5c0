package failover

import (
	"errors"
	"time"

	"github.com/hashicorp/raft"
)

// How an election after a silent active goes to the standby, not to the
// witness, when probes are lost.
//
// The witness promises the active not to vote for another member until
// letGoFor (0.7×hb) after the last probe it took; until then it refuses
// every pre-vote, as it still has a leader. A standby stands hb after the
// last probe it took, 0.3×hb later, unless it lost the last probe or two:
// at 3 probes one probe interval is more than those 0.3×hb. Raft's
// candidate then waits its election timeout (hb) before it asks again,
// and meanwhile the witness, which stands as it lets go (raft forgets a
// leader no other way), wins its own election and has to hand the role
// on: 250 ms failovers at a 30 ms heartbeat time under 5 % loss, a
// second at 100 ms under 20 %. So a standby asks a witness that refused
// again every probe interval for hb (a pre-vote changes nothing at the
// voter), and the witness holds its own pre-votes back for hb: the
// standby's come first. The witness still wins when no app member can
// (their logs lack entries it has), hb later than it did.

// voteTiming says how this member's pre-votes go out.
type voteTiming struct {
	// hold: the witness holds its pre-vote requests this long after it
	// stood, unless it stopped being a candidate meanwhile.
	hold time.Duration
	// every, within: an app member asks a voter that refused its
	// pre-vote again every every, for within after it first asked.
	every, within time.Duration
	// candidate says whether this member's raft is a candidate still.
	candidate func() bool
}

// errNoLongerCandidate ends a held pre-vote of a member that stopped
// being a candidate meanwhile: raft drops the answer of an earlier round.
var errNoLongerCandidate = errors.New("no longer a candidate")

// setVoteTiming sets how this member's pre-votes go out.
func (t *confirmTransport) setVoteTiming(v voteTiming) {
	t.mu.Lock()
	t.votes = v
	t.mu.Unlock()
}

// RequestPreVote asks member id for a pre-vote, as voteTiming says.
func (t *confirmTransport) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	t.mu.Lock()
	v := t.votes
	t.mu.Unlock()
	if v.hold > 0 {
		if !sleepWhile(v.hold, v.candidate) {
			return errNoLongerCandidate
		}
	}
	start := time.Now()
	for {
		err := t.NetworkTransport.RequestPreVote(id, target, args, resp)
		if err != nil || resp.Granted || resp.Term > args.Term || v.every <= 0 || time.Since(start)+v.every >= v.within {
			return err
		}
		if !sleepWhile(v.every, v.candidate) {
			return err
		}
	}
}

// sleepWhile waits d, checking ok every twentieth of d (2 ms at least);
// it reports false as soon as ok does.
func sleepWhile(d time.Duration, ok func() bool) bool {
	end := time.Now().Add(d)
	step := max(d/20, 2*time.Millisecond)
	for {
		if ok != nil && !ok() {
			return false
		}
		left := time.Until(end)
		if left <= 0 {
			return true
		}
		time.Sleep(min(left, step))
	}
}
