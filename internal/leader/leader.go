// Package leader elects, among the controllers that share one database, the one that runs the
// duties that must run once: the heartbeat monitor's deadlines, the reconcilers, DHCP, the
// alarm webhook.
//
// Leadership is a lease: a row of the leadership table (see package store), written only by
// compare-and-swap on its version. The leader renews it every TTL/4 by bumping the version. A
// follower notes, on its own clock, when it last saw the row change; when it has stood still
// for TTL (or the leader gave it up), the follower takes over with the next epoch. No clocks
// are compared across machines, and nothing rests on a database session: a session-level
// advisory lock breaks behind a pooler in transaction mode (PgBouncer hands the session to
// other clients), and one held by a partitioned controller lasts until the server's TCP
// keepalives give up on it, about two hours with the defaults.
//
// A leader counts its lease from the start of its last successful renewal and stops leading at
// three quarters of TTL after it, before any follower can have taken over; its term's context
// ends then. That context carries the epoch as a store fence: every write made under it is
// refused by the database once a newer epoch exists, so a leader that was paused (SIGSTOP, a
// long GC, a VM migration) or cut off writes nothing when it wakes.
package leader

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"hummingbird.io/hummingbird/internal/store"
)

// Duty is the lease every leader-only part of the controller runs under: one leader for all
// duties, so that one epoch fences them all and a failover moves them together.
const Duty = "controller"

// DefaultTTL is how long a lease lasts without renewal: a leader killed is replaced after
// about TTL and a poll, within 3 s.
const DefaultTTL = 2 * time.Second

// Config sets up an Elector.
type Config struct {
	Store store.Store
	// ID names this controller process; unique per start.
	ID string
	// Address is where its API listens, for people.
	Address string
	// TTL is the lease time (DefaultTTL when zero).
	TTL time.Duration
	// Clock stamps renewals for people (time.Now when nil); lease times are measured with
	// time.Now's monotonic clock.
	Clock func() time.Time
	Log   *slog.Logger
}

// Elector campaigns for the Duty lease and holds it.
type Elector struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	leading *Term
}

// New returns an Elector.
func New(cfg Config) *Elector {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Elector{cfg: cfg, log: cfg.Log.With("logger", "leader")}
}

// Term is one stretch of leadership.
type Term struct {
	// Epoch is the lease's epoch in this term.
	Epoch int64
	// Context ends when the term does: the lease lost or not renewed in time, or the
	// campaign's context ended. It carries the epoch as a store fence (store.WithFence).
	Context context.Context

	e      *Elector
	cancel context.CancelFunc
	done   chan struct{} // closed when the renewals stopped

	mu   sync.Mutex
	last store.Leadership // the row as this leader last wrote it
}

// Leading is the current term, nil when this controller does not lead.
func (e *Elector) Leading() *Term {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.leading == nil || e.leading.Context.Err() != nil {
		return nil
	}
	return e.leading
}

