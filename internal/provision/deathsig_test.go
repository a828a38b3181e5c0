package provision

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// TestPlaybookDiesWithController: a controller killed (SIGKILL) while its playbook runs takes
// the playbook down with it, so that the next leader, which fails the job, is not left with a
// playbook of the old one still changing the host. The controller here is this test binary run
// again as a helper that starts a playbook that only sleeps.
func TestPlaybookDiesWithController(t *testing.T) {
	if os.Getenv("HB_PROVISION_HELPER") != "" {
		playbookHelper(t)
		return
	}
	t.Parallel()
	dir := t.TempDir()
	ansible := filepath.Join(dir, "ansible-playbook")
	if err := os.WriteFile(ansible, []byte("#!/bin/sh\necho $$ > \"$HB_PLAYBOOK_PID\"\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(dir, "playbook.pid")
	helper := exec.Command(os.Args[0], "-test.run=^TestPlaybookDiesWithController$", "-test.v")
	helper.Env = append(os.Environ(), "HB_PROVISION_HELPER=1", "HB_PLAYBOOK_PID="+pidFile, "HB_ANSIBLE="+ansible, "HB_WORK="+dir)
	out := &strings.Builder{}
	helper.Stdout, helper.Stderr = out, out
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	deadline := time.Now().Add(20 * time.Second)
	for pid == 0 {
		if b, err := os.ReadFile(pidFile); err == nil && strings.HasSuffix(string(b), "\n") {
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		if time.Now().After(deadline) {
			helper.Process.Kill()
			helper.Wait()
			t.Fatalf("the helper started no playbook within 20 s:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !alive(pid) {
		t.Fatalf("the playbook %d is not running", pid)
	}
	helper.Process.Kill()
	helper.Wait()
	deadline = time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the playbook %d still runs 5 s after its controller was killed", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive says whether process pid runs (a zombie does not).
func alive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z") && !strings.HasPrefix(rest, "X")
}

// playbookHelper is the controller of TestPlaybookDiesWithController: it runs a job's playbook
// and waits to be killed.
func playbookHelper(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t, storetest.SQLiteDSN(t))
	var job store.ProvisionJob
	if err := st.Write(ctx, func(tx store.Tx) error {
		if err := tx.InsertHost(&store.Host{ID: 1, UUID: "00000000-0000-4000-8000-000000000001", Hostname: "edge-1",
			Personality: "edgeworker", Administrative: "locked", Operational: "disabled", Availability: "offline",
			InvProvision: "provisioning", CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC()}); err != nil {
			return err
		}
		job = store.ProvisionJob{ID: 1, UUID: "00000000-0000-4000-8000-000000000002", HostID: 1, State: StateRunning,
			CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC()}
		return tx.InsertProvisionJob(&job)
	}); err != nil {
		t.Fatal(err)
	}
	r := New(st, nil, Config{Ansible: os.Getenv("HB_ANSIBLE"), WorkDir: os.Getenv("HB_WORK")})
	dir, err := os.MkdirTemp(r.cfg.WorkDir, "job-1-")
	if err != nil {
		t.Fatal(err)
	}
	r.runPlaybook(ctx, job.ID, dir)
	t.Fatal("the playbook ended before the helper was killed")
}
