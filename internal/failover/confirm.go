package failover

import (
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// confirmTransport is raft's network transport, noting for every peer
// when the last AppendEntries it accepted from this leader was sent. A
// renewal that raft confirms may rest on an answer to a heartbeat sent
// before the renewal began, held up on the way back: the member that
// answered has heard nothing since it answered, and lets go of this
// leader that long after. The lease therefore counts from when the
// confirming heartbeats were sent, not from when the renewal began.
type confirmTransport struct {
	*raft.NetworkTransport

	mu   sync.Mutex
	sent map[raft.ServerID]confirmation
	logs map[raft.ServerID]peerLog
}

// peerLog is the last index of a peer's log as its latest answer in term
// (received at at) said.
type peerLog struct {
	term  uint64
	at    time.Time
	index uint64
}

// confirmation is when an AppendEntries of term that a peer accepted was
// sent.
type confirmation struct {
	term uint64
	at   time.Time
}

func newConfirmTransport(t *raft.NetworkTransport) *confirmTransport {
	return &confirmTransport{NetworkTransport: t, sent: map[raft.ServerID]confirmation{}, logs: map[raft.ServerID]peerLog{}}
}

// AppendEntries sends args to the peer and, when it accepts them, notes
// when they were sent; it notes the peer's last log index from every
// answer of the same term.
func (t *confirmTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	at := time.Now()
	err := t.NetworkTransport.AppendEntries(id, target, args, resp)
	if err == nil && resp.Term == args.Term {
		t.mu.Lock()
		if resp.Success {
			if c := t.sent[id]; c.term != args.Term || at.After(c.at) {
				t.sent[id] = confirmation{term: args.Term, at: at}
			}
		}
		t.logs[id] = peerLog{term: args.Term, at: time.Now(), index: resp.LastLog}
		t.mu.Unlock()
	}
	return err
}

// answered counts the peers that answered an AppendEntries of term after
// since.
func (t *confirmTransport) answered(term uint64, since time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, l := range t.logs {
		if l.term == term && l.at.After(since) {
			n++
		}
	}
	return n
}

// behind says whether a peer answered an AppendEntries of term after
// since with a log that ends before index. Raft's leader sends a peer
// that failed to take entries nothing more until its next commit message
// (a heartbeat time or more apart under lean probing) or a new entry,
// while its heartbeats get through: a member back from an outage could
// still lack the entries when the active fails next, and no member that
// lacks them can win the election that follows.
func (t *confirmTransport) behind(term, index uint64, since time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, l := range t.logs {
		if l.term == term && l.at.After(since) && l.index < index {
			return true
		}
	}
	return false
}

// AppendEntriesPipeline refuses a pipeline, so that raft replicates with
// AppendEntries. Raft counts a pipelined answer as a confirmation of its
// leadership too (VerifyLeader), and those would pass by AppendEntries:
// the lease would count from an older send time, and lapse early (a new
// active lost its first lease 20 ms after taking the VIP so). The group
// replicates a few small entries per switchover, for which pipelining
// gains nothing.
func (t *confirmTransport) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}

// confirmed returns the latest time by which n peers had accepted an
// AppendEntries of term: the n-th latest of their last ones' send times
// (now, for none). It reports false when fewer than n peers accepted one
// in term.
func (t *confirmTransport) confirmed(term uint64, n int) (time.Time, bool) {
	if n <= 0 {
		return time.Now(), true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var ats []time.Time
	for _, c := range t.sent {
		if c.term == term {
			ats = append(ats, c.at)
		}
	}
	if len(ats) < n {
		return time.Time{}, false
	}
	slices.SortFunc(ats, func(a, b time.Time) int { return b.Compare(a) })
	return ats[n-1], true
}
