package failover

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"hummingbird.io/hummingbird/internal/wire"
)

// Timings derived from the heartbeat time hb, the members' failure
// detection time. The active renews its lease every hb/probes: each
// renewal is one probe of every member, a single datagram each (probe.go),
// as a VRRP advert is. The witness answers every probe; a standby only
// when asked (twice a second, so that the active knows it is there and
// whether its log is whole, and when the witness's answer is late). A
// standby that has heard nothing for hb stands for
// election at once; the witness lets go of a silent active after 0.7×hb,
// so that it is ready to vote for the standby by then (the 0.3×hb between
// them covers a standby whose last message came a little before the
// witness's). A member votes for nobody else while it still follows a
// leader, so no member that answered a renewal helps elect a successor
// before 0.7×hb has passed since; the lease lasts 0.55×hb from when the
// heartbeats that confirmed it were sent (confirmTransport), and the
// active drops the role at least 0.15×hb before a successor can be
// elected (0.45×hb when the standby answered that renewal too).
func leaseFor(hb time.Duration) time.Duration { return hb * 55 / 100 }
func letGoFor(hb time.Duration) time.Duration { return hb * 7 / 10 }

// restRaftFor is how long a follower's raft waits at rest before it
// stands for election on its own: long, since detect stands it for
// election from the probes, and raft's messages are then needed only
// rarely (realRaftEvery).
func restRaftFor(hb time.Duration) time.Duration { return max(50*hb, 10*time.Second) }

// realRaftEvery is how often a member gets a raft message on the wire at
// least while probes answer for raft's heartbeats (confirmTransport): a
// quarter of its raft's timeout at rest.
func realRaftEvery(hb time.Duration) time.Duration { return restRaftFor(hb) / 4 }

// askEvery is how often the active asks a standby to answer a probe when
// nothing else does: it counts the members that answer (setPeers), and a
// member that lacks entries says so in its answer.
const askEvery = 500 * time.Millisecond

// retryFor is how long the active waits for the answers of a renewal's
// probes before it probes again every member that has not answered,
// asking each to answer (and again as long after): a third of the renewal
// period (renew), or of what is left of the lease when the renewal
// begins, when that is shorter (3 probes: 22 ms of a 100 ms heartbeat
// time's 55), so that two retries come before the lease ends. A lost
// datagram costs that, not the lease.
func retryFor(hb, renew time.Duration) time.Duration {
	return max(min(renew, leaseFor(hb)-renew)/3, 2*time.Millisecond)
}

// dialFor bounds a connection attempt to a member: half a heartbeat time,
// and at least 250 ms (a connection and its TLS handshake take a few
// milliseconds on a link that works; lost SYNs are covered by attempts
// started every 25 ms).
func dialFor(hb time.Duration) time.Duration { return max(250*time.Millisecond, hb/2) }

// member runs this agent's part of one app's group.
type member struct {
	app     wire.App
	self    wire.AppMember
	hb      time.Duration
	renew   time.Duration // hb/probes
	vip     netip.Prefix  // invalid: none
	m       *Manager
	log     *slog.Logger
	health  *healthCheck
	fsm     *fsm
	store   *fileStore
	stream  *stream
	r       *raft.Raft
	trans   *confirmTransport
	cancel  context.CancelFunc
	stopped chan struct{}

	// missing are the capabilities the agent lacks for the app's VIP (set
	// once, at the start): while any is missing it never takes the role.
	missing []string

	// probing: renewals go out as probe datagrams (probe.go); off without
	// a probe socket, when raft's heartbeats renew the lease instead.
	probing bool
	// asked are the members asked to answer every probe: the witnesses,
	// and app members in order when there are too few of them for a
	// majority.
	asked map[string]bool
	// The probes this member sent as the active, by seq (probeSent holds
	// the last 64 send times); answered is poked by every answer that
	// confirms.
	probeMu   sync.Mutex
	probeSeq  uint64
	probeSent [64]sentProbe
	answered  chan struct{}
	verifying atomic.Bool // a VerifyLeader is under way

	// vipMu orders the changes of the VIP on the node with the state
	// that decided them: a lease timer's removal finishing after a
	// renewal's addition left an active member without its VIP.
	vipMu sync.Mutex

	mu sync.Mutex
	// atRest: this member, a follower, has raft's timeouts at rest and so
	// may promise the leader not to stand for election for letGoFor; detect
	// clears it before it lowers them. probeContact is when it last took a
	// probe of the leader it follows; leaderIndex, that leader's last log
	// index as its probes said.
	atRest       bool
	probeContact time.Time
	leaderIndex  uint64
	active       bool      // the app may act as the active member
	holdsVIP     bool      // the VIP is on this node
	leaseUntil   time.Time // while active
	leaseTimer   *time.Timer
	handingOff   bool // a planned move is under way: keep the VIP until the successor has it
	lostAt       time.Time
	peers        int
	switchover   *wire.Switchover
	locked       bool          // this member's host is locked: it never takes the active role
	moveTo       *moveRequest  // a planned move asked on this node
	changed      chan struct{} // closed and replaced at every change
	wake         chan struct{} // pokes the leader loop
}

