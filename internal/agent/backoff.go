package agent

import (
	"math/rand/v2"
	"time"
)

// Backoff is a capped exponential backoff with full jitter: after the n-th
// consecutive failure the agent waits a random time in [0, min(Max,
// Base·2ⁿ)], so that many agents cut off together do not come back in step.
type Backoff struct {
	Base, Max time.Duration
	// Rand returns a float in [0, 1); nil means math/rand/v2.
	Rand func() float64
	n    int
}

// Next returns the wait before the next attempt and counts a failure.
func (b *Backoff) Next() time.Duration {
	ceil := b.Base << min(b.n, 30)
	if ceil > b.Max || ceil <= 0 {
		ceil = b.Max
	}
	b.n++
	r := rand.Float64
	if b.Rand != nil {
		r = b.Rand
	}
	return time.Duration(r() * float64(ceil))
}

// Reset forgets the failures after a success.
func (b *Backoff) Reset() { b.n = 0 }
