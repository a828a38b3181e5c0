// Package nodes keeps the cluster's Nodes following the inventory and the inventory knowing its
// Nodes. On every pass, and soon after a change that affects labels, it:
//
//   - sets on each host's Node (the Node named like the host) the labels the inventory gives it:
//     its group's labels, its own, its personality as a node role, and hummingbird.io/group and
//     hummingbird.io/personality; it removes the ones it set before and no longer wants, and
//     leaves everyone else's alone. A Node that drifts or is made again is put right;
//   - stores the Node's Ready state, the reason when it is not Ready, and its kubelet's version
//     with the host, for host-show;
//   - raises alarm 200.006 for a host whose Node is NotReady while its agent still heartbeats (the
//     kubelet is down, not the host), and clears it when the Node is Ready again.
package nodes

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

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
// personality as a role, and Hummingbird's own.
func Labels(h store.Host, group map[string]string) map[string]string {
	l := map[string]string{}
	for k, v := range group {
		l[k] = v
	}
	for k, v := range h.Labels {
		l[k] = v
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
	Log      *slog.Logger
	Now      func() time.Time
	NewUUID  func() string
}

// Reconciler runs the passes.
type Reconciler struct {
	st      store.Store
	cluster *kube.Cluster
	cfg     Config
	log     *slog.Logger
	kick    chan struct{}
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
	return &Reconciler{st: st, cluster: cluster, cfg: cfg, log: cfg.Log.With("logger", "nodes"), kick: make(chan struct{}, 1)}
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

// Sync makes one pass.
func (r *Reconciler) Sync(ctx context.Context) error {
	var hosts []store.Host
	var groups map[string]map[string]string
	alarmed := map[string]bool{} // entities with a kubelet alarm
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
	var errs []error
	for _, h := range hosts {
		n, ok := byName[h.Hostname]
		if ok {
			changed, err := r.cluster.ApplyManagedLabels(ctx, n, Labels(h, groups[h.Group]))
			if err != nil {
				errs = append(errs, err)
			} else if changed {
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

// record stores what was read of h's Node, and raises or clears its kubelet alarm, when either
// changed.
func (r *Reconciler) record(ctx context.Context, h store.Host, n kube.Node, exists, alarmed bool) error {
	want := store.HostNode{HostID: h.ID}
	if exists {
		want = store.HostNode{HostID: h.ID, State: "NotReady", KubeletVersion: n.State.KubeletVersion, Reason: n.State.Reason}
		if n.State.Ready {
			want.State, want.Reason = "Ready", ""
		}
	}
	// The host answers but its Node does not: the kubelet is down, not the host.
	kubeletDown := want.State == "NotReady" &&
		(h.Availability == inventory.AvailAvailable || h.Availability == inventory.AvailDegraded)
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
				Reason:               fmt.Sprintf("%s is degraded: its kubelet is not running or not reporting (Node NotReady: %s)", h.Hostname, want.Reason),
				ProposedRepairAction: "Check the kubelet on the host: systemctl status kubelet containerd; journalctl -u kubelet.",
			}, r.cfg.NewUUID(), now)
		}
		reason := fmt.Sprintf("the Node of %s is Ready", h.Hostname)
		if want.State == "" {
			reason = fmt.Sprintf("%s has no Node", h.Hostname)
		} else if want.State == "NotReady" {
			reason = fmt.Sprintf("%s is %s: its own alarms stand for it", h.Hostname, h.Availability)
		}
		return fm.Clear(tx, AlarmKubelet, "host", entity, reason, r.cfg.NewUUID(), now)
	})
}
