package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrFenced is returned (wrapped) by a write made for a duty in an epoch
// that a newer leader has ended: the writer is no longer the leader and
// must stop the duty, not retry.
var ErrFenced = errors.New("a newer leader holds the duty")

// Leadership is the lease row of one duty.
type Leadership struct {
	Duty    string
	Holder  string // the leading controller's id; "" when it gave the duty up
	Address string // where the holder's API listens
	// Epoch grows by one with each new holder; Version with each write.
	Epoch, Version int64
	RenewedAt      time.Time // the holder's clock, for people
}

// Fence is a duty's epoch that a write must still be current in.
type Fence struct {
	Duty  string
	Epoch int64
}

type fenceKey struct{}

// WithFence returns a context whose writes (Store.Write) each check first,
// in their own transaction, that f is still the duty's epoch, and fail with
// ErrFenced otherwise. A leader runs its duties under such a context, so
// that a leader that was paused or cut off and lost the lease meanwhile
// writes nothing.
func WithFence(ctx context.Context, f Fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, f)
}

// FenceFrom is the fence of ctx, if it has one.
func FenceFrom(ctx context.Context) (Fence, bool) {
	f, ok := ctx.Value(fenceKey{}).(Fence)
	return f, ok
}

func (t *sqlTx) Leadership(duty string) (Leadership, error) {
	l := Leadership{Duty: duty}
	err := t.tx.QueryRowContext(t.ctx, `SELECT holder, address, epoch, version, renewed_at FROM leadership WHERE duty = $1`,
		duty).Scan(&l.Holder, &l.Address, &l.Epoch, &l.Version, &l.RenewedAt)
	if err != nil {
		return Leadership{}, t.wrap("read leadership of "+duty, err)
	}
	l.RenewedAt = l.RenewedAt.UTC()
	return l, nil
}

func (t *sqlTx) SwapLeadership(l Leadership, old int64) error {
	var (
		n   int64
		err error
	)
	if old == 0 {
		r, xerr := t.exec("claim leadership of "+l.Duty, `INSERT INTO leadership (duty, holder, address, epoch, version, renewed_at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (duty) DO NOTHING`,
			l.Duty, l.Holder, l.Address, l.Epoch, l.Version, utc(l.RenewedAt))
		if xerr != nil {
			return xerr
		}
		n, err = r.RowsAffected()
	} else {
		r, xerr := t.exec("write leadership of "+l.Duty, `UPDATE leadership SET holder = $1, address = $2, epoch = $3,
			version = $4, renewed_at = $5 WHERE duty = $6 AND version = $7`,
			l.Holder, l.Address, l.Epoch, l.Version, utc(l.RenewedAt), l.Duty, old)
		if xerr != nil {
			return xerr
		}
		n, err = r.RowsAffected()
	}
	if err != nil {
		return t.wrap("write leadership of "+l.Duty, err)
	}
	if n == 0 {
		return fmt.Errorf("leadership of %s changed since version %d: %w", l.Duty, old, ErrNotFound)
	}
	return nil
}

func (t *sqlTx) CheckEpoch(duty string, epoch int64) error {
	q := `SELECT epoch FROM leadership WHERE duty = $1`
	if t.dialect == "postgres" {
		// Held until the transaction ends: a new leader's claim, which
		// updates the row, waits for this write to commit, and every write
		// after the claim sees the new epoch.
		q += ` FOR SHARE`
	}
	var cur int64
	if err := t.tx.QueryRowContext(t.ctx, q, duty).Scan(&cur); err != nil {
		if errors.Is(t.wrap("", err), ErrNotFound) {
			return fmt.Errorf("duty %s has no leader: %w", duty, ErrFenced)
		}
		return t.wrap("check the epoch of "+duty, err)
	}
	if cur != epoch {
		return fmt.Errorf("duty %s is in epoch %d, this write was made in %d: %w", duty, cur, epoch, ErrFenced)
	}
	return nil
}
