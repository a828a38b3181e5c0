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
//
// With probing on (rideOnProbes), a heartbeat raft sends a member that
// answers probes is answered from those answers instead of going on the
// wire: an answer in the same term with a promise says what a heartbeat's
// answer says (the member follows this leader in this term), and the
// members' link carries one datagram each way instead of a TCP message,
// its answer and their acknowledgements. When the member's last answer is
// older than it should be (freshFor), when it said it does not follow,
// or when its raft has heard no real message for a while (its own timer
// would stand it for election), the heartbeat goes on the wire. Raft's
// heartbeats only keep raft's own leader lease and its followers' timers;
// the active role's lease rests on the probes' answers alone.
type confirmTransport struct {
	*raft.NetworkTransport

	mu   sync.Mutex
	sent map[raft.ServerID]confirmation
	logs map[raft.ServerID]peerLog

	// Probing: freshFor says how old a member's last answer may be for a
	// heartbeat to rest on it (nil: probing off); realEvery, how often a
	// member gets a real message at least.
	freshFor  func(raft.ServerID) time.Duration
	realEvery time.Duration
	peers     map[raft.ServerID]*probePeer

	votes voteTiming // how pre-votes go out (vote.go)
}

// probePeer is what a member's probe answers told the leader.
type probePeer struct {
	term     uint64
	at       time.Time // when the latest answer with a promise arrived
	index    uint64    // the member's last log index, as that answer said
	realAt   time.Time // the last real AppendEntries to it was sent then
	needReal bool      // the member said it does not follow: send it a real one

	answer chan struct{} // closed at the next answer with a promise (nil: none waits)
	beat   *wireBeat     // the heartbeat on the wire, until it is answered

	refusedAt time.Time // the latest answer without a promise arrived then
	last      wireNote  // the latest message on the wire to the member
}

// wireNote is how a message on the wire to a member went.
type wireNote struct {
	at   time.Time // sent then
	took time.Duration
	err  error
}

// wireBeat is a heartbeat of term on the wire to a member; done is
// closed once resp and err are set.
type wireBeat struct {
	term  uint64
	start time.Time
	done  chan struct{}
	resp  raft.AppendEntriesResponse
	err   error
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
	return &confirmTransport{NetworkTransport: t, sent: map[raft.ServerID]confirmation{}, logs: map[raft.ServerID]peerLog{},
		peers: map[raft.ServerID]*probePeer{}}
}

// rideOnProbes lets heartbeats rest on probe answers: one to member id
// rests on an answer at most freshFor(id) old, and a real one goes to
// each member at least every realEvery.
func (t *confirmTransport) rideOnProbes(freshFor func(raft.ServerID) time.Duration, realEvery time.Duration) {
	t.mu.Lock()
	t.freshFor, t.realEvery = freshFor, realEvery
	t.mu.Unlock()
}

// peer is id's probePeer. t.mu is held.
func (t *confirmTransport) peer(id raft.ServerID) *probePeer {
	p := t.peers[id]
	if p == nil {
		p = &probePeer{}
		t.peers[id] = p
	}
	return p
}

// noteAnswer notes an answer with a promise from member id in term to a
// probe sent at sentAt, its log ending at index: a confirmation as an
// accepted AppendEntries is.
func (t *confirmTransport) noteAnswer(id raft.ServerID, term uint64, sentAt time.Time, index uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.noteLocked(id, term, sentAt, true, index)
	p := t.peer(id)
	p.term, p.at, p.index = term, time.Now(), index
	if p.answer != nil {
		close(p.answer)
		p.answer = nil
	}
}

// needReal makes the next heartbeat to member id go on the wire: it
// answered that it does not follow this leader.
func (t *confirmTransport) needReal(id raft.ServerID) {
	t.mu.Lock()
	t.peer(id).needReal = true
	t.mu.Unlock()
}

// noteRefusal notes an answer without a promise from member id: it does
// not follow this leader, and the next heartbeat to it goes on the wire.
func (t *confirmTransport) noteRefusal(id raft.ServerID) {
	t.mu.Lock()
	p := t.peer(id)
	p.needReal, p.refusedAt = true, time.Now()
	t.mu.Unlock()
}

// following says whether member id answered a probe with a promise in
// term within d, counting from start (when this member began to lead) at
// the earliest. When it did not, refused says whether it answered
// without one within d (it is reachable, but the leader's raft messages
// do not make it follow), last is how the latest message on the wire to
// it went, and beatSince is when the heartbeat now on the wire began
// (zero: none is).
func (t *confirmTransport) following(id raft.ServerID, term uint64, start time.Time, d time.Duration) (ok, refused bool, last wireNote, beatSince time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.peer(id)
	now := time.Now()
	if now.Sub(start) < d || (p.term == term && now.Sub(p.at) < d) {
		return true, false, wireNote{}, time.Time{}
	}
	if p.beat != nil {
		beatSince = p.beat.start
	}
	return false, p.refusedAt.After(start) && now.Sub(p.refusedAt) < d, p.last, beatSince
}