func newMember(m *Manager, app wire.App, self wire.AppMember, dir string) (*member, error) {
	mb := &member{
		app: app, self: self, m: m,
		log:     m.log.With("app", app.Name),
		changed: make(chan struct{}), wake: make(chan struct{}, 1), stopped: make(chan struct{}), answered: make(chan struct{}, 1),
		switchover: app.Switchover, locked: self.Locked,
	}
	hbMillis, probes := wire.Detection(max(app.HeartbeatMillis, 0), app.Probes)
	mb.hb = time.Duration(hbMillis) * time.Millisecond
	if probes < wire.MinProbes || mb.hb/time.Duration(probes) < wire.MinProbeMillis*time.Millisecond {
		return nil, fmt.Errorf("app %s: %d probes in %v: want at least %d, at most one every %d ms",
			app.Name, probes, mb.hb, wire.MinProbes, wire.MinProbeMillis)
	}
	mb.renew = mb.hb / time.Duration(probes)
	if app.VIP != "" {
		p, err := netip.ParsePrefix(app.VIP)
		if err != nil {
			return nil, fmt.Errorf("app %s: VIP %q: %w", app.Name, app.VIP, err)
		}
		mb.vip = p
		if !self.Witness {
			mb.missing = MissingCapabilities()
		}
		if len(mb.missing) > 0 {
			mb.log.Warn("this member cannot hold the app's VIP and never takes the active role: give the agent the "+
				"capabilities deploy/README.md lists under \"What the agent needs\"", "missing", strings.Join(mb.missing, ", "))
		}
	}
	h, err := newHealthCheck(app, mb.notify)
	if err != nil {
		return nil, err
	}
	mb.health = h
	mb.fsm = &fsm{applied: mb.applied}
	st, err := openFileStore(dir)
	if err != nil {
		return nil, err
	}
	mb.store = st
	return mb, nil
}

// start runs the member: it drops a VIP left by an earlier run, waits
// two heartbeat times (so that a restarted member cannot vote while the
// active's lease, confirmed by its earlier self, still runs), then joins
// the group.
func (mb *member) start(ctx context.Context) error {
	ctx, mb.cancel = context.WithCancel(ctx)
	if mb.vip.IsValid() {
		if err := mb.m.addrs.Remove(ctx, mb.vip); err != nil {
			mb.log.Warn("VIP left by an earlier run not removed", "vip", mb.vip.String(), "err", err)
		}
	}
	if !mb.self.Witness {
		go mb.health.run(ctx)
	}
	members := map[string]string{}
	var conf raft.Configuration
	for _, p := range mb.app.Members {
		members[p.Address] = p.HostUUID
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.HostUUID), Address: raft.ServerAddress(p.Address)})
	}
	certs, legacy := memberCerts(mb.app)
	mb.stream = mb.m.mux.stream(mb.app.Name, raft.ServerAddress(mb.self.Address), members, certs, legacy, mb.serveStatus)
	mb.stream.dialMax = dialFor(mb.hb)

	hl := newRaftLogger("raft."+mb.app.Name, mb.m.raftLog, time.Now)
	mb.trans = newConfirmTransport(raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: mb.stream, MaxPool: 3, Timeout: 10 * mb.hb, Logger: hl,
	}))
	candidate := func() bool { return mb.r != nil && mb.r.State() == raft.Candidate }
	if mb.self.Witness {
		mb.trans.setVoteTiming(voteTiming{hold: mb.hb, candidate: candidate})
	} else {
		mb.trans.setVoteTiming(voteTiming{every: mb.renew, within: mb.hb, candidate: candidate})
	}
	mb.probing = mb.m.mux.udp != nil
	mb.asked = askedMembers(mb.app, mb.self.HostUUID)
	if mb.probing {
		// A member asked to answer every probe answers every renewal
		// period, or a retry after it; the others twice a second.
		mb.trans.rideOnProbes(func(id raft.ServerID) time.Duration {
			if mb.asked[string(id)] {
				return mb.renew + retryFor(mb.hb, mb.renew)
			}
			return askEvery + mb.renew + retryFor(mb.hb, mb.renew)
		}, realRaftEvery(mb.hb))
	}
	c := raft.DefaultConfig()
	c.LocalID = raft.ServerID(mb.self.HostUUID)
	// A follower's raft timers rest long (restRaftFor). Failure detection
	// is detect's: it lowers the timeouts to detectFor's once the leader
	// has been silent that long (no probe, no raft message), and raft
	// stands for election at once. A leader's heartbeat timeout is the
	// heartbeat time (detect sets it): its heartbeats, every tenth to
	// fifth of that, rest on the members' probe answers
	// (confirmTransport) and cost nothing on the wire. Raft's commit
	// messages rest long too: followers learn of committed entries from
	// the barrier every apply ends with. (LeanProbes, which once left
	// the commit messages out, is what every group does now.)
	rest := restRaftFor(mb.hb)
	c.HeartbeatTimeout, c.ElectionTimeout, c.CommitTimeout = rest, rest, rest
	// Raft steps its leader down after the detection time without a
	// majority; the active role lapses sooner, with its own lease.
	c.LeaderLeaseTimeout = mb.detectFor()
	c.SnapshotThreshold = 64
	c.TrailingLogs = 64
	c.SnapshotInterval = 30 * time.Second
	c.Logger = hl
	snaps, err := raft.NewFileSnapshotStoreWithLogger(mb.store.dir, 2, hl)
	if err != nil {
		return err
	}
	has, err := raft.HasExistingState(mb.store, mb.store, snaps)
	if err != nil {
		return err
	}
	select {
	case <-time.After(2 * mb.hb):
	case <-ctx.Done():
		return ctx.Err()
	}
	r, err := raft.NewRaft(c, mb.fsm, mb.store, mb.store, snaps, mb.trans)
	if err != nil {
		return fmt.Errorf("app %s: start the group: %w", mb.app.Name, err)
	}
	mb.r = r
	mb.atRest = true
	mb.stream.setProbeHandler(mb.onProbe)
	if !has {
		// Every member bootstraps with the same configuration.
		if err := r.BootstrapCluster(conf).Error(); err != nil && err != raft.ErrCantBootstrap {
			return fmt.Errorf("app %s: bootstrap the group: %w", mb.app.Name, err)
		}
	}
	obs := make(chan raft.Observation, 16)
	r.RegisterObserver(raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.RaftState)
		return ok
	}))
	kick := make(chan struct{}, 1)
	go mb.detect(ctx, kick)
	go mb.run(ctx, obs, kick)
	return nil
}

