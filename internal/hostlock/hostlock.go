// Package hostlock locks and unlocks hosts, as StarlingX's host-lock and host-unlock do. A
// locked host is out of service: administrative locked, operational disabled.
//
// Locking a host whose Kubernetes Node exists first drains the Node: it is cordoned, and its
// pods are evicted through the eviction API, so that PodDisruptionBudgets are honoured. The
// host's Node is the Node of its name that carries its uuid in kube.LabelHost: a Node of its
// name that does not is not Hummingbird's, and is neither cordoned nor drained (the host is
// locked as one without a Node, and the lock says so). A drain
// takes time, so a lock is an operation that runs in the background and reports its progress;
// when it fails or times out, the Node is made schedulable again and the host stays unlocked.
// A host without a Node, or a controller without a cluster, is locked at once.
//
// Operations live in the controller's memory, the latest one per host. A controller that stops
// during a drain leaves the host unlocked; a graceful stop uncordons the Node, a crash leaves it
// cordoned.
package hostlock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/fm"
	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/kube"
	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/store"
)

// Operation states.
const (
	StateDraining  = "draining"
	StateLocked    = "locked"
	StateFailed    = "failed"
	StateCancelled = "cancelled"
)

// The time a drain may take: DefaultTimeout unless the request says, from MinTimeout to
// MaxTimeout.
const (
	DefaultTimeout = 5 * time.Minute
	MinTimeout     = 10 * time.Second
	MaxTimeout     = time.Hour
)

// Config tunes a Locker. Zero values take the defaults.
type Config struct {
	Log *slog.Logger
	// RetryInterval is how often an eviction a PodDisruptionBudget refused is asked again;
	// PollInterval how often the pods on a draining Node are read.
	RetryInterval time.Duration
	PollInterval  time.Duration
	// Now and NewUUID default to the clock and random UUIDs.
	Now     func() time.Time
	NewUUID func() string
	// Switchover asks the members of an app to move its active role away
	// from its active member (a planned switchover to any healthy standby).
	// Nil: a lock moves no app.
	Switchover func(ctx context.Context, actor, app string) error
	// AppPollInterval is how often a lock that moves apps reads whether
	// they moved (default 500 ms).
	AppPollInterval time.Duration
	// NextHeartbeat is when a host's agent is due to heartbeat next, which
	// is when it learns of a switchover; nil or false: unknown.
	NextHeartbeat func(hostID int64) (time.Time, bool)
}

// Operation is one host-lock.
type Operation struct {
	HostID   int64
	Hostname string
	State    string
	Force    bool
	Timeout  time.Duration
	Actor    string
	// PodsTotal are the pods the drain evicts; PodsEvicted those of them gone from the Node;
	// Pending the others (namespace/name).
	PodsTotal   int
	PodsEvicted int
	Pending     []string
	// Message says what the drain waits for, or why the lock failed.
	Message    string
	StartedAt  time.Time
	FinishedAt time.Time
	// CancelledBy is who cancelled the lock while it ran (host-lock-cancel,
	// or host-unlock of a host being locked).
	CancelledBy string

	hostUUID string // whose Node alone is cordoned and drained
}

func (o *Operation) copy() Operation {
	c := *o
	c.Pending = append([]string{}, o.Pending...)
	return c
}

// Locker locks and unlocks hosts.
type Locker struct {
	st      store.Store
	cluster *kube.Cluster // nil: the controller has no --kubeconfig
	cfg     Config
	log     *slog.Logger

	mu      sync.Mutex
	ops     map[int64]*Operation // the latest of each host, by host id
	cancels map[int64]context.CancelFunc
	base    context.Context
	wg      sync.WaitGroup
}

// New makes a Locker. cluster may be nil: then hosts are locked in the inventory only.
func New(st store.Store, cluster *kube.Cluster, cfg Config) *Locker {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewUUID == nil {
		cfg.NewUUID = uuid.NewString
	}
	return &Locker{st: st, cluster: cluster, cfg: cfg, log: cfg.Log.With("logger", "hostlock"),
		ops: map[int64]*Operation{}, cancels: map[int64]context.CancelFunc{}, base: context.Background()}
}

