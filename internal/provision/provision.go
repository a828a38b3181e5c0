// Package provision turns an edgeworker host into a Kubernetes node: it runs the edgeworker
// playbook (package playbooks) with ansible-playbook against the host's management address,
// follows its progress task by task, keeps its log, and marks the host provisioned once its Node
// is Ready.
//
// The Node that registers from a job is marked as the host's (kube.LabelHost) once it is Ready
// and the controller has seen that its kubelet joined with the job's bootstrap token; a host
// named like a Node that is not its own is refused.
//
// A job is a row of the store (store.ProvisionJob) and one ansible-playbook process. Any
// controller's API queues a job (Start) or asks to cancel one (Cancel) by writing its row; the
// leading controller alone runs jobs (Run, a leader's part), at most Config.Parallel at once,
// the others waiting, queued. Its writes carry its epoch: a leader that lost the lead writes
// nothing more of its jobs, and the next leader fails the jobs it left running (their
// playbooks stopped with its term) and runs the queued ones. A host has at most one queued or
// running job, which the store enforces.
package provision

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/google/uuid"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/bundle"
	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/kube"
	"hummingbird.io/hummingbird/internal/nodes"
	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/store"
)

// Job states.
const (
	StateQueued    = "queued"
	StateRunning   = "running"
	StateSucceeded = "succeeded"
	StateFailed    = "failed"
	StateCancelled = "cancelled"
)

// Package sources.
const (
	SourceOffline = "offline"
	SourceOnline  = "online"
)

// Labels a provisioned host's Node gets, as package nodes sets and keeps them.
const (
	LabelPersonality = nodes.LabelPersonality
	LabelGroup       = nodes.LabelGroup
)

// Config is how the runner provisions.
type Config struct {
	// WorkDir holds each running job's inventory, variables and playbooks; they are removed when
	// the job ends, as the variables carry a bootstrap token.
	WorkDir string
	// SSHKeyDir holds the SSH private keys hosts name in ssh_key; KnownHosts is the file of the
	// hosts' SSH keys, learned at first contact.
	SSHKeyDir  string
	KnownHosts string
	// PackageSource is offline (the bundle in BundleDir) or online.
	PackageSource string
	BundleDir     string
	// Vars are the site's playbook variables (--provision-vars); the controller's own win.
	Vars map[string]any
	// Parallel is how many jobs run at once.
	Parallel int
	// Timeout bounds one playbook run; ReadyTimeout the wait for the Node to be Ready after it.
	Timeout      time.Duration
	ReadyTimeout time.Duration
	// Ansible is the ansible-playbook command.
	Ansible string
	// Name is this controller's name, noted in the jobs it runs.
	Name string
	// Poll is how often the leader looks for queued jobs and cancellations without being
	// kicked (DefaultPoll when zero).
	Poll time.Duration
	Log  *slog.Logger
	// Now and NewUUID default to the clock and random UUIDs.
	Now     func() time.Time
	NewUUID func() string
}

// DefaultPoll is Config.Poll's default: the leader is kicked at once by its own API's changes
// and within the event feed's poll by another controller's.
const DefaultPoll = 2 * time.Second

// DefaultConfig returns the settings hb-controller starts with.
func DefaultConfig() Config {
	return Config{PackageSource: SourceOffline, Parallel: 4, Timeout: 30 * time.Minute,
		ReadyTimeout: 5 * time.Minute, Ansible: "ansible-playbook"}
}

// Check reports settings that cannot work.
func (c Config) Check() error {
	if c.PackageSource != SourceOffline && c.PackageSource != SourceOnline {
		return fmt.Errorf("--provision-source %q: want offline or online", c.PackageSource)
	}
	if c.Parallel < 1 || c.Parallel > 64 {
		return fmt.Errorf("--provision-parallel %d: want 1 to 64", c.Parallel)
	}
	if c.Timeout < time.Minute || c.ReadyTimeout < 10*time.Second {
		return fmt.Errorf("--provision-timeout must be at least 1m and the ready timeout at least 10s")
	}
	return nil
}

// Runner queues, runs and cancels provisioning jobs.
type Runner struct {
	cfg     Config
	st      store.Store
	cluster *kube.Cluster // nil: the controller has no --kubeconfig
	log     *slog.Logger
	kick    chan struct{}
	wg      sync.WaitGroup // the jobs running
}