// detectFor is how long this member follows a silent leader before it
// stands for election: hb for app members, letGoFor(hb) for a witness.
func (mb *member) detectFor() time.Duration {
	if mb.self.Witness {
		return letGoFor(mb.hb)
	}
	return mb.hb
}

// electionFor is how long a candidate waits before it tries again: hb
// for app members, 3×hb for a witness, whose early candidacy must not
// stand in the way of the standby's.
func (mb *member) electionFor() time.Duration {
	if mb.self.Witness {
		return 3 * mb.hb
	}
	return mb.hb
}

// detect makes failure detection exact: once this member, a follower,
// has heard nothing from a leader for detectFor (no probe it followed, no
// raft message), it lowers raft's heartbeat timeout to that, so that raft
// checks at once and stands for election (raft's own check runs at a
// random point between one and two timeouts); the timeouts rest again once
// the member follows, and are the heartbeat time while it leads. kick
// tells it that the raft state changed.
func (mb *member) detect(ctx context.Context, kick <-chan struct{}) {
	after, rest := mb.detectFor(), restRaftFor(mb.hb)
	set := func(hb, election time.Duration) {
		rc := mb.r.ReloadableConfig()
		rc.HeartbeatTimeout, rc.ElectionTimeout = hb, election
		if err := mb.r.ReloadConfig(rc); err != nil {
			mb.log.Error("raft timeouts not set", "heartbeat", hb.String(), "election", election.String(), "err", err)
		}
	}
	const (
		atRest = iota
		lowered
		leading
	)
	mode := atRest
	for {
		wait := mb.hb
		switch mb.r.State() {
		case raft.Follower:
			mb.mu.Lock()
			since := time.Since(mb.contactLocked())
			switch {
			case since < after:
				mb.mu.Unlock()
				if mode != atRest {
					set(rest, rest)
					mode = atRest
					mb.mu.Lock()
					mb.atRest = true
					mb.mu.Unlock()
				}
				wait = after - since
			case mode != lowered:
				// No promise from here on: a probe taken after this
				// is not answered as followed.
				mb.atRest = false
				mb.mu.Unlock()
				// Raft checks as the timeout drops, and stands for
				// election unless the leader was heard in the meantime.
				set(after, mb.electionFor())
				mode = lowered
			default:
				mb.mu.Unlock()
				// A follower again, but the message that made it one
				// is not its contact yet: raft changes the state (the
				// kick) before it notes the contact. Looked at again a
				// probe interval later, not a heartbeat time: until
				// its timers rest it answers the leader's probes
				// without a promise, and the leader sends it no
				// entries it lacks (a member back from a cut could
				// still lack them when the active was lost next).
				wait = mb.renew
			}
		case raft.Leader:
			if mode != leading {
				mb.mu.Lock()
				mb.atRest = false
				mb.mu.Unlock()
				// A leadership transfer (a planned move) fails after
				// the election timeout: 5 heartbeat times, and at least
				// half a second (at 20 ms, 100 ms was too short for the
				// successor's election and its syncs).
				set(mb.hb, max(5*mb.hb, 500*time.Millisecond))
				mode = leading
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-time.After(wait):
		}
	}
}

// contactLocked is when this member last heard from the leader: a probe
// it followed, or a raft message. mb.mu is held.
func (mb *member) contactLocked() time.Time {
	lc := mb.r.LastContact()
	if mb.probeContact.After(lc) {
		return mb.probeContact
	}
	return lc
}

// run follows the member's raft state until ctx ends.
func (mb *member) run(ctx context.Context, obs chan raft.Observation, kick chan<- struct{}) {
	defer close(mb.stopped)
	var (
		leadCancel context.CancelFunc
		leadDone   chan struct{}
	)
	stopLeading := func() {
		if leadCancel != nil {
			leadCancel()
			<-leadDone
			leadCancel = nil
		}
	}
	for {
		select {
		case <-ctx.Done():
			stopLeading()
			mb.demote("stopped", false)
			if mb.vip.IsValid() {
				// Whatever a release under way got to: the VIP goes.
				if err := mb.m.addrs.Remove(context.Background(), mb.vip); err != nil {
					mb.log.Error("VIP not removed", "vip", mb.vip.String(), "err", err)
				}
			}
			mb.r.Shutdown().Error()
			mb.stream.Close()
			mb.store.Close()
			return
		case o := <-obs:
			select {
			case kick <- struct{}{}:
			default:
			}
			if o.Data.(raft.RaftState) == raft.Candidate {
				// The time this member last heard from the active: the
				// start of the outage, should it win.
				mb.mu.Lock()
				lc := mb.contactLocked()
				if mb.lostAt.IsZero() && !lc.IsZero() {
					mb.lostAt = lc
				}
				mb.mu.Unlock()
			}
		case leader := <-mb.r.LeaderCh():
			stopLeading()
			if leader {
				leadCancel, leadDone = mb.startLeading(ctx)
			} else {
				mb.mu.Lock()
				handing := mb.handingOff
				mb.mu.Unlock()
				mb.demote("lost leadership", handing)
			}
		}
	}
}

// startLeading runs lead until the returned function is called; done is
// closed when it has returned.
func (mb *member) startLeading(ctx context.Context) (stop context.CancelFunc, done chan struct{}) {
	ctx, stop = context.WithCancel(ctx)
	done = make(chan struct{})
	go func() {
		defer close(done)
		mb.lead(ctx)
	}()
	return stop, done
}

// lead is the leader's loop: claim the active role in this term, then
// hold it with a lease renewed through the group, handing it over when
// the app is unhealthy or a planned move asks for it.
func (mb *member) lead(ctx context.Context) {
	defer func() {
		mb.mu.Lock()
		handing := mb.handingOff
		mb.mu.Unlock()
		mb.demote("leadership ended", handing)
	}()
	term := mb.r.CurrentTerm()
	mb.mu.Lock()
	lost := mb.lostAt
	mb.lostAt = time.Time{}
	mb.mu.Unlock()
	reason := "failure"
	for {
		if !mb.mayLead() {
			// The outage started when this witness (or locked member, or
			// member that cannot hold the VIP) last heard from the active;
			// the app member it hands over to completes the switch. A
			// locked member unlocked before any other took the role takes
			// it here.
			if lost.IsZero() {
				lost = time.Now()
			}
			if !mb.handOn(ctx, reason, lost) {
				return
			}
		}
		var handOn bool
		if lost, handOn = mb.holdActive(ctx, term, lost); !handOn {
			return
		}
		reason = "planned"
	}
}

// holdActive claims the active role in term, the outage having started
// at lost (zero: none), and holds it until leadership moves or ends;
// handOn says the host was locked and no other member took the role: the
// leader, no longer active since then, is to hand it on.
func (mb *member) holdActive(ctx context.Context, term uint64, lost time.Time) (since time.Time, handOn bool) {
	var again askAgain
	if now := time.Now(); !mb.health.healthy.Load() {
		if mb.handover(ctx, "", 0, "unhealthy", now) {
			return
		}
		again.failed(now, mb.renew)
	}
	if err := mb.commit(command{Op: opActivate, Member: mb.self.HostUUID, Epoch: term, At: time.Now(), LostAt: lost}); err != nil {
		mb.log.Warn("active role not claimed", "err", err)
		return
	}
	// The claim is committed and applied here: the VIP need not wait
	// for the followers to learn so (a barrier's round, a sync on each
	// side); they learn it from the barrier that follows.
	go mb.r.Barrier(5 * mb.hb)
	// Set up before the first renewal, whose lease the time it takes
	// would shorten; the old active keeps the VIP meanwhile, and for
	// drainFor after this member announced it.
	if stop := mb.forwardToOld(); stop != nil {
		time.AfterFunc(drainFor, stop)
	}
	lease, renew := leaseFor(mb.hb), mb.renew
	nextPeers := time.Now()
	// The VIP is announced when taken, again 50 ms later (a lost first
	// one), then after 1 s at doubling intervals up to every 10 s: a
	// neighbour that resolved it to another node (an old active frozen
	// with the VIP on its interface answers ARP requests) comes back
	// without waiting for its entry to go stale. Only under a valid lease:
	// a late announcement from a member that was frozen would pull the
	// neighbours back to it.
	prevLast, lagging := mb.r.LastIndex(), askAgain{}
	led, lapsed := time.Now(), map[string]*lapse{}
	announceEvery := 500 * time.Millisecond
	nextAnnounce := time.Now().Add(50 * time.Millisecond)
	// The claim's own entries were confirmed by a majority a moment
	// ago: the lease counts from when they were sent, so that the VIP
	// moves now rather than after a round of probes.
	if at, ok := mb.trans.confirmed(term, len(mb.app.Members)/2); ok {
		mb.extend(ctx, at.Add(lease))
	}
	for {
		start := time.Now()
		at, ok := mb.confirmRenewal(ctx, term, start, lease)
		if ctx.Err() != nil {
			return
		}
		if !ok {
			// No quorum answered within the lease: the renewal that
			// would have kept it came too late.
			mb.demote("lease not renewed", false)
			if mb.r.State() != raft.Leader {
				return
			}
			continue
		}
		// The lease counts from when the probes (or heartbeats) that
		// confirmed it were sent.
		mb.extend(ctx, at.Add(lease))
		// A member that answers but lacks entries at least a renewal old
		// is sent them at once: a barrier is a new entry, and raft sends
		// new entries to every member without waiting. While it still
		// lacks them (a member that cannot take entries), barriers come at
		// doubling intervals up to a second, as handover attempts do.
		if now := time.Now(); !mb.trans.behind(term, prevLast, start) {
			lagging = askAgain{}
		} else if lagging.due(now) {
			go mb.r.Barrier(5 * mb.hb)
			lagging.failed(now, renew)
		}
		prevLast = mb.r.LastIndex()
		mb.noteFollowers(term, led, lapsed)
		if now := time.Now(); now.After(nextPeers) {
			nextPeers = now.Add(time.Second)
			mb.setPeers(mb.trans.answered(term, now.Add(-time.Second)))
		}
		if now := time.Now(); mb.vip.IsValid() && now.After(nextAnnounce) && now.Before(start.Add(lease)) && mb.role() == wire.RoleActive {
			if err := mb.m.addrs.Announce(mb.vip); err != nil {
				mb.log.Warn("VIP not announced", "vip", mb.vip.String(), "err", err)
			}
			announceEvery = min(2*announceEvery, 10*time.Second)
			nextAnnounce = time.Now().Add(announceEvery)
		}
		if mb.isLocked() {
			// The host was locked: the role goes on, as in a planned
			// move; with no member to take it, the VIP is let go.
			now := time.Now()
			if mb.handover(ctx, "", 0, "planned", now) {
				return
			}
			mb.log.Warn("the host is locked and no other member can take the active role: the app stops here")
			mb.demote("host locked", false)
			return now, true
		}
		if now := time.Now(); mb.health.healthy.Load() {
			again = askAgain{}
		} else if again.due(now) {
			if mb.handover(ctx, "", 0, "unhealthy", now) {
				return
			}
			again.failed(now, renew)
		}
		mb.mu.Lock()
		sw, mv := mb.switchover, mb.moveTo
		mb.moveTo = nil
		mb.mu.Unlock()
		if mv != nil {
			moved := mb.handover(ctx, mv.to, 0, "planned", time.Now())
			mv.done <- moved
			if moved {
				return
			}
		}
		if sw != nil && sw.Seq > mb.fsm.state().SwitchoverSeq {
			if sw.To == "" || sw.To != mb.self.HostUUID {
				if mb.handover(ctx, sw.To, sw.Seq, "planned", time.Now()) {
					return
				}
			}
			mb.apply(command{Op: opDone, Seq: sw.Seq, At: time.Now()})
		}
		select {
		case <-ctx.Done():
			return
		case <-mb.wake:
		case <-time.After(time.Until(start.Add(renew))):
		}
	}
}

// notFollowingFor is how long a member may go without following the
// active before the active says so in its log: three heartbeat times,
// and two of the standby's answers apart (askEvery) at least.
func notFollowingFor(hb time.Duration) time.Duration { return max(3*hb, 2*askEvery) }

// lapse is a member that stopped following the active: since when, since
// when it answers probes again (without a promise), and whether that was
// logged.
type lapse struct {
	since, answered time.Time
	told            bool
}

// noteFollowers logs each app member that stopped following this leader
// in term (no probe answered with a promise for notFollowingFor), with how
// the latest raft message on the wire to it went; again if it then
// answers probes for half that time but still does not follow (it stays
// a candidate, and may lack the entries of this term that it needs to
// take over when this member is lost); and once more when it follows
// again. led is when this member began to lead; lapses holds the members
// that do not follow.
func (mb *member) noteFollowers(term uint64, led time.Time, lapses map[string]*lapse) {
	now := time.Now()
	d := notFollowingFor(mb.hb)
	for _, p := range mb.app.Members {
		if p.HostUUID == mb.self.HostUUID {
			continue
		}
		ok, refused, last, beat := mb.trans.following(raft.ServerID(p.HostUUID), term, led, d)
		l := lapses[p.HostUUID]
		switch {
		case ok:
			if l != nil {
				mb.log.Info("a member follows again", "member", p.Hostname, "after", now.Sub(l.since).Round(time.Millisecond).String())
				delete(lapses, p.HostUUID)
			}
			continue
		case l == nil:
			l = &lapse{since: now.Add(-d)}
			lapses[p.HostUUID] = l
		case !refused:
			l.answered = time.Time{}
			continue
		case l.answered.IsZero():
			l.answered = now
			continue
		case !l.told && now.Sub(l.answered) >= d/2:
			l.told = true
		default:
			continue
		}
		args := []any{"member", p.Hostname, "for", now.Sub(l.since).Round(time.Millisecond).String(), "answers_probes", refused}
		if !last.at.IsZero() {
			args = append(args, "last_sent_ago", now.Sub(last.at).Round(time.Millisecond).String(), "last_took", last.took.Round(time.Millisecond).String())
			if last.err != nil {
				args = append(args, "last_err", last.err.Error())
			}
		}
		if !beat.IsZero() {
			args = append(args, "heartbeat_waiting_for", now.Sub(beat).Round(time.Millisecond).String())
		}
		mb.log.Warn("a member does not follow the active", args...)
	}
}

// askAgain spaces out the handovers that find no member to take the
// role: those of an active whose app is unhealthy, and of an elected
// witness (and the barriers sent to a member that lacks entries). Each asks every member for its status on a new TLS
// connection; at every renewal (20 ms at the defaults) that would keep
// the members' CPUs busy for as long as the fault lasts. After an attempt
// that failed, the next comes a renewal period later, then at doubling
// intervals up to askAgainMax.
type askAgain struct {
	next time.Time
	wait time.Duration
}

// askAgainMax is the longest wait between two handover attempts, and so
// the longest an unhealthy active keeps the role once a standby has
// become healthy.
const askAgainMax = time.Second

func (a *askAgain) due(now time.Time) bool { return !now.Before(a.next) }

// failed notes an attempt at now that found no member to take the role;
// first is the wait after the first.
func (a *askAgain) failed(now time.Time, first time.Duration) {
	a.wait = min(max(first, 2*a.wait), askAgainMax)
	a.next = now.Add(a.wait)
}

func errCh(f raft.Future) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		f.Error()
		close(ch)
	}()
	return ch
}

