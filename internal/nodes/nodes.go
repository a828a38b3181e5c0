// Package nodes keeps the cluster's Nodes following the inventory and the inventory knowing its
// Nodes. A host's Node is the Node named like the host that carries the host's uuid in
// kube.LabelHost: a Node of that name without it is not Hummingbird's, and is left alone (the
// host's node state says Conflict). On every pass, and soon after a change that affects labels,
// it:
//
//   - adopts, once, the Node of a host that Hummingbird joined before it marked the Nodes it owns
//     (see Adoptable);
//   - sets on each host's Node the labels the inventory gives it:
//     its group's labels, its own, its personality as a node role, and hummingbird.io/group and
//     hummingbird.io/personality; it removes the ones it set before and no longer wants, and
//     leaves everyone else's alone. A Node that drifts or is made again is put right;
//   - stores the Node's Ready state, the reason when it is not Ready, and its kubelet's version
//     with the host, for host-show;
//   - raises alarm 200.006 for a host whose Node is NotReady while its agent still heartbeats (the
//     kubelet is down, not the host): the host is available and its agent sent a heartbeat after
//     the reconciler first saw the Node NotReady. A host cut off from the controller stops both,
//     and gets the heartbeat alarms alone: 200.006 is not raised for it, or cleared once its
//     heartbeats stop. It is cleared when the Node is Ready again.
//
// It never lists the cluster's Nodes per pass: a cache lists them once, in pages, and then
// follows a watch (kube.NodeCache). A pass takes only the Nodes and hosts that changed since the
// last one, and a full pass every Config.Resync compares every host with its Node in the cache.
package nodes

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/feed"
	"hummingbird.io/hummingbird/internal/fm"
	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/kube"
	"hummingbird.io/hummingbird/internal/store"
)

// Labels the controller puts on Nodes.
const (
	LabelPersonality = "hummingbird.io/personality"
	LabelGroup       = "hummingbird.io/group"
	// RoleLabelPrefix makes the personality a node role (kubectl get nodes shows it).
	RoleLabelPrefix = kube.NodeRolePrefix
)

// Labels are the labels a host's Node carries: its group's, then its own (which win), its
// personality as a role, and Hummingbird's own. Keys the inventory reserves
// (inventory.ReservedLabelKey), which a label stored before they were refused may still have,
// are left out.
func Labels(h store.Host, group map[string]string) map[string]string {
	l := map[string]string{}
	for _, from := range []map[string]string{group, h.Labels} {
		for k, v := range from {
			if !inventory.ReservedLabelKey(k) {
				l[k] = v
			}
		}
	}
	l[RoleLabelPrefix+h.Personality] = ""
	l[LabelPersonality] = h.Personality
	if h.Group != "" {
		l[LabelGroup] = h.Group
	}
	return l
}

// Config is how the reconciler runs.
type Config struct {
	// Interval is the time between passes.
	Interval time.Duration
	// Resync is the time between full passes, which compare every host with its Node; the
	// passes between take only what changed. 0: DefaultResync.
	Resync time.Duration
	// Heartbeats tells when a host's agent last heartbeated (the controller's heartbeat
	// monitor); nil: never, and 200.006 is not raised.
	Heartbeats Heartbeats
	// Cache is how the Nodes are listed and watched; its Log is this one when unset.
	Cache   kube.NodeCacheOptions
	Log     *slog.Logger
	Now     func() time.Time
	NewUUID func() string
}

// DefaultResync is the time between full passes. A full pass reads every host from the store and
// compares it with its Node in the cache, without asking the API server: it puts right what the
// passes between could have missed (a change made to the store without an event, a write that
// failed) at a cost that grows with the inventory, so it is rare.
const DefaultResync = 10 * time.Minute

// Heartbeats is what the reconciler needs of the heartbeat monitor (mtce.Monitor).
type Heartbeats interface {
	// LastHeartbeat is when the agent of a host last heartbeated; false: not since the
	// controller started.
	LastHeartbeat(hostID int64) (time.Time, bool)
}

