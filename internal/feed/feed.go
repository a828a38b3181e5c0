// Package feed tells the controller's parts of changes by tailing the event log that every
// change already writes, instead of callbacks that each API handler must remember to call: a
// part names the event actions it reacts to, and is kicked when one is appended, by this
// controller or another sharing the database.
//
// The feed reads the events after its cursor (events get their ids from one counter row, so
// they become visible in id order). A write through Store that appended an event wakes it at
// once; the writes of other controllers are seen at the next poll.
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
	var cursor int64
	if err := f.st.Read(ctx, func(tx store.Tx) error {
		last, err := tx.ListEvents(store.EventFilter{Limit: 1})
		if len(last) > 0 {
			cursor = last[0].ID
		}
		return err
	}); err != nil {
		return err
	}
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
				evs, err = tx.EventsAfter(cursor, nil, batch)
				return err
			}); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				f.log.Warn("reading the event log failed", "err", err)
				break
			}
			if len(evs) == 0 {
				break
			}
			cursor = evs[len(evs)-1].ID
			f.dispatch(evs)
			if len(evs) < batch {
				break
			}
		}
	}
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