// apply commits c and waits until every member that answers has learnt
// that it is committed.
func (mb *member) apply(c command) error {
	if err := mb.commit(c); err != nil {
		return err
	}
	// The barrier's entry carries the commit of c to the followers at
	// once; raft's own commit messages rest long (restRaftFor).
	return mb.r.Barrier(5 * mb.hb).Error()
}

// commit commits c and waits until this member applied it.
func (mb *member) commit(c command) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return mb.r.Apply(b, 5*mb.hb).Error()
}

// extend renews the lease to until, and takes the active role (the VIP
// first) if this member does not hold it yet.
func (mb *member) extend(ctx context.Context, until time.Time) {
	if !time.Now().Before(until) {
		return
	}
	mb.mu.Lock()
	mb.leaseUntil = until
	if mb.leaseTimer == nil {
		mb.leaseTimer = time.AfterFunc(time.Until(until), mb.expire)
	} else {
		mb.leaseTimer.Reset(time.Until(until))
	}
	wasActive := mb.active
	mb.handingOff = false
	mb.mu.Unlock()
	if wasActive {
		return
	}
	mb.vipMu.Lock()
	if mb.vip.IsValid() {
		if err := mb.m.addrs.Add(ctx, mb.vip); err != nil {
			mb.log.Error("VIP not added", "vip", mb.vip.String(), "err", err)
		}
	}
	mb.mu.Lock()
	// The lease may have run out while the VIP was being added.
	ok := time.Now().Before(mb.leaseUntil)
	mb.holdsVIP = mb.vip.IsValid()
	mb.active = ok
	mb.mu.Unlock()
	mb.vipMu.Unlock()
	if !ok {
		mb.demote("lease expired", false)
		return
	}
	mb.log.Info("active", "epoch", mb.r.CurrentTerm())
	mb.notify()
	if st := mb.fsm.state(); mb.vip.IsValid() && st.Active == mb.self.HostUUID && st.Announced != mb.self.HostUUID {
		// The old active, if it kept the VIP through a planned move,
		// lets go of it once this is applied.
		go mb.apply(command{Op: opAnnounced, Member: mb.self.HostUUID, Epoch: st.Epoch, At: time.Now()})
	}
}

