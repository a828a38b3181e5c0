package supervisor_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/leader"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
	"hummingbird.io/hummingbird/internal/supervisor"
)

// duty counts how many copies of a leader's part run at once, across controllers.
type duty struct {
	running, most atomic.Int32
	runs          atomic.Int32
}

func (d *duty) Run(ctx context.Context) error {
	n := d.running.Add(1)
	d.runs.Add(1)
	for {
		m := d.most.Load()
		if n <= m || d.most.CompareAndSwap(m, n) {
			break
		}
	}
	<-ctx.Done()
	// A part takes a moment to stop; the next term must wait for it.
	time.Sleep(20 * time.Millisecond)
	d.running.Add(-1)
	return nil
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLeaderPartsRunOnce: two controllers each run their every-controller part; the leader's
// part runs on one of them at a time, and moves to the other when the leader stops, never
// running twice at once.
func TestLeaderPartsRunOnce(t *testing.T) {
	t.Parallel()
	st := storetest.Open(t, storetest.SQLiteDSN(t))
	var d duty
	var everywhere atomic.Int32
	type ctl struct {
		sup  *supervisor.Supervisor
		el   *leader.Elector
		stop context.CancelFunc
		done chan struct{}
	}
	run := func(id string) *ctl {
		el := leader.New(leader.Config{Store: st, ID: id, TTL: 200 * time.Millisecond})
		sup := supervisor.New([]supervisor.Spec{
			{Name: "api-side", Part: supervisor.Func(func(ctx context.Context) error {
				everywhere.Add(1)
				<-ctx.Done()
				return nil
			})},
			{Name: "monitor", Leader: true, Part: &d},
		}, el, supervisor.Backoff{}, nil)
		ctx, cancel := context.WithCancel(context.Background())
		c := &ctl{sup: sup, el: el, stop: cancel, done: make(chan struct{})}
		go func() { sup.Run(ctx); close(c.done) }()
		t.Cleanup(func() { cancel(); <-c.done })
		return c
	}
	a, b := run("a"), run("b")
	waitFor(t, "both every-controller parts and one leader's part running", func() bool {
		return everywhere.Load() == 2 && d.running.Load() == 1
	})
	first, second := a, b
	if b.el.Leading() != nil {
		first, second = b, a
	}
	for range 3 {
		first.stop()
		<-first.done
		waitFor(t, "the leader's part on the other controller", func() bool { return second.el.Leading() != nil && d.running.Load() == 1 })
		if got := first.sup.States(); got[0].Running || got[1].Running {
			t.Errorf("a stopped controller's parts: %+v", got)
		}
		// The stopped one comes back as a follower.
		first = run("again")
		first, second = second, first
		time.Sleep(50 * time.Millisecond)
	}
	if m := d.most.Load(); m != 1 {
		t.Errorf("the leader's part ran %d times at once, want once", m)
	}
	if r := d.runs.Load(); r != 4 {
		t.Errorf("the leader's part started %d times over 4 terms", r)
	}
}

// TestFailurePolicy: a part that fails is started again after the backoff, and its state says
// so; a leader's part whose writes are fenced ends the term at once, and the leader's parts
// start in the next term.
func TestFailurePolicy(t *testing.T) {
	t.Parallel()
	st := storetest.Open(t, storetest.SQLiteDSN(t))
	el := leader.New(leader.Config{Store: st, ID: "a", TTL: 200 * time.Millisecond})
	var mu sync.Mutex
	var starts []time.Time
	var epochs []int64
	sup := supervisor.New([]supervisor.Spec{
		{Name: "flaky", Part: supervisor.Func(func(ctx context.Context) error {
			mu.Lock()
			starts = append(starts, time.Now())
			n := len(starts)
			mu.Unlock()
			if n <= 3 {
				return errors.New("the socket went away")
			}
			<-ctx.Done()
			return nil
		})},
		{Name: "fenced", Leader: true, Part: supervisor.Func(func(ctx context.Context) error {
			f, _ := store.FenceFrom(ctx)
			mu.Lock()
			epochs = append(epochs, f.Epoch)
			first := len(epochs) == 1
			mu.Unlock()
			if first {
				return st.Write(store.WithFence(ctx, store.Fence{Duty: leader.Duty, Epoch: f.Epoch - 1}),
					func(store.Tx) error { return nil })
			}
			<-ctx.Done()
			return nil
		})},
	}, el, supervisor.Backoff{Min: 50 * time.Millisecond, Max: 200 * time.Millisecond}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { sup.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	waitFor(t, "the flaky part running after three failures, the fenced part in a second term", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(starts) == 4 && len(epochs) == 2 && sup.States()[0].Running
	})
	mu.Lock()
	defer mu.Unlock()
	for i, want := range []time.Duration{50, 100, 200} {
		want *= time.Millisecond
		if got := starts[i+1].Sub(starts[i]); got < want*8/10 || got > want*2 {
			t.Errorf("wait before start %d: %v, want about %v", i+2, got, want)
		}
	}
	if got := sup.States()[0]; got.Restarts != 3 || got.LastError != "the socket went away" {
		t.Errorf("the flaky part's state: %+v", got)
	}
	if epochs[1] != epochs[0]+1 {
		t.Errorf("terms %v: want the fenced part's term to end and the next to follow", epochs)
	}
}
