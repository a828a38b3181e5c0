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
package nodes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"hummingbird.io/hummingbird/internal/apitype"
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
	RoleLabelPrefix = "node-role.kubernetes.io/"
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
	// Heartbeats tells when a host's agent last heartbeated (the controller's heartbeat
	// monitor); nil: never, and 200.006 is not raised.
	Heartbeats Heartbeats
	Log        *slog.Logger
	Now        func() time.Time
	NewUUID    func() string
}

// Heartbeats is what the reconciler needs of the heartbeat monitor (mtce.Monitor).
type Heartbeats interface {
	// LastHeartbeat is when the agent of a host last heartbeated; false: not since the
	// controller started.
	LastHeartbeat(hostID int64) (time.Time, bool)
}

// Reconciler runs the passes.
type Reconciler struct {
	st      store.Store
	cluster *kube.Cluster
	cfg     Config
	log     *slog.Logger
	kick    chan struct{}

	mu sync.Mutex
	// notReady is when a pass first saw a host's Node NotReady, by host id.
	notReady map[int64]time.Time
}

// New makes a reconciler of the cluster's Nodes.
func New(st store.Store, cluster *kube.Cluster, cfg Config) *Reconciler {
	if cfg.Interval <= 0 {
		cfg.Interval = 15 * time.Second
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
	return &Reconciler{st: st, cluster: cluster, cfg: cfg, log: cfg.Log.With("logger", "nodes"), kick: make(chan struct{}, 1),
		notReady: map[int64]time.Time{}}
}

// Kick asks for a pass soon, after a change that affects Nodes' labels.
func (r *Reconciler) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run makes passes until ctx ends.
func (r *Reconciler) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	failing := false
	for {
		if err := r.Sync(ctx); err != nil && ctx.Err() == nil {
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
	if !n.State.Exists || n.State.Owner != "" || n.State.Created.IsZero() {
		return false
	}
	if _, ok := n.State.Labels[RoleLabelPrefix+h.Personality]; !ok || h.Personality != apitype.PersonalityEdgeworker {
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

// Sync makes one pass.
func (r *Reconciler) Sync(ctx context.Context) error {
	var hosts []store.Host
	var groups map[string]map[string]string
	jobs := map[int64][]store.ProvisionJob{} // succeeded, by host
	alarmed := map[string]bool{}             // entities with a kubelet alarm
	if err := r.st.Read(ctx, func(tx store.Tx) error {
		var err error
		if hosts, err = tx.ListHosts(store.HostFilter{}); err != nil {
			return err
		}
		alarms, err := tx.ListAlarms(store.AlarmFilter{})
		if err != nil {
			return err
		}
		for _, a := range alarms {
			if a.AlarmID == AlarmKubelet {
				alarmed[a.EntityInstance] = true
			}
		}
		succeeded, err := tx.ListProvisionJobs(jobSucceeded)
		if err != nil {
			return err
		}
		for _, j := range succeeded {
			jobs[j.HostID] = append(jobs[j.HostID], j)
		}
		groups, err = tx.AllGroupLabels()
		return err
	}); err != nil {
		return err
	}
	list, err := r.cluster.Nodes(ctx)
	if err != nil {
		return err
	}
	byName := make(map[string]kube.Node, len(list))
	for _, n := range list {
		byName[n.Name] = n
	}
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
	var errs []error
	for _, h := range hosts {
		n, ok := byName[h.Hostname]
		if ok && Adoptable(h, n, jobs[h.ID]) {
			if err := r.cluster.ClaimNode(ctx, n.Name, h.UUID, n.State.UID); err != nil {
				errs = append(errs, err)
			} else {
				n.State.Owner = h.UUID
				r.log.Info("adopted the node a provisioning job joined before nodes were marked", "host", h.Hostname,
					"created", n.State.Created)
			}
		}
		if n.State.Owns(h.UUID) {
			changed, err := r.cluster.ApplyManagedLabels(ctx, n, h.UUID, Labels(h, groups[h.Group]))
			var notOwned *kube.NotOwnedError
			switch {
			case errors.As(err, &notOwned):
				// Changed hands since it was listed: the next pass sees it as it is.
			case err != nil:
				errs = append(errs, err)
			case changed:
				r.log.Info("set the labels of a node", "host", h.Hostname)
			}
		}
		if err := r.record(ctx, h, n, ok, alarmed[kubeletEntity(h)]); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d of %d hosts: %w", len(errs), len(hosts), errs[0])
	}
	return nil
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
