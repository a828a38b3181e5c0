// Package hostlock locks and unlocks hosts, as StarlingX's host-lock and host-unlock do. A
// locked host is out of service: administrative locked, operational disabled.
//
// Locking a host whose Kubernetes Node exists first drains the Node: it is cordoned, and its
// pods are evicted through the eviction API, so that PodDisruptionBudgets are honoured. The
// host's Node is the Node of its name that carries its uuid in kube.LabelHost: a Node of its
// name that does not is not Hummingbird's, and is neither cordoned nor drained (the host is
// locked as one without a Node, and the lock says so). A host that is the active member of
// redundant apps has them moved to a standby first. A drain takes time, so a lock is an
// operation that runs in the background and reports its progress; when it fails or times out,
// the Node is made schedulable again and the host stays unlocked. A host without a Node or apps
// to move, or a controller without a cluster, is locked at once.
//
// A lock is a row of the store (store.LockOp). Any controller's API asks for one (Lock) or asks
// to cancel one (Cancel) by writing its row; the leading controller alone carries locks out
// (Run, a leader's part), its writes fenced by its epoch. A leader that stops or loses the lead
// leaves its drains as they are, and the next leader takes them over where they stand: a drain
// is cordoning and evicting again, and its timeout counts from the lock's start.
package hostlock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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
	// Name is this controller's name, noted in the locks it carries out.
	Name string
	// RetryInterval is how often an eviction a PodDisruptionBudget refused is asked again;
	// PollInterval how often the pods on a draining Node are read.
	RetryInterval time.Duration
	PollInterval  time.Duration
	// Poll is how often the leader looks for new locks and cancellations without being kicked
	// (DefaultPoll when zero).
	Poll time.Duration
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

// DefaultPoll is Config.Poll's default: the leader is kicked at once by its own API's locks and
// within the event feed's poll by another controller's.
const DefaultPoll = 2 * time.Second

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
	// Runner is the controller that carries the lock out (or did): the leader when it took it,
	// "" until one did.
	Runner string
}

func operation(o store.LockOp) Operation {
	return Operation{HostID: o.HostID, Hostname: o.Hostname, State: o.State, Force: o.Force, Timeout: o.Timeout,
		Actor: o.Actor, PodsTotal: o.PodsTotal, PodsEvicted: o.PodsEvicted, Pending: append([]string{}, o.Pending...),
		Message: o.Message, StartedAt: o.StartedAt, FinishedAt: o.FinishedAt, CancelledBy: o.CancelBy, Runner: o.Runner}
}

// Locker locks and unlocks hosts.
type Locker struct {
	st      store.Store
	cluster *kube.Cluster // nil: the controller has no --kubeconfig
	cfg     Config
	log     *slog.Logger
	kick    chan struct{}

	mu      sync.Mutex
	running map[int64]context.CancelCauseFunc // the locks this leader carries out, by id
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
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	return &Locker{st: st, cluster: cluster, cfg: cfg, log: cfg.Log.With("logger", "hostlock"),
		kick: make(chan struct{}, 1), running: map[int64]context.CancelCauseFunc{}}
}

func (l *Locker) stamp() time.Time { return l.cfg.Now().UTC().Truncate(time.Microsecond) }

// Kick makes Run look for new locks and cancellations now.
func (l *Locker) Kick() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// errCancelAsked ends a lock whose cancellation was asked.
var errCancelAsked = errors.New("cancellation asked")

