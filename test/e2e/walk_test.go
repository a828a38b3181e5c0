package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/testbed"
)

// walkBlock is the shell block of test/bed/README.md that follows the line "<!-- walk -->".
func walkBlock(t *testing.T, readme string) string {
	t.Helper()
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "<!-- walk -->\n```sh\n")
	if !ok {
		t.Fatalf("%s has no \"<!-- walk -->\" line followed by a sh block", readme)
	}
	block, _, ok := strings.Cut(after, "```\n")
	if !ok {
		t.Fatalf("%s: the walk's block does not end", readme)
	}
	return block
}

// shellEnv reads the variables a file of `export K='v'` lines sets.
func shellEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
		if ok {
			env[k] = strings.ReplaceAll(strings.Trim(v, "'"), `'\''`, "'")
		}
	}
	return env
}

// TestOperatorWalk runs the walk of test/bed/README.md exactly as written, copy-pasted into
// bash, in a directory that holds the repository's files and nothing else, so that its relative
// paths (the data directory among them) are the operator's: a bed with one bare host, a
// controller pointed at it, the host added and provisioned, its agent joined and run by the
// shipped systemd unit, the host unlocked. The host must then be in service, made available by
// its agent's heartbeats, and the agent must run under the unit with the unit's capabilities.
func TestOperatorWalk(t *testing.T) {
	requireBed(t)
	checkNothingLeft(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
	defer cancel()

	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	block := walkBlock(t, filepath.Join(repo, "test", "bed", "README.md"))
	dir := t.TempDir()
	entries, err := os.ReadDir(repo)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if n := e.Name(); n != ".git" && n != "bin" && !strings.HasPrefix(n, "bed") && n != "data" {
			if err := os.Symlink(filepath.Join(repo, n), filepath.Join(dir, n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// What the walk leaves running: the controller (its last background job) and the bed.
	t.Cleanup(func() {
		if b, err := os.ReadFile(filepath.Join(dir, "bed-controller.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				syscall.Kill(pid, syscall.SIGTERM)
			}
		}
		if env, err := os.ReadFile(filepath.Join(dir, "bed.env")); err == nil && len(env) > 0 {
			if d := shellEnv(t, filepath.Join(dir, "bed.env"))["BED_DIR"]; d != "" {
				if err := testbed.Down(context.WithoutCancel(ctx), d); err != nil {
					t.Errorf("taking the walk's bed down: %v", err)
				}
			}
		}
	})

	start := time.Now()
	// The controller is the block's last background job: its pid is noted however the block
	// ends, for the cleanup.
	script := "set -eo pipefail\ntrap 'echo $! > bed-controller.pid' EXIT\n" + block
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "bed-controller.log"))
		t.Fatalf("the walk failed: %v\n%s\n--- bed-controller.log:\n%s", err, out, tail(string(log), 60))
	}
	t.Logf("the walk took %v:\n%s", time.Since(start).Round(time.Second), tail(string(out), 12))

	env := shellEnv(t, filepath.Join(dir, "bed.env"))
	host := env["BED_HOST_1"]
	if _, err := os.Stat(filepath.Join(dir, "bed-data", "hummingbird.db")); err != nil {
		t.Errorf("the relative data directory: %v", err)
	}
	hbctl := func(args ...string) string {
		t.Helper()
		c := exec.CommandContext(ctx, filepath.Join(dir, "bin", "hbctl"), args...)
		c.Dir = dir
		c.Env = append(os.Environ(), "HB_URL=https://"+env["BED_GW"]+":6385", "HB_CACERT=bed-data/ca.crt",
			"HB_TOKEN_FILE=bed-data/admin.token")
		out, err := c.Output()
		if err != nil {
			t.Fatalf("hbctl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	// In service: the agent's first heartbeat made it available.
	deadline := time.Now().Add(time.Minute)
	for {
		var h map[string]any
		if err := json.Unmarshal([]byte(hbctl("host-show", host, "-f", "json")), &h); err != nil {
			t.Fatal(err)
		}
		state := []any{h["administrative"], h["operational"], h["availability"], h["invprovision"], h["node_state"]}
		want := []any{"unlocked", "enabled", "available", "provisioned", "Ready"}
		if equalAny(state, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s after the walk: %v, want %v", host, state, want)
		}
		time.Sleep(2 * time.Second)
	}
	ssh := strings.Fields(env["BED_SSH_1"])
	// The unit's sandbox: iptables' lock is writable in the agent's mount namespace.
	unit, err := exec.CommandContext(ctx, ssh[0], append(ssh[1:], "systemctl show -p ActiveState,CapabilityBoundingSet hb-agent; "+
		"grep ' /run/xtables.lock ' /proc/$(systemctl show -p MainPID --value hb-agent)/mountinfo")...).CombinedOutput()
	if err != nil || !strings.Contains(string(unit), "ActiveState=active") || !strings.Contains(string(unit), "cap_net_admin") ||
		!strings.Contains(string(unit), "/run/xtables.lock rw") {
		t.Errorf("the agent's unit on %s: %v\n%s", host, err, unit)
	}
}

func equalAny(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
