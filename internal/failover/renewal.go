package failover

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/hashicorp/raft"

	"hummingbird.io/hummingbird/internal/wire"
)

// How the active renews its lease with probe datagrams (probe.go), and
// what the other members promise when they answer.
//
// Every renewal, the active sends one probe to every member. The
// members asked (askedMembers: the witness) answer every probe; the
// others only when the probe asks them to, which the active does twice a
// second (askEvery) and whenever a renewal's answers are late (retryFor):
// then it probes again, asking every member that has not answered. The
// lease counts from the send time of the probe whose answer made a
// majority, as it does for raft's heartbeats (confirmTransport).
//
// A member answers with a promise only while it follows the sender in
// the sender's term with raft's timeouts at rest, and raft's own timer is
// letGoFor or more from standing it for election: from then on it stands
// and votes for nobody else for letGoFor at least (detect lowers the
// timeouts only after detectFor without a probe or raft message, and
// clears atRest first). That is the promise a raft heartbeat's answer
// gave, so the lease keeps its margin. A member that does not follow (a
// candidate, one about to stand, one of another term) answers without a
// promise, so that the active sends it a raft message at once; a member
// whose log lacks entries the leader had a probe ago answers unasked, so
// that the active sends it a barrier.

// sentProbe is when the probe numbered seq was sent.
type sentProbe struct {
	seq uint64
	at  time.Time
}

// askedMembers are the members other than self asked to answer every
// probe: the witnesses, then app members in order until they make up the
// majority a renewal needs besides self.
func askedMembers(app wire.App, self string) map[string]bool {
	need := len(app.Members) / 2
	asked := map[string]bool{}
	for _, p := range app.Members {
		if p.Witness && p.HostUUID != self && len(asked) < need {
			asked[p.HostUUID] = true
		}
	}
	for _, p := range app.Members {
		if !p.Witness && p.HostUUID != self && len(asked) < need {
			asked[p.HostUUID] = true
		}
	}
	return asked
}

// confirmRenewal renews the lease of this leader in term from start: it
// returns the time the lease counts from, or false when no majority
// answered within lease (or ctx ended).
func (mb *member) confirmRenewal(ctx context.Context, term uint64, start time.Time, lease time.Duration) (time.Time, bool) {
	n := len(mb.app.Members) / 2
	expire := time.NewTimer(time.Until(start.Add(lease)))
	defer expire.Stop()
	if !mb.probing {
		verify := mb.r.VerifyLeader()
		select {
		case <-ctx.Done():
			return time.Time{}, false
		case <-expire.C:
			return time.Time{}, false
		case <-errCh(verify):
			if verify.Error() != nil {
				return time.Time{}, false
			}
		}
		return mb.trans.confirmed(term, n)
	}
	mb.sendProbes(term, start, false)
	retry := time.NewTimer(retryFor(mb.hb, mb.renew))
	defer retry.Stop()
	for {
		if at, ok := mb.trans.confirmedSince(term, n, start); ok {
			return at, true
		}
		select {
		case <-ctx.Done():
			return time.Time{}, false
		case <-expire.C:
			return time.Time{}, false
		case <-mb.answered:
		case <-retry.C:
			mb.sendProbes(term, start, true)
			retry.Reset(retryFor(mb.hb, mb.renew))
		}
	}
}

// sendProbes sends a probe of term to every other member: asking the
// members of mb.asked and those not heard for askEvery to answer; again
// (retry) only to those that have not answered since the renewal began,
// asking each. A member with no raft connection open has no key: a raft
// heartbeat on the wire makes one (verifySoon).
func (mb *member) sendProbes(term uint64, since time.Time, retry bool) {
	now := time.Now()
	seq := mb.noteSent(now)
	index := mb.r.LastIndex()
	dial := false
	for _, p := range mb.app.Members {
		if p.HostUUID == mb.self.HostUUID {
			continue
		}
		last := mb.trans.answeredAt(raft.ServerID(p.HostUUID), term)
		if retry && !last.Before(since) {
			continue
		}
		var flags uint8
		if retry || mb.asked[p.HostUUID] || now.Sub(last) >= askEvery {
			flags = probeAnswerMe
		}
		if (retry && mb.asked[p.HostUUID]) || now.Sub(last) >= 2*askEvery {
			// Its answers are late: a raft message on the wire finds
			// out why, and replaces a connection (and its key) that
			// died.
			mb.trans.needReal(raft.ServerID(p.HostUUID))
			dial = true
		}
		err := mb.stream.sendProbe(p.HostUUID, probe{Kind: kindProbe, Flags: flags, Term: term, Seq: seq, Index: index})
		switch {
		case errors.Is(err, errNoProbeKey):
			mb.trans.needReal(raft.ServerID(p.HostUUID))
			dial = true
		case err != nil:
			mb.log.Debug("probe not sent", "to", p.Hostname, "err", err)
		}
	}
	if dial {
		mb.verifySoon()
	}
}