// forwardToOld, when this member takes the role in a handover that left
// the VIP with the old active (a planned move, or an unhealthy active),
// passes on to the old active the packets of connections it took in the
// instant before the VIP moved; it returns the function that stops that,
// or nil. The old active's address must be in the VIP's network.
func (mb *member) forwardToOld() func() {
	st := mb.fsm.state()
	sw := st.Last
	// The switch to this member in this epoch, not an earlier one (a move
	// that failed, after which this member was elected again).
	if !mb.vip.IsValid() || st.Active != mb.self.HostUUID || st.Announced == mb.self.HostUUID || sw == nil ||
		sw.Epoch != st.Epoch || sw.To != mb.self.HostUUID || sw.From == "" || (sw.Reason != "planned" && sw.Reason != "unhealthy") {
		return nil
	}
	for _, p := range mb.app.Members {
		if p.HostUUID != sw.From {
			continue
		}
		ap, err := netip.ParseAddrPort(p.Address)
		if err != nil || !mb.vip.Masked().Contains(ap.Addr()) {
			mb.log.Warn("connections to the old active not passed on", "vip", mb.vip.String(), "old", p.Address,
				"why", "the old active's address is not in the VIP's network")
			return nil
		}
		stop, err := mb.m.addrs.Forward(context.Background(), mb.vip, ap.Addr())
		if err != nil {
			mb.log.Warn("connections to the old active not passed on", "vip", mb.vip.String(), "err", err)
			return nil
		}
		mb.log.Info("passing the old active's connections on", "to", p.Hostname, "for", drainFor.String())
		return stop
	}
	return nil
}

