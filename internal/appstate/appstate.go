// Package appstate is the controller's side of redundant apps. It serves each
// host's desired state (wire.Desired: the apps it is a member or witness of)
// and keeps its version in memory, so that a heartbeat learns whether its
// agent must fetch a new one without a database query. It takes the app
// statuses the voters (members and witness) report in their heartbeats and
// shows what a majority of them confirm (confirm.go): the active member
// follows the highest epoch so confirmed and never goes back; every new
// switchover is stored with its event; a planned switchover ends when a
// majority reports it done; a member whose report is not confirmed is
// shown unknown; and alarm 400.002 (loss of redundancy) is raised while an
// app has no healthy standby. The store is written only when a report
// changes something.
//
// The in-memory view is rebuilt from the store at start, after every change
// through the API (Refresh), and periodically (Run), which is how several
// controllers on one database see each other's changes. Versions are a hash
// of the desired state, so every controller answers the same one.
package appstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"hummingbird.io/hummingbird/internal/fm"
	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/wire"
)

// DefaultRefreshInterval is how often the view is rebuilt from the store.
const DefaultRefreshInterval = 10 * time.Second

// Config configures a Tracker. Zero Clock, NewUUID and Log mean the wall
// clock, random v4 uuids and no log.
type Config struct {
	Clock           func() time.Time
	NewUUID         func() string
	Log             *slog.Logger
	RefreshInterval time.Duration // 0: DefaultRefreshInterval
	// ActiveChanged, when set, is called (outside any transaction) after the members
	// confirmed a new active member of an app: the Service's endpoints follow it.
	ActiveChanged func()
}

// Tracker is the in-memory view of the apps and the processing of their
// members' reports.
type Tracker struct {
	st  store.Store
	cfg Config
	log *slog.Logger

	// refreshMu serializes rebuilds of the view.
	refreshMu sync.Mutex
	// kick asks Run for a rebuild now.
	kick chan struct{}

	mu       sync.RWMutex
	apps     map[string]*entry // by name
	hostApps map[int64][]string
	versions map[int64]uint64 // by host; absent: no apps (version 0)
	fast     map[int64]bool   // hosts of apps with a pending switchover
	// alarmed is whether 400.002 is raised for an app (by id), as last
	// written; absent: not known yet.
	alarmed map[int64]bool
}

// entry is one app as the view holds it.
type entry struct {
	app     store.App
	desired []byte                    // JSON of the app's wire.App
	byUUID  map[string]int64          // members' host uuids → host ids
	reports map[int64]store.AppReport // the voters' last reports, by host id
}

// New returns a Tracker over st; Refresh loads it.
func New(st store.Store, cfg Config) *Tracker {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.NewUUID == nil {
		cfg.NewUUID = uuid.NewString
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = DefaultRefreshInterval
	}
	return &Tracker{st: st, cfg: cfg, log: cfg.Log.With("logger", "appstate"), kick: make(chan struct{}, 1), apps: map[string]*entry{},
		hostApps: map[int64][]string{}, versions: map[int64]uint64{}, fast: map[int64]bool{}, alarmed: map[int64]bool{}}
}

func (t *Tracker) now() time.Time { return t.cfg.Clock().UTC().Truncate(time.Microsecond) }

// Kick asks Run to rebuild the view now; it does not block.
func (t *Tracker) Kick() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// Run rebuilds the view every RefreshInterval, and when kicked, until ctx
// ends.
func (t *Tracker) Run(ctx context.Context) {
	tick := time.NewTicker(t.cfg.RefreshInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-t.kick:
		}
		if err := t.Refresh(ctx); err != nil && ctx.Err() == nil {
			t.log.Warn("refreshing the apps failed", "err", err)
		}
	}
}

