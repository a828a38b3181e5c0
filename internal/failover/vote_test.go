package failover

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestPreVoteTiming asks a voter over raft's TCP transport for pre-votes
// that it refuses a few times (it still follows an active) and then
// grants: an app member's request comes back granted, after as many
// requests; one that keeps being refused comes back refused once within
// has passed; a newer term ends the asking at once; the witness holds its
// request back, and drops it when it stops being a candidate meanwhile.
func TestPreVoteTiming(t *testing.T) {
	t.Parallel()
	voter := tcpTransport(t)
	var asked, refuse atomic.Int64
	var newer atomic.Bool
	go func() {
		for rpc := range voter.Consumer() {
			req := rpc.Command.(*raft.RequestPreVoteRequest)
			n := asked.Add(1)
			resp := &raft.RequestPreVoteResponse{Term: req.Term, Granted: n > refuse.Load()}
			if newer.Load() {
				resp.Term, resp.Granted = req.Term+1, false
			}
			rpc.Respond(resp, nil)
		}
	}()
	tr := newConfirmTransport(tcpTransport(t))
	ask := func() (*raft.RequestPreVoteResponse, time.Duration, error) {
		var resp raft.RequestPreVoteResponse
		start := time.Now()
		err := tr.RequestPreVote("voter", voter.LocalAddr(), &raft.RequestPreVoteRequest{Term: 5}, &resp)
		return &resp, time.Since(start), err
	}
	candidate := func() bool { return true }

	tr.setVoteTiming(voteTiming{every: 5 * time.Millisecond, within: 2 * time.Second, candidate: candidate})
	asked.Store(0)
	refuse.Store(3)
	if resp, _, err := ask(); err != nil || !resp.Granted || asked.Load() != 4 {
		t.Errorf("refused 3 times: granted %v after %d requests (%v), want granted after 4", resp.Granted, asked.Load(), err)
	}

	tr.setVoteTiming(voteTiming{every: 5 * time.Millisecond, within: 50 * time.Millisecond, candidate: candidate})
	asked.Store(0)
	refuse.Store(1000)
	if resp, took, err := ask(); err != nil || resp.Granted || took > time.Second || asked.Load() < 2 {
		t.Errorf("always refused: granted %v after %d requests in %v (%v), want refused after 2 or more within about 50 ms", resp.Granted, asked.Load(), took, err)
	}

	asked.Store(0)
	newer.Store(true)
	if resp, _, err := ask(); err != nil || resp.Granted || asked.Load() != 1 {
		t.Errorf("a newer term: granted %v after %d requests (%v), want refused after 1", resp.Granted, asked.Load(), err)
	}
	newer.Store(false)

	// Without timing: one request, as raft makes it.
	tr.setVoteTiming(voteTiming{})
	asked.Store(0)
	if resp, _, err := ask(); err != nil || resp.Granted || asked.Load() != 1 {
		t.Errorf("no timing: granted %v after %d requests (%v), want refused after 1", resp.Granted, asked.Load(), err)
	}

	// The witness.
	refuse.Store(0)
	tr.setVoteTiming(voteTiming{hold: 100 * time.Millisecond, candidate: candidate})
	asked.Store(0)
	if resp, took, err := ask(); err != nil || !resp.Granted || took < 100*time.Millisecond {
		t.Errorf("witness: granted %v in %v (%v), want granted after 100 ms held", resp.Granted, took, err)
	}
	var stood atomic.Bool
	stood.Store(true)
	tr.setVoteTiming(voteTiming{hold: time.Second, candidate: stood.Load})
	asked.Store(0)
	time.AfterFunc(20*time.Millisecond, func() { stood.Store(false) })
	if _, took, err := ask(); !errors.Is(err, errNoLongerCandidate) || took > 500*time.Millisecond || asked.Load() != 0 {
		t.Errorf("witness no longer a candidate: %v in %v after %d requests, want %v at once, no request", err, took, asked.Load(), errNoLongerCandidate)
	}
}
