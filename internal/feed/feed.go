// Package feed tells the controller's parts of changes by tailing the event log that every
// change already writes, instead of callbacks that each API handler must remember to call: a
// part names the event actions it reacts to, and is kicked when one is appended, by this
// controller or another sharing the database.
//
// The feed reads the events after its cursor. Ids need not become visible in order: on
// PostgreSQL they come from a sequence, handed out before the transaction commits, so a lower
// id can appear after a higher one, and a rolled-back transaction leaves a gap for good. A
// Cursor therefore stops below the first id not seen yet, and remembers the events after it
// that were; a gap still open after GapWait is given up as a rollback's. A write
// through Store that appended an event wakes the feed at once; the writes of other controllers
// are seen at the next poll.
package feed

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"hummingbird.io/hummingbird/internal/store"
)

// DefaultPoll is how often the feed reads the log without being woken: the delay before a
// controller reacts to another's change.
const DefaultPoll = time.Second

// batch bounds the events read at once.
const batch = 500

// GapWait is how long the feed waits for a missing event id before it counts it as a
// rolled-back transaction's: longer than any transaction that appends an event.
const GapWait = 10 * time.Second

// Feed tails the event log.
type Feed struct {
	st   store.Store
	poll time.Duration
	log  *slog.Logger
	wake chan struct{}

	mu   sync.Mutex
	subs []subscription
}

type subscription struct {
	name     string
	prefixes []string
	kick     func()
}

// New returns a feed over st that reads the log at least every poll (DefaultPoll when zero).
func New(st store.Store, poll time.Duration, log *slog.Logger) *Feed {
	if poll <= 0 {
		poll = DefaultPoll
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Feed{st: st, poll: poll, log: log.With("logger", "feed"), wake: make(chan struct{}, 1)}
}

// On kicks name's kick after the events whose action starts with one of prefixes ("host."
// for every host event, "app.add" for that one); a batch of such events kicks it once. kick
// must not block.
func (f *Feed) On(name string, kick func(), prefixes ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subs = append(f.subs, subscription{name: name, prefixes: prefixes, kick: kick})
}

// Store is st with writes that wake the feed when they appended an event: the controller's
// parts write through it.
func (f *Feed) Store() store.Store { return &waking{Store: f.st, f: f} }

// Notify wakes the feed.
func (f *Feed) Notify() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Run tails the log from its end until ctx ends.
func (f *Feed) Run(ctx context.Context) error {
	var start int64
	if err := f.st.Read(ctx, func(tx store.Tx) error {
		last, err := tx.ListEvents(store.EventFilter{Limit: 1})
		if len(last) > 0 {
			start = last[0].ID
		}
		return err
	}); err != nil {
		return err
	}
	t := NewCursor(start)
	tick := time.NewTicker(f.poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-f.wake:
		case <-tick.C:
		}
		for {
			var evs []store.Event
			if err := f.st.Read(ctx, func(tx store.Tx) (err error) {
				evs, err = tx.EventsAfter(t.At(), nil, batch)
				return err
			}); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				f.log.Warn("reading the event log failed", "err", err)
				break
			}
			if fresh := t.take(evs, time.Now()); len(fresh) > 0 {
				f.dispatch(fresh)
			}
			if len(evs) < batch {
				break
			}
		}
	}
}

// Cursor is a position in the event log that misses no event whose id became visible late:
// every id up to At was done (or given up as a rolled-back transaction's, after GapWait), and
// the ids after it that were done are remembered. The feed and the alarm webhook read with one.
type Cursor struct {
	at      int64
	done    map[int64]bool
	gapFrom time.Time // zero: no gap open
}

// NewCursor starts after id at.
func NewCursor(at int64) *Cursor { return &Cursor{at: at, done: map[int64]bool{}} }

// At is the id up to which every event is done: where to read after, and what to store.
func (c *Cursor) At() int64 { return c.at }

// Fresh is the events of evs (read after At) not done yet, in order.
func (c *Cursor) Fresh(evs []store.Event) []store.Event {
	var out []store.Event
	for _, e := range evs {
		if e.ID > c.at && !c.done[e.ID] {
			out = append(out, e)
		}
	}
	return out
}

// Done notes an event as handled.
func (c *Cursor) Done(id int64) {
	if id > c.at {
		c.done[id] = true
	}
}

// Advance moves At over every id done since, and over a gap open for GapWait.
func (c *Cursor) Advance(now time.Time) {
	for {
		for c.done[c.at+1] {
			delete(c.done, c.at+1)
			c.at++
		}
		if len(c.done) == 0 {
			c.gapFrom = time.Time{}
			return
		}
		if c.gapFrom.IsZero() {
			c.gapFrom = now
		}
		if now.Sub(c.gapFrom) < GapWait {
			return
		}
		// Given up: a rolled-back transaction's id. Skip to the next one done.
		next := int64(0)
		for id := range c.done {
			if next == 0 || id < next {
				next = id
			}
		}
		c.at, c.gapFrom = next-1, time.Time{}
	}
}

// take notes evs done and returns those not done before, then advances.
func (c *Cursor) take(evs []store.Event, now time.Time) []store.Event {
	fresh := c.Fresh(evs)
	for _, e := range fresh {
		c.Done(e.ID)
	}
	c.Advance(now)
	return fresh
}

// dispatch kicks every subscription that one of evs matches, once.
func (f *Feed) dispatch(evs []store.Event) {
	f.mu.Lock()
	subs := f.subs
	f.mu.Unlock()
	for _, s := range subs {
		if matches(s.prefixes, evs) {
			s.kick()
		}
	}
}

func matches(prefixes []string, evs []store.Event) bool {
	for _, e := range evs {
		for _, p := range prefixes {
			if strings.HasPrefix(e.Action, p) {
				return true
			}
		}
	}
	return false
}

// waking is a store whose writes wake the feed when they appended an event.
type waking struct {
	store.Store
	f *Feed
}

func (w *waking) Write(ctx context.Context, fn func(store.Tx) error) error {
	var appended bool
	err := w.Store.Write(ctx, func(tx store.Tx) error {
		appended = false // fn may run again
		return fn(&noting{Tx: tx, appended: &appended})
	})
	if err == nil && appended {
		w.f.Notify()
	}
	return err
}

// noting is a transaction that notes an appended event.
type noting struct {
	store.Tx
	appended *bool
}

func (t *noting) AppendEvent(e *store.Event) error {
	*t.appended = true
	return t.Tx.AppendEvent(e)
}
