// Package workloads runs the inventory's redundant apps in the cluster. On every pass, and soon
// after an app is added, deleted or changed, it keeps in namespace hummingbird-apps, for each app:
//
//   - a DaemonSet hb-app-NAME that runs the app warm on each of its members' Nodes and nowhere
//     else (not on its witness), on the node's network, where the member's agent holds the app's
//     VIP and checks its health on 127.0.0.1. The pods' readiness probe asks the member's agent,
//     which answers 200 only on the active member: only the active member's pod is Ready, also
//     while the controller is unreachable;
//   - a Service hb-app-NAME of the app's port (none when it has no port), whose one endpoint is
//     therefore the active member's pod.
//
// A pod's readiness is its kubelet's to report, and a kubelet cut off from the cluster with its
// node reports nothing: the old active's pod stayed Ready, an endpoint of the Service, until
// Kubernetes found its Node NotReady (40 s by default). So once the members confirm a new active
// member (a majority of them, see package appstate), the reconciler sets the Ready condition of
// every other member's pod that is still Ready to False itself, with reason ReasonNotActive, as
// Kubernetes' node lifecycle controller does for a silent Node's pods; and it sets the new
// active member's pod Ready when its containers run, in the first moments (Config.Settle) of its
// epoch, without waiting for its kubelet's next readiness probe (up to its period, 1 s, later;
// the probe, which asks the same agent, then agrees; a kubelet that says NotReady after that is
// left alone). The EndpointSlice follows at once. A pod it marked NotReady on the member that is
// active again is set Ready again (its kubelet, which saw no change, writes nothing). The
// controller does this on each pass and as soon as appstate tells it of a new active member; while no controller runs, the old
// active's pod stays an endpoint until its Node is NotReady, as without Hummingbird.
//
// It puts right the objects that drift or are deleted, comparing only the fields it sets, so a
// pass that finds everything in order writes nothing; and it deletes the objects of apps that are
// gone. The objects carry app.kubernetes.io/managed-by=hummingbird; others are never touched.
package workloads

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"hummingbird.io/hummingbird/internal/kube"
	"hummingbird.io/hummingbird/internal/store"
)

// Config is how the reconciler runs.
type Config struct {
	// Interval is the time between passes; 15 s when zero.
	Interval time.Duration
	// Settle is how long after a pass first sees a new active member it makes that member's
	// running pod Ready, passing again every eighth of it; 2 s (twice the pods' readiness probe
	// period) when zero.
	Settle time.Duration
	Log    *slog.Logger
}

// Reconciler runs the passes.
type Reconciler struct {
	st      store.Store
	cluster *kube.Cluster
	cfg     Config
	log     *slog.Logger
	kick    chan struct{}
	// epochs is the epoch of each app's active member as the passes saw it first (passes run
	// one at a time).
	epochs map[string]epochSeen
}

