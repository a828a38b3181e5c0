package failover

import (
	"fmt"
	"io"
	"strings"
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
// between. A peer cut off for minutes, or a witness that starts late, so
// makes a line a minute instead of several a second.
//
// It is a plain leveled logger writing through raftWriter: raft calls its
// Debug and Trace on hot paths, which a leveled logger drops at once (an
// intercepting logger would take a lock for each).
func newRaftLogger(name string, out io.Writer, now func() time.Time) hclog.Logger {
	if out == io.Discard {
		return hclog.NewNullLogger()
	}
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: hclog.Warn,
		Output: &raftWriter{out: out, now: now, seen: map[string]*raftRepeat{}}})
}

// raftWriter takes raft's log lines, one per Write as hclog writes them,
// and passes them on, holding back repeats.
type raftWriter struct {
	out io.Writer
	now func() time.Time

	mu   sync.Mutex
	seen map[string]*raftRepeat // by message and peer
}

type raftRepeat struct {
	logged time.Time // when the line was last logged
	held   int       // the repeats since, not logged
}

func (w *raftWriter) Write(p []byte) (int, error) {
	line := string(p)
	isErr := strings.Contains(line, " [ERROR] ")
	line = strings.Replace(line, " [ERROR] ", " [WARN]  ", 1)
	peer := raftPeer(line)
	if peer == "" && !isErr {
		w.write(line) // elections and such: each is news
		return len(p), nil
	}
	key := raftMessage(line) + "\x00" + peer
	now := w.now()
	w.mu.Lock()
	r := w.seen[key]
	if r != nil && now.Sub(r.logged) < raftRepeatWindow {
		r.held++
		w.mu.Unlock()
		return len(p), nil
	}
	held := 0
	if r != nil {
		held = r.held
	}
	if len(w.seen) > 1024 { // peers come and go with apps: forget the old
		clear(w.seen)
	}
	w.seen[key] = &raftRepeat{logged: now}
	w.mu.Unlock()
	if held > 0 {
		line = strings.TrimRight(line, "\n") + fmt.Sprintf(" repeated=%d in=%s\n", held, now.Sub(r.logged).Round(time.Second))
	}
	w.write(line)
	return len(p), nil
}

func (w *raftWriter) write(line string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	io.WriteString(w.out, line)
}

// raftMessage is a line's logger name and message, without its time,
// level and arguments: "raft.press: failed to heartbeat to".
func raftMessage(line string) string {
	if i := strings.Index(line, "] "); i >= 0 {
		line = strings.TrimLeft(line[i+2:], " ")
	}
	if i := strings.Index(line, ": "); i >= 0 {
		if j := strings.Index(line[i+2:], ": "); j >= 0 {
			return line[:i+2+j]
		}
	}
	return strings.TrimRight(line, "\n")
}

// raftPeer is the peer a line names in its arguments ("peer", "target",
// "from" or "server-id"), or "".
func raftPeer(line string) string {
	for _, k := range []string{" peer=", " target=", " from=", " server-id="} {
		i := strings.Index(line, k)
		if i < 0 {
			continue
		}
		v := line[i+len(k):]
		if strings.HasPrefix(v, `"`) {
			if j := strings.Index(v[1:], `"`); j >= 0 {
				return v[1 : j+1]
			}
		}
		if j := strings.IndexAny(v, " \n"); j >= 0 {
			return v[:j]
		}
		return v
	}
	return ""
}
