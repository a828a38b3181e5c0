package failover

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// raftRepeatWindow is how long the same failure with the same peer is
// counted instead of logged again.
const raftRepeatWindow = time.Minute

// newRaftLogger is the logger of an app's raft group: its warnings and
// errors go to out as warnings (raft's errors are about peers it cannot
// reach, which the group rides out: nothing an operator must act on),
// and a failure (an error, or a warning about a peer) that repeats, with
// the same peer, is logged once a minute, with how many times it came in
// between. A peer cut off for minutes, or a
// witness that starts late, so makes a line a minute instead of several
// a second.
func newRaftLogger(name string, out io.Writer, now func() time.Time) hclog.Logger {
	if out == io.Discard {
		return hclog.NewNullLogger()
	}
	il := hclog.NewInterceptLogger(&hclog.LoggerOptions{Name: name, Output: io.Discard, Level: hclog.Warn})
	il.RegisterSink(&raftSink{out: hclog.New(&hclog.LoggerOptions{Name: name, Output: out, Level: hclog.Warn}),
		now: now, seen: map[string]*raftRepeat{}})
	return il
}

// raftSink passes raft's lines on, holding back repeats.
type raftSink struct {
	out hclog.Logger
	now func() time.Time

	mu   sync.Mutex
	seen map[string]*raftRepeat // by message and peer
}

type raftRepeat struct {
	logged time.Time // when the line was last logged
	held   int       // the repeats since, not logged
}

func (s *raftSink) Accept(_ string, level hclog.Level, msg string, args ...interface{}) {
	if level < hclog.Warn {
		return
	}
	peer := raftPeer(args)
	if peer == "" && level < hclog.Error {
		s.out.Warn(msg, args...) // elections and such: each is news
		return
	}
	key := msg + "\x00" + peer
	now := s.now()
	s.mu.Lock()
	r := s.seen[key]
	if r != nil && now.Sub(r.logged) < raftRepeatWindow {
		r.held++
		s.mu.Unlock()
		return
	}
	held := 0
	if r != nil {
		held = r.held
	}
	if len(s.seen) > 1024 { // peers come and go with apps: forget the old
		clear(s.seen)
	}
	s.seen[key] = &raftRepeat{logged: now}
	s.mu.Unlock()
	if held > 0 {
		args = append(args, "repeated", held, "in", now.Sub(r.logged).Round(time.Second).String())
	}
	s.out.Warn(msg, args...)
}

// raftPeer is the peer raft names in a line's arguments ("peer",
// "target", "from" or "server-id"), or "".
func raftPeer(args []interface{}) string {
	for i := 0; i+1 < len(args); i += 2 {
		switch args[i] {
		case "peer", "target", "from", "server-id":
			return fmt.Sprint(args[i+1])
		}
	}
	return ""
}
