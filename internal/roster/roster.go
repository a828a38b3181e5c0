// Package roster keeps the list of the controllers that share one database: each renews its
// row while it runs (Run) and deletes it when it stops cleanly; the leader watches the rows
// (Watch) and raises alarm 400.005 for a controller that stopped renewing its row, judged on
// the leader's own clock, and clears it when the controller is back or its row is gone.
package roster

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/google/uuid"

	"hummingbird.io/hummingbird/internal/fm"
	"hummingbird.io/hummingbird/internal/store"
)

// LostRenewals is how many renewal periods a controller's row may stand still before the
// leader counts it lost.
const LostRenewals = 3

// Config sets up a Roster.
type Config struct {
	Store store.Store
	// Name is this controller's name (a restart keeps it); RunID this run's id.
	Name, RunID, Version string
	// Address says where this controller's API listens, once it does.
	Address func() string
	// Duties are the names of the parts this controller runs while it leads.
	Duties []string
	// Every is the renewal period.
	Every   time.Duration
	Clock   func() time.Time
	NewUUID func() string
	Log     *slog.Logger
}

// Roster renews this controller's row and, on the leader, watches the others'.
type Roster struct {
	cfg Config
	log *slog.Logger
}

// New returns a Roster.
func New(cfg Config) *Roster {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.NewUUID == nil {
		cfg.NewUUID = uuid.NewString
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Roster{cfg: cfg, log: cfg.Log.With("logger", "roster")}
}

func (r *Roster) now() time.Time { return r.cfg.Clock().UTC().Truncate(time.Microsecond) }

// Entity is the alarm entity of controller name.
func Entity(name string) string { return "controller=" + name }

// Run renews this controller's row every period until ctx ends, then deletes it.
func (r *Roster) Run(ctx context.Context) error {
	row := store.Controller{Name: r.cfg.Name, RunID: r.cfg.RunID, Version: r.cfg.Version, Duties: r.cfg.Duties, StartedAt: r.now()}
	t := time.NewTicker(r.cfg.Every)
	defer t.Stop()
	for {
		row.Seen++
		row.SeenAt, row.Address = r.now(), r.cfg.Address()
		if err := r.cfg.Store.Write(ctx, func(tx store.Tx) error { return tx.PutController(row) }); err != nil && ctx.Err() == nil {
			r.log.Warn("renewing this controller's row failed", "err", err)
		}
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.Every)
			defer cancel()
			if err := r.cfg.Store.Write(final, func(tx store.Tx) error { return tx.DeleteController(row.Name, row.RunID) }); err != nil {
				r.log.Info("this controller's row was not deleted: the leader will count it lost", "err", err)
			}
			return nil
		case <-t.C:
		}
	}
}

// seenRow is what the leader last saw of a controller's row, and when it saw it change.
type seenRow struct {
	run     string
	seen    int64
	changed time.Time
	lost    bool
}

// Watch, on the leader, counts a controller whose row stood still for LostRenewals periods
// lost and raises 400.005 for it; clears it when the row moves again or is gone. It starts by
// counting every row as just seen: what the last leader saw is not known here.
func (r *Roster) Watch(ctx context.Context) error {
	rows := map[string]*seenRow{}
	first := true
	t := time.NewTicker(r.cfg.Every)
	defer t.Stop()
	for {
		if err := r.check(ctx, rows, first); err != nil && ctx.Err() == nil {
			r.log.Warn("watching the controllers failed", "err", err)
		} else {
			first = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (r *Roster) check(ctx context.Context, rows map[string]*seenRow, first bool) error {
	var list []store.Controller
	if err := r.cfg.Store.Read(ctx, func(tx store.Tx) (err error) { list, err = tx.ListControllers(); return err }); err != nil {
		return err
	}
	now := time.Now()
	present := map[string]bool{}
	type change struct {
		c    store.Controller
		lost bool
	}
	var changes []change
	var gone []string
	for _, c := range list {
		present[c.Name] = true
		s, ok := rows[c.Name]
		if !ok {
			s = &seenRow{run: c.RunID, seen: c.Seen, changed: now}
			rows[c.Name] = s
			if first {
				// Whatever a last leader raised: cleared when the row moves, raised again
				// after the lost time if it does not.
				s.lost = true
			}
		}
		if s.run != c.RunID || s.seen != c.Seen {
			s.run, s.seen, s.changed = c.RunID, c.Seen, now
		}
		lost := now.Sub(s.changed) >= LostRenewals*r.cfg.Every
		if lost != s.lost {
			changes = append(changes, change{c, lost})
		}
	}
	for name := range rows {
		if !present[name] {
			gone = append(gone, name)
		}
	}
	if len(changes) == 0 && len(gone) == 0 {
		return nil
	}
	at := r.now()
	err := r.cfg.Store.Write(ctx, func(tx store.Tx) error {
		for _, ch := range changes {
			if err := r.alarm(tx, ch.c, ch.lost, at); err != nil {
				return err
			}
		}
		for _, name := range gone {
			if err := fm.Clear(tx, fm.AlarmControllerLost, "controller", Entity(name),
				fmt.Sprintf("controller %s stopped and left the list", name), r.cfg.NewUUID(), at); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, ch := range changes {
		rows[ch.c.Name].lost = ch.lost
		if ch.lost {
			r.log.Warn("a controller stopped renewing its row", "controller", ch.c.Name, "address", ch.c.Address)
		}
	}
	for _, name := range gone {
		delete(rows, name)
	}
	return nil
}

func (r *Roster) alarm(tx store.Tx, c store.Controller, lost bool, at time.Time) error {
	if !lost {
		return fm.Clear(tx, fm.AlarmControllerLost, "controller", Entity(c.Name),
			fmt.Sprintf("controller %s renews its row again", c.Name), r.cfg.NewUUID(), at)
	}
	return fm.Raise(tx, store.Alarm{
		UUID: r.cfg.NewUUID(), AlarmID: fm.AlarmControllerLost, EntityType: "controller", EntityInstance: Entity(c.Name),
		Severity: fm.Major, AlarmType: "communication", ProbableCause: "loss of signal",
		Reason: fmt.Sprintf("controller %s (%s, %s) has not renewed its row for %d periods of %s: it stopped, or lost the database",
			c.Name, c.Address, c.Version, LostRenewals, r.cfg.Every),
		ProposedRepairAction: "Check that hb-controller runs on " + hostOf(c.Address) + " and reaches the database; the other controllers serve meanwhile.",
	}, r.cfg.NewUUID(), at)
}

func hostOf(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}
