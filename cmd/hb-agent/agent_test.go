package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/client"
	"hummingbird.io/hummingbird/internal/controller"
	"hummingbird.io/hummingbird/internal/controller/controllertest"
	"hummingbird.io/hummingbird/internal/pki"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// TestAgentLifecycle runs the real hb-agent against a real controller:
// join with an enroll token and the pinned CA, heartbeats make the host
// available; SIGSTOP makes it degraded then failed with alarms; SIGCONT
// brings it back and clears them. A wrong pin, a spent token and a deleted
// host are refused.
func TestAgentLifecycle(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "hb-agent")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build hb-agent: %v\n%s", err, out)
	}
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			dsn := ""
			if b.Name != "sqlite" {
				dsn = b.DSN(t)
			}
			testLifecycle(t, bin, dsn)
		})
	}
}

func testLifecycle(t *testing.T, bin, dsn string) {
	ctx := context.Background()
	in := controllertest.Start(t, dsn, func(c *controller.Config) {
		c.Heartbeat.Interval = 500 * time.Millisecond
		c.Heartbeat.DegradeAfter, c.Heartbeat.FailAfter = 3, 6
	})
	api := in.Client(t, in.AdminToken)
	if _, err := api.AddHost(ctx, apitype.HostCreate{Hostname: "edge-01", Personality: "edgeworker", MgmtIP: "192.168.204.10"}); err != nil {
		t.Fatal(err)
	}
	tok, err := api.CreateToken(ctx, apitype.TokenCreate{Type: "enroll", Uses: 1, Host: "edge-01"})
	if err != nil {
		t.Fatal(err)
	}
	hash := pki.CAHash(in.Controller.CA.Cert)
	state := t.TempDir()
	join := func(token, caHash string) (string, error) {
		out, err := exec.Command(bin, "join", "--controller", in.URL, "--token", token, "--ca-hash", caHash,
			"--hostname", "edge-01", "--state-dir", state).CombinedOutput()
		return string(out), err
	}
	if out, err := join(tok.Secret, "sha256:"+strings.Repeat("0", 64)); err == nil || !strings.Contains(out, "does not match --ca-hash") {
		t.Errorf("join with a wrong pin: %v: %s", err, out)
	}
	if out, err := join(tok.Secret, hash); err != nil {
		t.Fatalf("join: %v: %s", err, out)
	}
	if st, err := os.Stat(filepath.Join(state, "agent.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("agent.key: %v, mode %v", err, st.Mode().Perm())
	}
	if out, err := join(tok.Secret, hash); err == nil || !strings.Contains(out, "used 1 times") {
		t.Errorf("second join with a one-use token: %v: %s", err, out)
	}

	agent := exec.Command(bin, "run", "--state-dir", state)
	logs := &syncBuffer{}
	agent.Stderr = io.MultiWriter(os.Stderr, logs)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	// exited is closed when the agent process ends, whatever ends it.
	exited := make(chan struct{})
	go func() { agent.Wait(); close(exited) }()
	t.Cleanup(func() { agent.Process.Kill(); <-exited })

	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			h, err := api.GetHost(ctx, "edge-01")
			if err == nil && h.Availability == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("edge-01 never became %s (last %+v, %v)", want, h.Availability, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitFor("available")
	// The agent reported this machine's inventory when asked.
	deadline := time.Now().Add(10 * time.Second)
	for {
		hi, err := api.HostInventory(ctx, "edge-01")
		if err == nil {
			if len(hi.Inventory.CPUs) == 0 || hi.Inventory.Memory.TotalBytes == 0 || hi.Inventory.Kernel == "" || hi.Hash == "" {
				t.Errorf("inventory lacks the basics: %+v", hi)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no inventory from the agent: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	agent.Process.Signal(syscall.SIGSTOP)
	waitFor("degraded")
	waitFor("failed")
	if h, _ := api.GetHost(ctx, "edge-01"); h.Operational != "disabled" {
		t.Errorf("a failed host is %s, want disabled", h.Operational)
	}
	alarmIDs := func() []string {
		t.Helper()
		as, err := api.ListAlarms(ctx, "host=edge-01", "")
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, a := range as {
			ids = append(ids, a.AlarmID+" "+a.Severity)
		}
		sort.Strings(ids)
		return ids
	}
	if got := strings.Join(alarmIDs(), ", "); got != "200.004 critical, 200.005 critical" {
		t.Errorf("active alarms of a failed host: %q", got)
	}
	agent.Process.Signal(syscall.SIGCONT)
	waitFor("available")
	if got := alarmIDs(); len(got) != 0 {
		t.Errorf("alarms still active after recovery: %v", got)
	}

	evs, err := api.ListEvents(ctx, client.EventFilter{EntityID: "host=edge-01", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := len(evs) - 1; i >= 0; i-- {
		if strings.HasPrefix(evs[i].Action, "alarm.") {
			got = append(got, evs[i].Action+" "+evs[i].Code)
		}
	}
	want := "alarm.set 200.005 alarm.set 200.005 alarm.set 200.004 alarm.clear 200.004 alarm.clear 200.005"
	if strings.Join(got, " ") != want {
		t.Errorf("alarm events: %q, want %q", strings.Join(got, " "), want)
	}

	// Deleting the host revokes its agent: heartbeats are refused and the
	// agent keeps retrying with backoff, not crashing.
	refusedBefore := strings.Count(logs.String(), "heartbeat failed")
	if err := api.DeleteHost(ctx, "edge-01"); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(20 * time.Second)
	for strings.Count(logs.String(), "heartbeat failed") < refusedBefore+2 {
		select {
		case <-exited:
			t.Fatalf("the agent exited after its host was deleted: %v", agent.ProcessState)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent did not retry its refused heartbeats in 20 s; its log:\n%s", logs.String())
		}
	}
	select {
	case <-exited:
		t.Fatalf("the agent exited after its host was deleted: %v", agent.ProcessState)
	default:
	}
}

// syncBuffer is a bytes.Buffer that a process's output and a test may use
// at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
