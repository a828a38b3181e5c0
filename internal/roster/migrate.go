package roster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"hummingbird.io/hummingbird/internal/leader"
	"hummingbird.io/hummingbird/internal/store"
)

// ErrOthersRun is returned (wrapped) by MigrationGuard.Check when other controllers run on
// the database whose schema it was asked to bring up.
var ErrOthersRun = errors.New("other controllers run on the database")

// MigrationGuard keeps a newer controller from migrating the schema under older controllers
// that still run on it, the leader above all: they would go on with a schema newer than
// their own. Whether a controller runs is judged as the leader judges it, on this
// controller's clock: its row (or the leader's lease row) moves within a renewal period.
type MigrationGuard struct {
	// Every is the controllers' renewal period (their --leader-lease; leader.DefaultTTL when
	// zero): each renews its row, and the leader its lease, at least this often.
	Every time.Duration
	// Allow lets the migration go on under running controllers, with a warning.
	Allow bool
	Log   *slog.Logger
}

// Check is a store.Options.BeforeMigrate: it watches the controllers' rows and the lease
// for a renewal period and a quarter, and refuses when any moved.
func (g MigrationGuard) Check(ctx context.Context, st store.Store, from, to int64) error {
	log := g.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("logger", "roster")
	every := g.Every
	if every <= 0 {
		every = leader.DefaultTTL
	}
	watch := every + every/4
	before, err := readRows(ctx, st)
	if err != nil {
		return fmt.Errorf("before migrating the schema from version %d to %d: %w", from, to, err)
	}
	if len(before.controllers) == 0 && before.lease.Holder == "" {
		return nil // every controller stopped cleanly, or none ever ran
	}
	log.Info("the schema is older than this controller's: checking that no other controller runs on it",
		"schema", from, "this_controller", to, "watch", watch)
	t := time.NewTimer(watch)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	after, err := readRows(ctx, st)
	if err != nil {
		return fmt.Errorf("before migrating the schema from version %d to %d: %w", from, to, err)
	}
	running := after.running(before)
	if len(running) == 0 {
		return nil
	}
	if g.Allow {
		log.Warn("migrating the schema while other controllers run on it, as told", "schema", from, "this_controller", to,
			"running", strings.Join(running, ", "))
		return nil
	}
	return fmt.Errorf("%w: %s. The database's schema is at version %d and this controller's at %d: they would go on with "+
		"a schema newer than their own. Stop them, start this one (it migrates), then start them on this version "+
		"(README.md, \"Several controllers\"); or, if their version works on the newer schema, start this one with "+
		"--migrate-under-older (HB_MIGRATE_UNDER_OLDER=true)", ErrOthersRun, strings.Join(running, ", "), from, to)
}

// rowsSeen is what MigrationGuard read of the controllers' rows and the lease.
type rowsSeen struct {
	controllers []store.Controller
	lease       store.Leadership
}

func readRows(ctx context.Context, st store.Store) (rowsSeen, error) {
	var r rowsSeen
	err := st.Read(ctx, func(tx store.Tx) (err error) {
		if r.controllers, err = tx.ListControllers(); err != nil {
			return err
		}
		r.lease, err = tx.Leadership(leader.Duty)
		if errors.Is(err, store.ErrNotFound) {
			err = nil
		}
		return err
	})
	return r, err
}

// running names the controllers whose rows moved since before, the leader first (and the
// leader alone when its lease moved but its row is not listed).
func (r rowsSeen) running(before rowsSeen) []string {
	leads := r.lease.Holder != "" && (r.lease.Version != before.lease.Version || r.lease.Holder != before.lease.Holder)
	var out []string
	named := false
	for _, c := range r.controllers {
		i := slices.IndexFunc(before.controllers, func(b store.Controller) bool { return b.Name == c.Name })
		isLeader := leads && c.RunID == r.lease.Holder
		if !isLeader && i >= 0 && before.controllers[i].RunID == c.RunID && before.controllers[i].Seen == c.Seen {
			continue
		}
		desc := fmt.Sprintf("%s (%s, %s", c.Name, c.Address, c.Version)
		if isLeader {
			named = true
			out = slices.Insert(out, 0, desc+", leads)")
			continue
		}
		out = append(out, desc+")")
	}
	if leads && !named {
		out = slices.Insert(out, 0, fmt.Sprintf("the leader (at %s, epoch %d)", r.lease.Address, r.lease.Epoch))
	}
	return out
}
