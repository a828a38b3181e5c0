package failover

import (
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"hummingbird.io/hummingbird/internal/wire"
)

// Commands of an app group's log. Only the leader writes them; every
// member applies them in the same order, so every member knows the active
// member, its epoch and the last switchover.
const (
	// opActivate: Member takes the active role in Epoch (the raft term it
	// was elected in). Entries of an older epoch than the state's are
	// ignored: an old active cannot come back.
	opActivate = "activate"
	// opHandover: the active member starts a planned move (or one because
	// its app is unhealthy) towards To; the next activate completes it.
	opHandover = "handover"
	// opDone: a planned switchover needed no move (the active is already
	// the one asked for, or no standby is healthy).
	opDone = "done"
	// opAnnounced: Member, active in Epoch, has put the VIP on its node
	// and announced it. An old active that kept the VIP through a planned
	// move lets go of it then, not before: there is no gap.
	opAnnounced = "announced"
)

type command struct {
	Op     string    `json:"op"`
	Member string    `json:"member,omitempty"` // host uuid
	Epoch  uint64    `json:"epoch,omitempty"`
	Seq    uint64    `json:"seq,omitempty"`    // planned switchover
	To     string    `json:"to,omitempty"`     // handover target
	At     time.Time `json:"at"`               // when the leader wrote it
	LostAt time.Time `json:"lost_at,omitzero"` // activate: last contact with the old active
	Reason string    `json:"reason,omitempty"`
}

// groupState is what the log says.
type groupState struct {
	Active        string          `json:"active,omitempty"`
	Epoch         uint64          `json:"epoch"`
	SwitchoverSeq uint64          `json:"switchover_seq,omitempty"`
	Last          *wire.AppSwitch `json:"last,omitempty"`
	Handover      *command        `json:"handover,omitempty"`
	// Announced is the active member once it has announced the VIP in
	// this epoch ("" until then).
	Announced string `json:"announced,omitempty"`
}

// fsm applies the log to a groupState; applied is called after each
// entry with the new state.
type fsm struct {
	mu      sync.Mutex
	st      groupState
	applied func(groupState)
}

func (f *fsm) state() groupState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

func (f *fsm) Apply(l *raft.Log) any {
	var c command
	if err := json.Unmarshal(l.Data, &c); err != nil {
		return err
	}
	f.mu.Lock()
	st := &f.st
	switch c.Op {
	case opActivate:
		if c.Epoch < st.Epoch {
			f.mu.Unlock()
			return nil
		}
		if c.Member != st.Active {
			sw := &wire.AppSwitch{Epoch: c.Epoch, From: st.Active, To: c.Member, At: c.At, Reason: "failure"}
			start := c.LostAt
			if h := st.Handover; h != nil {
				sw.Reason, start = h.Reason, h.At
				st.SwitchoverSeq = max(st.SwitchoverSeq, h.Seq)
			}
			if st.Active == "" {
				sw.Reason = "first"
				start = c.At
			}
			if !start.IsZero() && c.At.After(start) {
				sw.DurationMillis = c.At.Sub(start).Milliseconds()
			}
			st.Last = sw
		} else if h := st.Handover; h != nil {
			// The move failed and the same member was elected again.
			st.SwitchoverSeq = max(st.SwitchoverSeq, h.Seq)
		}
		if c.Member != st.Active || c.Epoch != st.Epoch {
			st.Announced = ""
		}
		st.Active, st.Epoch, st.Handover = c.Member, c.Epoch, nil
	case opAnnounced:
		if c.Member == st.Active && c.Epoch == st.Epoch {
			st.Announced = c.Member
		}
	case opHandover:
		cc := c
		st.Handover = &cc
	case opDone:
		st.SwitchoverSeq = max(st.SwitchoverSeq, c.Seq)
	}
	now := *st
	f.mu.Unlock()
	if f.applied != nil {
		f.applied(now)
	}
	return nil
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	b, err := json.Marshal(f.state())
	if err != nil {
		return nil, err
	}
	return snapshot(b), nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var st groupState
	if err := json.NewDecoder(rc).Decode(&st); err != nil {
		return err
	}
	f.mu.Lock()
	f.st = st
	f.mu.Unlock()
	if f.applied != nil {
		f.applied(st)
	}
	return nil
}

type snapshot []byte

func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (snapshot) Release() {}