// New makes a runner. cluster may be nil: then every job is refused with a message that says
// to give the controller a kubeconfig.
func New(st store.Store, cluster *kube.Cluster, cfg Config) *Runner {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewUUID == nil {
		cfg.NewUUID = func() string { return uuid.NewString() }
	}
	if cfg.Ansible == "" {
		cfg.Ansible = "ansible-playbook"
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	cfg.Parallel = max(cfg.Parallel, 1)
	return &Runner{cfg: cfg, st: st, cluster: cluster, log: cfg.Log.With("logger", "provision"),
		kick: make(chan struct{}, 1)}
}

func (r *Runner) stamp() time.Time { return r.cfg.Now().UTC().Truncate(time.Microsecond) }

// Kick makes Run look for queued jobs and cancellations now.
func (r *Runner) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// errCancelAsked ends a running job whose cancellation was asked.
var errCancelAsked = errors.New("cancellation asked")

// Run runs the queued jobs, on the leader, until ctx (the leader's term) ends, then stops the
// jobs it runs and waits for them. It first fails the jobs an earlier leader left running.
func (r *Runner) Run(ctx context.Context) error {
	var epoch int64
	if f, ok := store.FenceFrom(ctx); ok {
		epoch = f.Epoch
	}
	if err := r.recover(ctx, epoch); err != nil {
		return err
	}
	running := map[int64]context.CancelCauseFunc{}
	ended := make(chan int64, r.cfg.Parallel)
	defer func() {
		for _, cancel := range running {
			cancel(context.Cause(ctx))
		}
		r.wg.Wait()
	}()
	poll := time.NewTicker(r.cfg.Poll)
	defer poll.Stop()
	for {
		taken, cancels, err := r.step(ctx, epoch, running)
		if err != nil {
			if errors.Is(err, store.ErrFenced) || ctx.Err() != nil {
				return err
			}
			r.log.Warn("looking for queued provisioning jobs failed", "err", err)
		}
		for _, id := range cancels {
			running[id](errCancelAsked)
		}
		for _, job := range taken {
			jctx, cancel := context.WithCancelCause(ctx)
			running[job.ID] = cancel
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				r.execute(jctx, job)
				cancel(nil)
				ended <- job.ID
			}()
		}
		select {
		case <-ctx.Done():
			return nil
		case id := <-ended:
			delete(running, id)
		case <-r.kick:
		case <-poll.C:
		}
	}
}

// recover fails the jobs that leaders before epoch left running: their playbooks stopped with
// their terms (a controller that stopped, or lost the lead, stops its jobs). Queued jobs stay,
// for this leader to run.
func (r *Runner) recover(ctx context.Context, epoch int64) error {
	return r.st.Write(ctx, func(tx store.Tx) error {
		jobs, err := tx.ListProvisionJobs(StateRunning)
		if err != nil {
			return err
		}
		for _, j := range jobs {
			if j.Epoch >= epoch && epoch > 0 {
				continue
			}
			msg := "the controller stopped during the job; provision the host again"
			if j.Runner != "" {
				msg = fmt.Sprintf("controller %s, which ran the job, stopped or lost the lead during it (epoch %d), "+
					"and its playbook stopped with it; provision the host again", j.Runner, j.Epoch)
			}
			if err := r.finish(tx, &j, StateFailed, msg); err != nil {
				return err
			}
			r.log.Warn("failed a provisioning job an earlier leader left running", "host", j.Hostname, "job", j.ID, "runner", j.Runner, "epoch", j.Epoch)
		}
		return nil
	})
}

// step notes the running jobs whose cancellation was asked (cancels) and takes the oldest queued
// jobs this leader has room for (taken), marking them running in epoch.
func (r *Runner) step(ctx context.Context, epoch int64, running map[int64]context.CancelCauseFunc) (taken []store.ProvisionJob, cancels []int64, err error) {
	// A read first: most looks find nothing to take, and need no write.
	var active []store.ProvisionJob
	if err := r.st.Read(ctx, func(tx store.Tx) (err error) {
		active, err = tx.ListProvisionJobs(StateQueued, StateRunning)
		return err
	}); err != nil {
		return nil, nil, err
	}
	var queued []int64
	for _, j := range active {
		switch {
		case j.State == StateRunning && j.CancelBy != "" && running[j.ID] != nil:
			cancels = append(cancels, j.ID)
		case j.State == StateQueued:
			queued = append(queued, j.ID)
		}
	}
	free := r.cfg.Parallel - len(running)
	if len(queued) == 0 || free <= 0 {
		return nil, cancels, nil
	}
	err = r.st.Write(ctx, func(tx store.Tx) error {
		taken = taken[:0]
		for _, id := range queued[:min(free, len(queued))] {
			j, err := tx.ProvisionJobForUpdate(id)
			if err != nil {
				return err
			}
			if j.State != StateQueued {
				continue // cancelled meanwhile
			}
			now := r.stamp()
			j.State, j.Epoch, j.Runner, j.StartedAt, j.UpdatedAt = StateRunning, epoch, r.cfg.Name, now, now
			if err := tx.UpdateProvisionJob(&j); err != nil {
				return err
			}
			taken = append(taken, j)
		}
		return nil
	})
	if err != nil {
		return nil, cancels, err
	}
	return taken, cancels, nil
}