// noteSent numbers a probe sent at at.
func (mb *member) noteSent(at time.Time) uint64 {
	mb.probeMu.Lock()
	defer mb.probeMu.Unlock()
	mb.probeSeq++
	mb.probeSent[mb.probeSeq%uint64(len(mb.probeSent))] = sentProbe{seq: mb.probeSeq, at: at}
	return mb.probeSeq
}

// sentAt is when the probe numbered seq was sent, if it is one of the
// last 64.
func (mb *member) sentAt(seq uint64) (time.Time, bool) {
	mb.probeMu.Lock()
	defer mb.probeMu.Unlock()
	e := mb.probeSent[seq%uint64(len(mb.probeSent))]
	return e.at, seq != 0 && e.seq == seq
}

// verifySoon, on a leader, sends every member a raft heartbeat (one at a
// time): a member that answered without a promise, or that has no raft
// connection open (and so no probe key), gets a message on the wire.
func (mb *member) verifySoon() {
	if mb.r.State() != raft.Leader || !mb.verifying.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer mb.verifying.Store(false)
		mb.r.VerifyLeader().Error()
	}()
}

// onProbe takes the app's probe datagrams (on the mux's reading
// goroutine: nothing here blocks).
func (mb *member) onProbe(p probe, k *probeKey, _ netip.AddrPort) {
	switch p.Kind {
	case kindAnswer:
		mb.onAnswer(p)
	case kindProbe:
		mb.onLeaderProbe(p, k)
	}
}

// onAnswer takes an answer to one of this member's probes.
func (mb *member) onAnswer(p probe) {
	term := mb.r.CurrentTerm()
	id := raft.ServerID(p.From)
	switch {
	case p.Term > term:
		// The member follows a newer term: this member's lease has
		// lapsed (a majority let go of it before that term began); raft
		// learns of the term from the message the member is sent.
		mb.trans.needReal(id)
		go mb.demote("a member follows a newer term", false)
		mb.verifySoon()
	case p.Flags&probeNoPromise != 0:
		mb.trans.noteRefusal(id)
		mb.verifySoon()
	case p.Term == term:
		at, ok := mb.sentAt(p.Seq)
		if !ok {
			return
		}
		mb.trans.noteAnswer(id, term, at, p.Index)
		select {
		case mb.answered <- struct{}{}:
		default:
		}
	}
}

// onLeaderProbe takes a probe from a leader (or a member that thinks it
// is one), and answers it when this member is the witness or asked to,
// when its log lacks entries the leader had a probe ago, or when it does
// not follow the sender (without a promise: see the top of this file).
func (mb *member) onLeaderProbe(p probe, k *probeKey) {
	r := mb.r
	term := r.CurrentTerm()
	_, leader := r.LeaderWithID()
	now := time.Now()
	mb.mu.Lock()
	following := p.Term == term && r.State() == raft.Follower && string(leader) == p.From && mb.atRest &&
		now.Sub(r.LastContact()) < restRaftFor(mb.hb)-letGoFor(mb.hb)
	if following {
		mb.probeContact = now
	}
	behind := following && r.LastIndex() < mb.leaderIndex
	if p.Term == term {
		mb.leaderIndex = p.Index
	}
	active := mb.active
	mb.mu.Unlock()
	if p.Term > term && active {
		// Another member leads in a newer term: this member's lease has
		// lapsed already.
		go mb.demote("another member leads in a newer term", false)
	}
	if !mb.self.Witness && p.Flags&probeAnswerMe == 0 && !behind && following {
		return
	}
	a := probe{Kind: kindAnswer, Term: term, Seq: p.Seq, Index: r.LastIndex()}
	if !following {
		a.Flags = probeNoPromise
	}
	if err := mb.stream.sendProbeWith(p.From, k, a); err != nil {
		mb.log.Debug("probe answer not sent", "err", err)
	}
}
