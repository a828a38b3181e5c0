package provision

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/kube"
	"hummingbird.io/hummingbird/internal/nodes"
	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/playbooks"
)

// event is one line the playbook's hummingbird_events callback writes.
type event struct {
	Event    string `json:"event"` // play | task | result | end
	Name     string `json:"name"`
	Tasks    int    `json:"tasks"`
	Status   string `json:"status"` // ok | changed | skipped | failed | ignored | unreachable
	Task     string `json:"task"`
	Host     string `json:"host"`
	Handler  bool   `json:"handler"`
	Msg      string `json:"msg"`
	Failures int    `json:"failures"`
}

// progress is what a job learns from its events.
type progress struct {
	total, done, changed int
	task                 string
	failedTask, failMsg  string
}

// apply folds one event into p and says whether the job row should be written.
func (p *progress) apply(e event) bool {
	switch e.Event {
	case "play":
		p.total += e.Tasks
		return true
	case "task":
		p.task = e.Name
		return true
	case "result":
		if e.Handler {
			if e.Status == "changed" {
				p.changed++
			}
		} else {
			p.done++
			if e.Status == "changed" {
				p.changed++
			}
		}
		if (e.Status == "failed" || e.Status == "unreachable") && p.failedTask == "" {
			p.failedTask, p.failMsg = e.Task, e.Msg
			if e.Status == "unreachable" {
				p.failMsg = "the host cannot be reached over SSH: " + e.Msg
			}
		}
		return true
	}
	return false
}

// execute runs one job, which Run marked running, to its end. ctx ends when the job's
// cancellation is asked (cause errCancelAsked) or the leader's term ends.
func (r *Runner) execute(ctx context.Context, job store.ProvisionJob) {
	log := r.log.With("host", job.Hostname, "job", job.ID)
	start := r.cfg.Now()
	state, task, msg := r.provision(ctx, job, log)
	if ctx.Err() != nil && state != StateSucceeded {
		state, msg = StateFailed, fmt.Sprintf("controller %s, which ran the job, stopped during it; provision the host again", r.cfg.Name)
		if errors.Is(context.Cause(ctx), errCancelAsked) {
			state, msg = StateCancelled, "cancelled"
		}
	}
	r.end(ctx, job.ID, state, task, msg)
	log.Info("provisioning ended", "state", state, "task", task, "took", r.cfg.Now().Sub(start).Round(time.Second))
}

// end writes a job's end, under ctx's fence but not its end: the job's context may be
// cancelled, and a leader that lost the lead writes nothing (the next one fails the job).
func (r *Runner) end(ctx context.Context, id int64, state, task, msg string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err := r.st.Write(ctx, func(tx store.Tx) error {
		j, err := tx.ProvisionJobForUpdate(id)
		if err != nil {
			return err
		}
		if task != "" {
			j.Task = task
		}
		if state == StateCancelled && j.CancelBy != "" {
			msg = "cancelled by " + j.CancelBy
		}
		return r.finish(tx, &j, state, msg)
	})
	if err != nil {
		r.log.Error("cannot store the end of a provisioning job", "job", id, "err", err)
	}
}

// update writes a job's progress.
func (r *Runner) update(ctx context.Context, id int64, fn func(*store.ProvisionJob)) error {
	return r.st.Write(ctx, func(tx store.Tx) error {
		j, err := tx.ProvisionJobForUpdate(id)
		if err != nil {
			return err
		}
		fn(&j)
		j.UpdatedAt = r.stamp()
		return tx.UpdateProvisionJob(&j)
	})
}

// The steps of a job before and around the playbook's own tasks, named in
// a failed job so that it always says where it failed.
const (
	stepHost     = "Check the host"
	stepCluster  = "Read the cluster"
	stepBundle   = "Open the offline bundle"
	stepToken    = "Make a bootstrap token"
	stepFiles    = "Write the job's files"
	stepPlaybook = "Start the playbook (before its first task)"
)