// New makes a reconciler of the apps' objects in cluster.
func New(st store.Store, cluster *kube.Cluster, cfg Config) *Reconciler {
	if cfg.Interval <= 0 {
		cfg.Interval = 15 * time.Second
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 2 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Reconciler{st: st, cluster: cluster, cfg: cfg, log: cfg.Log.With("logger", "workloads"), kick: make(chan struct{}, 1),
		epochs: map[string]epochSeen{}}
}

// Kick asks for a pass soon, after an app was added, deleted or changed.
func (r *Reconciler) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run makes passes until ctx ends. A failed pass is logged, and the next one tries again.
func (r *Reconciler) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	failing := false
	for {
		if _, err := r.Sync(ctx); err != nil && ctx.Err() == nil {
			if !failing {
				r.log.Warn("cannot reconcile the apps' objects in the cluster; trying again", "err", err, "every", r.cfg.Interval)
			}
			failing = true
		} else if failing && ctx.Err() == nil {
			r.log.Info("reconciling the apps' objects in the cluster again")
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

// Pass counts the writes of one pass.
type Pass struct {
	Created, Updated, Deleted int
	// Marked is the number of pods whose Ready condition the pass set (ReasonNotActive).
	Marked int
}

// Writes is the number of objects the pass wrote.
func (p Pass) Writes() int { return p.Created + p.Updated + p.Deleted + p.Marked }

// ReasonNotActive is the reason of the Ready condition the reconciler sets False on the pod of
// a member that is not its app's active member; ReasonActive of one it sets True again.
const (
	ReasonNotActive = "HummingbirdNotActive"
	ReasonActive    = "HummingbirdActive"
)

// managedSelector selects the objects of apps that Hummingbird made.
const managedSelector = LabelManagedBy + "=" + ManagedBy + "," + LabelApp

// Sync makes one pass, and says what it wrote. It goes on past an app whose objects fail, and
// returns the first failure with their number.
func (r *Reconciler) Sync(ctx context.Context) (Pass, error) {
	var p Pass
	var apps []store.App
	if err := r.st.Read(ctx, func(tx store.Tx) error {
		var err error
		apps, err = tx.ListApps()
		return err
	}); err != nil {
		return p, fmt.Errorf("reading the apps: %w", err)
	}
	var errs []error
	var want []Objects
	// Apps whose objects cannot be built keep the ones they have.
	keep := map[string]bool{}
	for _, a := range apps {
		o, err := Desired(a)
		if err != nil {
			errs = append(errs, err)
			keep[a.Name] = true
			continue
		}
		want = append(want, o)
	}
	if len(want) > 0 {
		created, err := r.cluster.EnsureNamespace(ctx, Namespace, map[string]string{LabelManagedBy: ManagedBy})
		if err != nil {
			return p, err
		}
		if created {
			p.Created++
			r.log.Info("created the namespace of apps", "namespace", Namespace)
		}
	}
	dsList, err := r.cluster.DaemonSets(ctx, Namespace, managedSelector)
	if err != nil {
		return p, err
	}
	svcList, err := r.cluster.Services(ctx, Namespace, managedSelector)
	if err != nil {
		return p, err
	}
	daemonSets := make(map[string]*appsv1.DaemonSet, len(dsList))
	for i := range dsList {
		daemonSets[dsList[i].Name] = &dsList[i]
	}
	services := make(map[string]*corev1.Service, len(svcList))
	for i := range svcList {
		services[svcList[i].Name] = &svcList[i]
	}
	wantDS, wantSvc := map[string]bool{}, map[string]bool{}
	for _, o := range want {
		wantDS[o.DaemonSet.Name] = true
		if err := r.syncDaemonSet(ctx, &p, daemonSets[o.DaemonSet.Name], o.DaemonSet); err != nil {
			errs = append(errs, err)
		}
		if o.Service != nil {
			wantSvc[o.Service.Name] = true
			if err := r.syncService(ctx, &p, services[o.Service.Name], o.Service); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, ds := range dsList {
		if wantDS[ds.Name] || keep[ds.Labels[LabelApp]] {
			continue
		}
		if err := r.cluster.DeleteDaemonSet(ctx, ds.Namespace, ds.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		p.Deleted++
		r.log.Info("deleted the DaemonSet of an app that is gone", "app", ds.Labels[LabelApp], "daemonset", ds.Name)
	}
	for _, svc := range svcList {
		if wantSvc[svc.Name] || keep[svc.Labels[LabelApp]] {
			continue
		}
		if err := r.cluster.DeleteService(ctx, svc.Namespace, svc.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		p.Deleted++
		r.log.Info("deleted the Service of an app that is gone or has no port", "app", svc.Labels[LabelApp], "service", svc.Name)
	}
	if len(want) > 0 {
		if err := r.syncReady(ctx, &p, apps); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return p, fmt.Errorf("%d failures in the objects of %d apps, the first: %w", len(errs), len(apps), errs[0])
	}
	return p, nil
}

// syncReady keeps the Ready condition of the apps' pods from claiming what the members say is
// not so: see the package comment.
func (r *Reconciler) syncReady(ctx context.Context, p *Pass, apps []store.App) error {
	pods, err := r.cluster.Pods(ctx, Namespace, LabelApp)
	if err != nil {
		return err
	}
	byApp := map[string][]kube.Pod{}
	for _, pod := range pods {
		byApp[pod.App] = append(byApp[pod.App], pod)
	}
	now := time.Now()
	var errs []error
	recheck := false
	for _, a := range apps {
		if a.ActiveHostname == "" {
			continue // no active member confirmed: the kubelets' word stands
		}
		// A new active member's pod is made Ready in the first moments of its epoch (a status its
		// kubelet wrote just before may land after ours): later, a kubelet that says NotReady
		// knows better, its probe asking the member's agent.
		seen, ok := r.epochs[a.Name]
		if !ok || seen.epoch != a.Epoch {
			seen = epochSeen{epoch: a.Epoch, at: now}
			r.epochs[a.Name] = seen
		}
		fresh := now.Sub(seen.at) < r.cfg.Settle
		recheck = recheck || fresh
		type mark struct {
			pod         kube.Pod
			ready       bool
			reason, msg string
		}
		var marks []mark
		for _, pod := range byApp[a.Name] {
			switch {
			case pod.Node != a.ActiveHostname && pod.Ready:
				marks = append(marks, mark{pod, false, ReasonNotActive, fmt.Sprintf(
					"%s is not the active member of app %s: %s is, in epoch %d (Hummingbird)", pod.Node, a.Name, a.ActiveHostname, a.Epoch)})
			case pod.Node == a.ActiveHostname && !pod.Ready && (pod.Reason == ReasonNotActive || pod.Running && fresh):
				marks = append(marks, mark{pod, true, ReasonActive, fmt.Sprintf(
					"%s is the active member of app %s, in epoch %d (Hummingbird)", pod.Node, a.Name, a.Epoch)})
			}
		}
		// The new active's pod first, then the others', apart: the EndpointSlice controller
		// takes a change that comes while its cache still lacks its own last write as a
		// conflict and tries again only after a second.
		slices.SortStableFunc(marks, func(x, y mark) int { return cmp.Compare(b2i(y.ready), b2i(x.ready)) })
		for i, m := range marks {
			if i > 0 && m.ready != marks[i-1].ready {
				time.Sleep(r.cfg.Settle / 20)
			}
			if err := r.cluster.SetPodReady(ctx, Namespace, m.pod.Name, m.ready, m.reason, m.msg, now); err != nil {
				errs = append(errs, err)
				continue
			}
			p.Marked++
			r.log.Info("set the readiness of an app's pod", "app", a.Name, "node", m.pod.Node, "ready", m.ready,
				"active", a.ActiveHostname, "epoch", a.Epoch)
		}
	}
	if recheck {
		time.AfterFunc(r.cfg.Settle/8, r.Kick) // again soon, while the new epoch settles
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d pods' readiness: %w", len(errs), errs[0])
	}
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// epochSeen is an app's epoch and when a pass first saw it.
type epochSeen struct {
	epoch int64
	at    time.Time
}

// syncDaemonSet creates want, or puts have right.
func (r *Reconciler) syncDaemonSet(ctx context.Context, p *Pass, have, want *appsv1.DaemonSet) error {
	app := want.Labels[LabelApp]
	if have == nil {
		if err := r.cluster.CreateDaemonSet(ctx, want); err != nil {
			return err
		}
		p.Created++
		r.log.Info("created the DaemonSet of an app", "app", app, "daemonset", want.Name)
		return nil
	}
	merged, changed, replace := mergeDaemonSet(have, want)
	if replace {
		// Its selector is not the app's and cannot change: make it again.
		if err := r.cluster.DeleteDaemonSet(ctx, have.Namespace, have.Name); err != nil {
			return err
		}
		p.Deleted++
		if err := r.cluster.CreateDaemonSet(ctx, want); err != nil {
			return err
		}
		p.Created++
		r.log.Info("made the DaemonSet of an app again: its selector was not the app's", "app", app, "daemonset", want.Name)
		return nil
	}
	if !changed {
		return nil
	}
	if err := r.cluster.UpdateDaemonSet(ctx, merged); err != nil {
		return err
	}
	p.Updated++
	r.log.Info("put right the DaemonSet of an app", "app", app, "daemonset", want.Name)
	return nil
}

// syncService creates want, or puts have right.
func (r *Reconciler) syncService(ctx context.Context, p *Pass, have, want *corev1.Service) error {
	app := want.Labels[LabelApp]
	if have == nil {
		if err := r.cluster.CreateService(ctx, want); err != nil {
			return err
		}
		p.Created++
		r.log.Info("created the Service of an app", "app", app, "service", want.Name)
		return nil
	}
	merged, changed, replace := mergeService(have, want)
	if replace {
		// A headless Service cannot get a cluster IP: make it again.
		if err := r.cluster.DeleteService(ctx, have.Namespace, have.Name); err != nil {
			return err
		}
		p.Deleted++
		if err := r.cluster.CreateService(ctx, want); err != nil {
			return err
		}
		p.Created++
		r.log.Info("made the Service of an app again: it was headless", "app", app, "service", want.Name)
		return nil
	}
	if !changed {
		return nil
	}
	if err := r.cluster.UpdateService(ctx, merged); err != nil {
		return err
	}
	p.Updated++
	r.log.Info("put right the Service of an app", "app", app, "service", want.Name)
	return nil
}
