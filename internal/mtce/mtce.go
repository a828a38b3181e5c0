// Package mtce is host maintenance: it takes the agents' heartbeats, keeps
// the time of each host's last one in memory (soft state a new controller
// rebuilds within one failure threshold), and turns silence into
// availability transitions: available → degraded after DegradeAfter missed
// intervals, → failed after FailAfter, and back to available on the next
// heartbeat. Every transition is stored with its event and its alarms in
// one transaction. After a start, nothing is declared degraded or failed
// before the thresholds have passed since the start (no alarm storm).
package mtce

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"hummingbird.io/hummingbird/internal/fm"
	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/wire"
)

// Timing is a heartbeat period and its thresholds.
type Timing struct {
	Interval     time.Duration // the period agents are told to use
	DegradeAfter int           // missed intervals before degraded
	FailAfter    int           // missed intervals before failed
}

// ParseTiming reads "30s/3/6": interval, degrade and failure thresholds.
func ParseTiming(s string) (Timing, error) {
	var t Timing
	parts := strings.Split(s, "/")
	if len(parts) != 3 {
		return t, fmt.Errorf("heartbeat timing %q: write INTERVAL/DEGRADE/FAIL, like 30s/3/6", s)
	}
	var err error
	if t.Interval, err = time.ParseDuration(parts[0]); err != nil {
		return t, fmt.Errorf("heartbeat timing %q: %w", s, err)
	}
	if t.DegradeAfter, err = strconv.Atoi(parts[1]); err != nil {
		return t, fmt.Errorf("heartbeat timing %q: degrade threshold: %w", s, err)
	}
	if t.FailAfter, err = strconv.Atoi(parts[2]); err != nil {
		return t, fmt.Errorf("heartbeat timing %q: failure threshold: %w", s, err)
	}
	return t, t.check()
}

func (t Timing) check() error {
	switch {
	case t.Interval < 100*time.Millisecond:
		return fmt.Errorf("heartbeat interval %s is too short", t.Interval)
	case t.DegradeAfter < 1:
		return errors.New("heartbeat degrade threshold must be at least 1 missed interval")
	case t.FailAfter <= t.DegradeAfter:
		return fmt.Errorf("heartbeat failure threshold (%d) must be above the degrade threshold (%d)", t.FailAfter, t.DegradeAfter)
	}
	return nil
}

// Config sets the loose-management heartbeat: Timing for every host, and
// Personalities for the personalities that differ.
type Config struct {
	Timing
	Personalities map[string]Timing
	Clock         func() time.Time
	NewUUID       func() string
	// ID names this controller among those that share the database: its
	// notes of the hosts it heard from carry it (see Flush).
	ID  string
	Log *slog.Logger
	// Apps, when set, takes the app statuses of every heartbeat and gives
	// the host's desired-state version.
	Apps Apps
}

// Apps is what the monitor asks of redundant apps in every heartbeat; it
// must answer from memory (package appstate).
type Apps interface {
	// Heartbeat takes the app statuses of a heartbeat of host h and returns
	// the host's desired-state version and whether it should send its
	// heartbeats every FastInterval for now.
	Heartbeat(ctx context.Context, h store.Host, hb wire.Heartbeat) (desiredVersion uint64, fast bool)
}

// FastInterval is the heartbeat interval while Apps says so.
const FastInterval = time.Second

// DefaultConfig is loose management for edgeworkers: a heartbeat every
// 30 s, degraded after 3 missed, failed after 6.
func DefaultConfig() Config {
	return Config{Timing: Timing{Interval: 30 * time.Second, DegradeAfter: 3, FailAfter: 6}}
}

// Check validates the settings.
func (c Config) Check() error {
	if err := c.Timing.check(); err != nil {
		return err
	}
	for p, t := range c.Personalities {
		if err := inventory.CheckEnum("personality", p); err != nil {
			return fmt.Errorf("heartbeat of %s: %w", p, err)
		}
		if err := t.check(); err != nil {
			return fmt.Errorf("heartbeat of %s: %w", p, err)
		}
	}
	return nil
}

// For is the timing of hosts of a personality.
func (c Config) For(personality string) Timing {
	if t, ok := c.Personalities[personality]; ok {
		return t
	}
	return c.Timing
}

type beat struct {
	timing       Timing
	last         time.Time
	next         time.Time // when the agent is due again: last and the interval it was given
	boot         string
	seq          uint64
	availability string // as stored
	name         string
	// heard: another controller heard the agent (see Apply); boot and seq
	// are this controller's own.
	heard bool
}

// Monitor is the heartbeat table and its watcher.
type Monitor struct {
	st      store.Store
	cfg     Config
	started time.Time
	log     *slog.Logger

	mu    sync.Mutex
	beats map[int64]*beat
	// pending are the hosts heard since the last Flush; noted counts the
	// notes written.
	pending map[int64]bool
	noted   int64
	// applied is the last note of each other controller that Apply
	// applied, in this term of leadership.
	applied map[string]int64
	// leading: Run runs, and counts this controller's heartbeats itself.
	leading bool
}

