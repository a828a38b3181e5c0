// Package supervisor runs the controller's background parts. Each part is registered once, in
// one list, with whether it needs the leadership (package leader): the parts that do not run
// on every controller for as long as it runs; the parts that do run only while this
// controller leads, in the term's context, which carries the term's epoch as a store fence.
// All of them stop before a new term can start, so no duty ever runs twice in one process, and
// the fence keeps a deposed leader's late writes out of the database.
//
// One failure policy holds for every part: a part that returns while it should still run
// (with an error or without) is logged with its name and started again after a capped,
// jittered backoff; a part whose writes were fenced ends the term at once.
package supervisor

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"hummingbird.io/hummingbird/internal/leader"
	"hummingbird.io/hummingbird/internal/store"
)

// Part is a background part of the controller.
type Part interface {
	// Run does the part's work until ctx ends, and returns then. Returning earlier is a
	// failure.
	Run(ctx context.Context) error
}

// Func makes a function a Part.
type Func func(ctx context.Context) error

// Run calls f.
func (f Func) Run(ctx context.Context) error { return f(ctx) }

// Spec registers a part.
type Spec struct {
	Name string
	// Leader says the part runs only on the elected leader.
	Leader bool
	Part   Part
}

// Backoff bounds the wait before a failed part starts again: Min after its first failure,
// doubling to Max; a part that ran for Max or more starts from Min again.
type Backoff struct{ Min, Max time.Duration }

// DefaultBackoff is one second to thirty.
var DefaultBackoff = Backoff{Min: time.Second, Max: 30 * time.Second}

// Supervisor runs a list of parts.
type Supervisor struct {
	parts   []Spec
	elector *leader.Elector
	backoff Backoff
	log     *slog.Logger

	mu     sync.Mutex
	states map[string]*State
}

// State is what a part is doing, for people.
type State struct {
	Name     string
	Leader   bool
	Running  bool
	Restarts int
	// LastError is the error of its last failure, "" when it never failed.
	LastError string
}

// New returns a Supervisor of parts; elector may be nil when no part needs the leadership.
func New(parts []Spec, elector *leader.Elector, backoff Backoff, log *slog.Logger) *Supervisor {
	if backoff.Min <= 0 {
		backoff = DefaultBackoff
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Supervisor{parts: parts, elector: elector, backoff: backoff, log: log.With("logger", "supervisor"),
		states: map[string]*State{}}
	for _, p := range parts {
		s.states[p.Name] = &State{Name: p.Name, Leader: p.Leader}
	}
	return s
}

// States lists what each part is doing, in the order of registration.
func (s *Supervisor) States() []State {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]State, 0, len(s.parts))
	for _, p := range s.parts {
		out = append(out, *s.states[p.Name])
	}
	return out
}

// Run runs the parts until ctx ends, and returns once every one has stopped.
func (s *Supervisor) Run(ctx context.Context) {
	var wg sync.WaitGroup
	var led []Spec
	for _, p := range s.parts {
		if p.Leader {
			led = append(led, p)
			continue
		}
		wg.Go(func() { s.keep(ctx, p, nil) })
	}
	if len(led) > 0 {
		if s.elector == nil {
			panic("supervisor: parts need the leadership and there is no elector")
		}
		wg.Go(func() { s.lead(ctx, led) })
	}
	wg.Wait()
}

// lead campaigns for the leadership and runs the leader's parts in each term, until ctx
// ends.
func (s *Supervisor) lead(ctx context.Context, parts []Spec) {
	for {
		term, err := s.elector.Campaign(ctx)
		if err != nil {
			return
		}
		var wg sync.WaitGroup
		for _, p := range parts {
			wg.Go(func() { s.keep(term.Context, p, term) })
		}
		wg.Wait()
		term.End(ctx)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("the leader's parts stopped: campaigning again", "epoch", term.Epoch)
	}
}

// keep runs p until ctx ends, starting it again after each failure; term is the leadership
// term p runs in, nil for a part of every controller.
func (s *Supervisor) keep(ctx context.Context, p Spec, term *leader.Term) {
	wait := time.Duration(0)
	for {
		s.set(p.Name, func(st *State) { st.Running = true })
		start := time.Now()
		err := p.Part.Run(ctx)
		s.set(p.Name, func(st *State) { st.Running = false })
		if ctx.Err() != nil {
			return
		}
		if term != nil && errors.Is(err, store.ErrFenced) {
			s.log.Warn("a part's writes were refused: a newer leader exists", "part", p.Name, "epoch", term.Epoch, "err", err)
			term.Lost()
			return
		}
		if err == nil {
			err = errors.New("returned while it should run")
		}
		if time.Since(start) >= s.backoff.Max {
			wait = 0
		}
		wait = min(max(2*wait, s.backoff.Min), s.backoff.Max)
		// ±20 %, so that parts that failed together do not retry in step.
		retry := time.Duration(float64(wait) * (0.8 + 0.4*rand.Float64()))
		s.set(p.Name, func(st *State) { st.Restarts++; st.LastError = err.Error() })
		s.log.Error("a part stopped: starting it again", "part", p.Name, "err", err, "retry_in", retry.Round(time.Millisecond).String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
	}
}

func (s *Supervisor) set(name string, f func(*State)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s.states[name])
}