// Run carries out the locks, on the leader, until ctx (the leader's term) ends: the ones asked
// through any controller, and the ones an earlier leader left draining. When ctx ends it stops
// them where they stand, writing nothing: the next leader takes them over.
func (l *Locker) Run(ctx context.Context) error {
	var epoch int64
	if f, ok := store.FenceFrom(ctx); ok {
		epoch = f.Epoch
	}
	defer func() {
		l.mu.Lock()
		for _, cancel := range l.running {
			cancel(context.Cause(ctx))
		}
		l.mu.Unlock()
		l.wg.Wait()
	}()
	poll := time.NewTicker(l.cfg.Poll)
	defer poll.Stop()
	for {
		taken, err := l.step(ctx, epoch)
		if err != nil {
			if errors.Is(err, store.ErrFenced) || ctx.Err() != nil {
				return err
			}
			l.log.Warn("looking for locks to carry out failed", "err", err)
		}
		for _, o := range taken {
			jctx, cancel := context.WithCancelCause(ctx)
			l.mu.Lock()
			l.running[o.ID] = cancel
			l.mu.Unlock()
			if o.CancelBy != "" {
				cancel(errCancelAsked)
			}
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				l.execute(ctx, jctx, o)
				l.mu.Lock()
				delete(l.running, o.ID)
				l.mu.Unlock()
				cancel(nil)
			}()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-l.kick:
		case <-poll.C:
		}
	}
}