// Reconciler runs the passes. It reads the Nodes from a cache that lists them once and then
// follows a watch (kube.NodeCache), never listing them per pass. A pass takes:
//
//   - the Nodes the watch changed since the last pass, and the hosts named like them;
//   - the hosts the inventory changed, as the event log tells (added, updated, deleted,
//     labelled, provisioned, or in a group whose labels changed), and the ones named by
//     KickHosts;
//   - the hosts whose Node is NotReady, for alarm 200.006, which follows their heartbeats;
//
// and, every Config.Resync, every host (a full pass, as Sync makes). A pass that finds nothing
// changed costs one read of the event log.
type Reconciler struct {
	st      store.Store
	cluster *kube.Cluster
	cache   *kube.NodeCache // nil without a cluster
	cfg     Config
	log     *slog.Logger
	kick    chan struct{}

	mu sync.Mutex
	// notReady is when a pass first saw a host's Node NotReady, by host id.
	notReady map[int64]time.Time
	// kicked are the hosts KickHosts named since the last pass.
	kicked map[int64]struct{}

	// pass is held by a pass, and guards the fields below.
	pass sync.Mutex
	// events is how far the passes read the event log; nil until a full pass.
	events   *feed.Cursor
	lastFull time.Time
	// again are the names of the hosts and Nodes, and the groups, a failed pass leaves to the
	// next.
	again, againGroups map[string]struct{}
	stats              Stats
}

// Stats counts the passes and what they did.
type Stats struct {
	// Passes are all passes made, FullPasses those that compared every host.
	Passes, FullPasses int
	// Hosts are the hosts compared with their Nodes, over all passes.
	Hosts int
	// Labelled are the Nodes whose labels a pass wrote.
	Labelled int
}