// isHeartbeat says whether args is one of raft's heartbeats: no entries,
// no previous entry, no commit index.
func isHeartbeat(args *raft.AppendEntriesRequest) bool {
	return len(args.Entries) == 0 && args.PrevLogEntry == 0 && args.PrevLogTerm == 0 && args.LeaderCommitIndex == 0
}

// answerHeartbeat answers a heartbeat of term to member id from its
// probe answers (see confirmTransport); it reports false when the
// heartbeat is to go on the wire.
func (t *confirmTransport) answerHeartbeat(id raft.ServerID, term uint64, resp *raft.AppendEntriesResponse) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.freshFor == nil {
		return false
	}
	p := t.peer(id)
	now := time.Now()
	if p.needReal || p.term != term || now.Sub(p.realAt) >= t.realEvery || now.Sub(p.at) > t.freshFor(id) {
		return false
	}
	*resp = raft.AppendEntriesResponse{Term: term, LastLog: p.index, Success: true}
	return true
}

// AppendEntries sends args to the peer and, when it accepts them, notes
// when they were sent; it notes the peer's last log index from every
// answer of the same term.
func (t *confirmTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	if isHeartbeat(args) {
		if t.answerHeartbeat(id, args.Term, resp) {
			return nil
		}
		t.mu.Lock()
		probing := t.freshFor != nil
		t.mu.Unlock()
		if probing {
			return t.heartbeat(id, target, args, resp)
		}
	}
	return t.send(id, target, args, resp)
}

// heartbeat sends a heartbeat to member id on the wire, and answers it
// from a probe answer with a promise in its term if one comes first.
// Under loss a heartbeat on the wire waits for TCP's retransmissions
// (17 to 40 ms at 20 % loss), and raft sends the member no other while
// it waits: its leader, whose lease is the detection time, stepped down
// when the probes' answers had kept coming (a 30 ms heartbeat time under
// 20 % loss: a new leader stepped down every 50 to 250 ms, and the
// member back from the cut won one of the elections). The heartbeat
// goes on; those that follow while it is under way wait for it, or for
// an answer, and send no other.
func (t *confirmTransport) heartbeat(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	t.mu.Lock()
	p := t.peer(id)
	b := p.beat
	if b == nil || b.term != args.Term {
		b = &wireBeat{term: args.Term, start: time.Now(), done: make(chan struct{})}
		p.beat = b
		req := *args
		go func() {
			b.err = t.send(id, target, &req, &b.resp)
			t.mu.Lock()
			if p.beat == b {
				p.beat = nil
			}
			t.mu.Unlock()
			close(b.done)
		}()
	}
	for {
		if p.answer == nil {
			p.answer = make(chan struct{})
		}
		answer := p.answer
		t.mu.Unlock()
		select {
		case <-b.done:
			*resp = b.resp
			return b.err
		case <-answer:
		}
		t.mu.Lock()
		if p.term == args.Term {
			*resp = raft.AppendEntriesResponse{Term: args.Term, LastLog: p.index, Success: true}
			t.mu.Unlock()
			return nil
		}
	}
}

// send sends args on the wire, noting the answer.
func (t *confirmTransport) send(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	at := time.Now()
	err := t.NetworkTransport.AppendEntries(id, target, args, resp)
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.peer(id)
	p.realAt, p.needReal = at, false
	p.last = wireNote{at: at, took: time.Since(at), err: err}
	if err == nil && resp.Term == args.Term {
		t.noteLocked(id, args.Term, at, resp.Success, resp.LastLog)
	}
	return err
}

// noteLocked notes an answer from member id in term to a message sent at
// sentAt: a confirmation when it accepted it, and the last index of its
// log. t.mu is held.
func (t *confirmTransport) noteLocked(id raft.ServerID, term uint64, sentAt time.Time, accepted bool, index uint64) {
	if c := t.sent[id]; accepted && (c.term != term || sentAt.After(c.at)) {
		t.sent[id] = confirmation{term: term, at: sentAt}
	}
	t.logs[id] = peerLog{term: term, at: time.Now(), index: index}
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

// confirmedSince is confirmed, counting only the confirmations of
// AppendEntries or probes sent at since or later.
func (t *confirmTransport) confirmedSince(term uint64, n int, since time.Time) (time.Time, bool) {
	at, ok := t.confirmed(term, n)
	if !ok || at.Before(since) {
		return time.Time{}, false
	}
	return at, true
}

// answeredAt is when member id's latest answer with a promise in term
// arrived (zero: none).
func (t *confirmTransport) answeredAt(id raft.ServerID, term uint64) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.peers[id]; p != nil && p.term == term {
		return p.at
	}
	return time.Time{}
}
