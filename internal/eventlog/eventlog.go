// Package eventlog keeps the event log within its retention policy: at
// most Policy.Count events, and none older than Policy.Age. The leader
// prunes it every few minutes, from the oldest event on, in small batches
// with pauses between them, so that on SQLite no other writer waits long
// for the one write lock.
//
// The prune never passes a reader: every event after the lowest cursor a
// reader keeps in the store (the alarm webhook's undelivered alarms, and
// any reader that keeps one later) stays, however old, and the pruner
// says which reader holds the log back.
package eventlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"hummingbird.io/hummingbird/internal/store"
)

// Policy is how much of the event log is kept; a zero field does not
// limit.
type Policy struct {
	// Count is the most events kept: the newest Count event ids.
	Count int64
	// Age is how long an event is kept: an event goes once it and every
	// event before it are older.
	Age time.Duration
}

// DefaultPolicy keeps the newest million events, of any age. At a million
// events a page of 1,000 events still takes 13-26 ms through the API (p99
// at most 41 ms), and the database is about 400 MB on SQLite, 480 MB on
// PostgreSQL (bench/events_test.go, BenchmarkEventList); a fleet of 2,000
// hosts writing 10,000 events a day keeps about three months. An age limit
// deletes history that costs nothing to keep, so it is off unless a site's
// rules ask for one.
func DefaultPolicy() Policy { return Policy{Count: 1_000_000} }

// Check says what is wrong with a policy.
func (p Policy) Check() error {
	if p.Count < 0 {
		return fmt.Errorf("--event-retention-count %d: give a number of events, or 0 to keep any number", p.Count)
	}
	if p.Age < 0 {
		return fmt.Errorf("--event-retention-age %v: give a duration such as 2160h (90 days), or 0 to keep events of any age", p.Age)
	}
	return nil
}

// Defaults of a Pruner.
const (
	// DefaultEvery is the time between passes.
	DefaultEvery = 5 * time.Minute
	// DefaultBatch is the most events one transaction deletes: at
	// 1,000,000 events on SQLite 0.12 s of the write lock on average,
	// 0.22 s at most, mostly writing the index pages of events spread over
	// the uuid and entity indexes (bench/events_test.go,
	// BenchmarkEventPrune).
	DefaultBatch = 1000
	// DefaultPause is the wait between two batches of a pass, in which
	// other writers take the lock: they have it at least 60% of the time
	// while a backlog is pruned (100,000 events in 32 s on SQLite, 21 s on
	// PostgreSQL). A pass every DefaultEvery usually deletes one batch.
	DefaultPause = 200 * time.Millisecond
)

// Config sets up a Pruner.
type Config struct {
	Store  store.Store
	Policy Policy
	// Every, Batch and Pause default to DefaultEvery, DefaultBatch and
	// DefaultPause.
	Every time.Duration
	Batch int
	Pause time.Duration
	// Clock gives the time an age is measured from (time.Now when nil).
	Clock func() time.Time
	Log   *slog.Logger
}

// Pruner prunes the event log to its policy.
type Pruner struct {
	cfg Config
	log *slog.Logger
}

// New returns a Pruner.
func New(cfg Config) *Pruner {
	if cfg.Every <= 0 {
		cfg.Every = DefaultEvery
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.Pause < 0 {
		cfg.Pause = 0
	} else if cfg.Pause == 0 {
		cfg.Pause = DefaultPause
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Pruner{cfg: cfg, log: cfg.Log.With("logger", "eventlog")}
}

// Pass is what one pass did.
type Pass struct {
	// Bound is the id the policy prunes below (0: nothing to prune).
	Bound int64
	// Deleted events, in Batches transactions, which took Busy in all
	// and Longest the longest (from its start to its commit): how long
	// another writer may wait on SQLite.
	Deleted int
	Batches int
	Busy    time.Duration
	Longest time.Duration
	// Reader is the reader whose cursor kept events the policy would
	// have pruned ("" when none did), and Cursor its position.
	Reader string
	Cursor int64
}

// Run prunes at once and then every Config.Every until ctx ends. A pass
// that fails is logged and tried again at the next; a write refused
// because a newer leader holds the duty ends Run.
func (p *Pruner) Run(ctx context.Context) error {
	tick := time.NewTicker(p.cfg.Every)
	defer tick.Stop()
	for {
		if _, err := p.Prune(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, store.ErrFenced) {
				return err
			}
			p.log.Warn("pruning the event log failed; trying again at the next pass", "err", err, "retry_in", p.cfg.Every.String())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Prune makes one pass: it deletes, batch by batch, every event the policy
// does not keep and no reader needs.
func (p *Pruner) Prune(ctx context.Context) (Pass, error) {
	var pass Pass
	pol := p.cfg.Policy
	if pol.Count <= 0 && pol.Age <= 0 {
		return pass, nil
	}
	var (
		oldest, newest int64
		reader         string
		cursor         int64
		hasCursor      bool
	)
	err := p.cfg.Store.Read(ctx, func(tx store.Tx) error {
		var err error
		if oldest, newest, err = tx.EventIDs(); err != nil || newest == 0 {
			return err
		}
		if pol.Count > 0 {
			pass.Bound = max(pass.Bound, newest-pol.Count+1)
		}
		if pol.Age > 0 {
			id, ok, err := tx.FirstEventSince(p.cfg.Clock().Add(-pol.Age))
			if err != nil {
				return err
			}
			if !ok {
				id = newest + 1 // every event is older
			}
			pass.Bound = max(pass.Bound, id)
		}
		reader, cursor, hasCursor, err = tx.MinCursor()
		return err
	})
	if err != nil {
		return pass, fmt.Errorf("reading the event log's bounds: %w", err)
	}
	if pass.Bound <= oldest {
		pass.Bound = 0
		return pass, nil
	}
	if hasCursor && cursor+1 < pass.Bound {
		pass.Reader, pass.Cursor = reader, cursor
	}
	for {
		var n int
		start := time.Now()
		err := p.cfg.Store.Write(ctx, func(tx store.Tx) (err error) {
			n, err = tx.PruneEvents(pass.Bound, p.cfg.Batch)
			return err
		})
		took := time.Since(start)
		if err != nil {
			p.logPass(pass)
			return pass, fmt.Errorf("pruning the event log below id %d: %w", pass.Bound, err)
		}
		pass.Batches++
		pass.Deleted += n
		pass.Busy += took
		pass.Longest = max(pass.Longest, took)
		if n < p.cfg.Batch {
			break
		}
		select {
		case <-ctx.Done():
			p.logPass(pass)
			return pass, ctx.Err()
		case <-time.After(p.cfg.Pause):
		}
	}
	p.logPass(pass)
	return pass, nil
}

// logPass logs what a pass deleted and which reader held the log back.
func (p *Pruner) logPass(pass Pass) {
	if pass.Deleted > 0 {
		p.log.Info("pruned the event log", "deleted", pass.Deleted, "below_id", pass.Bound, "batches", pass.Batches,
			"busy", pass.Busy.Round(time.Millisecond).String(), "longest_batch", pass.Longest.Round(time.Millisecond).String(),
			"retention_count", p.cfg.Policy.Count, "retention_age", p.cfg.Policy.Age.String())
	}
	if pass.Reader != "" {
		p.log.Warn("a reader holds the event log past its retention",
			"reader", pass.Reader, "cursor", pass.Cursor, "kept_over_policy", pass.Bound-pass.Cursor-1,
			"hint", "the events after its cursor stay until it reads them; for a reader gone for good, such as a removed webhook, run hb-controller forget-reader "+pass.Reader)
	}
}