// step stops the locks this leader carries out whose cancellation was asked, and takes the
// draining locks that no one carries out (new ones, and those of earlier leaders), noting its
// epoch and name in them.
func (l *Locker) step(ctx context.Context, epoch int64) (taken []store.LockOp, err error) {
	// A read first: most looks find nothing to do, and need no write.
	var draining []store.LockOp
	if err := l.st.Read(ctx, func(tx store.Tx) (err error) {
		draining, err = tx.ListLockOps(StateDraining)
		return err
	}); err != nil {
		return nil, err
	}
	var take []int64
	l.mu.Lock()
	for _, o := range draining {
		if cancel := l.running[o.ID]; cancel != nil {
			if o.CancelBy != "" {
				cancel(errCancelAsked)
			}
			continue
		}
		take = append(take, o.ID)
	}
	l.mu.Unlock()
	if len(take) == 0 {
		return nil, nil
	}
	err = l.st.Write(ctx, func(tx store.Tx) error {
		taken = taken[:0]
		for _, id := range take {
			o, err := tx.LockOpForUpdate(id)
			if err != nil {
				return err
			}
			if o.State != StateDraining {
				continue // ended meanwhile (cancelled before anyone took it)
			}
			if o.Runner != "" && (o.Epoch != epoch || o.Runner != l.cfg.Name) {
				o.Message = fmt.Sprintf("taken over from controller %s (epoch %d), which stopped or lost the lead during it", o.Runner, o.Epoch)
				l.log.Warn("taking over a lock an earlier leader left draining", "host", o.Hostname, "runner", o.Runner, "epoch", o.Epoch)
			}
			o.Epoch, o.Runner, o.UpdatedAt = epoch, l.cfg.Name, l.stamp()
			if err := tx.UpdateLockOp(&o); err != nil {
				return err
			}
			taken = append(taken, o)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return taken, nil
}

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
// controller manages. A host with a Node to drain or apps to move comes back draining, and the
// leader carries the lock out in the background; any other comes back locked.
func (l *Locker) Lock(ctx context.Context, req Request) (Operation, error) {
	if req.Timeout == 0 {
		req.Timeout = DefaultTimeout
	}
	if req.Timeout < MinTimeout || req.Timeout > MaxTimeout {
		return Operation{}, problem.Invalidf("timeout", "timeout %s: give a duration from %s to %s", req.Timeout, MinTimeout, shortDuration(MaxTimeout))
	}
	h, err := l.lookup(ctx, req.Host)
	if err != nil {
		return Operation{}, err
	}
	if err := l.st.Read(ctx, func(tx store.Tx) error { return refuseLock(tx, h) }); err != nil {
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

	now := l.stamp()
	at := !drain && len(moves) == 0 // locked at once
	o := store.LockOp{UUID: l.cfg.NewUUID(), HostID: h.ID, Hostname: h.Hostname, State: StateDraining, Force: req.Force,
		Timeout: req.Timeout, Actor: req.Actor, Apps: moves, Drain: drain, Note: note, Message: "cordoning the Node",
		StartedAt: now, UpdatedAt: now}
	if len(moves) > 0 {
		o.Message = l.movingText(h.ID, moves[0])
	}
	if at {
		o.State, o.Message, o.FinishedAt = StateLocked, "nothing to drain: "+note, now
	}
	err = l.st.Write(ctx, func(tx store.Tx) error {
		// Locks take their turns: whether a controller may be locked depends on the others'.
		if err := tx.SerializeLocks(); err != nil {
			return err
		}
		cur, err := tx.HostByID(h.ID)
		if err != nil {
			return err
		}
		if err := refuseLock(tx, cur); err != nil {
			return err
		}
		if cur.Personality == apitype.PersonalityController {
			if err := lastController(tx, cur); err != nil {
				return err
			}
		}
		if o.ID, err = tx.NextID("lock_ops"); err != nil {
			return err
		}
		if err := tx.InsertLockOp(&o); err != nil {
			return err
		}
		if at {
			return l.lockHost(tx, h.ID, req.Actor, fmt.Sprintf("host %s locked; nothing to drain, as %s", h.Hostname, note))
		}
		what := "draining its Node"
		if len(moves) > 0 {
			what = "moving app(s) " + strings.Join(moves, ", ") + " to a standby first"
			if !drain {
				what += "; nothing to drain, as " + note
			}
		}
		return l.event(tx, h.Hostname, "host.lock.start", req.Actor,
			fmt.Sprintf("lock of host %s asked: %s, for at most %s", h.Hostname, what, shortDuration(req.Timeout)))
	})
	if err != nil {
		return Operation{}, err
	}
	if at {
		l.log.Info("host locked", "host", h.Hostname, "actor", req.Actor, "drained", false)
		return operation(o), nil
	}
	l.log.Info("lock of a host asked", "host", h.Hostname, "actor", req.Actor, "force", req.Force, "timeout", req.Timeout,
		"apps", moves, "drain", drain)
	// When this controller leads, it takes the lock now; otherwise the leader's event feed kicks it.
	l.Kick()
	return operation(o), nil
}

// execute carries out lock o, which this leader took, to its end. term is the leader's term;
// ctx ends with it, or when the lock's cancellation is asked (cause errCancelAsked). When the
// term ends first, execute writes nothing: the next leader takes the lock over.
func (l *Locker) execute(term, ctx context.Context, o store.LockOp) {
	var h store.Host
	if err := l.st.Read(ctx, func(tx store.Tx) (err error) {
		h, err = tx.HostByID(o.HostID)
		return err
	}); err != nil {
		if term.Err() == nil {
			l.finishFailed(ctx, o, l.failure(ctx, err, o))
		}
		return
	}
	ctx, cancel := context.WithDeadline(ctx, o.StartedAt.Add(o.Timeout))
	defer cancel()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// Its time ran out while no leader carried it out.
		msg := fmt.Sprintf("the lock did not end within %s of its start (%s): no controller led for that long",
			shortDuration(o.Timeout), o.StartedAt.Format(time.RFC3339))
		if o.Drain && l.cluster != nil {
			msg += l.uncordon(ctx, o.Hostname, h.UUID)
		} else {
			msg += "; the host stays unlocked"
		}
		l.finishFailed(ctx, o, msg)
		return
	}
	if err := l.moveApps(ctx, o); err != nil {
		if term.Err() != nil && !l.cancelled(ctx) {
			return
		}
		msg := err.Error() + "; the host stays unlocked"
		if l.cancelled(ctx) {
			msg = "the drain was cancelled; the host stays unlocked and the apps moved so far stay where they are"
		}
		l.finishFailed(ctx, o, msg)
		return
	}
	if o.Drain {
		l.drain(term, ctx, o, h.UUID)
		return
	}
	reason := fmt.Sprintf("host %s locked once its apps moved (%s); nothing to drain, as %s", o.Hostname, strings.Join(o.Apps, ", "), o.Note)
	if err := l.finishLocked(ctx, o, fmt.Sprintf("app(s) %s moved to a standby; nothing to drain: %s", strings.Join(o.Apps, ", "), o.Note), reason); err != nil {
		if term.Err() == nil {
			l.finishFailed(ctx, o, "storing the lock: "+err.Error())
		}
		return
	}
	l.log.Info("host locked", "host", o.Hostname, "actor", o.Actor, "drained", false, "apps", o.Apps)
}

// cancelled says whether ctx, a lock's, ended because its cancellation was asked.
func (l *Locker) cancelled(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), errCancelAsked)
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

// moveApps asks for a planned switchover of each of o's apps that is still active on o's host,
// and waits until another member reports itself active, within ctx. An app that moved already
// (a lock taken over from an earlier leader) is not asked again.
func (l *Locker) moveApps(ctx context.Context, o store.LockOp) error {
	if len(o.Apps) == 0 {
		return nil
	}
	if l.cfg.Switchover == nil {
		return errors.New("this controller cannot move apps")
	}
	poll := l.cfg.AppPollInterval
	if poll <= 0 {
		poll = 500 * time.Millisecond
	}
	// active reads an app's active member; gone: the app was deleted.
	active := func(name string) (host int64, gone bool, err error) {
		err = l.st.Read(ctx, func(tx store.Tx) error {
			a, err := tx.AppByName(name)
			host = a.ActiveHostID
			return err
		})
		if errors.Is(err, store.ErrNotFound) {
			return 0, true, nil
		}
		return host, false, err
	}
	for _, name := range o.Apps {
		host, gone, err := active(name)
		if err != nil {
			return fmt.Errorf("moving app %s to a standby: %w", name, err)
		}
		if gone || host != o.HostID {
			continue // moved already (a lock taken over), or deleted
		}
		if err := l.update(ctx, o.ID, func(u *store.LockOp) { u.Message = l.movingText(o.HostID, name) }); err != nil {
			return fmt.Errorf("moving app %s to a standby: %w", name, err)
		}
		if err := l.cfg.Switchover(ctx, o.Actor, name); err != nil {
			return fmt.Errorf("moving app %s to a standby: %w", name, err)
		}
		for {
			host, gone, err := active(name)
			if err == nil && (gone || host != 0 && host != o.HostID) {
				break // moved, or deleted
			}
			if err == nil {
				err = sleep(ctx, poll)
			}
			if errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("app %s did not move to a standby within %s: its members did not carry out the planned "+
					"switchover (hbctl app-show %s shows what they report)", name, shortDuration(o.Timeout), name)
			}
			if err != nil {
				return fmt.Errorf("moving app %s to a standby: %w", name, err)
			}
		}
		l.log.Info("app moved away from a host being locked", "host", o.Hostname, "app", name)
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

// update writes a change to a running lock, under ctx's fence.
func (l *Locker) update(ctx context.Context, id int64, fn func(*store.LockOp)) error {
	return l.st.Write(ctx, func(tx store.Tx) error {
		o, err := tx.LockOpForUpdate(id)
		if err != nil {
			return err
		}
		fn(&o)
		o.UpdatedAt = l.stamp()
		return tx.UpdateLockOp(&o)
	})
}

// finishLocked locks o's host and ends o locked with message, under ctx's fence but not its
// end.
func (l *Locker) finishLocked(ctx context.Context, o store.LockOp, message, reason string) error {
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return l.st.Write(bg, func(tx store.Tx) error {
		cur, err := tx.LockOpForUpdate(o.ID)
		if err != nil {
			return err
		}
		if err := l.lockHost(tx, o.HostID, o.Actor, reason); err != nil {
			return err
		}
		now := l.stamp()
		cur.State, cur.Message, cur.Pending, cur.FinishedAt, cur.UpdatedAt = StateLocked, message, nil, now, now
		return tx.UpdateLockOp(&cur)
	})
}

// finishFailed ends o, with its event: cancelled when someone asked to cancel it, else failed
// with msg. Its Node, if cordoned, is not touched. It writes under ctx's fence but not its end.
func (l *Locker) finishFailed(ctx context.Context, o store.LockOp, msg string) {
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var state string
	if err := l.st.Write(bg, func(tx store.Tx) error {
		cur, err := tx.LockOpForUpdate(o.ID)
		if err != nil {
			return err
		}
		if state, err = l.fail(tx, &cur, msg); err != nil {
			return err
		}
		return tx.UpdateLockOp(&cur)
	}); err != nil {
		l.log.Warn("cannot record the end of a lock", "host", o.Hostname, "err", err)
		return
	}
	l.log.Warn("the host was not locked", "host", o.Hostname, "actor", o.Actor, "state", state, "reason", msg)
}

// fail ends lock o in tx, cancelled when someone asked to cancel it, else failed with msg, with
// its event; the caller writes o. It returns the state o ended in.
func (l *Locker) fail(tx store.Tx, o *store.LockOp, msg string) (string, error) {
	state, action, reason, actor := StateFailed, "host.lock.failed", fmt.Sprintf("lock of host %s failed: %s", o.Hostname, msg), o.Actor
	if o.CancelBy != "" {
		msg = "cancelled by " + o.CancelBy + strings.TrimPrefix(msg, "the drain was cancelled")
		state, action, reason, actor = StateCancelled, "host.lock.cancel", fmt.Sprintf("lock of host %s %s", o.Hostname, msg), o.CancelBy
	}
	now := l.stamp()
	o.State, o.Message, o.FinishedAt, o.UpdatedAt = state, msg, now, now
	return state, l.event(tx, o.Hostname, action, actor, reason)
}

// Cancel stops a running lock of host: the apps it moved stay where they are, its Node is made
// schedulable again and the host stays unlocked. It asks the leader that carries the lock out
// to stop it (a lock no leader took yet ends at once), and returns the lock once it has ended,
// or as it stands after CancelWait.
func (l *Locker) Cancel(ctx context.Context, host, actor string) (Operation, error) {
	h, err := l.lookup(ctx, host)
	if err != nil {
		return Operation{}, err
	}
	var o store.LockOp
	err = l.st.Write(ctx, func(tx store.Tx) error {
		latest, err := tx.LatestLockOp(h.ID)
		if err == nil {
			o, err = tx.LockOpForUpdate(latest.ID)
		}
		if errors.Is(err, store.ErrNotFound) || err == nil && o.State != StateDraining {
			return problem.Conflictf("", "no lock of host %s is running, so there is nothing to cancel "+
				"(hbctl host-lock-show %s shows the latest)", h.Hostname, h.Hostname)
		}
		if err != nil {
			return err
		}
		if o.CancelBy != "" {
			return nil // asked already
		}
		o.CancelBy, o.UpdatedAt = actor, l.stamp()
		if o.Runner == "" {
			// No leader took it: nothing was cordoned or moved.
			if _, err := l.fail(tx, &o, "the drain was cancelled; the host stays unlocked (no controller had begun the lock)"); err != nil {
				return err
			}
			return tx.UpdateLockOp(&o)
		}
		if err := tx.UpdateLockOp(&o); err != nil {
			return err
		}
		return l.event(tx, h.Hostname, "host.lock.cancelling", actor,
			fmt.Sprintf("cancellation of the lock of host %s asked (controller %s carries it out)", h.Hostname, o.Runner))
	})
	if err != nil {
		return Operation{}, err
	}
	l.log.Info("cancelling a lock", "host", h.Hostname, "actor", actor)
	l.Kick()
	wait, cancel := context.WithTimeout(ctx, CancelWait)
	defer cancel()
	for o.State == StateDraining {
		if err := sleep(wait, 20*time.Millisecond); err != nil {
			if ctx.Err() != nil {
				return operation(o), ctx.Err()
			}
			break // still draining: the leader has not stopped it yet
		}
		if err := l.st.Read(ctx, func(tx store.Tx) error {
			cur, err := tx.LatestLockOp(h.ID)
			if err == nil && cur.ID == o.ID {
				o = cur
			}
			return err
		}); err != nil {
			return operation(o), err
		}
	}
	return operation(o), nil
}

// CancelWait is how long Cancel waits for the leader to stop a lock before it returns the lock
// as it stands (draining, its cancellation asked).
const CancelWait = 30 * time.Second

// lastController refuses to lock controller h when no other controller would stay unlocked.
func lastController(tx store.Tx, h store.Host) error {
	unlocked, err := tx.ListHosts(store.HostFilter{Personality: apitype.PersonalityController, Administrative: inventory.AdminUnlocked})
	if err != nil {
		return err
	}
	for _, c := range unlocked {
		if c.ID == h.ID {
			continue
		}
		cur, err := tx.LatestLockOp(c.ID)
		if errors.Is(err, store.ErrNotFound) || err == nil && cur.State != StateDraining {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return problem.Conflictf("", "host %s is the only unlocked controller: locking it would leave no controller in service; "+
		"unlock another controller first (hbctl host-unlock HOST)", h.Hostname)
}

// draining is the host's lock when one is draining.
func draining(tx store.Tx, hostID int64) (store.LockOp, bool, error) {
	o, err := tx.LatestLockOp(hostID)
	if errors.Is(err, store.ErrNotFound) {
		return store.LockOp{}, false, nil
	}
	return o, err == nil && o.State == StateDraining, err
}

// refuseLock says why host h cannot be locked now, if it cannot.
func refuseLock(tx store.Tx, h store.Host) error {
	cur, busy, err := draining(tx, h.ID)
	switch {
	case err != nil:
		return err
	case busy:
		return drainingConflict(cur)
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

func drainingConflict(o store.LockOp) error {
	return problem.Conflictf("", "host %s is being locked: its Node is being drained since %s, for at most %s; wait for the "+
		"drain to end (hbctl host-lock-show %s --follow): if it fails, the host stays unlocked; or cancel it "+
		"(hbctl host-lock-cancel %s) and lock again",
		o.Hostname, o.StartedAt.Format(time.RFC3339), shortDuration(o.Timeout), o.Hostname, o.Hostname)
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

// drain cordons o's Node, evicts its pods and locks the host; on failure it uncordons the Node
// and leaves the host unlocked. The Node is cordoned only if it is still the host's (hostUUID),
// and its pods evicted only once it is cordoned. When the leader's term ends first, the Node
// stays as it is, for the next leader.
func (l *Locker) drain(term, ctx context.Context, o store.LockOp, hostUUID string) {
	node := o.Hostname
	log := l.log.With("host", node)
	err := l.cluster.Cordon(ctx, node, hostUUID, true)
	var notOwned *kube.NotOwnedError
	if errors.As(err, &notOwned) {
		// Changed hands since the lock was asked for: it was never cordoned, so nothing to undo.
		l.finishFailed(ctx, o, err.Error()+"; the Node was left alone and the host stays unlocked")
		return
	}
	var evicted int
	if err == nil {
		err = l.cluster.EvictPods(ctx, node, kube.DrainOptions{Force: o.Force, RetryInterval: l.cfg.RetryInterval,
			PollInterval: l.cfg.PollInterval}, func(p kube.DrainProgress) {
			evicted = p.Evicted
			l.progress(ctx, o, p)
		})
	}
	if term.Err() != nil && !l.cancelled(ctx) {
		log.Info("the leader's term ended during a drain; the next leader takes it over")
		return
	}
	if err == nil {
		reason := fmt.Sprintf("host %s locked: its Node is cordoned and %d pod(s) were evicted from it", node, evicted)
		if err = l.finishLocked(ctx, o, fmt.Sprintf("the Node is cordoned and drained: %d pod(s) evicted", evicted), reason); err == nil {
			log.Info("host locked", "actor", o.Actor, "evicted", evicted)
			return
		}
	}
	l.finishFailed(ctx, o, l.failure(ctx, err, o)+l.uncordon(ctx, node, hostUUID))
	log.Debug("drain ended without a lock", "err", err)
}

// uncordon makes the Node schedulable again after a lock that failed, whatever ctx (the lock's)
// says, and returns what to add to the lock's message.
func (l *Locker) uncordon(ctx context.Context, node, hostUUID string) string {
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := l.cluster.Cordon(bg, node, hostUUID, false); err != nil {
		return fmt.Sprintf("; making the Node schedulable again failed too (%v): run kubectl uncordon %s", err, node)
	}
	return "; the Node is schedulable again and the host stays unlocked"
}

// failure says why a lock failed, and what to do; ctx is the lock's.
func (l *Locker) failure(ctx context.Context, err error, o store.LockOp) string {
	var incomplete *kube.DrainIncompleteError
	var unmanaged *kube.UnmanagedPodsError
	switch {
	case l.cancelled(ctx):
		return "the drain was cancelled"
	case errors.As(err, &incomplete) && errors.Is(incomplete.Err, context.DeadlineExceeded):
		return fmt.Sprintf("the drain did not end within %s: %v. Give the workloads room to move (more replicas, or a "+
			"PodDisruptionBudget that allows a disruption), then lock again, or give a longer --drain-timeout",
			shortDuration(o.Timeout), err)
	case errors.As(err, &incomplete):
		return fmt.Sprintf("the controller stopped during the drain: %v", err)
	case errors.As(err, &unmanaged):
		return unmanagedMessage(o.Hostname, unmanaged.Pods)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Sprintf("the lock did not end within %s of its start (%s): %v", shortDuration(o.Timeout),
			o.StartedAt.Format(time.RFC3339), err)
	case errors.Is(err, store.ErrNotFound):
		return "the host was deleted during the lock"
	}
	return err.Error()
}

// progress stores a drain's progress in its lock, when it changed.
func (l *Locker) progress(ctx context.Context, o store.LockOp, p kube.DrainProgress) {
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
	if err := l.st.Write(ctx, func(tx store.Tx) error {
		cur, err := tx.LockOpForUpdate(o.ID)
		if err != nil {
			return err
		}
		if cur.PodsTotal == p.Total && cur.PodsEvicted == p.Evicted && cur.Message == msg && slices.Equal(cur.Pending, pending) {
			return nil
		}
		cur.PodsTotal, cur.PodsEvicted, cur.Pending, cur.Message, cur.UpdatedAt = p.Total, p.Evicted, pending, msg, l.stamp()
		return tx.UpdateLockOp(&cur)
	}); err != nil && ctx.Err() == nil {
		l.log.Warn("cannot store a drain's progress", "host", o.Hostname, "err", err)
	}
}

// lockHost marks a host locked and disabled in tx, with its event and alarm.
func (l *Locker) lockHost(tx store.Tx, id int64, actor, reason string) error {
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
}

func (l *Locker) event(tx store.Tx, hostname, action, actor, reason string) error {
	return tx.AppendEvent(&store.Event{UUID: l.cfg.NewUUID(), Time: l.stamp(), Code: inventory.CodeHostCommand,
		EntityType: "host", EntityID: "host=" + hostname, Action: action, Actor: actor, Reason: reason})
}

// Operation returns the latest lock of a host.
func (l *Locker) Operation(ctx context.Context, host string) (Operation, error) {
	var o store.LockOp
	err := l.st.Read(ctx, func(tx store.Tx) error {
		h, err := inventory.Lookup(tx, host)
		if err != nil {
			return err
		}
		o, err = tx.LatestLockOp(h.ID)
		if errors.Is(err, store.ErrNotFound) {
			return problem.NotFoundf("host %s was never locked with host-lock (it is %s now: hbctl host-show %s); "+
				"hbctl host-lock %s locks it", h.Hostname, h.Administrative, h.Hostname, h.Hostname)
		}
		return err
	})
	if err != nil {
		return Operation{}, err
	}
	return operation(o), nil
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
	var busy bool
	if err := l.st.Read(ctx, func(tx store.Tx) (err error) {
		_, busy, err = draining(tx, h.ID)
		return err
	}); err != nil {
		return store.Host{}, err
	}
	if busy {
		if _, err := l.Cancel(ctx, host, actor); err != nil {
			return store.Host{}, err
		}
		return l.lookup(ctx, host)
	}
	if h.Administrative != inventory.AdminLocked {
		return store.Host{}, notLocked(h)
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
		if o, busy, err := draining(tx, h.ID); err != nil {
			return err
		} else if busy {
			return problem.Conflictf("", "host %s is being locked since %s: unlock it again to cancel the lock "+
				"(or hbctl host-lock-cancel %s)", h.Hostname, o.StartedAt.Format(time.RFC3339), h.Hostname)
		}
		if cur.Administrative != inventory.AdminLocked {
			return notLocked(cur)
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

func notLocked(h store.Host) error {
	return problem.Conflictf("", "host %s is not locked, so there is nothing to unlock", h.Hostname)
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