// Refresh rebuilds the view from the store, and raises or clears the
// loss-of-redundancy alarm of the apps whose redundancy changed (a member's
// host went offline or came back).
func (t *Tracker) Refresh(ctx context.Context) error {
	t.refreshMu.Lock()
	defer t.refreshMu.Unlock()
	var (
		apps    []store.App
		reports map[int64][]store.AppReport
	)
	if err := t.st.Read(ctx, func(tx store.Tx) error {
		var err error
		if apps, err = tx.ListApps(); err != nil {
			return err
		}
		reports = make(map[int64][]store.AppReport, len(apps))
		for _, a := range apps {
			if reports[a.ID], err = tx.AppReports(a.ID); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	next := make(map[string]*entry, len(apps))
	for _, a := range apps {
		next[a.Name] = newEntry(a, reports[a.ID])
	}
	t.mu.Lock()
	t.apps = next
	t.hostApps = map[int64][]string{}
	for _, a := range apps { // by name, so each host's list is too
		for _, id := range voters(a) {
			t.hostApps[id] = append(t.hostApps[id], a.Name)
		}
	}
	t.versions, t.fast = map[int64]uint64{}, map[int64]bool{}
	for id := range t.hostApps {
		t.updateHostLocked(id)
	}
	var due []store.App
	known := map[int64]bool{}
	for _, a := range apps {
		known[a.ID] = true
		if raised, ok := t.alarmed[a.ID]; !ok || raised != wantAlarm(a) {
			due = append(due, a)
		}
	}
	for id := range t.alarmed {
		if !known[id] {
			delete(t.alarmed, id) // deleted; its alarm went with it
		}
	}
	t.mu.Unlock()
	if len(due) == 0 {
		return nil
	}
	set := map[int64]bool{}
	err := t.st.Write(ctx, func(tx store.Tx) error {
		clear(set)
		for _, a := range due {
			if err := t.alarm(tx, a); err != nil {
				return err
			}
			set[a.ID] = wantAlarm(a)
		}
		return nil
	})
	if err != nil {
		return err
	}
	t.mu.Lock()
	for id, v := range set {
		t.alarmed[id] = v
	}
	t.mu.Unlock()
	return nil
}

// voters are the hosts of an app's group: its members and its witness.
func voters(a store.App) []int64 {
	ids := make([]int64, 0, len(a.Members)+1)
	for _, m := range a.Members {
		ids = append(ids, m.HostID)
	}
	if a.Witness != nil {
		ids = append(ids, a.Witness.HostID)
	}
	return ids
}

func newEntry(a store.App, reports []store.AppReport) *entry {
	e := &entry{app: a, byUUID: map[string]int64{}, reports: map[int64]store.AppReport{}}
	for _, m := range a.Members {
		e.byUUID[m.HostUUID] = m.HostID
	}
	for _, r := range reports {
		e.reports[r.HostID] = r
	}
	b, err := json.Marshal(DesiredApp(a))
	if err != nil {
		panic(err) // a struct of strings and numbers always marshals
	}
	e.desired = b
	return e
}

// updateHostLocked recomputes a host's desired version and fast flag from
// its apps; t.mu is held.
func (t *Tracker) updateHostLocked(hostID int64) {
	names := t.hostApps[hostID]
	var entries []*entry
	fast := false
	for _, n := range names {
		if e := t.apps[n]; e != nil {
			entries = append(entries, e)
			fast = fast || e.app.Switchover.Pending
		}
	}
	if len(entries) == 0 {
		delete(t.versions, hostID)
		delete(t.fast, hostID)
		return
	}
	t.versions[hostID] = version(entries)
	if fast {
		t.fast[hostID] = true
	} else {
		delete(t.fast, hostID)
	}
}

// version is the desired-state version of a host with these apps (by
// name): a hash of what its agent would fetch, never 0.
func version(entries []*entry) uint64 {
	h := fnv.New64a()
	for _, e := range entries {
		h.Write(e.desired)
		h.Write([]byte{0})
	}
	if v := h.Sum64(); v != 0 {
		return v
	}
	return 1
}

// DesiredApp is an app as its members' agents get it.
func DesiredApp(a store.App) wire.App {
	out := wire.App{Name: a.Name, Port: a.Port, VIP: a.VIP, Members: []wire.AppMember{},
		Health:          wire.Health{Kind: a.HealthKind, Path: a.HealthPath},
		HeartbeatMillis: a.HeartbeatMillis, Probes: a.Probes, LeanProbes: a.LeanProbes}
	addr := func(ip string) string { return net.JoinHostPort(ip, strconv.Itoa(wire.FailoverPort)) }
	for _, m := range a.Members {
		out.Members = append(out.Members, wire.AppMember{HostUUID: m.HostUUID, Hostname: m.Hostname, Address: addr(m.MgmtIP),
			CertSerial: m.AgentSerial, Locked: m.Locked})
	}
	if w := a.Witness; w != nil {
		out.Members = append(out.Members, wire.AppMember{HostUUID: w.HostUUID, Hostname: w.Hostname, Address: addr(w.MgmtIP), Witness: true,
			CertSerial: w.AgentSerial})
	}
	if sw := a.Switchover; sw.Pending {
		out.Switchover = &wire.Switchover{Seq: uint64(sw.Seq)}
		for _, m := range a.Members {
			if m.HostID == sw.ToHostID {
				out.Switchover.To = m.HostUUID
			}
		}
	}
	return out
}

// Desired reads the desired state of host hostID from the store.
func (t *Tracker) Desired(ctx context.Context, hostID int64) (wire.Desired, error) {
	var apps []store.App
	if err := t.st.Read(ctx, func(tx store.Tx) error {
		var err error
		apps, err = tx.AppsOfHost(hostID)
		return err
	}); err != nil {
		return wire.Desired{}, err
	}
	out := wire.Desired{Apps: []wire.App{}}
	entries := make([]*entry, len(apps))
	for i, a := range apps {
		entries[i] = newEntry(a, nil)
		out.Apps = append(out.Apps, DesiredApp(a))
	}
	if len(entries) > 0 {
		out.Version = version(entries)
	}
	return out, nil
}

// Heartbeat takes the app statuses of a heartbeat of host h and returns the
// host's desired-state version and whether it should beat fast (it is in
// the group of an app with a pending planned switchover, which it then
// learns of quickly, and the controller learns quickly that it is done).
// Agents of capability 1 know no apps: 0 and false. It never
// fails the heartbeat: a report that cannot be stored is logged, and the
// next heartbeat tries again.
func (t *Tracker) Heartbeat(ctx context.Context, h store.Host, hb wire.Heartbeat) (uint64, bool) {
	if hb.Capability < 2 {
		return 0, false
	}
	t.mu.RLock()
	v, fast := t.versions[h.ID], t.fast[h.ID]
	names := t.hostApps[h.ID]
	if len(names) == 0 {
		t.mu.RUnlock()
		return v, fast
	}
	byName := make(map[string]*wire.AppStatus, len(hb.Apps))
	for i := range hb.Apps {
		byName[hb.Apps[i].Name] = &hb.Apps[i]
	}
	var changed []report
	now := t.now()
	for _, n := range names {
		if e := t.apps[n]; e != nil {
			r := report{app: n, status: reportOf(e.app, e.byUUID, h.ID, byName[n])}
			if !planFor(e.app, e.reports, r.status, now).empty() {
				changed = append(changed, r)
			}
		}
	}
	t.mu.RUnlock()
	if len(changed) == 0 {
		return v, fast
	}
	if err := t.apply(ctx, h, changed); err != nil {
		if ctx.Err() == nil {
			t.log.Warn("storing app statuses failed", "host", h.Hostname, "err", err)
		}
		return v, fast
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.versions[h.ID], t.fast[h.ID]
}

// report is what one heartbeat says of one app that changes the view.
type report struct {
	app    string
	status store.AppReport
}

// epochOf reads an agent's counter as a stored one.
func epochOf(v uint64) int64 {
	if v > 1<<62 {
		return 1 << 62
	}
	return int64(v)
}

// apply stores what changed in one transaction, with the events and alarms
// that follow, then puts the stored apps in the view.
func (t *Tracker) apply(ctx context.Context, h store.Host, reports []report) error {
	now := t.now()
	var (
		stored    []*entry
		alarmed   map[int64]bool
		newActive bool
	)
	t.mu.RLock()
	known := make(map[int64]bool, len(t.alarmed))
	for id, v := range t.alarmed {
		known[id] = v
	}
	t.mu.RUnlock()
	err := t.st.Write(ctx, func(tx store.Tx) error {
		stored, alarmed, newActive = nil, map[int64]bool{}, false
		for _, r := range reports {
			a, err := tx.AppByName(r.app)
			if errors.Is(err, store.ErrNotFound) {
				continue // deleted meanwhile
			} else if err != nil {
				return err
			}
			reports, err := t.store(tx, h, a, r, now)
			if err != nil {
				return err
			}
			if err := t.memberAlarm(tx, a, h, r.status.Missing, now); err != nil {
				return err
			}
			before := a.Epoch
			if a, err = tx.AppByName(r.app); err != nil {
				return err
			}
			newActive = newActive || a.Epoch != before
			if raised, ok := known[a.ID]; !ok || raised != wantAlarm(a) {
				if err := t.alarm(tx, a); err != nil {
					return err
				}
				alarmed[a.ID] = wantAlarm(a)
			}
			stored = append(stored, newEntry(a, reports))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if newActive && t.cfg.ActiveChanged != nil {
		t.cfg.ActiveChanged()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, v := range alarmed {
		t.alarmed[id] = v
	}
	for _, e := range stored {
		a := e.app
		if _, ok := t.apps[a.Name]; !ok {
			continue // a refresh found it deleted
		}
		t.apps[a.Name] = e
		for _, id := range voters(a) {
			t.updateHostLocked(id)
		}
	}
	return nil
}

// store writes one voter's report of app a, and what the reports of a
// majority of a's voters now confirm, as stored now; it returns the
// voters' reports.
func (t *Tracker) store(tx store.Tx, h store.Host, a store.App, r report, now time.Time) ([]store.AppReport, error) {
	list, err := tx.AppReports(a.ID)
	if err != nil {
		return nil, err
	}
	if !isVoter(a, h.ID) {
		return list, nil // no longer in the app's group
	}
	reports := make(map[int64]store.AppReport, len(list))
	for _, rep := range list {
		reports[rep.HostID] = rep
	}
	p := planFor(a, reports, r.status, now)
	if p.report != nil {
		if err := tx.SetAppReport(a.ID, *p.report); err != nil {
			return nil, err
		}
		reports[h.ID] = *p.report
	}
	if p.epoch > 0 {
		if _, err := tx.SetAppActive(a.ID, p.active, p.epoch); err != nil {
			return nil, err
		}
	}
	if p.last != nil {
		changed, err := tx.SetAppLastSwitch(a.ID, *p.last)
		if err != nil {
			return nil, err
		}
		if changed {
			if err := t.switchEvent(tx, a, *p.last, now); err != nil {
				return nil, err
			}
		}
	}
	for _, s := range p.statuses {
		if err := tx.SetAppMemberStatus(a.ID, s); err != nil {
			return nil, err
		}
	}
	if p.endSeq > 0 {
		if _, err := tx.EndAppSwitchover(a.ID, p.endSeq); err != nil {
			return nil, err
		}
	}
	out := make([]store.AppReport, 0, len(reports))
	for _, rep := range reports {
		out = append(out, rep)
	}
	return out, nil
}

// switchEvent logs a switchover: who took over from whom, how fast, why.
func (t *Tracker) switchEvent(tx store.Tx, a store.App, sw store.AppSwitch, now time.Time) error {
	name := func(id int64) string {
		for _, m := range a.Members {
			if m.HostID == id {
				return m.Hostname
			}
		}
		return "no active member"
	}
	reason := fmt.Sprintf("app %s switched from %s to %s in %d ms (epoch %d, reason %s)",
		a.Name, name(sw.FromHostID), name(sw.ToHostID), sw.DurationMillis, sw.Epoch, sw.Reason)
	t.log.Info("app switched over", "app", a.Name, "from", name(sw.FromHostID), "to", name(sw.ToHostID),
		"duration_ms", sw.DurationMillis, "epoch", sw.Epoch, "reason", sw.Reason)
	return tx.AppendEvent(&store.Event{UUID: t.cfg.NewUUID(), Time: now, EntityType: "app", EntityID: "app=" + a.Name,
		Action: "app.switchover", Actor: "agent", Reason: reason})
}

// memberAlarm raises 400.001 for member h of app a while its agent lacks
// the capabilities missing (comma-separated), and clears it when it has
// them all.
func (t *Tracker) memberAlarm(tx store.Tx, a store.App, h store.Host, missing string, now time.Time) error {
	entity := MemberEntity(a.Name, h.Hostname)
	if !isMember(a, h.ID) {
		return nil // the witness holds no VIP
	}
	if missing == "" {
		raised, err := tx.ListAlarms(store.AlarmFilter{EntityInstance: entity})
		if err != nil || len(raised) == 0 {
			return err
		}
		return fm.Clear(tx, fm.AlarmAppMember, "app", entity,
			fmt.Sprintf("the agent of %s has the capabilities app %s needs", h.Hostname, a.Name), t.cfg.NewUUID(), now)
	}
	caps := strings.ReplaceAll(missing, ",", ", ")
	return fm.Raise(tx, store.Alarm{
		UUID: t.cfg.NewUUID(), AlarmID: fm.AlarmAppMember, EntityType: "app", EntityInstance: entity, Severity: fm.Major,
		Reason: fmt.Sprintf("%s cannot be the active member of app %s: its agent lacks %s; it stays a standby that is never elected",
			h.Hostname, a.Name, caps),
		AlarmType: "operational", ProbableCause: "underlying resource unavailable", ServiceAffecting: false,
		ProposedRepairAction: fmt.Sprintf("Give hb-agent on %s %s (the shipped systemd unit and DaemonSet do: "+
			"deploy/README.md, \"What the agent needs\"), then restart it.", h.Hostname, caps),
	}, t.cfg.NewUUID(), now)
}

// MemberEntity is the alarm entity of host hostname as a member of app.
func MemberEntity(app, hostname string) string { return "app=" + app + ".host=" + hostname }

// wantAlarm: an app whose group elected an active member has lost its
// redundancy while no other member is a healthy standby.
func wantAlarm(a store.App) bool {
	return a.Epoch > 0 && len(inventory.HealthyStandbys(a)) == 0
}

// alarm raises or clears 400.002 for a as it is stored; both do nothing
// when the alarm is already so.
func (t *Tracker) alarm(tx store.Tx, a store.App) error {
	now, entity := t.now(), "app="+a.Name
	if !wantAlarm(a) {
		return fm.Clear(tx, fm.AlarmAppRedundancy, "app", entity, fmt.Sprintf("app %s has a healthy standby again", a.Name),
			t.cfg.NewUUID(), now)
	}
	active := a.ActiveHostname
	if active == "" {
		active = "(none)"
	}
	return fm.Raise(tx, store.Alarm{
		UUID: t.cfg.NewUUID(), AlarmID: fm.AlarmAppRedundancy, EntityType: "app", EntityInstance: entity,
		Severity: fm.Major, Reason: fmt.Sprintf("app %s loss of redundancy: no healthy standby for the active member %s", a.Name, active),
		AlarmType: "operational", ProbableCause: "loss of redundancy", ServiceAffecting: false,
		ProposedRepairAction: fmt.Sprintf("Bring another member of app %s back: check its host (hbctl host-list), its agent "+
			"and the app's health on it (hbctl app-show %s shows each member's role and health).", a.Name, a.Name),
	}, t.cfg.NewUUID(), now)
}
