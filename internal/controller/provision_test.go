package controller_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/controller"
	"hummingbird.io/hummingbird/internal/controller/controllertest"
	"hummingbird.io/hummingbird/internal/provision"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// TestProvisionOnLeader: a job queued through the controller that does not lead runs on the
// one that does, in its epoch; a cancellation asked through the other stops it there; a
// leader that stops during a job fails it, saying which controller ran it, before the other
// takes the lead; and a leader without the hosts' SSH key fails the job saying so, by name.
func TestProvisionOnLeader(t *testing.T) {
	t.Parallel()
	dsn := storetest.PostgresDSN(t)
	// A cluster that accepts connections and never answers keeps a job running.
	kubeconfig := controllertest.SilentCluster(t)
	withJobs := func(c *controller.Config) {
		c.Kubeconfig = kubeconfig
		c.Provision.BundleDir = t.TempDir()
		c.Provision.Ansible = "true"
		// Every controller that may lead holds the hosts' SSH keys.
		if err := os.MkdirAll(filepath.Join(c.DataDir, "ssh"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(c.DataDir, "ssh", "default"), []byte("a key\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	a := controllertest.Start(t, dsn, withJobs)
	b := controllertest.Start(t, dsn, func(c *controller.Config) { controllertest.ShareCA(t, a)(c); withJobs(c) })
	ctx := context.Background()
	lead, other := leaderOf(t, a, b)
	epoch := lead.Controller.Elector.Leading().Epoch
	via := other.Client(t, a.AdminToken) // tokens live in the database; the first controller made it
	if _, err := via.AddHost(ctx, apitype.HostCreate{Hostname: "edge-1", Personality: "edgeworker", MgmtIP: "192.168.204.50"}); err != nil {
		t.Fatal(err)
	}
	// job waits until edge-1's latest job satisfies ok.
	job := func(what string, ok func(store.ProvisionJob) bool) store.ProvisionJob {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			j, err := other.Controller.Provision.Job(ctx, "edge-1")
			if err != nil {
				t.Fatal(err)
			}
			if ok(j) {
				return j
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10 s: %+v", what, j)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	leaderName := lead.Name()
	runningOnLeader := func(j store.ProvisionJob) bool { return j.State == provision.StateRunning && j.Runner == leaderName }

	if _, err := via.ProvisionHost(ctx, "edge-1", apitype.ProvisionRequest{}); err != nil {
		t.Fatal(err)
	}
	if j := job("the job queued through the other controller running on the leader", runningOnLeader); j.Epoch != epoch {
		t.Errorf("the job runs in epoch %d, the leader's is %d", j.Epoch, epoch)
	}
	// Either controller's API says which controller runs it.
	if j, err := via.ProvisionJob(ctx, "edge-1"); err != nil || j.Runner != leaderName || j.State != provision.StateRunning {
		t.Errorf("the job through the API: %+v (%v); want running on %s", j, err, leaderName)
	}
	if _, err := via.CancelProvision(ctx, "edge-1"); err != nil {
		t.Fatal(err)
	}
	j := job("the job cancelled through the other controller", func(j store.ProvisionJob) bool { return j.State != provision.StateRunning })
	if j.State != provision.StateCancelled || !strings.HasPrefix(j.Message, "cancelled by ") || j.CancelBy == "" {
		t.Errorf("the cancelled job: %+v", j)
	}

	if _, err := via.ProvisionHost(ctx, "edge-1", apitype.ProvisionRequest{}); err != nil {
		t.Fatal(err)
	}
	job("the second job running on the leader", runningOnLeader)
	lead.Stop(t)
	j = job("the job of the stopped leader", func(j store.ProvisionJob) bool { return j.State != provision.StateRunning })
	if j.State != provision.StateFailed || !strings.Contains(j.Message, "controller "+leaderName+", which ran the job, stopped") {
		t.Errorf("the job of the stopped leader: %+v", j)
	}

	// The other leads now, without the hosts' SSH key; the first, back as a follower, has it
	// and takes the request: the job fails on the leader, saying which controller lacks it.
	deadline := time.Now().Add(5 * time.Second)
	for other.Controller.Elector.Leading() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the other controller does not lead 5 s after the leader stopped")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := os.Remove(filepath.Join(other.DataDir, "ssh", "default")); err != nil {
		t.Fatal(err)
	}
	lead.Restart(t)
	back := lead.Client(t, a.AdminToken)
	if _, err := back.ProvisionHost(ctx, "edge-1", apitype.ProvisionRequest{}); err != nil {
		t.Fatal(err)
	}
	j = job("the job on a leader without the key", func(j store.ProvisionJob) bool {
		return j.State != provision.StateQueued && j.State != provision.StateRunning
	})
	if j.State != provision.StateFailed || j.Runner != other.Name() || !strings.Contains(j.Message, "controller "+other.Name()+" holds no SSH key") {
		t.Errorf("the job on a leader without the key: %+v", j)
	}
}