// New makes a reconciler of the cluster's Nodes.
func New(st store.Store, cluster *kube.Cluster, cfg Config) *Reconciler {
	if cfg.Interval <= 0 {
		cfg.Interval = 15 * time.Second
	}
	if cfg.Resync <= 0 {
		cfg.Resync = DefaultResync
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewUUID == nil {
		cfg.NewUUID = uuid.NewString
	}
	if cfg.Cache.Log == nil {
		cfg.Cache.Log = cfg.Log
	}
	r := &Reconciler{st: st, cluster: cluster, cfg: cfg, log: cfg.Log.With("logger", "nodes"), kick: make(chan struct{}, 1),
		notReady: map[int64]time.Time{}, kicked: map[int64]struct{}{}, again: map[string]struct{}{},
		againGroups: map[string]struct{}{}}
	if cluster != nil {
		r.cache = cluster.NewNodeCache(cfg.Cache)
	}
	return r
}

// Kick asks for a pass soon, after a change that affects Nodes' labels. The pass finds the hosts
// that changed in the event log.
func (r *Reconciler) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// KickHosts asks for a pass soon that compares the hosts with these ids with their Nodes, for a
// change the event log does not tell.
func (r *Reconciler) KickHosts(ids ...int64) {
	r.mu.Lock()
	for _, id := range ids {
		r.kicked[id] = struct{}{}
	}
	r.mu.Unlock()
	r.Kick()
}

// Cache is the reconciler's cache of the cluster's Nodes; nil without a cluster.
func (r *Reconciler) Cache() *kube.NodeCache { return r.cache }

// Stats counts the passes made so far.
func (r *Reconciler) Stats() Stats {
	r.pass.Lock()
	defer r.pass.Unlock()
	return r.stats
}

// Run makes passes until ctx ends: a full one first, once the cache has listed the Nodes, and
// every Config.Resync; passes over what changed every Config.Interval and soon after a Kick.
// The cache runs as long as ctx.
func (r *Reconciler) Run(ctx context.Context) {
	if r.cache != nil {
		r.cache.Start(ctx)
	}
	r.pass.Lock()
	r.events = nil // a new run starts with a full pass
	r.pass.Unlock()
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	failing := false
	for {
		if err := r.step(ctx); err != nil && ctx.Err() == nil {
			if !failing {
				r.log.Warn("cannot reconcile the cluster's nodes; trying again", "err", err, "every", r.cfg.Interval)
			}
			failing = true
		} else if failing {
			r.log.Info("reconciling the cluster's nodes again")
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.kick:
		}
	}
}

// step makes the pass that is due: a full one, or one over what changed.
func (r *Reconciler) step(ctx context.Context) error {
	r.pass.Lock()
	defer r.pass.Unlock()
	if r.events == nil || r.cfg.Now().Sub(r.lastFull) >= r.cfg.Resync {
		return r.full(ctx)
	}
	return r.changes(ctx)
}

// NodeConflict is the node state of a host named like a Node that is not its own.
const NodeConflict = "Conflict"

// jobSucceeded is provision.StateSucceeded (package provision uses this one).
const jobSucceeded = "succeeded"

// AdoptionSkew is how far the clocks of the controller and of the API server may be apart for
// Adoptable.
const AdoptionSkew = time.Minute

// Adoptable says whether Node n, which carries no kube.LabelHost, is host h's by the rule for the
// Nodes Hummingbird joined before it marked them, jobs being the host's provisioning jobs that
// succeeded. It is when both hold:
//
//   - n was created (registered) while one of those jobs ran, give or take AdoptionSkew: the
//     job's kubeadm join made it. The creation time is the API server's, and the jobs are the
//     controller's records, written as they ran: whoever names a host can neither move a Node's
//     creation into a past job, nor make a job while a Node of that name that exists already is
//     created. A host named like a control-plane Node, or any Node that was there before, fails
//     this, also when a job of that host ran and, before the mark, labelled the Node;
//   - n carries the node role label of h's personality (node-role.kubernetes.io/edgeworker),
//     which a succeeded job set once the Node was Ready and which NodeRestriction keeps kubelets
//     from setting themselves.
//
// Nodes joined by hand (kubeadm join outside Hummingbird) are not adopted: a cluster admin
// vouches for one by labelling it kube.LabelHost=<host uuid>.
func Adoptable(h store.Host, n kube.Node, jobs []store.ProvisionJob) bool {
	if !adoptionCandidate(h, n) {
		return false
	}
	for _, j := range jobs {
		if j.HostID != h.ID || j.State != jobSucceeded || j.StartedAt.IsZero() || j.FinishedAt.IsZero() {
			continue
		}
		if !n.State.Created.Before(j.StartedAt.Add(-AdoptionSkew)) && !n.State.Created.After(j.FinishedAt.Add(AdoptionSkew)) {
			return true
		}
	}
	return false
}

// adoptionCandidate is what Adoptable asks of n and h before it looks at h's jobs.
func adoptionCandidate(h store.Host, n kube.Node) bool {
	if !n.State.Exists || n.State.Owner != "" || n.State.Created.IsZero() {
		return false
	}
	_, ok := n.State.Labels[RoleLabelPrefix+h.Personality]
	return ok && h.Personality == apitype.PersonalityEdgeworker
}

// Sync makes one full pass: it compares every host with its Node, as the cache holds it. It
// starts the cache if it does not run (it then runs as long as ctx), and waits until the cache
// has listed the Nodes: before that, no host would have a Node.
func (r *Reconciler) Sync(ctx context.Context) error {
	r.pass.Lock()
	defer r.pass.Unlock()
	return r.full(ctx)
}

// SyncChanges makes one pass over what changed since the last pass (see Reconciler); before the
// first full pass, it makes that.
func (r *Reconciler) SyncChanges(ctx context.Context) error {
	r.pass.Lock()
	defer r.pass.Unlock()
	if r.events == nil {
		return r.full(ctx)
	}
	return r.changes(ctx)
}

// synced starts the cache unless it runs, and waits until it has listed the Nodes.
func (r *Reconciler) synced(ctx context.Context) error {
	if r.cache == nil {
		return errors.New("no cluster to reconcile the nodes of")
	}
	r.cache.Start(ctx)
	return r.cache.WaitSynced(ctx)
}

// passData is what a pass reads of the store besides the hosts.
type passData struct {
	groups  map[string]map[string]string
	alarmed map[string]bool // entities with a kubelet alarm
	// jobs are the succeeded provisioning jobs by host; nil: not read yet. They are read for
	// the first Node that could be adopted (adoptionCandidate).
	jobs map[int64][]store.ProvisionJob
}

func (d *passData) read(tx store.Tx) error {
	var err error
	if d.groups, err = tx.AllGroupLabels(); err != nil {
		return err
	}
	alarms, err := tx.ListAlarms(store.AlarmFilter{})
	if err != nil {
		return err
	}
	d.alarmed = map[string]bool{}
	for _, a := range alarms {
		if a.AlarmID == AlarmKubelet {
			d.alarmed[a.EntityInstance] = true
		}
	}
	return nil
}

func (d *passData) readJobs(tx store.Tx) error {
	succeeded, err := tx.ListProvisionJobs(jobSucceeded)
	if err != nil {
		return err
	}
	d.jobs = map[int64][]store.ProvisionJob{}
	for _, j := range succeeded {
		d.jobs[j.HostID] = append(d.jobs[j.HostID], j)
	}
	return nil
}

// full makes a full pass.
func (r *Reconciler) full(ctx context.Context) error {
	if err := r.synced(ctx); err != nil {
		return err
	}
	var hosts []store.Host
	var d passData
	var lastEvent int64
	if err := r.st.Read(ctx, func(tx store.Tx) error {
		last, err := tx.ListEvents(store.EventFilter{Limit: 1})
		if err != nil {
			return err
		}
		lastEvent = 0
		if len(last) > 0 {
			lastEvent = last[0].ID
		}
		if hosts, err = tx.ListHosts(store.HostFilter{}); err != nil {
			return err
		}
		return d.read(tx)
	}); err != nil {
		return err
	}
	// Every host is taken from the store's snapshot, after which the event log is read from now
	// on, and every Node as the cache holds it from here.
	r.cache.Changed()
	r.takeKicked()
	clear(r.again)
	clear(r.againGroups)
	r.events = feed.NewCursor(lastEvent)
	r.lastFull = r.cfg.Now()
	r.stats.Passes++
	r.stats.FullPasses++
	r.mu.Lock()
	if len(r.notReady) > 0 {
		ids := make(map[int64]bool, len(hosts))
		for _, h := range hosts {
			ids[h.ID] = true
		}
		for id := range r.notReady {
			if !ids[id] {
				delete(r.notReady, id) // the host was deleted
			}
		}
	}
	r.mu.Unlock()
	return r.reconcileAll(ctx, hosts, &d)
}

// changes makes a pass over what changed.
func (r *Reconciler) changes(ctx context.Context) error {
	if err := r.synced(ctx); err != nil {
		return err
	}
	names, groups := r.again, r.againGroups
	r.again, r.againGroups = map[string]struct{}{}, map[string]struct{}{}
	for _, name := range r.cache.Changed() {
		names[name] = struct{}{}
	}
	ids := r.takeKicked()
	r.mu.Lock()
	for id := range r.notReady {
		ids[id] = struct{}{}
	}
	r.mu.Unlock()
	hosts := map[int64]store.Host{}
	var d passData
	err := r.st.Read(ctx, func(tx store.Tx) error {
		if err := r.readEvents(tx, names, groups); err != nil {
			return err
		}
		if len(names) == 0 && len(ids) == 0 && len(groups) == 0 {
			return nil
		}
		for name := range names {
			h, err := tx.HostByHostname(name)
			if errors.Is(err, store.ErrNotFound) {
				continue // a Node no host is named like, or a host deleted
			} else if err != nil {
				return err
			}
			hosts[h.ID] = h
		}
		for g := range groups {
			hs, err := tx.ListHosts(store.HostFilter{Group: g})
			if err != nil {
				return err
			}
			for _, h := range hs {
				hosts[h.ID] = h
			}
		}
		for id := range ids {
			if _, ok := hosts[id]; ok {
				continue
			}
			h, err := tx.HostByID(id)
			if errors.Is(err, store.ErrNotFound) {
				r.forgetNotReady(id) // the host was deleted
				continue
			} else if err != nil {
				return err
			}
			hosts[h.ID] = h
		}
		if len(hosts) == 0 {
			return nil
		}
		return d.read(tx)
	})
	if err != nil {
		// Whatever this pass took is left to the next.
		maps.Copy(r.again, names)
		maps.Copy(r.againGroups, groups)
		r.mu.Lock()
		maps.Copy(r.kicked, ids)
		r.mu.Unlock()
		return err
	}
	r.stats.Passes++
	if len(hosts) == 0 {
		return nil
	}
	list := slices.SortedFunc(maps.Values(hosts), func(a, b store.Host) int { return cmp.Compare(a.ID, b.ID) })
	return r.reconcileAll(ctx, list, &d)
}

// readEvents reads the event log after the passes' cursor, and adds the hosts that the
// inventory changed in a way that concerns their Nodes to names, and the groups whose labels
// changed to groups.
func (r *Reconciler) readEvents(tx store.Tx, names, groups map[string]struct{}) error {
	const batch = 500
	for {
		evs, err := tx.EventsAfter(r.events.At(), nil, batch)
		if err != nil {
			return err
		}
		for _, e := range r.events.Fresh(evs) {
			r.events.Done(e.ID)
			switch {
			case strings.HasPrefix(e.Action, "group.label."):
				if g, ok := strings.CutPrefix(e.EntityID, "group="); ok {
					groups[g] = struct{}{}
				}
			case e.Action == "host.add" || e.Action == "host.update" || e.Action == "host.delete" ||
				strings.HasPrefix(e.Action, "host.label.") || e.Action == "host.provision."+jobSucceeded:
				if name, ok := strings.CutPrefix(e.EntityID, "host="); ok {
					names[name] = struct{}{}
				}
			}
		}
		r.events.Advance(r.cfg.Now())
		if len(evs) < batch {
			return nil
		}
	}
}

func (r *Reconciler) takeKicked() map[int64]struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := r.kicked
	r.kicked = map[int64]struct{}{}
	return ids
}