// provision runs the playbook and waits for the Node; it returns the job's end.
func (r *Runner) provision(ctx context.Context, job store.ProvisionJob, log interface {
	Info(string, ...any)
	Warn(string, ...any)
}) (state, task, msg string) {
	var h store.Host
	var pool store.Pool
	if err := r.st.Read(ctx, func(tx store.Tx) error {
		var err error
		if h, err = tx.HostByID(job.HostID); err != nil {
			return err
		}
		if h.PoolID != 0 {
			pool, err = tx.PoolByID(h.PoolID)
		}
		return err
	}); err != nil {
		return StateFailed, stepHost, "reading the host: " + err.Error()
	}
	if err := r.checkHost(h); err != nil {
		return StateFailed, stepHost, err.Error()
	}

	// A Node of the host's name that is not the host's is left alone: the job would only label it.
	const owning = "Check the host's Node"
	if err := r.checkNode(ctx, h); err != nil {
		return StateFailed, owning, err.Error()
	}
	version, err := r.cluster.ServerVersion()
	if err != nil {
		return StateFailed, stepCluster, err.Error()
	}
	b, err := r.openBundle(version)
	if err != nil {
		return StateFailed, stepBundle, err.Error()
	}
	endpoint, err := r.cluster.JoinEndpoint(ctx)
	if err != nil {
		return StateFailed, stepCluster, err.Error()
	}
	caHash, err := r.cluster.CAHash()
	if err != nil {
		return StateFailed, stepCluster, err.Error()
	}
	token, err := r.cluster.CreateJoinToken(ctx, r.cfg.Timeout+r.cfg.ReadyTimeout,
		"Hummingbird provisioning of "+h.Hostname, r.cfg.Now())
	if err != nil {
		return StateFailed, stepToken, err.Error()
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := r.cluster.DeleteJoinToken(dctx, token.ID); err != nil {
			log.Warn("cannot delete the job's bootstrap token; it expires by itself", "err", err)
		}
	}()

	dir, err := os.MkdirTemp(r.cfg.WorkDir, fmt.Sprintf("job-%d-", job.ID))
	if err != nil {
		return StateFailed, stepFiles, "making the job's directory: " + err.Error()
	}
	defer os.RemoveAll(dir)
	vars := r.vars(h, pool, job, version, endpoint, caHash, token.String(), b)
	if err := writeJobFiles(dir, inventoryFor(h, r.keyPath(h), r.cfg.KnownHosts), vars); err != nil {
		return StateFailed, stepFiles, err.Error()
	}

	runCtx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	p, err := r.runPlaybook(runCtx, job.ID, dir)
	if err != nil {
		if p.failedTask != "" {
			return StateFailed, p.failedTask, p.failMsg
		}
		task := cmp.Or(p.task, stepPlaybook)
		if errors.Is(runCtx.Err(), context.DeadlineExceeded) {
			return StateFailed, task, fmt.Sprintf("the playbook did not end within %s", r.cfg.Timeout)
		}
		return StateFailed, task, err.Error()
	}

	const waiting = "Wait for the Node to be Ready"
	if err := r.update(ctx, job.ID, func(j *store.ProvisionJob) { j.Task = waiting }); err != nil {
		return StateFailed, waiting, err.Error()
	}
	readyCtx, cancelReady := context.WithTimeout(ctx, r.cfg.ReadyTimeout)
	defer cancelReady()
	if _, err := r.cluster.WaitNodeReady(readyCtx, h.Hostname, 2*time.Second); err != nil {
		return StateFailed, waiting, fmt.Sprintf("%v (after %s; see the kubelet's log on the host: journalctl -u kubelet)", err, r.cfg.ReadyTimeout)
	}
	const marking = "Mark the Node as the host's"
	if err := r.claim(ctx, h, token.ID); err != nil {
		return StateFailed, marking, err.Error()
	}
	var group map[string]string
	if err := r.st.Read(ctx, func(tx store.Tx) error {
		var err error
		if h, err = tx.HostByID(h.ID); err != nil {
			return err
		}
		group, err = tx.GroupLabels(h.Group)
		return err
	}); err != nil {
		return StateFailed, "Label the Node", err.Error()
	}
	if _, err := r.cluster.ApplyManagedLabelsByName(ctx, h.Hostname, h.UUID, nodes.Labels(h, group)); err != nil {
		return StateFailed, "Label the Node", err.Error()
	}
	// A locked host is out of service: its new Node takes no pods until
	// host-unlock makes it schedulable.
	if h.Administrative == inventory.AdminLocked {
		if err := r.cluster.Cordon(ctx, h.Hostname, h.UUID, true); err != nil {
			return StateFailed, "Cordon the Node of the locked host", err.Error()
		}
	}
	return StateSucceeded, waiting, ""
}

// checkNode refuses a host named like a Node that is not its own (see kube.LabelHost).
func (r *Runner) checkNode(ctx context.Context, h store.Host) error {
	n, err := r.cluster.Node(ctx, h.Hostname)
	if err != nil {
		return problem.Wrap(problem.Unavailable, err, "host %s: the Kubernetes cluster does not answer: %v; try again", h.Hostname, err)
	}
	if n.Exists && !n.Owns(h.UUID) {
		return problem.Conflictf("hostname", "host %s cannot be provisioned: %s", h.Hostname, kube.NotOwnedReason(n.Owner))
	}
	return nil
}

