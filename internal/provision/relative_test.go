package provision

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// TestRelativeJobDirectory runs the real playbook from a job directory
// named relative to the working directory, as a controller started with
// --data-dir data makes it: ansible-playbook, which runs in the job's
// playbook directory, must find its playbook, inventory and variables and
// get as far as the host, which here cannot be reached; the job names
// the task that failed.
func TestRelativeJobDirectory(t *testing.T) {
	t.Parallel()
	ap, err := exec.LookPath("ansible-playbook")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("CI is set and ansible-playbook is not on PATH: apt-get install ansible-core")
		}
		t.Skip("ansible-playbook is not on PATH (apt-get install ansible-core)")
	}
	ctx := context.Background()
	st := storetest.Open(t, storetest.SQLiteDSN(t))
	inv := inventory.New(st, inventory.Options{})
	if _, _, err := inv.EnsureManagementPool(ctx, "static", "192.168.204.0/24", []string{"192.168.204.1"}); err != nil {
		t.Fatal(err)
	}
	h, err := inv.Add(ctx, "test", apitype.HostCreate{Hostname: "edge-1", Personality: "edgeworker", MgmtIP: "192.168.204.5"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	var job store.ProvisionJob
	if err := st.Write(ctx, func(tx store.Tx) error {
		id, err := tx.NextID("provision_jobs")
		if err != nil {
			return err
		}
		job = store.ProvisionJob{ID: id, UUID: "00000000-0000-4000-8000-000000000001", HostID: h.ID, State: StateRunning,
			CreatedAt: now, UpdatedAt: now}
		return tx.InsertProvisionJob(&job)
	}); err != nil {
		t.Fatal(err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(wd, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := New(st, nil, Config{PackageSource: SourceOnline, Ansible: ap, WorkDir: rel})
	dir, err := os.MkdirTemp(r.cfg.WorkDir, "job-1-")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.IsAbs(dir) {
		t.Fatalf("the job directory %s is not relative: the test tests nothing", dir)
	}
	// Nothing listens on 127.0.0.1:1: the host is unreachable at once.
	host := store.Host{Hostname: "edge-1", MgmtIP: "127.0.0.1"}
	invFile := inventoryFor(host, filepath.Join(dir, "no-key"), filepath.Join(dir, "known"))
	invFile["edgeworkers"].(map[string]any)["hosts"].(map[string]any)["edge-1"].(map[string]any)["ansible_port"] = 1
	vars := r.vars(host, store.Pool{}, job, "v1.37.2", "127.0.0.1:6443", "sha256:"+strings.Repeat("0", 64), "abcdef.0123456789abcdef", nil)
	if err := writeJobFiles(dir, invFile, vars); err != nil {
		t.Fatal(err)
	}
	p, err := r.runPlaybook(ctx, job.ID, dir)
	if err == nil {
		t.Fatal("the playbook succeeded against an unreachable host")
	}
	var log strings.Builder
	if err := st.Read(ctx, func(tx store.Tx) error {
		chunks, err := tx.ProvisionLog(job.ID, 0, 1000)
		for _, c := range chunks {
			log.WriteString(c.Text)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log.String(), "could not be found") || p.failedTask == "" {
		t.Errorf("the playbook did not reach the host: failed at %q (%s)\n%s", p.failedTask, p.failMsg, log.String())
	}
	if !strings.Contains(p.failMsg, "cannot be reached over SSH") {
		t.Errorf("failed at %q with %q, want the host unreachable", p.failedTask, p.failMsg)
	}
}