// New returns a Monitor; Start loads the enrolled hosts.
func New(st store.Store, cfg Config) *Monitor {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.NewUUID == nil {
		cfg.NewUUID = uuid.NewString
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Monitor{st: st, cfg: cfg, log: cfg.Log.With("logger", "mtce"), beats: map[int64]*beat{},
		pending: map[int64]bool{}, applied: map[string]int64{}}
}

func (m *Monitor) now() time.Time { return m.cfg.Clock().UTC().Truncate(time.Microsecond) }

// Start loads the hosts that have an agent. Each counts as heard at the
// start, which is the grace period after a restart.
func (m *Monitor) Start(ctx context.Context) error {
	m.started = m.now()
	var hosts []store.AgentHost
	err := m.st.Read(ctx, func(tx store.Tx) (err error) {
		hosts, err = tx.ListAgentHosts()
		return err
	})
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, h := range hosts {
		m.beats[h.ID] = &beat{timing: m.cfg.For(h.Personality), last: m.started, availability: h.Availability, name: h.Hostname}
	}
	return nil
}

// Enrolled starts watching a host whose agent just joined.
func (m *Monitor) Enrolled(h store.Host) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.beats[h.ID] = &beat{timing: m.cfg.For(h.Personality), last: m.now(), availability: h.Availability, name: h.Hostname}
}

// Heartbeat records one heartbeat of host h (from its agent's certificate)
// and answers it; storedHash is the hash of the inventory stored for it,
// which the agent is asked to replace when its own differs.
func (m *Monitor) Heartbeat(ctx context.Context, h store.Host, hb wire.Heartbeat, storedHash string) (wire.HeartbeatReply, error) {
	now := m.now()
	m.mu.Lock()
	b, ok := m.beats[h.ID]
	if !ok {
		b = &beat{availability: h.Availability, name: h.Hostname}
		m.beats[h.ID] = b
	}
	b.timing = m.cfg.For(h.Personality)
	interval := b.timing.Interval
	if hb.Boot == "" {
		m.mu.Unlock()
		return wire.HeartbeatReply{}, problem.Invalidf("boot", "a heartbeat needs the agent's boot id")
	}
	if hb.Boot == b.boot && hb.Seq <= b.seq {
		m.mu.Unlock()
		return wire.HeartbeatReply{}, problem.Conflictf("seq", "heartbeat %d was already seen (last %d): a replay, or a second agent with this certificate", hb.Seq, b.seq)
	}
	b.boot, b.seq, b.last, b.name = hb.Boot, hb.Seq, now, h.Hostname
	current := b.availability
	m.pending[h.ID] = true
	m.mu.Unlock()

	if current != inventory.AvailAvailable {
		if err := m.transition(ctx, h.ID, inventory.AvailAvailable, "heartbeat received"); err != nil {
			return wire.HeartbeatReply{}, err
		}
	}
	reply := wire.HeartbeatReply{IntervalMillis: interval.Milliseconds()}
	if m.cfg.Apps != nil {
		var fast bool
		reply.DesiredVersion, fast = m.cfg.Apps.Heartbeat(ctx, h, hb)
		if fast {
			reply.IntervalMillis = min(interval, FastInterval).Milliseconds()
		}
	}
	reply.SendInventory = storedHash != hb.InventoryHash || storedHash == ""
	m.mu.Lock()
	b.next = now.Add(time.Duration(reply.IntervalMillis) * time.Millisecond)
	m.mu.Unlock()
	return reply, nil
}

// NextHeartbeat is when the agent of a host is due to send its next
// heartbeat, as its last reply told it; false when it has sent none since
// the controller started. Anything the controller wants of the agent
// between heartbeats waits for that one.
func (m *Monitor) NextHeartbeat(hostID int64) (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.beats[hostID]
	if !ok || b.next.IsZero() {
		return time.Time{}, false
	}
	return b.next, true
}

// LastHeartbeat is when the controller last received a heartbeat of a
// host's agent; false when it has received none since it started.
func (m *Monitor) LastHeartbeat(hostID int64) (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.beats[hostID]
	if !ok || (b.boot == "" && !b.heard) {
		return time.Time{}, false
	}
	return b.last, true
}

// Forget stops watching a host (its agent was removed or the host deleted).
func (m *Monitor) Forget(hostID int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.beats, hostID)
}