// Campaign blocks until this controller leads, and returns the term; it fails only when ctx
// ends. The caller must call the term's End once every duty of the term has stopped.
func (e *Elector) Campaign(ctx context.Context) (*Term, error) {
	var (
		seen     store.Leadership
		seenAt   time.Time
		observed bool
	)
	poll := e.cfg.TTL / 4
	for {
		var cur store.Leadership
		// Bounded: a read stuck on a dead connection must not stop the campaign.
		rctx, cancel := context.WithTimeout(ctx, e.cfg.TTL)
		err := e.cfg.Store.Read(rctx, func(tx store.Tx) (err error) {
			cur, err = tx.Leadership(Duty)
			return err
		})
		cancel()
		now := time.Now()
		switch {
		case errors.Is(err, store.ErrNotFound):
			if t, ok := e.claim(ctx, store.Leadership{Duty: Duty, Epoch: 1}, 0); ok {
				return t, nil
			}
		case err != nil:
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			e.log.Warn("reading the leadership failed", "err", err)
		default:
			if !observed || cur.Holder != seen.Holder || cur.Version != seen.Version {
				seen, seenAt, observed = cur, now, true
			}
			if cur.Holder == "" || now.Sub(seenAt) >= e.cfg.TTL {
				if t, ok := e.claim(ctx, cur, cur.Version); ok {
					if cur.Holder != "" {
						e.log.Warn("took the lead from a controller that stopped renewing it",
							"from", cur.Holder, "from_address", cur.Address, "epoch", cur.Epoch+1)
					}
					return t, nil
				}
				observed = false
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// claim writes this controller into the row that was at version old (prev, when there was
// one) with the next epoch, and starts renewing it.
func (e *Elector) claim(ctx context.Context, prev store.Leadership, old int64) (*Term, bool) {
	start := time.Now()
	next := store.Leadership{Duty: Duty, Holder: e.cfg.ID, Address: e.cfg.Address, Epoch: prev.Epoch + 1,
		Version: prev.Version + 1, RenewedAt: e.cfg.Clock().UTC().Truncate(time.Microsecond)}
	if old == 0 {
		next.Epoch, next.Version = 1, 1
	}
	wctx, cancel := context.WithTimeout(ctx, e.cfg.TTL/2)
	err := e.cfg.Store.Write(wctx, func(tx store.Tx) error { return tx.SwapLeadership(next, old) })
	cancel()
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) && ctx.Err() == nil {
			e.log.Warn("claiming the leadership failed", "err", err)
		}
		return nil, false
	}
	tctx, tcancel := context.WithCancel(store.WithFence(ctx, store.Fence{Duty: Duty, Epoch: next.Epoch}))
	t := &Term{Epoch: next.Epoch, Context: tctx, e: e, cancel: tcancel, done: make(chan struct{}), last: next}
	e.mu.Lock()
	e.leading = t
	e.mu.Unlock()
	e.log.Info("leading", "epoch", next.Epoch, "id", e.cfg.ID)
	go t.hold(start.Add(e.validFor()))
	return t, true
}

// validFor is how long after the start of its last renewal a leader still leads: a quarter
// of the lease short of it, for clocks that run at slightly different rates.
func (e *Elector) validFor() time.Duration { return e.cfg.TTL - e.cfg.TTL/4 }

// hold renews the lease every TTL/4 until the term ends, and ends it when a renewal finds
// another holder or none succeeded in time.
func (t *Term) hold(until time.Time) {
	defer close(t.done)
	e := t.e
	expire := time.NewTimer(time.Until(until))
	defer expire.Stop()
	tick := time.NewTicker(e.cfg.TTL / 4)
	defer tick.Stop()
	// Renewals are not fenced writes: they write the fence.
	ctx := context.WithoutCancel(t.Context)
	for {
		select {
		case <-t.Context.Done():
			return
		case <-expire.C:
			e.log.Warn("stopped leading: the lease was not renewed in time", "epoch", t.Epoch)
			t.cancel()
			return
		case <-tick.C:
		}
		start := time.Now()
		t.mu.Lock()
		prev := t.last
		t.mu.Unlock()
		next := prev
		next.Version++
		next.RenewedAt = e.cfg.Clock().UTC().Truncate(time.Microsecond)
		wctx, cancel := context.WithDeadline(ctx, until)
		err := e.cfg.Store.Write(wctx, func(tx store.Tx) error { return tx.SwapLeadership(next, prev.Version) })
		cancel()
		switch {
		case err == nil:
			t.mu.Lock()
			t.last = next
			t.mu.Unlock()
			until = start.Add(e.validFor())
			expire.Reset(time.Until(until))
		case errors.Is(err, store.ErrNotFound):
			e.log.Warn("stopped leading: another controller took the lead", "epoch", t.Epoch)
			t.cancel()
			return
		default:
			e.log.Warn("renewing the leadership failed", "epoch", t.Epoch, "err", err)
		}
	}
}

// Lost ends the term at once: a duty found its writes fenced.
func (t *Term) Lost() { t.cancel() }

// End finishes the term once its duties have stopped; campaign is the context Campaign was
// given. When it ended (the controller is stopping) and the lease is still this term's, End
// gives the lease up, so that another controller takes over at once instead of after TTL.
func (t *Term) End(campaign context.Context) {
	t.cancel()
	<-t.done
	e := t.e
	e.mu.Lock()
	if e.leading == t {
		e.leading = nil
	}
	e.mu.Unlock()
	if campaign.Err() == nil {
		return
	}
	t.mu.Lock()
	prev := t.last
	t.mu.Unlock()
	next := prev
	next.Holder, next.Version = "", prev.Version+1
	next.RenewedAt = e.cfg.Clock().UTC().Truncate(time.Microsecond)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(campaign), e.cfg.TTL/2)
	defer cancel()
	// From the version this term last wrote: when another controller took over meanwhile,
	// nothing changes.
	if err := e.cfg.Store.Write(ctx, func(tx store.Tx) error { return tx.SwapLeadership(next, prev.Version) }); err != nil {
		e.log.Info("the leadership was not given up: another controller takes over when it expires", "err", err)
		return
	}
	e.log.Info("gave the leadership up", "epoch", t.Epoch)
}