// expire runs when the lease timer fires.
func (mb *member) expire() {
	mb.mu.Lock()
	expired := !mb.leaseUntil.IsZero() && !time.Now().Before(mb.leaseUntil)
	mb.mu.Unlock()
	if expired {
		mb.demote("lease expired", false)
	}
}

// demote gives up the active role. With keepVIP (a planned move) the VIP
// stays until the successor has announced it, or ten heartbeat times when
// it never does.
func (mb *member) demote(why string, keepVIP bool) {
	mb.vipMu.Lock()
	mb.mu.Lock()
	was, hadVIP := mb.active, mb.holdsVIP
	mb.active = false
	mb.leaseUntil = time.Time{}
	if mb.leaseTimer != nil {
		mb.leaseTimer.Stop()
	}
	if !keepVIP {
		mb.holdsVIP = false
	}
	mb.mu.Unlock()
	if hadVIP && !keepVIP {
		if err := mb.m.addrs.Remove(context.Background(), mb.vip); err != nil {
			mb.log.Error("VIP not removed", "vip", mb.vip.String(), "err", err)
		}
	}
	mb.vipMu.Unlock()
	if hadVIP && keepVIP {
		time.AfterFunc(releaseBound(mb.hb), func() { mb.releaseVIP(0) })
	}
	if was {
		mb.log.Info("standby", "why", why)
		mb.notify()
	}
}

// releaseVIP removes a VIP kept through a planned move, unless this member
// is active again.
func (mb *member) releaseVIP(after time.Duration) {
	if after > 0 {
		time.Sleep(after)
	}
	mb.vipMu.Lock()
	defer mb.vipMu.Unlock()
	mb.mu.Lock()
	drop := mb.holdsVIP && !mb.active
	if drop {
		mb.holdsVIP = false
	}
	mb.mu.Unlock()
	if drop {
		if err := mb.m.addrs.Remove(context.Background(), mb.vip); err != nil {
			mb.log.Error("VIP not removed", "vip", mb.vip.String(), "err", err)
		}
	}
}

// releaseBound is how long an old active keeps the VIP through a planned
// move when its successor never says it announced it.
func releaseBound(hb time.Duration) time.Duration { return 10 * hb }

// drainFor is how long an old active keeps the VIP after its successor
// announced it: the neighbours take in the gratuitous ARP, and the
// requests that reached the old active before get their answers (taking
// the address off drops what its open connections still had to send).
const drainFor = 200 * time.Millisecond

// applied follows the log on every member.
func (mb *member) applied(st groupState) {
	if st.Active != "" && st.Active != mb.self.HostUUID && st.Announced == st.Active {
		go mb.releaseVIP(drainFor)
	}
	mb.notify()
}

