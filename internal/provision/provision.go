// Package provision turns an edgeworker host into a Kubernetes node: it runs the edgeworker
// playbook (package playbooks) with ansible-playbook against the host's management address,
// follows its progress task by task, keeps its log, and marks the host provisioned once its Node
// is Ready.
//
// The Node that registers from a job is marked as the host's (kube.LabelHost) once it is Ready
// and the controller has seen that its kubelet joined with the job's bootstrap token; a host
// named like a Node that is not its own is refused.
//
// A job is a row of the store (store.ProvisionJob) and one ansible-playbook process. At most
// Config.Parallel jobs run at once; the others wait, queued. A job can be cancelled. A host has
// at most one queued or running job, which the store enforces.
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
	Log     *slog.Logger
	// Now and NewUUID default to the clock and random UUIDs.
	Now     func() time.Time
	NewUUID func() string
}

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

// Runner runs provisioning jobs.
type Runner struct {
	cfg     Config
	st      store.Store
	cluster *kube.Cluster // nil: the controller has no --kubeconfig
	log     *slog.Logger
	slots   chan struct{}

	mu      sync.Mutex
	cancels map[int64]context.CancelFunc // of queued and running jobs
	base    context.Context
	wg      sync.WaitGroup
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
	return &Runner{cfg: cfg, st: st, cluster: cluster, log: cfg.Log.With("logger", "provision"),
		slots: make(chan struct{}, max(cfg.Parallel, 1)), cancels: map[int64]context.CancelFunc{},
		base: context.Background()}
}

func (r *Runner) stamp() time.Time { return r.cfg.Now().UTC().Truncate(time.Microsecond) }

// Recover ends the jobs a stopped controller left queued or running: their playbook is gone, so
// they failed, and their hosts with them. Call it once before serving.
func (r *Runner) Recover(ctx context.Context) error {
	return r.st.Write(ctx, func(tx store.Tx) error {
		jobs, err := tx.ListProvisionJobs(StateQueued, StateRunning)
		if err != nil {
			return err
		}
		for _, j := range jobs {
			if err := r.finish(tx, &j, StateFailed, "the controller stopped during the job; provision the host again"); err != nil {
				return err
			}
		}
		return nil
	})
}

// Run lets jobs run until ctx ends, then cancels them and waits for them to end.
func (r *Runner) Run(ctx context.Context) {
	r.mu.Lock()
	r.base = ctx
	r.mu.Unlock()
	<-ctx.Done()
	r.mu.Lock()
	for _, cancel := range r.cancels {
		cancel()
	}
	r.mu.Unlock()
	r.wg.Wait()
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
	r.mu.Lock()
	ctx, cancel := context.WithCancel(r.base)
	r.cancels[job.ID] = cancel
	r.wg.Add(1)
	r.mu.Unlock()
	go func() {
		defer r.wg.Done()
		defer func() {
			r.mu.Lock()
			delete(r.cancels, job.ID)
			r.mu.Unlock()
			cancel()
		}()
		r.execute(ctx, job)
	}()
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
		return problem.Conflictf("ssh_key", "the controller holds no SSH key %q for host %s: put the private key in %s "+
			"or set the host's ssh_key to the name of one there (hbctl host-update %s ssh_key=NAME)",
			keyName(h), h.Hostname, r.cfg.SSHKeyDir, h.Hostname)
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

// Cancel cancels the host's queued or running job and returns it.
func (r *Runner) Cancel(ctx context.Context, host, actor string) (store.ProvisionJob, error) {
	job, err := r.Job(ctx, host)
	if err != nil {
		return job, err
	}
	if job.State != StateQueued && job.State != StateRunning {
		return job, problem.Conflictf("", "host %s has no provisioning job to cancel: its last one %s", job.Hostname, job.State)
	}
	r.mu.Lock()
	cancel, ok := r.cancels[job.ID]
	r.mu.Unlock()
	if !ok {
		return job, problem.Conflictf("", "the provisioning job of host %s runs on another controller; cancel it there", job.Hostname)
	}
	r.log.Info("cancelling a provisioning job", "host", job.Hostname, "job", job.ID, "actor", actor)
	cancel()
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

// Wait blocks until no job runs; for tests and benchmarks.
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
