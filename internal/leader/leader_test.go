package leader_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/leader"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// cuttable is a store one controller reaches through: cut, every transaction hangs until its
// context ends, as over a partitioned network.
type cuttable struct {
	store.Store
	cut atomic.Bool
}

var errCut = errors.New("the database is unreachable")

func (c *cuttable) hang(ctx context.Context) error {
	<-ctx.Done()
	return fmt.Errorf("%w: %w", errCut, ctx.Err())
}

func (c *cuttable) Read(ctx context.Context, fn func(store.Tx) error) error {
	if c.cut.Load() {
		return c.hang(ctx)
	}
	return c.Store.Read(ctx, fn)
}

func (c *cuttable) Write(ctx context.Context, fn func(store.Tx) error) error {
	if c.cut.Load() {
		return c.hang(ctx)
	}
	return c.Store.Write(ctx, fn)
}

// controller is one elector and what it did.
type controller struct {
	name  string
	st    *cuttable
	e     *leader.Elector
	stop  context.CancelFunc
	done  chan struct{}
	terms chan *leader.Term
}

const ttl = 400 * time.Millisecond

// start campaigns for c until stop, keeping each term until it ends; give says whether a
// term ends by giving the lease up (a clean stop) or not (a crash).
func start(t *testing.T, st store.Store, name string, give bool) *controller {
	c := &controller{name: name, st: &cuttable{Store: st}, done: make(chan struct{}), terms: make(chan *leader.Term, 16)}
	c.e = leader.New(leader.Config{Store: c.st, ID: name, Address: name + ":6385", TTL: ttl})
	ctx, cancel := context.WithCancel(context.Background())
	c.stop = cancel
	go func() {
		defer close(c.done)
		for {
			term, err := c.e.Campaign(ctx)
			if err != nil {
				return
			}
			c.terms <- term
			<-term.Context.Done()
			if give {
				term.End(ctx)
			} else {
				term.End(context.Background())
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-c.done })
	return c
}

// next waits up to within for c's next term.
func (c *controller) next(t *testing.T, within time.Duration) *leader.Term {
	t.Helper()
	select {
	case term := <-c.terms:
		return term
	case <-time.After(within):
		t.Fatalf("%s did not lead within %v", c.name, within)
		return nil
	}
}

// firstOf waits up to within for one of cs to lead, and returns it and its term.
func firstOf(t *testing.T, within time.Duration, cs ...*controller) (*controller, *leader.Term) {
	t.Helper()
	deadline := time.After(within)
	for {
		for _, c := range cs {
			select {
			case term := <-c.terms:
				return c, term
			default:
			}
		}
		select {
		case <-deadline:
			t.Fatalf("none of %d controllers led within %v", len(cs), within)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// watchOverlap fails t if two of cs lead at once, sampled every millisecond until the test
// ends.
func watchOverlap(t *testing.T, cs ...*controller) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			var leading []string
			for _, c := range cs {
				if c.e.Leading() != nil {
					leading = append(leading, c.name)
				}
			}
			if len(leading) > 1 {
				t.Errorf("two controllers lead at once: %v", leading)
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// TestElection: of three controllers on one database, one leads; when it crashes, is cut off
// from the database, or stops cleanly, another takes over with a higher epoch, within the
// lease time and a poll (at once after a clean stop), never two at once; the deposed leader's
// writes are refused; a cut-off leader stops leading before anyone else starts.
func TestElection(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			st := storetest.Open(t, b.DSN(t))
			cs := []*controller{start(t, st, "a", true), start(t, st, "b", true), start(t, st, "c", true)}
			watchOverlap(t, cs...)
			lead, term := firstOf(t, 5*time.Second, cs...)
			t.Logf("%s leads in epoch %d", lead.name, term.Epoch)
			others := func(c *controller) []*controller {
				var out []*controller
				for _, o := range cs {
					if o != c {
						out = append(out, o)
					}
				}
				return out
			}

			// Cut off from the database: the leader stops leading within the lease; another
			// takes over after it; the old term's writes are refused.
			lead.st.cut.Store(true)
			fault := time.Now()
			select {
			case <-term.Context.Done():
				if d := time.Since(fault); d > ttl {
					t.Errorf("the cut-off leader stopped leading %v after the cut, want within the lease (%v)", d, ttl)
				}
			case <-time.After(5 * ttl):
				t.Fatal("the cut-off leader still leads after five lease times")
			}
			next, nterm := firstOf(t, 5*time.Second, others(lead)...)
			if d := time.Since(fault); d < ttl-ttl/4 || d > 2*ttl {
				t.Errorf("%s took over %v after the cut, want from %v to %v", next.name, d, ttl-ttl/4, 2*ttl)
			}
			if nterm.Epoch != term.Epoch+1 {
				t.Errorf("epoch %d after %d, want the next", nterm.Epoch, term.Epoch)
			}
			lead.st.cut.Store(false)
			h := store.Host{ID: 1, UUID: "00000000-0000-4000-8000-000000000001", Hostname: "edge-01", Personality: "edgeworker",
				Administrative: "locked", Operational: "disabled", Availability: "offline", InvProvision: "unprovisioned",
				CreatedAt: time.Now().UTC().Truncate(time.Second), UpdatedAt: time.Now().UTC().Truncate(time.Second)}
			err := st.Write(store.WithFence(context.Background(), store.Fence{Duty: leader.Duty, Epoch: term.Epoch}),
				func(tx store.Tx) error { return tx.InsertHost(&h) })
			if !errors.Is(err, store.ErrFenced) {
				t.Errorf("a write of the deposed leader: %v, want it refused", err)
			}
			if err := st.Write(nterm.Context, func(tx store.Tx) error { return tx.InsertHost(&h) }); err != nil {
				t.Errorf("a write of the new leader: %v", err)
			}
			t.Logf("%s cut off: %s leads in epoch %d after %v", lead.name, next.name, nterm.Epoch, time.Since(fault).Round(time.Millisecond))

			// Crashed (no renewal, nothing given up): another takes over after the lease.
			lead, term = next, nterm
			crashed := lead
			crashed.st.cut.Store(true) // its renewals fail as a dead process's would
			crashed.stop()
			fault = time.Now()
			next, nterm = firstOf(t, 5*time.Second, others(crashed)...)
			if d := time.Since(fault); d > 2*ttl {
				t.Errorf("%s took over %v after the crash, want within %v", next.name, d, 2*ttl)
			}
			t.Logf("%s crashed: %s leads in epoch %d after %v", crashed.name, next.name, nterm.Epoch, time.Since(fault).Round(time.Millisecond))

			// Stopped cleanly: it gives the lease up and the last one takes over at once.
			lead, term = next, nterm
			var last *controller
			for _, o := range others(lead) {
				if o != crashed {
					last = o
				}
			}
			lead.stop()
			fault = time.Now()
			nterm = last.next(t, 5*time.Second)
			if d := time.Since(fault); d > ttl/2 {
				t.Errorf("%s took over %v after a clean stop, want within a poll (%v)", last.name, d, ttl/4)
			}
			if nterm.Epoch != term.Epoch+1 {
				t.Errorf("epoch %d after %d, want the next", nterm.Epoch, term.Epoch)
			}
		})
	}
}