// reconcileAll compares each of hosts with its Node. A host whose comparison failed is taken
// again by the next pass.
func (r *Reconciler) reconcileAll(ctx context.Context, hosts []store.Host, d *passData) error {
	r.stats.Hosts += len(hosts)
	var errs []error
	failed := 0
	for i, h := range hosts {
		n, ok := r.cache.Node(h.Hostname)
		if d.jobs == nil && ok && adoptionCandidate(h, n) {
			if err := r.st.Read(ctx, d.readJobs); err != nil {
				for _, h := range hosts[i:] {
					r.again[h.Hostname] = struct{}{}
				}
				return err
			}
		}
		if err := r.reconcile(ctx, h, n, ok, d); err != nil {
			errs = append(errs, err)
			failed++
			r.again[h.Hostname] = struct{}{}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d of %d hosts: %w", failed, len(hosts), errs[0])
	}
	return nil
}

// reconcile adopts h's Node if it may, sets its labels, and records it.
func (r *Reconciler) reconcile(ctx context.Context, h store.Host, n kube.Node, ok bool, d *passData) error {
	var errs []error
	if ok && Adoptable(h, n, d.jobs[h.ID]) {
		if err := r.cluster.ClaimNode(ctx, n.Name, h.UUID, n.State.UID); err != nil {
			errs = append(errs, err)
		} else {
			n.State.Owner = h.UUID
			r.log.Info("adopted the node a provisioning job joined before nodes were marked", "host", h.Hostname,
				"created", n.State.Created)
		}
	}
	if n.State.Owns(h.UUID) {
		changed, err := r.cluster.ApplyManagedLabels(ctx, n, h.UUID, Labels(h, d.groups[h.Group]))
		var notOwned *kube.NotOwnedError
		switch {
		case errors.As(err, &notOwned):
			// Changed hands since it was seen: the watch tells, and the next pass sees it as it is.
		case err != nil:
			errs = append(errs, err)
		case changed:
			r.stats.Labelled++
			r.log.Info("set the labels of a node", "host", h.Hostname)
		}
	}
	if err := r.record(ctx, h, n, ok, d.alarmed[kubeletEntity(h)]); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// AlarmKubelet is the process failure alarm of a host whose kubelet is down.
const AlarmKubelet = "200.006"

func kubeletEntity(h store.Host) string { return "host=" + h.Hostname + ".process=kubelet" }

// heardSinceNotReady notes when the Node of host id was first seen NotReady, and says whether
// its agent heartbeated after that: a kubelet that stopped while its host answers. The time
// is the controller's own on both sides, so the API server's clock does not enter it.
func (r *Reconciler) heardSinceNotReady(id int64) bool {
	r.mu.Lock()
	since, ok := r.notReady[id]
	if !ok {
		since = r.cfg.Now()
		r.notReady[id] = since
	}
	r.mu.Unlock()
	if r.cfg.Heartbeats == nil {
		return false
	}
	last, ok := r.cfg.Heartbeats.LastHeartbeat(id)
	return ok && last.After(since)
}

func (r *Reconciler) forgetNotReady(id int64) {
	r.mu.Lock()
	delete(r.notReady, id)
	r.mu.Unlock()
}

// record stores what was read of h's Node, and raises or clears its kubelet alarm, when either
// changed. A Node of h's name that is not h's is recorded as NodeConflict, with the reason,
// and nothing else of it.
func (r *Reconciler) record(ctx context.Context, h store.Host, n kube.Node, exists, alarmed bool) error {
	want := store.HostNode{HostID: h.ID}
	switch {
	case exists && !n.State.Owns(h.UUID):
		want = store.HostNode{HostID: h.ID, State: NodeConflict, Reason: kube.NotOwnedReason(n.State.Owner)}
	case exists:
		want = store.HostNode{HostID: h.ID, State: "NotReady", KubeletVersion: n.State.KubeletVersion, Reason: n.State.Reason}
		if n.State.Ready {
			want.State, want.Reason = "Ready", ""
		}
	}
	// The host answers but its Node does not: the kubelet is down, not the host.
	kubeletDown := false
	if want.State == "NotReady" {
		kubeletDown = r.heardSinceNotReady(h.ID) && h.Availability == inventory.AvailAvailable
	} else {
		r.forgetNotReady(h.ID)
	}
	entity := kubeletEntity(h)
	same := want.State == h.NodeState && want.KubeletVersion == h.KubeletVersion && want.Reason == h.NodeReason
	if same && kubeletDown == alarmed {
		return nil
	}
	now := r.cfg.Now().UTC().Truncate(time.Microsecond)
	return r.st.Write(ctx, func(tx store.Tx) error {
		if !same {
			want.UpdatedAt = now
			if err := tx.SetHostNode(want); err != nil {
				return err
			}
		}
		if kubeletDown {
			return fm.Raise(tx, store.Alarm{
				UUID: r.cfg.NewUUID(), AlarmID: AlarmKubelet, EntityType: "host", EntityInstance: entity,
				Severity: fm.Major, AlarmType: "processing-error", ProbableCause: "underlying resource unavailable",
				Reason: fmt.Sprintf("the kubelet of %s is not running or not reporting (Node NotReady: %s); "+
					"the host is available: its agent still heartbeats", h.Hostname, want.Reason),
				ProposedRepairAction: "Check the kubelet on the host: systemctl status kubelet containerd; journalctl -u kubelet.",
			}, r.cfg.NewUUID(), now)
		}
		reason := fmt.Sprintf("the Node of %s is Ready", h.Hostname)
		if want.State == NodeConflict {
			reason = fmt.Sprintf("the Node named like %s is not its own", h.Hostname)
		} else if want.State == "" {
			reason = fmt.Sprintf("%s has no Node", h.Hostname)
		} else if want.State == "NotReady" && h.Availability != inventory.AvailAvailable {
			reason = fmt.Sprintf("%s is %s: its own alarms stand for it", h.Hostname, h.Availability)
		} else if want.State == "NotReady" {
			reason = fmt.Sprintf("the agent of %s has not heartbeated since its Node went NotReady: its heartbeat alarms stand for it", h.Hostname)
		}
		return fm.Clear(tx, AlarmKubelet, "host", entity, reason, r.cfg.NewUUID(), now)
	})
}
