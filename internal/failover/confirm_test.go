package failover

import (
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// tcpTransport is raft's TCP transport on a port of the loopback
// address, closed when the test ends.
func tcpTransport(t *testing.T) *raft.NetworkTransport {
	t.Helper()
	tr, err := raft.NewTCPTransport("127.0.0.1:0", nil, 2, 5*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// TestConfirmTransport sends heartbeats over raft's TCP transport to a
// peer that answers them late, or refuses them: a lease counts from when
// an accepted heartbeat was sent, not from when its answer came back, and
// only for the term it was sent in.
func TestConfirmTransport(t *testing.T) {
	t.Parallel()
	peer := tcpTransport(t)
	const delay = 200 * time.Millisecond
	go func() {
		for rpc := range peer.Consumer() {
			req := rpc.Command.(*raft.AppendEntriesRequest)
			time.Sleep(delay)
			// The peer follows term 7 only.
			rpc.Respond(&raft.AppendEntriesResponse{Term: 7, Success: req.Term == 7, LastLog: 12}, nil)
		}
	}()
	tr := newConfirmTransport(tcpTransport(t))
	// Every answer raft counts comes back through AppendEntries.
	if _, err := tr.AppendEntriesPipeline("peer", peer.LocalAddr()); !errors.Is(err, raft.ErrPipelineReplicationNotSupported) {
		t.Errorf("pipeline to the peer: %v, want %v", err, raft.ErrPipelineReplicationNotSupported)
	}
	send := func(term uint64) time.Time {
		t.Helper()
		sent := time.Now()
		var resp raft.AppendEntriesResponse
		if err := tr.AppendEntries("peer", peer.LocalAddr(), &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{Addr: []byte("leader")}, Term: term}, &resp); err != nil {
			t.Fatal(err)
		}
		if since := time.Since(sent); since < delay {
			t.Fatalf("the answer came back after %v, want at least %v", since, delay)
		}
		return sent
	}

	if at, ok := tr.confirmed(7, 0); !ok || time.Since(at) > time.Second {
		t.Errorf("confirmed by no peer: %v %v, want now and true", at, ok)
	}
	if _, ok := tr.confirmed(7, 1); ok {
		t.Error("confirmed by a peer before any heartbeat was sent")
	}
	sent := send(7)
	at, ok := tr.confirmed(7, 1)
	if !ok || at.Before(sent) || at.Sub(sent) > delay/4 {
		t.Errorf("after a heartbeat sent at %s and answered %v later: confirmed %s %v; want about the send time",
			sent.Format("15:04:05.000"), delay, at.Format("15:04:05.000"), ok)
	}
	if _, ok := tr.confirmed(7, 2); ok {
		t.Error("confirmed by two peers when one answered")
	}
	if _, ok := tr.confirmed(8, 1); ok {
		t.Error("a heartbeat of term 7 confirmed term 8")
	}
	// A heartbeat the peer refuses (it follows another term) confirms
	// nothing, and leaves the last accepted one as it was.
	send(8)
	if _, ok := tr.confirmed(8, 1); ok {
		t.Error("a refused heartbeat of term 8 confirmed term 8")
	}
	if again, ok := tr.confirmed(7, 1); !ok || !again.Equal(at) {
		t.Errorf("after a refused heartbeat, term 7 confirmed at %v %v, want %v", again, ok, at)
	}

	// The active reports how many peers answered in the last second.
	if n := tr.answered(7, sent.Add(-time.Second)); n != 1 {
		t.Errorf("peers that answered in term 7: %d, want 1", n)
	}
	if n := tr.answered(8, sent.Add(-time.Second)); n != 0 {
		t.Errorf("peers that answered in term 8: %d, want 0 (the peer answered in term 7)", n)
	}
	if n := tr.answered(7, time.Now()); n != 0 {
		t.Errorf("peers that answered in term 7 from now: %d, want 0", n)
	}

	// The peer's log ends at 12: it lacks 13 in term 7, by its answers
	// since before the first heartbeat, and nothing is known of answers
	// after the last one or in another term.
	for _, c := range []struct {
		term, index uint64
		since       time.Time
		want        bool
	}{
		{7, 13, sent.Add(-time.Second), true},
		{7, 12, sent.Add(-time.Second), false},
		{7, 13, time.Now(), false},
		{9, 13, sent.Add(-time.Second), false},
	} {
		if got := tr.behind(c.term, c.index, c.since); got != c.want {
			t.Errorf("behind(term %d, index %d, since %s) = %t, want %t", c.term, c.index, c.since.Format("15:04:05.000"), got, c.want)
		}
	}
}

// TestHeartbeatRacesProbes sends heartbeats over raft's TCP transport to
// a peer that answers them late (a heartbeat held up by TCP's
// retransmissions under loss), with probing on: a probe answer with a
// promise in the heartbeat's term answers it at once; one in another
// term does not; heartbeats that follow while it is on the wire send no
// other; and without an answer, the wire's answer comes back.
func TestHeartbeatRacesProbes(t *testing.T) {
	t.Parallel()
	peer := tcpTransport(t)
	const delay = 300 * time.Millisecond
	var got atomic.Int64
	go func() {
		for rpc := range peer.Consumer() {
			req := rpc.Command.(*raft.AppendEntriesRequest)
			got.Add(1)
			time.Sleep(delay)
			rpc.Respond(&raft.AppendEntriesResponse{Term: req.Term, Success: true, LastLog: 3}, nil)
		}
	}()
	tr := newConfirmTransport(tcpTransport(t))
	// Answers are fresh for 10 ms; a real heartbeat goes at least every
	// hour (not in this test).
	tr.rideOnProbes(func(raft.ServerID) time.Duration { return 10 * time.Millisecond }, time.Hour)
	type result struct {
		resp raft.AppendEntriesResponse
		err  error
		took time.Duration
	}
	beat := func(term uint64) <-chan result {
		ch := make(chan result, 1)
		go func() {
			var r result
			start := time.Now()
			r.err = tr.AppendEntries("peer", peer.LocalAddr(), &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{Addr: []byte("leader")}, Term: term}, &r.resp)
			r.took = time.Since(start)
			ch <- r
		}()
		return ch
	}

	// No answer yet: the heartbeat goes on the wire. An answer of term 4
	// does not answer one of term 5; one of term 5 does, long before the
	// wire's answer.
	first := beat(5)
	second := beat(5)
	time.Sleep(30 * time.Millisecond)
	tr.noteAnswer("peer", 4, time.Now(), 1)
	select {
	case r := <-first:
		t.Fatalf("a probe answer of term 4 answered a heartbeat of term 5: %+v", r)
	case <-time.After(30 * time.Millisecond):
	}
	tr.noteAnswer("peer", 5, time.Now(), 2)
	for i, ch := range []<-chan result{first, second} {
		r := <-ch
		if r.err != nil || !r.resp.Success || r.resp.Term != 5 || r.resp.LastLog != 2 {
			t.Errorf("heartbeat %d: %+v (%v), want success in term 5 with the answer's log index 2", i+1, r.resp, r.err)
		}
		if r.took >= delay {
			t.Errorf("heartbeat %d took %v: it waited for the wire's answer (%v), not the probe's", i+1, r.took, delay)
		}
	}
	// Once the heartbeat on the wire has been answered, one that follows
	// a fresh answer rests on it; the one on the wire is the only one the
	// peer got.
	time.Sleep(delay)
	tr.noteAnswer("peer", 5, time.Now(), 2)
	if r := <-beat(5); r.err != nil || !r.resp.Success || r.resp.LastLog != 2 || r.took > delay/2 {
		t.Errorf("heartbeat on a fresh answer: %+v (%v) after %v, want the answer's log index 2 at once", r.resp, r.err, r.took)
	}
	if n := got.Load(); n != 1 {
		t.Errorf("the peer got %d heartbeats, want 1: the ones that followed the first were sent too", n)
	}
	// Stale again, with no answer: the wire's answer comes back.
	time.Sleep(20 * time.Millisecond)
	r := <-beat(5)
	if r.err != nil || !r.resp.Success || r.resp.LastLog != 3 || r.took < delay {
		t.Errorf("heartbeat with no probe answer: %+v (%v) after %v, want the peer's answer (log index 3) after %v", r.resp, r.err, r.took, delay)
	}
	if n := got.Load(); n != 2 {
		t.Errorf("the peer got %d heartbeats, want 2", n)
	}
}