// claim marks the host's Node, now Ready, as the host's (kube.LabelHost), if it is not yet: only
// when its kubelet got its credentials through this job's bootstrap token (tokenID), which
// proves that the Node registered from the host this job joined, not from any machine that
// took the host's name. The kubelet itself cannot write the mark (NodeRestriction).
func (r *Runner) claim(ctx context.Context, h store.Host, tokenID string) error {
	n, err := r.cluster.Node(ctx, h.Hostname)
	if err != nil {
		return err
	}
	if n.Owns(h.UUID) {
		return nil
	}
	if n.Owner != "" || !n.Exists {
		return &kube.NotOwnedError{Node: h.Hostname, Host: h.UUID, Owner: n.Owner}
	}
	ok, err := r.cluster.RegisteredWithToken(ctx, h.Hostname, tokenID)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("node %s is Ready, but its kubelet did not register with this job's bootstrap token (it holds "+
			"credentials from an earlier join): Hummingbird takes it as host %s's only then. Run kubeadm reset on the "+
			"host and provision it again, or have a cluster admin vouch for the Node: kubectl label node %s %s=%s",
			h.Hostname, h.Hostname, h.Hostname, kube.LabelHost, h.UUID)
	}
	return r.cluster.ClaimNode(ctx, h.Hostname, h.UUID, n.UID)
}

// runPlaybook runs ansible-playbook in dir, storing its output as the job's log and its events as
// the job's progress.
func (r *Runner) runPlaybook(ctx context.Context, jobID int64, dir string) (progress, error) {
	var p progress
	// ansible-playbook runs in the playbooks' directory: every path it is
	// given must not depend on the controller's working directory.
	dir, err := filepath.Abs(dir)
	if err != nil {
		return p, err
	}
	pbDir := filepath.Join(dir, "playbooks")
	if err := os.Mkdir(pbDir, 0o700); err != nil {
		return p, err
	}
	if err := playbooks.WriteTo(pbDir); err != nil {
		return p, err
	}
	evR, evW, err := os.Pipe()
	if err != nil {
		return p, err
	}
	defer evR.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		evW.Close()
		return p, err
	}
	defer outR.Close()
	cmd := exec.Command(r.cfg.Ansible, "-i", filepath.Join(dir, "inventory.json"),
		"-e", "@"+filepath.Join(dir, "vars.json"), filepath.Join(pbDir, playbooks.Main))
	cmd.Dir = pbDir
	cmd.Env = append(os.Environ(),
		"ANSIBLE_CONFIG="+filepath.Join(pbDir, "ansible.cfg"),
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(dir, "tmp"),
		"ANSIBLE_HOME="+filepath.Join(dir, "ansible"),
		"ANSIBLE_NOCOLOR=1", "ANSIBLE_FORCE_COLOR=0", "PYTHONUNBUFFERED=1",
		"HB_EVENTS_FD=3")
	cmd.Stdout, cmd.Stderr = outW, outW
	cmd.ExtraFiles = []*os.File{evW}
	// A controller killed during the job takes the playbook down with it (the next leader fails
	// the job): the kernel signals the playbook when the thread that started it ends, and this
	// goroutine keeps that thread until the playbook has ended.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		evW.Close()
		outW.Close()
		return p, fmt.Errorf("starting %s: %w", r.cfg.Ansible, err)
	}
	evW.Close()
	outW.Close()
	stop := context.AfterFunc(ctx, func() {
		// The whole process group: ansible-playbook's workers and ssh.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		time.AfterFunc(5*time.Second, func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	})
	defer stop()

	var wg sync.WaitGroup
	wg.Add(2)
	bg := context.WithoutCancel(ctx)
	go func() { defer wg.Done(); r.copyLog(bg, jobID, outR) }()
	var mu sync.Mutex
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(evR)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var e event
			if json.Unmarshal(sc.Bytes(), &e) != nil {
				continue
			}
			mu.Lock()
			write := p.apply(e)
			snap := p
			mu.Unlock()
			if write {
				if err := r.update(bg, jobID, func(j *store.ProvisionJob) {
					j.TasksTotal, j.TasksDone, j.Changed, j.Task = snap.total, snap.done, snap.changed, snap.task
				}); err != nil {
					r.log.Warn("cannot store a provisioning job's progress", "job", jobID, "err", err)
				}
			}
		}
	}()
	werr := cmd.Wait()
	// What ansible-playbook leaves behind in its group (an ssh master kept for reuse) would hold
	// the output pipes open and outlive the job.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if werr != nil {
		if ctx.Err() != nil {
			return p, ctx.Err()
		}
		return p, fmt.Errorf("ansible-playbook failed: %w (see hbctl provision-log)", werr)
	}
	return p, nil
}

// copyLog stores the playbook's output as log chunks, a chunk at most every half second.
func (r *Runner) copyLog(ctx context.Context, jobID int64, out io.Reader) {
	lines := make(chan string, 256)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			lines <- scrub(sc.Text())
		}
		close(lines)
	}()
	var buf strings.Builder
	flush := func() {
		if buf.Len() == 0 {
			return
		}
		text := buf.String()
		buf.Reset()
		if err := r.st.Write(ctx, func(tx store.Tx) error {
			_, err := tx.AppendProvisionLog(jobID, text)
			return err
		}); err != nil {
			r.log.Warn("cannot store a provisioning job's log", "job", jobID, "err", err)
		}
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				flush()
				return
			}
			buf.WriteString(line)
			buf.WriteByte('\n')
			if buf.Len() > 256<<10 {
				flush()
			}
		case <-tick.C:
			flush()
		}
	}
}