// Request is what starts a job.
type Request struct {
	Host      string // id, uuid or hostname
	Reinstall bool   // replace a kubelet the skew policy forbids
	Actor     string
}

// Start queues a job for a host and returns it. The host must be an edgeworker with a
// management address and an SSH key the controller holds, and no Node of its name may exist
// that is not its own (see kube.LabelHost; the node state Conflict): that is a conflict.
func (r *Runner) Start(ctx context.Context, req Request) (store.ProvisionJob, error) {
	var job store.ProvisionJob
	err := r.st.Write(ctx, func(tx store.Tx) error {
		h, err := inventory.Lookup(tx, req.Host)
		if err != nil {
			return err
		}
		if err := r.checkHost(h); err != nil {
			return err
		}
		// As the nodes reconciler last saw it; the job checks the cluster again before it joins
		// anything.
		if h.NodeState == nodes.NodeConflict {
			return problem.Conflictf("hostname", "host %s cannot be provisioned: %s", h.Hostname, h.NodeReason)
		}
		if r.cluster == nil {
			return problem.NotSupportedf("this controller manages no Kubernetes cluster: " +
				"start hb-controller with --kubeconfig (HB_KUBECONFIG) to provision hosts")
		}
		if r.cfg.PackageSource == SourceOffline && r.cfg.BundleDir == "" {
			return problem.NotSupportedf("this controller has no offline bundle to provision from: start " +
				"hb-controller with --bundle-dir (HB_BUNDLE_DIR), or with --provision-source online")
		}
		if _, err := exec.LookPath(r.cfg.Ansible); err != nil {
			return problem.Wrap(problem.Unavailable, err,
				"the controller cannot run %s: install ansible-core on the controller's machine", r.cfg.Ansible)
		}
		id, err := tx.NextID("provision_jobs")
		if err != nil {
			return err
		}
		now := r.stamp()
		job = store.ProvisionJob{ID: id, UUID: r.cfg.NewUUID(), HostID: h.ID, Hostname: h.Hostname,
			State: StateQueued, Reinstall: req.Reinstall, CreatedBy: req.Actor, CreatedAt: now, UpdatedAt: now}
		if err := tx.InsertProvisionJob(&job); err != nil {
			if problem.Is(err, problem.Conflict) {
				return problem.Conflictf("host", "host %s is being provisioned already: follow it with "+
					"hbctl host-provision %s --follow, or cancel it with hbctl host-provision-cancel %s",
					h.Hostname, h.Hostname, h.Hostname)
			}
			return err
		}
		h.InvProvision = inventory.ProvProvisioning
		h.UpdatedAt = now
		if err := tx.UpdateHost(&h); err != nil {
			return err
		}
		return hostEvent(tx, r.cfg.NewUUID(), now, req.Actor, h.Hostname, "host.provision",
			fmt.Sprintf("provisioning of %s queued (job %d)", h.Hostname, job.ID))
	})
	if err != nil {
		return store.ProvisionJob{}, err
	}
	// When this controller leads, it takes the job now; otherwise the leader's event feed
	// kicks it.
	r.Kick()
	return job, nil
}

func (r *Runner) checkHost(h store.Host) error {
	if h.Personality != apitype.PersonalityEdgeworker {
		return problem.NotSupportedf("host %s is a %s: host-provision joins edgeworkers only", h.Hostname, h.Personality)
	}
	if h.MgmtIP == "" {
		return problem.Conflictf("mgmt_ip", "host %s has no management address yet: set mgmt_ip "+
			"(hbctl host-update %s mgmt_ip=ADDRESS) or let it take a lease from the DHCP service", h.Hostname, h.Hostname)
	}
	key := r.keyPath(h)
	if _, err := os.Stat(key); err != nil {
		who := "the controller"
		if r.cfg.Name != "" {
			// Jobs run on the leader: every controller that may lead needs the key.
			who = "controller " + r.cfg.Name
		}
		return problem.Conflictf("ssh_key", "%s holds no SSH key %q for host %s: put the private key in %s "+
			"or set the host's ssh_key to the name of one there (hbctl host-update %s ssh_key=NAME)",
			who, keyName(h), h.Hostname, r.cfg.SSHKeyDir, h.Hostname)
	}
	return nil
}

// keyName is the SSH key a host logs in with: its ssh_key, or "default".
func keyName(h store.Host) string {
	if h.SSHKey != "" {
		return h.SSHKey
	}
	return "default"
}

func (r *Runner) keyPath(h store.Host) string { return filepath.Join(r.cfg.SSHKeyDir, keyName(h)) }

