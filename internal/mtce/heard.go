package mtce

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/store"
)

// Heartbeats reach whichever controller an agent dials; the deadlines are kept by the leader's
// monitor alone. Every controller notes the hosts it heard from a few times a second, as one
// row of host ids (Flush: not a write per heartbeat), and the leader applies the other
// controllers' notes before each check (Apply), as heartbeats received then. A host whose
// first heartbeat after a silence reached another controller was made available by that
// controller, in the same transaction as its event, before the agent got its answer.

// FlushInterval is how often a controller notes the hosts it heard from; with the leader's
// check every quarter of the shortest interval, a heartbeat to another controller counts
// within about a second at most.
const FlushInterval = 250 * time.Millisecond

// keepNotes is how many of its own notes a controller keeps when no leader deletes them.
const keepNotes = 240 // a minute at FlushInterval

// Flush writes the note of the hosts heard since the last one, if any. The leader writes
// none: its monitor counted them (so a single controller writes no notes at all).
func (m *Monitor) Flush(ctx context.Context) error {
	m.mu.Lock()
	if m.leading {
		clear(m.pending)
	}
	if len(m.pending) == 0 {
		m.mu.Unlock()
		return nil
	}
	ids := slices.Sorted(maps.Keys(m.pending))
	m.pending = map[int64]bool{}
	m.noted++
	seq := m.noted
	m.mu.Unlock()
	note := store.Heard{Controller: m.cfg.ID, Seq: seq, HostIDs: ids, At: m.now()}
	err := m.st.Write(ctx, func(tx store.Tx) error {
		if err := tx.AppendHeard(note); err != nil {
			return err
		}
		if seq > keepNotes {
			return tx.DeleteHeard(m.cfg.ID, seq-keepNotes)
		}
		return nil
	})
	if err != nil {
		// Heard again at the next flush: the hosts are not lost.
		m.mu.Lock()
		for _, id := range ids {
			m.pending[id] = true
		}
		m.mu.Unlock()
	}
	return err
}

// RunFlush flushes every FlushInterval until ctx ends, and once more then.
func (m *Monitor) RunFlush(ctx context.Context) {
	t := time.NewTicker(FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			m.Flush(final)
			cancel()
			return
		case <-t.C:
			if err := m.Flush(ctx); err != nil && ctx.Err() == nil {
				m.log.Warn("noting the hosts heard from failed", "err", err)
			}
		}
	}
}

// Apply counts the other controllers' notes not applied yet as heartbeats received now, and
// deletes the notes it applied. The leader calls it before each check.
func (m *Monitor) Apply(ctx context.Context) error {
	var (
		notes   []store.Heard
		unknown = map[int64]store.Host{}
	)
	m.mu.Lock()
	applied := maps.Clone(m.applied)
	m.mu.Unlock()
	err := m.st.Read(ctx, func(tx store.Tx) error {
		all, err := tx.ListHeard()
		if err != nil {
			return err
		}
		notes = notes[:0]
		for _, n := range all {
			if n.Controller != m.cfg.ID && n.Seq > applied[n.Controller] {
				notes = append(notes, n)
			}
		}
		// Hosts that joined through another controller are new here.
		m.mu.Lock()
		var missing []int64
		for _, n := range notes {
			for _, id := range n.HostIDs {
				if _, ok := m.beats[id]; !ok {
					missing = append(missing, id)
				}
			}
		}
		m.mu.Unlock()
		for _, id := range missing {
			h, err := tx.HostByID(id)
			if errors.Is(err, store.ErrNotFound) {
				continue // deleted since
			} else if err != nil {
				return err
			}
			unknown[id] = h
		}
		return nil
	})
	if err != nil || len(notes) == 0 {
		return err
	}
	now := m.now()
	last := map[string]int64{}
	m.mu.Lock()
	for _, n := range notes {
		for _, id := range n.HostIDs {
			b, ok := m.beats[id]
			if !ok {
				h, known := unknown[id]
				if !known {
					continue
				}
				b = &beat{timing: m.cfg.For(h.Personality), name: h.Hostname}
				m.beats[id] = b
			}
			// The controller that heard it made it available first.
			b.last, b.heard, b.availability = now, true, inventory.AvailAvailable
		}
		last[n.Controller] = max(last[n.Controller], n.Seq)
		m.applied[n.Controller] = max(m.applied[n.Controller], n.Seq)
	}
	m.mu.Unlock()
	return m.st.Write(ctx, func(tx store.Tx) error {
		for c, seq := range last {
			if err := tx.DeleteHeard(c, seq); err != nil {
				return err
			}
		}
		return nil
	})
}