// handover moves the active role away from this leader, to member to or
// the first healthy app member; it reports whether leadership moved. The
// switch is counted from at.
func (mb *member) handover(ctx context.Context, to string, seq uint64, reason string, at time.Time) bool {
	target, ok := mb.pickTarget(ctx, to)
	if !ok {
		if seq > 0 {
			mb.log.Warn("planned switchover not done: no healthy standby", "seq", seq)
			mb.apply(command{Op: opDone, Seq: seq, At: time.Now()})
		}
		return false
	}
	mb.log.Info("handing the active role over", "to", target.Hostname, "reason", reason)
	if err := mb.apply(command{Op: opHandover, Member: mb.self.HostUUID, To: target.HostUUID, Seq: seq, At: at, Reason: reason}); err != nil {
		return false
	}
	mb.mu.Lock()
	mb.handingOff = true
	mb.mu.Unlock()
	mb.demote(reason, true)
	if err := mb.r.LeadershipTransferToServer(raft.ServerID(target.HostUUID), raft.ServerAddress(target.Address)).Error(); err != nil {
		mb.log.Warn("leadership not handed over", "to", target.Hostname, "err", err)
		mb.mu.Lock()
		mb.handingOff = false
		mb.mu.Unlock()
		return false
	}
	return true
}

// handOn hands the role to another member, trying until one takes it: a
// witness, or a locked member, that stayed leader without handing over
// would keep every member standby. It reports true when this member may
// take the role itself first (its host was unlocked), false when the
// role moved or leadership ended.
func (mb *member) handOn(ctx context.Context, reason string, since time.Time) bool {
	var again askAgain
	for {
		if mb.mayLead() {
			return true
		}
		if now := time.Now(); again.due(now) {
			if mb.handover(ctx, "", 0, reason, since) {
				return false
			}
			again.failed(now, mb.renew)
		}
		select {
		case <-ctx.Done():
			return false
		case <-mb.wake:
		case <-time.After(time.Until(again.next)):
		}
	}
}

// pickTarget chooses where a handover goes: to, if it is a member; or the
// active member of the log when it is another one and answers healthy (a
// witness elected while the active was still there gives the role back
// rather than move it); or the first app member (in the order of
// preference) that answers healthy; or, for a witness when none is
// healthy, the first app member that answers at all.
//
// The members are asked at once, each on its own connection: one that
// is gone (the active the witness was elected after, most often) costs
// its query's timeout, up to a heartbeat time, once rather than before
// every member after it. Once a member further down the order answered
// healthy, one before it that has not answered yet is given graceFor
// more.
func (mb *member) pickTarget(ctx context.Context, to string) (wire.AppMember, bool) {
	var order []wire.AppMember // by preference, each once
	if cur := mb.fsm.state().Active; to == "" && cur != "" && cur != mb.self.HostUUID {
		for _, p := range mb.app.Members {
			if p.HostUUID == cur && !p.Witness {
				order = append(order, p)
			}
		}
	}
	for _, p := range mb.app.Members {
		if p.HostUUID == mb.self.HostUUID || p.Witness || (to != "" && p.HostUUID != to) || (len(order) > 0 && p.HostUUID == order[0].HostUUID) {
			continue
		}
		order = append(order, p)
	}
	type answer struct {
		st  peerState
		err error
	}
	answers := make([]chan answer, len(order))
	healthy := make(chan struct{}, len(order))
	for i, p := range order {
		answers[i] = make(chan answer, 1)
		go func() {
			st, err := mb.peerStatus(ctx, p)
			if err == nil && st.Healthy {
				healthy <- struct{}{}
			}
			answers[i] <- answer{st, err}
		}()
	}
	got := make([]*answer, len(order))
	// await is member i's answer; with give, nil once graceFor has passed
	// since a member first answered healthy.
	graceFor := max(mb.renew, 20*time.Millisecond)
	var graceEnd time.Time
	await := func(i int, give bool) *answer {
		for got[i] == nil {
			select {
			case a := <-answers[i]:
				// In before the grace ends, or ended already.
				got[i] = &a
				continue
			default:
			}
			var grace <-chan time.Time
			if give && !graceEnd.IsZero() {
				grace = time.After(time.Until(graceEnd))
			}
			select {
			case a := <-answers[i]:
				got[i] = &a
			case <-healthy:
				if graceEnd.IsZero() {
					graceEnd = time.Now().Add(graceFor)
				}
			case <-grace:
				return nil
			}
		}
		return got[i]
	}
	for i, p := range order {
		if a := await(i, true); a != nil && a.err == nil && a.st.Healthy {
			return p, true
		}
	}
	if mb.self.Witness && to == "" {
		// No member is healthy (their apps are still starting): the
		// first that answers holds the role until a healthy one can take
		// it, as an unhealthy member elected with no healthy standby does.
		for i, p := range order {
			if a := await(i, false); a.err == nil && !a.st.Locked {
				return p, true
			}
		}
	}
	return wire.AppMember{}, false
}

// peerState is a member's answer to a status query.
type peerState struct {
	Healthy bool   `json:"healthy"`
	Role    string `json:"role"`
	Locked  bool   `json:"locked,omitempty"` // its host is locked: never hand it the role
}