// Cancel cancels the host's queued job at once, or asks the leader that runs the host's running
// job to stop it (the job then ends cancelled), and returns the job.
func (r *Runner) Cancel(ctx context.Context, host, actor string) (store.ProvisionJob, error) {
	var job store.ProvisionJob
	err := r.st.Write(ctx, func(tx store.Tx) error {
		h, err := inventory.Lookup(tx, host)
		if err != nil {
			return err
		}
		latest, err := tx.LatestProvisionJob(h.ID)
		if errors.Is(err, store.ErrNotFound) {
			return problem.NotFoundf("host %s was never provisioned: start with hbctl host-provision %s", h.Hostname, h.Hostname)
		}
		if err != nil {
			return err
		}
		if job, err = tx.ProvisionJobForUpdate(latest.ID); err != nil {
			return err
		}
		switch job.State {
		case StateQueued:
			return r.finish(tx, &job, StateCancelled, "cancelled by "+actor+" before it started")
		case StateRunning:
			if job.CancelBy != "" {
				return nil
			}
			job.CancelBy, job.UpdatedAt = actor, r.stamp()
			if err := tx.UpdateProvisionJob(&job); err != nil {
				return err
			}
			return hostEvent(tx, r.cfg.NewUUID(), job.UpdatedAt, actor, h.Hostname, "host.provision.cancel",
				fmt.Sprintf("cancellation of the provisioning of %s asked (job %d)", h.Hostname, job.ID))
		default:
			return problem.Conflictf("", "host %s has no provisioning job to cancel: its last one %s", h.Hostname, job.State)
		}
	})
	if err != nil {
		return job, err
	}
	r.log.Info("cancelling a provisioning job", "host", job.Hostname, "job", job.ID, "actor", actor)
	r.Kick()
	return job, nil
}

// Job returns the host's latest job.
func (r *Runner) Job(ctx context.Context, host string) (store.ProvisionJob, error) {
	var job store.ProvisionJob
	err := r.st.Read(ctx, func(tx store.Tx) error {
		h, err := inventory.Lookup(tx, host)
		if err != nil {
			return err
		}
		job, err = tx.LatestProvisionJob(h.ID)
		if errors.Is(err, store.ErrNotFound) {
			return problem.NotFoundf("host %s was never provisioned: start with hbctl host-provision %s", h.Hostname, h.Hostname)
		}
		return err
	})
	return job, err
}

// Log returns the chunks of the log of the host's latest job after seq after.
func (r *Runner) Log(ctx context.Context, host string, after int64, limit int) (store.ProvisionJob, []store.LogChunk, error) {
	job, err := r.Job(ctx, host)
	if err != nil {
		return job, nil, err
	}
	var chunks []store.LogChunk
	err = r.st.Read(ctx, func(tx store.Tx) error {
		chunks, err = tx.ProvisionLog(job.ID, after, limit)
		return err
	})
	return job, chunks, err
}

// Wait blocks until no job this controller runs is running; for tests and benchmarks.
func (r *Runner) Wait() { r.wg.Wait() }

// finish ends a job in state with message, and sets its host's invprovision to match.
func (r *Runner) finish(tx store.Tx, j *store.ProvisionJob, state, message string) error {
	now := r.stamp()
	j.State, j.Message, j.FinishedAt, j.UpdatedAt = state, message, now, now
	if err := tx.UpdateProvisionJob(j); err != nil {
		return err
	}
	h, err := tx.HostByID(j.HostID)
	if err != nil {
		return err
	}
	h.InvProvision = inventory.ProvFailed
	reason := fmt.Sprintf("provisioning of %s %s", h.Hostname, state)
	if state == StateSucceeded {
		h.InvProvision = inventory.ProvProvisioned
	} else if message != "" {
		reason += ": " + message
	}
	h.UpdatedAt = now
	if err := tx.UpdateHost(&h); err != nil {
		return err
	}
	return hostEvent(tx, r.cfg.NewUUID(), now, "hb-controller", h.Hostname, "host.provision."+state, reason)
}

func hostEvent(tx store.Tx, id string, at time.Time, actor, hostname, action, reason string) error {
	return tx.AppendEvent(&store.Event{UUID: id, Time: at, Code: inventory.CodeHostCommand, EntityType: "host",
		EntityID: "host=" + hostname, Action: action, Actor: actor, Reason: reason})
}

var tokenRE = regexp.MustCompile(`\b[a-z0-9]{6}\.[a-z0-9]{16}\b`)

// scrub hides anything shaped like a bootstrap token, should a task ever print one.
func scrub(s string) string { return tokenRE.ReplaceAllString(s, "<hidden>") }

// openBundle opens the bundle for the cluster's version, when packages come from it.
func (r *Runner) openBundle(version string) (*bundle.Bundle, error) {
	if r.cfg.PackageSource != SourceOffline {
		return nil, nil
	}
	if r.cfg.BundleDir == "" {
		return nil, errors.New("the controller has no offline bundle: give it --bundle-dir, or --provision-source online")
	}
	return bundle.Open(r.cfg.BundleDir, version)
}