func (l *Locker) stamp() time.Time { return l.cfg.Now().UTC().Truncate(time.Microsecond) }

// Run lets drains run until ctx ends, then stops them (each uncordons its Node and fails) and
// waits for them to end.
func (l *Locker) Run(ctx context.Context) {
	l.mu.Lock()
	l.base = ctx
	l.mu.Unlock()
	<-ctx.Done()
	l.mu.Lock()
	for _, cancel := range l.cancels {
		cancel()
	}
	l.mu.Unlock()
	l.wg.Wait()
}

// Wait blocks until no drain runs; for tests.
func (l *Locker) Wait() { l.wg.Wait() }

// ParseTimeout reads the timeout of a lock request: a Go duration from MinTimeout to
// MaxTimeout, or empty for DefaultTimeout.
func ParseTimeout(s string) (time.Duration, error) {
	if s == "" {
		return DefaultTimeout, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < MinTimeout || d > MaxTimeout {
		return 0, problem.Invalidf("timeout", "timeout %q: give a duration from %s to %s, like 5m (the default) or 90s",
			s, MinTimeout, shortDuration(MaxTimeout))
	}
	return d, nil
}

// Request is what starts a lock.
type Request struct {
	Host    string // id, uuid or hostname
	Force   bool   // evict the pods no controller manages too
	Timeout time.Duration
	Actor   string
}

// Lock locks a host. It refuses, with a conflict, a host being provisioned, locked already or
// being locked, the only unlocked controller, and, unless forced, one whose Node runs pods no
// controller manages. A host with a Node to drain comes back draining, and the drain goes on in
// the background; any other comes back locked.
func (l *Locker) Lock(ctx context.Context, req Request) (Operation, error) {
	if req.Timeout == 0 {
		req.Timeout = DefaultTimeout
	}
	if req.Timeout < MinTimeout || req.Timeout > MaxTimeout {
		return Operation{}, problem.Invalidf("timeout", "timeout %s: give a duration from %s to %s", req.Timeout, MinTimeout, shortDuration(MaxTimeout))
	}
	readAt := l.stamp()
	h, err := l.lookup(ctx, req.Host)
	if err != nil {
		return Operation{}, err
	}
	if err := l.refuseLock(h); err != nil {
		return Operation{}, err
	}

	moves, err := l.appsToMove(ctx, h, req.Force)
	if err != nil {
		return Operation{}, err
	}

	drain, note := false, "the controller manages no Kubernetes cluster"
	if l.cluster != nil {
		kctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		node, err := l.cluster.Node(kctx, h.Hostname)
		if err != nil {
			return Operation{}, unavailable(err, h)
		}
		note = "the host has no Kubernetes Node"
		if node.Exists && !node.Owns(h.UUID) {
			note = fmt.Sprintf("the host has no Kubernetes Node of its own (node %s: %s)", h.Hostname, kube.NotOwnedReason(node.Owner))
		} else if node.Exists {
			plan, err := l.cluster.PlanDrain(kctx, h.Hostname)
			if err != nil {
				return Operation{}, unavailable(err, h)
			}
			if len(plan.Unmanaged) > 0 && !req.Force {
				return Operation{}, problem.Conflictf("force", "%s", unmanagedMessage(h.Hostname, plan.Unmanaged))
			}
			drain = true
		}
	}

	op := &Operation{HostID: h.ID, Hostname: h.Hostname, State: StateDraining, Force: req.Force,
		Timeout: req.Timeout, Actor: req.Actor, Message: "cordoning the Node", StartedAt: l.stamp(), hostUUID: h.UUID}
	if len(moves) > 0 {
		op.Message = l.movingText(h.ID, moves[0])
	}
	l.mu.Lock()
	if cur := l.ops[h.ID]; cur != nil && cur.State == StateDraining {
		err := drainingConflict(cur)
		l.mu.Unlock()
		return Operation{}, err
	} else if cur != nil && cur.State == StateLocked && !cur.FinishedAt.Before(readAt) {
		// Another lock ended since h was read.
		l.mu.Unlock()
		return Operation{}, lockedConflict(h)
	}
	if h.Personality == apitype.PersonalityController {
		// Read under l.mu: another controller is either being locked here, or locked in the store.
		if err := l.lastController(ctx, h); err != nil {
			l.mu.Unlock()
			return Operation{}, err
		}
	}
	l.ops[h.ID] = op
	if !drain && len(moves) == 0 {
		l.mu.Unlock()
		reason := fmt.Sprintf("host %s locked; nothing to drain, as %s", h.Hostname, note)
		err := l.setLocked(ctx, h.ID, req.Actor, reason)
		l.mu.Lock()
		defer l.mu.Unlock()
		if err != nil {
			l.end(op, StateFailed, "storing the lock: "+err.Error())
			return Operation{}, err
		}
		l.end(op, StateLocked, "nothing to drain: "+note)
		l.log.Info("host locked", "host", h.Hostname, "actor", req.Actor, "drained", false)
		return op.copy(), nil
	}
	dctx, cancel := context.WithTimeout(l.base, req.Timeout)
	l.cancels[h.ID] = cancel
	l.wg.Add(1)
	out := op.copy()
	l.mu.Unlock()
	l.log.Info("draining a host's Node to lock it", "host", h.Hostname, "actor", req.Actor, "force", req.Force, "timeout", req.Timeout,
		"apps", moves)
	go func() {
		defer l.wg.Done()
		defer func() {
			l.mu.Lock()
			delete(l.cancels, h.ID)
			l.mu.Unlock()
			cancel()
		}()
		if err := l.moveApps(dctx, op, req, moves); err != nil {
			msg := err.Error() + "; the host stays unlocked"
			if errors.Is(err, context.Canceled) && l.cancelled(op) {
				msg = "the drain was cancelled; the host stays unlocked and the apps moved so far stay where they are"
			}
			l.failed(dctx, op, req, msg)
			return
		}
		if drain {
			l.drain(dctx, op, req)
			return
		}
		bg, cancel := context.WithTimeout(context.WithoutCancel(dctx), 30*time.Second)
		defer cancel()
		reason := fmt.Sprintf("host %s locked once its apps moved (%s); nothing to drain, as %s", h.Hostname, strings.Join(moves, ", "), note)
		if err := l.setLocked(bg, h.ID, req.Actor, reason); err != nil {
			l.failed(bg, op, req, "storing the lock: "+err.Error())
			return
		}
		l.mu.Lock()
		l.end(op, StateLocked, fmt.Sprintf("app(s) %s moved to a standby; nothing to drain: %s", strings.Join(moves, ", "), note))
		l.mu.Unlock()
		l.log.Info("host locked", "host", h.Hostname, "actor", req.Actor, "drained", false, "apps", moves)
	}()
	return out, nil
}

// appsToMove lists the apps host h is the active member of, which a lock moves to a standby
// first. An app with no healthy standby is refused unless force, which leaves it where it is
// (it stops with the host).
func (l *Locker) appsToMove(ctx context.Context, h store.Host, force bool) ([]string, error) {
	if l.cfg.Switchover == nil {
		return nil, nil
	}
	var apps []store.App
	if err := l.st.Read(ctx, func(tx store.Tx) error {
		var err error
		apps, err = tx.AppsOfHost(h.ID)
		return err
	}); err != nil {
		return nil, err
	}
	var moves []string
	for _, a := range apps {
		if a.ActiveHostID != h.ID {
			continue
		}
		if len(inventory.HealthyStandbys(a)) > 0 {
			moves = append(moves, a.Name)
			continue
		}
		if !force {
			return nil, problem.Conflictf("force", "host %s is the active member of app %s, which has no healthy standby to "+
				"take over: locking the host would stop the app. Bring a standby back first (hbctl app-show %s shows each "+
				"member's role and health), or lock with --force to stop the app", h.Hostname, a.Name, a.Name)
		}
	}
	return moves, nil
}

// movingText says that app is being moved off host hostID, and that its
// agent learns of it with its next heartbeat, and when that is due.
func (l *Locker) movingText(hostID int64, app string) string {
	msg := fmt.Sprintf("moving app %s to a standby", app)
	if l.cfg.NextHeartbeat != nil {
		if due, ok := l.cfg.NextHeartbeat(hostID); ok {
			msg += fmt.Sprintf(": its agent learns of it with its next heartbeat, due at %s", due.UTC().Format("15:04:05 UTC"))
		}
	}
	return msg
}

// moveApps asks for a planned switchover of each app in moves away from op's host and waits
// until another member reports itself active, within ctx.
func (l *Locker) moveApps(ctx context.Context, op *Operation, req Request, moves []string) error {
	poll := l.cfg.AppPollInterval
	if poll <= 0 {
		poll = 500 * time.Millisecond
	}
	for _, name := range moves {
		l.mu.Lock()
		op.Message = l.movingText(op.HostID, name)
		l.mu.Unlock()
		if err := l.cfg.Switchover(ctx, req.Actor, name); err != nil {
			return fmt.Errorf("moving app %s to a standby: %w", name, err)
		}
		for {
			var a store.App
			err := l.st.Read(ctx, func(tx store.Tx) error {
				var err error
				a, err = tx.AppByName(name)
				return err
			})
			if errors.Is(err, store.ErrNotFound) || err == nil && a.ActiveHostID != 0 && a.ActiveHostID != op.HostID {
				break // moved, or deleted
			}
			if err == nil {
				err = sleep(ctx, poll)
			}
			if errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("app %s did not move to a standby within %s: its members did not carry out the planned "+
					"switchover (hbctl app-show %s shows what they report)", name, shortDuration(op.Timeout), name)
			}
			if err != nil {
				return fmt.Errorf("moving app %s to a standby: %w", name, err)
			}
		}
		l.log.Info("app moved away from a host being locked", "host", op.Hostname, "app", name)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// failed ends op as failed with msg (or as cancelled, when it was) and logs its event; its
// Node, if cordoned, is not touched.
func (l *Locker) failed(ctx context.Context, op *Operation, req Request, msg string) {
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	l.finishFailed(bg, op, req, msg)
}

// finishFailed stores the event of a lock that did not lock its host, and ends op: cancelled
// when someone cancelled it, else failed with msg.
func (l *Locker) finishFailed(ctx context.Context, op *Operation, req Request, msg string) {
	l.mu.Lock()
	by := op.CancelledBy
	l.mu.Unlock()
	state, action, reason, actor := StateFailed, "host.lock.failed", fmt.Sprintf("lock of host %s failed: %s", op.Hostname, msg), req.Actor
	if by != "" {
		msg = "cancelled by " + by + strings.TrimPrefix(msg, "the drain was cancelled")
		state, action, reason, actor = StateCancelled, "host.lock.cancel", fmt.Sprintf("lock of host %s %s", op.Hostname, msg), by
	}
	if err := l.st.Write(ctx, func(tx store.Tx) error {
		return l.event(tx, op.Hostname, action, actor, reason)
	}); err != nil {
		l.log.Warn("cannot record the end of a lock", "host", op.Hostname, "err", err)
	}
	l.mu.Lock()
	l.end(op, state, msg)
	l.mu.Unlock()
	l.log.Warn("the host was not locked", "host", op.Hostname, "actor", req.Actor, "state", state, "reason", msg)
}

// Cancel stops a running lock of host: the apps it moved stay where they are, its Node is made
// schedulable again and the host stays unlocked. It returns the lock once it has ended.
func (l *Locker) Cancel(ctx context.Context, host, actor string) (Operation, error) {
	h, err := l.lookup(ctx, host)
	if err != nil {
		return Operation{}, err
	}
	l.mu.Lock()
	op, cancel := l.ops[h.ID], l.cancels[h.ID]
	if op == nil || op.State != StateDraining || cancel == nil {
		l.mu.Unlock()
		return Operation{}, problem.Conflictf("", "no lock of host %s is running, so there is nothing to cancel "+
			"(hbctl host-lock-show %s shows the latest)", h.Hostname, h.Hostname)
	}
	op.CancelledBy = actor
	l.mu.Unlock()
	cancel()
	for {
		l.mu.Lock()
		state, out := op.State, op.copy()
		l.mu.Unlock()
		if state != StateDraining {
			return out, nil
		}
		select {
		case <-ctx.Done():
			return out, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// lastController refuses to lock controller h when no other controller would stay unlocked; l.mu
// is held.
func (l *Locker) lastController(ctx context.Context, h store.Host) error {
	var unlocked []store.Host
	if err := l.st.Read(ctx, func(tx store.Tx) error {
		var err error
		unlocked, err = tx.ListHosts(store.HostFilter{Personality: apitype.PersonalityController, Administrative: inventory.AdminUnlocked})
		return err
	}); err != nil {
		return err
	}
	for _, c := range unlocked {
		if cur := l.ops[c.ID]; c.ID != h.ID && (cur == nil || cur.State != StateDraining) {
			return nil
		}
	}
	return problem.Conflictf("", "host %s is the only unlocked controller: locking it would leave no controller in service; "+
		"unlock another controller first (hbctl host-unlock HOST)", h.Hostname)
}

// latest is a copy of the latest lock of a host, if it has one.
func (l *Locker) latest(id int64) (Operation, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if op := l.ops[id]; op != nil {
		return op.copy(), true
	}
	return Operation{}, false
}

// refuseLock says why host h cannot be locked now, if it cannot.
func (l *Locker) refuseLock(h store.Host) error {
	cur, ok := l.latest(h.ID)
	switch {
	case ok && cur.State == StateDraining:
		return drainingConflict(&cur)
	case h.InvProvision == inventory.ProvProvisioning:
		return problem.Conflictf("", "host %s is being provisioned: wait for the job to end (hbctl host-provision-show %s --follow) "+
			"or cancel it (hbctl host-provision-cancel %s), then lock the host", h.Hostname, h.Hostname, h.Hostname)
	case h.Administrative == inventory.AdminLocked:
		return lockedConflict(h)
	}
	return nil
}

func lockedConflict(h store.Host) error {
	return problem.Conflictf("", "host %s is locked already (hbctl host-unlock %s puts it back in service)", h.Hostname, h.Hostname)
}

func drainingConflict(op *Operation) error {
	return problem.Conflictf("", "host %s is being locked: its Node is being drained since %s, for at most %s; wait for the "+
		"drain to end (hbctl host-lock-show %s --follow): if it fails, the host stays unlocked; or cancel it "+
		"(hbctl host-lock-cancel %s) and lock again",
		op.Hostname, op.StartedAt.Format(time.RFC3339), shortDuration(op.Timeout), op.Hostname, op.Hostname)
}

func unmanagedMessage(host string, pods []kube.PodRef) string {
	names := make([]string, len(pods))
	for i, p := range pods {
		names[i] = p.String()
	}
	return fmt.Sprintf("the Node of host %s runs %d pod(s) that no controller manages, which nothing would recreate once "+
		"evicted: %s. Delete or move them, or lock with --force to evict them anyway", host, len(pods), strings.Join(names, ", "))
}

func unavailable(err error, h store.Host) error {
	return problem.Wrap(problem.Unavailable, err, "the Kubernetes cluster does not answer, so the Node of host %s cannot be "+
		"drained: %v; the host is left unlocked, try again", h.Hostname, err)
}

// drain cordons op's Node, evicts its pods and locks the host; on failure it uncordons the Node
// and leaves the host unlocked. The Node is cordoned only if it is still the host's, and its
// pods evicted only once it is cordoned.
func (l *Locker) drain(ctx context.Context, op *Operation, req Request) {
	node := op.Hostname
	log := l.log.With("host", node)
	err := l.cluster.Cordon(ctx, node, op.hostUUID, true)
	var notOwned *kube.NotOwnedError
	if errors.As(err, &notOwned) {
		// Changed hands since the lock was asked for: it was never cordoned, so nothing to undo.
		bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		l.failed(bg, op, req, err.Error()+"; the Node was left alone and the host stays unlocked")
		return
	}
	if err == nil {
		err = l.cluster.EvictPods(ctx, node, kube.DrainOptions{Force: req.Force, RetryInterval: l.cfg.RetryInterval,
			PollInterval: l.cfg.PollInterval}, func(p kube.DrainProgress) { l.progress(op, p) })
	}
	// The end is stored whatever the drain's context says.
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err == nil {
		l.mu.Lock()
		evicted := op.PodsEvicted
		l.mu.Unlock()
		reason := fmt.Sprintf("host %s locked: its Node is cordoned and %d pod(s) were evicted from it", node, evicted)
		if err = l.setLocked(bg, op.HostID, req.Actor, reason); err == nil {
			l.mu.Lock()
			l.end(op, StateLocked, fmt.Sprintf("the Node is cordoned and drained: %d pod(s) evicted", evicted))
			l.mu.Unlock()
			log.Info("host locked", "actor", req.Actor, "evicted", evicted)
			return
		}
	}
	msg := l.failure(err, op)
	if uerr := l.cluster.Cordon(bg, node, op.hostUUID, false); uerr != nil {
		msg += fmt.Sprintf("; making the Node schedulable again failed too (%v): run kubectl uncordon %s", uerr, node)
	} else {
		msg += "; the Node is schedulable again and the host stays unlocked"
	}
	l.finishFailed(bg, op, req, msg)
	log.Debug("drain ended without a lock", "err", err)
}

// cancelled says whether someone cancelled op.
func (l *Locker) cancelled(op *Operation) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return op.CancelledBy != ""
}

// failure says why a drain failed, and what to do.
func (l *Locker) failure(err error, op *Operation) string {
	var incomplete *kube.DrainIncompleteError
	var unmanaged *kube.UnmanagedPodsError
	switch {
	case errors.Is(err, context.Canceled) && l.cancelled(op):
		return "the drain was cancelled"
	case errors.As(err, &incomplete) && errors.Is(incomplete.Err, context.DeadlineExceeded):
		return fmt.Sprintf("the drain did not end within %s: %v. Give the workloads room to move (more replicas, or a "+
			"PodDisruptionBudget that allows a disruption), then lock again, or give a longer --drain-timeout",
			shortDuration(op.Timeout), err)
	case errors.As(err, &incomplete):
		return fmt.Sprintf("the controller stopped during the drain: %v", err)
	case errors.As(err, &unmanaged):
		return unmanagedMessage(op.Hostname, unmanaged.Pods)
	case errors.Is(err, store.ErrNotFound):
		return "the host was deleted during the drain"
	}
	return err.Error()
}

// progress stores a drain's progress in its operation.
func (l *Locker) progress(op *Operation, p kube.DrainProgress) {
	pending := make([]string, len(p.Pending))
	var waits []string
	for i, pp := range p.Pending {
		pending[i] = pp.Pod.String()
		if i < 3 {
			waits = append(waits, pp.String())
		}
	}
	msg := ""
	if len(waits) > 0 {
		msg = "waiting for " + strings.Join(waits, "; ")
		if more := len(p.Pending) - len(waits); more > 0 {
			msg += fmt.Sprintf("; and %d more", more)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	op.PodsTotal, op.PodsEvicted, op.Pending, op.Message = p.Total, p.Evicted, pending, msg
}

// end ends op in state with message; l.mu is held.
func (l *Locker) end(op *Operation, state, message string) {
	op.State, op.Message, op.FinishedAt = state, message, l.stamp()
	if state == StateLocked {
		op.Pending = nil
	}
}

// setLocked marks a host locked and disabled, with its event.
func (l *Locker) setLocked(ctx context.Context, id int64, actor, reason string) error {
	return l.st.Write(ctx, func(tx store.Tx) error {
		h, err := tx.HostByID(id)
		if err != nil {
			return err
		}
		h.Administrative, h.Operational, h.UpdatedAt = inventory.AdminLocked, inventory.OperDisabled, l.stamp()
		if err := tx.UpdateHost(&h); err != nil {
			return err
		}
		if err := l.event(tx, h.Hostname, "host.lock", actor, reason); err != nil {
			return err
		}
		return fm.Raise(tx, store.Alarm{UUID: l.cfg.NewUUID(), AlarmID: fm.AlarmHostLocked, EntityType: "host",
			EntityInstance: "host=" + h.Hostname, Severity: fm.Warning, AlarmType: "operational-violation",
			ProbableCause: "out of service", Reason: h.Hostname + " was administratively locked to take it out of service",
			ProposedRepairAction: "Unlock the host to put it back in service: hbctl host-unlock " + h.Hostname + "."},
			l.cfg.NewUUID(), h.UpdatedAt)
	})
}

func (l *Locker) event(tx store.Tx, hostname, action, actor, reason string) error {
	return tx.AppendEvent(&store.Event{UUID: l.cfg.NewUUID(), Time: l.stamp(), Code: inventory.CodeHostCommand,
		EntityType: "host", EntityID: "host=" + hostname, Action: action, Actor: actor, Reason: reason})
}

// Operation returns the latest lock of a host since the controller started.
func (l *Locker) Operation(ctx context.Context, host string) (Operation, error) {
	h, err := l.lookup(ctx, host)
	if err != nil {
		return Operation{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	op := l.ops[h.ID]
	if op == nil {
		return Operation{}, problem.NotFoundf("host %s was not locked since the controller started (it is %s now: hbctl "+
			"host-show %s); hbctl host-lock %s locks it", h.Hostname, h.Administrative, h.Hostname, h.Hostname)
	}
	return op.copy(), nil
}

func (l *Locker) lookup(ctx context.Context, host string) (store.Host, error) {
	var h store.Host
	err := l.st.Read(ctx, func(tx store.Tx) error {
		var err error
		h, err = inventory.Lookup(tx, host)
		return err
	})
	return h, err
}

// Unlock puts a locked host back in service: its Node, when it has one, is made schedulable
// again, and the host is unlocked and enabled. A host being locked has its lock cancelled, which
// leaves it unlocked. A host that is not locked is refused with a conflict.
func (l *Locker) Unlock(ctx context.Context, host, actor string) (store.Host, error) {
	h, err := l.lookup(ctx, host)
	if err != nil {
		return h, err
	}
	if cur, ok := l.latest(h.ID); ok && cur.State == StateDraining {
		if _, err := l.Cancel(ctx, host, actor); err != nil {
			return store.Host{}, err
		}
		return l.lookup(ctx, host)
	}
	if err := l.refuseUnlock(h); err != nil {
		return store.Host{}, err
	}
	uncordoned := false
	if l.cluster != nil {
		kctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		node, err := l.cluster.Node(kctx, h.Hostname)
		// A Node of the host's name that is not the host's is left as it is.
		if err == nil && node.Owns(h.UUID) && node.Unschedulable {
			err = l.cluster.Cordon(kctx, h.Hostname, h.UUID, false)
			uncordoned = err == nil
		}
		if err != nil {
			return store.Host{}, problem.Wrap(problem.Unavailable, err, "the Node of host %s cannot be made schedulable: %v; "+
				"the host is left locked, try again", h.Hostname, err)
		}
	}
	var out store.Host
	err = l.st.Write(ctx, func(tx store.Tx) error {
		cur, err := tx.HostByID(h.ID)
		if err != nil {
			return err
		}
		if err := l.refuseUnlock(cur); err != nil {
			return err
		}
		cur.Administrative, cur.Operational, cur.UpdatedAt = inventory.AdminUnlocked, inventory.OperEnabled, l.stamp()
		if err := tx.UpdateHost(&cur); err != nil {
			return err
		}
		out = cur
		reason := fmt.Sprintf("host %s unlocked", cur.Hostname)
		if uncordoned {
			reason += ": its Node is schedulable again"
		}
		if err := l.event(tx, cur.Hostname, "host.unlock", actor, reason); err != nil {
			return err
		}
		return fm.Clear(tx, fm.AlarmHostLocked, "host", "host="+cur.Hostname, "host "+cur.Hostname+" unlocked",
			l.cfg.NewUUID(), cur.UpdatedAt)
	})
	if err != nil {
		return store.Host{}, err
	}
	l.log.Info("host unlocked", "host", out.Hostname, "actor", actor, "uncordoned", uncordoned)
	return out, nil
}

func (l *Locker) refuseUnlock(h store.Host) error {
	if cur, ok := l.latest(h.ID); ok && cur.State == StateDraining {
		return problem.Conflictf("", "host %s is being locked since %s: unlock it again to cancel the lock "+
			"(or hbctl host-lock-cancel %s)", h.Hostname, cur.StartedAt.Format(time.RFC3339), h.Hostname)
	}
	if h.Administrative != inventory.AdminLocked {
		return problem.Conflictf("", "host %s is not locked, so there is nothing to unlock", h.Hostname)
	}
	return nil
}

// shortDuration writes 5m rather than 5m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