func (mb *member) peerStatus(ctx context.Context, p wire.AppMember) (peerState, error) {
	ctx, cancel := context.WithTimeout(ctx, max(mb.hb, 200*time.Millisecond))
	defer cancel()
	c, err := mb.m.mux.dial(ctx, p.Address, p.HostUUID, headerStatus, mb.stream)
	if err != nil {
		return peerState{}, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	var st peerState
	err = json.NewDecoder(c).Decode(&st)
	return st, err
}

func (mb *member) serveStatus(c net.Conn) {
	c.SetDeadline(time.Now().Add(time.Second))
	json.NewEncoder(c).Encode(peerState{Healthy: mb.eligible(), Role: mb.role(), Locked: mb.isLocked()})
}

// setPeers notes how many other members answered the active's probes in
// the last second: the active reports it. (Asking each for its status
// over a new connection every second cost about 10 packets a second at
// every member, as many as a probe every 100 ms.)
func (mb *member) setPeers(n int) {
	mb.mu.Lock()
	changed := mb.peers != n
	mb.peers = n
	mb.mu.Unlock()
	if changed {
		mb.notify()
	}
}

func (mb *member) role() string {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	switch {
	case mb.self.Witness:
		return wire.RoleWitness
	case mb.active:
		return wire.RoleActive
	}
	return wire.RoleStandby
}

// notify wakes whoever waits for a change of this member.
func (mb *member) notify() {
	mb.mu.Lock()
	close(mb.changed)
	mb.changed = make(chan struct{})
	mb.mu.Unlock()
	select {
	case mb.wake <- struct{}{}:
	default:
	}
	mb.m.notify()
}

// moveRequest is a planned move asked for on this node (the local
// endpoint, or the agent stopping); done receives whether it moved.
type moveRequest struct {
	to   string // host uuid; empty: any healthy standby
	done chan bool
}

// move asks this member, if active, to hand the role over to member to
// (a host uuid, or empty for any healthy standby) and waits for the
// outcome. It reports false when this member is not active or no standby
// could take over within timeout.
func (mb *member) move(to string, timeout time.Duration) bool {
	req := &moveRequest{to: to, done: make(chan bool, 1)}
	mb.mu.Lock()
	if !mb.active {
		mb.mu.Unlock()
		return false
	}
	mb.moveTo = req
	mb.mu.Unlock()
	select {
	case mb.wake <- struct{}{}:
	default:
	}
	select {
	case ok := <-req.done:
		return ok
	case <-time.After(timeout):
		return false
	}
}

// setSwitchover passes on a planned switchover request.
func (mb *member) setSwitchover(sw *wire.Switchover) {
	mb.mu.Lock()
	mb.switchover = sw
	mb.mu.Unlock()
	mb.poke()
}

// setLocked tells the member whether its host is locked; a locked active
// member hands the role on at its next renewal.
func (mb *member) setLocked(locked bool) {
	mb.mu.Lock()
	changed := mb.locked != locked
	mb.locked = locked
	mb.mu.Unlock()
	if changed {
		mb.notify()
		mb.poke()
	}
}

// isLocked says whether this member's host is locked.
func (mb *member) isLocked() bool {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return mb.locked
}

// mayLead says whether this member may hold the active role at all: an
// app member (not the witness) whose host is not locked and whose agent
// has the permissions the app needs. Its app's health is not asked: an
// unhealthy leader holds the role until a healthy member takes it.
func (mb *member) mayLead() bool {
	return !mb.self.Witness && !mb.isLocked() && len(mb.missing) == 0
}

// eligible says whether this member may take the active role now: an app
// member (not the witness) whose host is not locked, whose agent has the
// permissions the app needs, and whose app is healthy.
func (mb *member) eligible() bool {
	return !mb.self.Witness && !mb.isLocked() && len(mb.missing) == 0 && mb.health.healthy.Load()
}

// poke wakes the leader loop.
func (mb *member) poke() {
	select {
	case mb.wake <- struct{}{}:
	default:
	}
}

// status is this member's view for the controller.
func (mb *member) status() wire.AppStatus {
	st := mb.fsm.state()
	healthy := mb.eligible()
	mb.mu.Lock()
	defer mb.mu.Unlock()
	s := wire.AppStatus{
		Name: mb.app.Name, Role: wire.RoleStandby, Active: st.Active, Epoch: st.Epoch,
		Healthy: healthy, SwitchoverSeq: st.SwitchoverSeq, Last: st.Last,
	}
	if !mb.self.Witness {
		s.Missing = mb.missing
	}
	switch {
	case mb.self.Witness:
		s.Role = wire.RoleWitness
	case mb.active:
		s.Role = wire.RoleActive
		s.Peers = mb.peers
	}
	return s
}

// local is this member's answer on the local endpoint.
func (mb *member) local() (wire.LocalApp, <-chan struct{}) {
	st := mb.fsm.state()
	mb.mu.Lock()
	defer mb.mu.Unlock()
	l := wire.LocalApp{Name: mb.app.Name, Role: wire.RoleStandby, Active: mb.active, Epoch: st.Epoch}
	if mb.self.Witness {
		l.Role = wire.RoleWitness
	}
	if mb.active {
		l.Role = wire.RoleActive
		l.ValidMillis = time.Until(mb.leaseUntil).Milliseconds()
	}
	for _, p := range mb.app.Members {
		if p.HostUUID == st.Active {
			l.ActiveMember = p.Hostname
		}
	}
	return l, mb.changed
}

// stop leaves the group and waits until the member has let go of the VIP.
// An active member hands its role over first, so that stopping the agent
// (a node shutting down) is a planned move.
func (mb *member) stop() {
	if mb.r != nil && mb.role() == wire.RoleActive && mb.move("", min(10*mb.hb, 3*time.Second)) {
		// Keep the VIP until the successor has announced it, for at most
		// 2 s: when a whole site shuts down, successors stop too.
		deadline := time.Now().Add(min(releaseBound(mb.hb), 2*time.Second))
		for time.Now().Before(deadline) {
			if st := mb.fsm.state(); st.Active != "" && st.Active != mb.self.HostUUID && (st.Announced == st.Active || !mb.vip.IsValid()) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(drainFor)
	}
	if mb.cancel != nil {
		mb.cancel()
	}
	if mb.r != nil {
		<-mb.stopped
	} else {
		mb.store.Close()
		if mb.stream != nil {
			mb.stream.Close()
		}
	}
}

// memberDir is where a member keeps its group's state: a change of the
// member list starts a new group.
func memberDir(root string, app wire.App) string {
	return filepath.Join(root, app.Name+"-"+groupKey(app))
}

// removeStaleDirs deletes group directories no app uses any more.
func removeStaleDirs(root string, keep map[string]bool) {
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		if p := filepath.Join(root, e.Name()); e.IsDir() && !keep[p] {
			os.RemoveAll(p)
		}
	}
}