// Check looks at every watched host once and makes the transitions due.
func (m *Monitor) Check(ctx context.Context) {
	now := m.now()
	type due struct {
		id    int64
		state string
		why   string
	}
	var todo []due
	m.mu.Lock()
	for id, b := range m.beats {
		if b.availability == inventory.AvailOffline && b.boot == "" && !b.heard {
			continue // never heard since it joined: stays offline
		}
		last := b.last
		if last.Before(m.started) {
			last = m.started
		}
		missed := int(now.Sub(last) / b.timing.Interval)
		want := inventory.AvailAvailable
		switch {
		case missed >= b.timing.FailAfter:
			want = inventory.AvailFailed
		case missed >= b.timing.DegradeAfter:
			want = inventory.AvailDegraded
		}
		if want != b.availability && want != inventory.AvailAvailable {
			todo = append(todo, due{id, want, fmt.Sprintf("no heartbeat for %s (%d intervals of %s)", now.Sub(last).Round(time.Second), missed, b.timing.Interval)})
		}
	}
	m.mu.Unlock()
	for _, d := range todo {
		if err := m.transition(ctx, d.id, d.state, d.why); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				m.Forget(d.id)
				continue
			}
			m.log.Warn("transition failed", "host_id", d.id, "to", d.state, "err", err)
		}
	}
}

// Run checks the hosts every quarter of the shortest interval until ctx
// ends.
func (m *Monitor) Run(ctx context.Context) {
	shortest := m.cfg.Interval
	for _, t := range m.cfg.Personalities {
		shortest = min(shortest, t.Interval)
	}
	// Run starts a term of leadership (or the controller): what another
	// leader heard before is not known here, so, as after a start, nothing
	// is declared degraded or failed before the thresholds have passed.
	m.mu.Lock()
	m.started = m.now()
	m.applied = map[string]int64{}
	m.leading = true
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.leading = false
		m.mu.Unlock()
	}()
	t := time.NewTicker(max(shortest/4, 50*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.Apply(ctx); err != nil && ctx.Err() == nil {
				m.log.Warn("reading what other controllers heard failed", "err", err)
			}
			m.Check(ctx)
		}
	}
}

// transition stores a host's new availability with its event and alarms.
func (m *Monitor) transition(ctx context.Context, hostID int64, to, why string) error {
	now := m.now()
	var name, from string
	err := m.st.Write(ctx, func(tx store.Tx) error {
		h, err := tx.HostByID(hostID)
		if err != nil {
			return err
		}
		name, from = h.Hostname, h.Availability
		if from == to {
			return nil
		}
		// A locked host stays disabled whatever its heartbeats say: it is out of service until
		// unlocked.
		oper := inventory.OperEnabled
		if to == inventory.AvailFailed || h.Administrative == inventory.AdminLocked {
			oper = inventory.OperDisabled
		}
		if err := tx.SetHostState(hostID, to, oper, now); err != nil {
			return err
		}
		entity := "host=" + h.Hostname
		if err := tx.AppendEvent(&store.Event{
			UUID: m.cfg.NewUUID(), Time: now, Code: inventory.CodeHostState, EntityType: "host",
			EntityID: entity, Action: "host.state", Actor: "mtce",
			Reason: fmt.Sprintf("host %s %s → %s: %s", h.Hostname, from, to, why),
		}); err != nil {
			return err
		}
		alarm := func(id, severity, reason, repair string, affecting bool) error {
			return fm.Raise(tx, store.Alarm{
				UUID: m.cfg.NewUUID(), AlarmID: id, EntityType: "host", EntityInstance: entity,
				Severity: severity, Reason: reason, AlarmType: "communication",
				ProbableCause: "loss of signal", ProposedRepairAction: repair, ServiceAffecting: affecting,
			}, m.cfg.NewUUID(), now)
		}
		const repair = "Check the node's power and its network path to the controller, and that hb-agent runs on it (systemctl status hb-agent)."
		switch to {
		case inventory.AvailDegraded:
			if err := fm.Clear(tx, fm.AlarmHostFailed, "host", entity, "host "+h.Hostname+" heard again", m.cfg.NewUUID(), now); err != nil {
				return err
			}
			return alarm(fm.AlarmHeartbeatLoss, fm.Major, fmt.Sprintf("%s: management heartbeat loss (degraded)", h.Hostname), repair, false)
		case inventory.AvailFailed:
			if err := alarm(fm.AlarmHeartbeatLoss, fm.Critical, fmt.Sprintf("%s: management heartbeat loss (failed)", h.Hostname), repair, true); err != nil {
				return err
			}
			return alarm(fm.AlarmHostFailed, fm.Critical, fmt.Sprintf("%s experienced a service-affecting failure: no heartbeat", h.Hostname), repair, true)
		default:
			for _, id := range []string{fm.AlarmHostFailed, fm.AlarmHeartbeatLoss} {
				if err := fm.Clear(tx, id, "host", entity, "host "+h.Hostname+" heard again", m.cfg.NewUUID(), now); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	m.mu.Lock()
	if b, ok := m.beats[hostID]; ok {
		b.availability = to
	}
	m.mu.Unlock()
	if from != to {
		m.log.Info("host availability changed", "host", name, "from", from, "to", to, "why", why)
	}
	return nil
}
