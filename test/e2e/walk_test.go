package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/client"
	"hummingbird.io/hummingbird/internal/nodes"
	"hummingbird.io/hummingbird/internal/pki"
	"hummingbird.io/hummingbird/internal/testbed"
	"hummingbird.io/hummingbird/internal/testbed/apptest"
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
// paths (the data directory among them) are the operator's: a bed with three bare hosts, a
// controller pointed at it, the hosts added, two provisioned, every agent joined and run by the
// shipped systemd unit, the hosts unlocked, a redundant app on the two with the third as its
// witness. Then, on that bed, what the walk's last paragraph suggests: the hosts are in
// service and each agent runs under the unit with its capabilities; the active member holds
// the VIP; locking it moves the app first and cordons its Node, unlocking puts it back as a
// standby; a drain held by a PodDisruptionBudget is left with host-lock-cancel; cutting the
// active member off (its kubelet with it) while the standby's kubelet is stopped leaves the
// standby's pod as the Service's one ready endpoint within seconds, and 200.006 is raised for
// the standby, whose agent heartbeats, never for the cut-off host, which fails.
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
	w := walkBed(t, ctx, dir, env)

	// In service: each agent's heartbeats made its host available; the members are provisioned
	// and their Nodes Ready.
	pollUntil(t, ctx, "the hosts in service", func() error {
		for _, h := range w.hosts {
			got, err := w.api.GetHost(ctx, h.name)
			if err != nil {
				return err
			}
			state := []string{got.Administrative, got.Operational, got.Availability}
			if want := []string{"unlocked", "enabled", "available"}; !slices.Equal(state, want) {
				return fmt.Errorf("%s: %v, want %v", h.name, state, want)
			}
			if h != w.witness && (got.InvProvision != "provisioned" || got.NodeState != "Ready") {
				return fmt.Errorf("%s: %s with Node %q, want provisioned and Ready", h.name, got.InvProvision, got.NodeState)
			}
		}
		return nil
	})
	// Each agent runs under the shipped unit, with its capabilities, and iptables' lock is
	// writable in its mount namespace.
	for _, h := range w.hosts {
		unit, err := h.ssh(ctx, "systemctl show -p ActiveState,CapabilityBoundingSet hb-agent; "+
			"grep ' /run/xtables.lock ' /proc/$(systemctl show -p MainPID --value hb-agent)/mountinfo")
		if err != nil || !strings.Contains(unit, "ActiveState=active") || !strings.Contains(unit, "cap_net_admin") ||
			!strings.Contains(unit, "/run/xtables.lock rw") {
			t.Errorf("the agent's unit on %s: %v\n%s", h.name, err, unit)
		}
	}
	// The agent under that unit holds the app's VIP: one active member, one standby.
	app := w.waitApp(t, ctx, "an active member and a standby", func(a apitype.App) bool { return a.Active != "" && len(a.Standbys) == 1 })
	w.checkVIP(t, ctx, w.host(app.Active))
	act, stb := w.host(app.Active), w.host(app.Standbys[0])

	// Locked means out of service: the lock of the active member moves the app first and
	// cordons its Node; host-unlock puts it back, as a standby.
	start = time.Now()
	hbctl("host-lock", act.name)
	checkLockState(t, ctx, w.api, w.cp, act.name, "locked", "disabled", true)
	if app = w.waitApp(t, ctx, "the app off the locked host", func(a apitype.App) bool { return a.Active == stb.name }); app.Active == act.name {
		t.Errorf("the locked host %s is the app's active member", act.name)
	}
	w.checkVIP(t, ctx, stb)
	t.Logf("host-lock of the active member %s: the app on %s, the host locked, its Node cordoned, after %v",
		act.name, stb.name, time.Since(start).Round(time.Second))
	hbctl("host-unlock", act.name)
	checkLockState(t, ctx, w.api, w.cp, act.name, "unlocked", "enabled", false)
	w.waitApp(t, ctx, "the unlocked host a standby again", func(a apitype.App) bool {
		return a.Active == stb.name && slices.Equal(a.Standbys, []string{act.name})
	})
	act, stb = stb, act

	// A drain that a PodDisruptionBudget holds can be left: host-lock-cancel uncordons the
	// Node, the host stays unlocked and in service, and the budget's pod runs on.
	if out, err := w.cp.KubectlInput(ctx, []byte(fmt.Sprintf(walkWorkloads, stb.name, testbed.HelloImage)), "apply", "-f", "-"); err != nil {
		t.Fatalf("creating the held workload: %v\n%s", err, out)
	}
	pollUntil(t, ctx, "the budget's pod running", func() error {
		var pdb struct {
			Status struct {
				CurrentHealthy int `json:"currentHealthy"`
			} `json:"status"`
		}
		if err := w.cp.GetJSON(ctx, &pdb, "pdb", "--namespace", "default", "walk"); err != nil {
			return err
		}
		if pdb.Status.CurrentHealthy != 1 {
			return fmt.Errorf("the budget counts %d healthy pods", pdb.Status.CurrentHealthy)
		}
		return nil
	})
	hbctl("host-lock", stb.name, "--no-wait")
	pollUntil(t, ctx, "the budget to hold the drain", func() error {
		op, err := w.api.LockOperation(ctx, stb.name)
		if err != nil {
			return err
		}
		if op.State != "draining" || !strings.Contains(op.Message, "disruption budget walk") {
			return fmt.Errorf("the lock is %s: %s", op.State, op.Message)
		}
		return nil
	})
	hbctl("host-lock-cancel", stb.name)
	checkLockState(t, ctx, w.api, w.cp, stb.name, "unlocked", "enabled", false)
	if op, err := w.api.LockOperation(ctx, stb.name); err != nil || op.State != "cancelled" {
		t.Errorf("the lock after host-lock-cancel: %+v, %v; want it cancelled", op, err)
	}
	if events, err := w.api.ListEvents(ctx, client.EventFilter{EntityID: "host=" + stb.name}); err != nil ||
		!slices.ContainsFunc(events, func(e apitype.Event) bool { return e.Action == "host.lock.cancel" }) {
		t.Errorf("no host.lock.cancel event of %s (%v)", stb.name, err)
	}
	if out, err := w.cp.KubectlInput(ctx, []byte(fmt.Sprintf(walkWorkloads, stb.name, testbed.HelloImage)), "delete", "-f", "-"); err != nil {
		t.Fatalf("deleting the held workload: %v\n%s", err, out)
	}

	// The active member cut off, its kubelet with it, and the standby's kubelet stopped: the
	// Service's one ready endpoint is the standby's pod within seconds. The cut-off host gets
	// the heartbeat alarms alone; the standby, whose agent heartbeats on, gets 200.006.
	if out, err := stb.ssh(ctx, "systemctl stop kubelet"); err != nil {
		t.Fatalf("stopping the kubelet of %s: %v\n%s", stb.name, err, out)
	}
	fault := w.setLink(t, ctx, act, false)
	t.Cleanup(func() { w.setLink(t, context.WithoutCancel(ctx), act, true) })
	pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
	pollUntil(t, pctx, "the Service's one ready endpoint on the standby", func() error {
		ready, err := apptest.ReadyEndpoints(ctx, w.cp)
		if err != nil || !slices.Equal(ready, []string{stb.ip}) {
			return fmt.Errorf("ready endpoints %v (%v), want %s", ready, err, stb.ip)
		}
		return nil
	})
	pcancel()
	t.Logf("%s cut off: the Service's one ready endpoint is %s's pod after %v", act.name, stb.name, time.Since(fault).Round(time.Millisecond))
	w.checkVIP(t, ctx, stb)
	pctx, pcancel = context.WithTimeout(ctx, 2*time.Minute)
	pollUntil(t, pctx, "200.006 on the standby alone, the cut-off host failed", func() error {
		alarms, err := w.api.ListAlarms(ctx, "", "")
		if err != nil {
			return err
		}
		var kubelet *apitype.Alarm
		for i, a := range alarms {
			if a.AlarmID != nodes.AlarmKubelet {
				continue
			}
			if strings.HasPrefix(a.EntityInstanceID, "host="+act.name+".") {
				t.Fatalf("200.006 raised for the cut-off host %s, whose agent cannot heartbeat: %+v", act.name, a)
			}
			if strings.HasPrefix(a.EntityInstanceID, "host="+stb.name+".") {
				kubelet = &alarms[i]
			}
		}
		cut, err := w.api.GetHost(ctx, act.name)
		if err != nil {
			return err
		}
		if kubelet == nil || cut.Availability != "failed" {
			return fmt.Errorf("200.006 of %s: %+v; %s is %s", stb.name, kubelet, act.name, cut.Availability)
		}
		if !strings.Contains(kubelet.ReasonText, "the host is available") || kubelet.Severity != "major" {
			return fmt.Errorf("200.006 of %s: %s, %q; want major, saying the host is available", stb.name, kubelet.Severity, kubelet.ReasonText)
		}
		return nil
	})
	pcancel()
	t.Logf("%s failed with the heartbeat alarms alone; 200.006 on %s, %v after the fault", act.name, stb.name, time.Since(fault).Round(time.Second))
}

// walkWorkloads is a Deployment of one pod on Node %[1]s, and a PodDisruptionBudget that lets
// none of it go.
const walkWorkloads = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: walk, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: walk}}
  template:
    metadata: {labels: {app: walk}}
    spec:
      terminationGracePeriodSeconds: 1
      nodeSelector: {kubernetes.io/hostname: %[1]s}
      containers: [{name: hello, image: %[2]s, imagePullPolicy: Never}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: walk, namespace: default}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: walk}}
`

// walk is the bed the walk brought up, as bed.env describes it, and its controller.
type walk struct {
	hosts   []*walkHost
	witness *walkHost
	index   int    // the bed's number N: 10.251.N.0/24, namespaces hbN-HOST
	vip     string // BED_VIP
	api     *client.Client
	cp      *testbed.ControlPlane
}

type walkHost struct {
	name, ip string
	sshLine  []string
}

// ssh runs a command on the host as the walk's ssh line does.
func (h *walkHost) ssh(ctx context.Context, command string) (string, error) {
	out, err := exec.CommandContext(ctx, h.sshLine[0], append(h.sshLine[1:], command)...).CombinedOutput()
	return string(out), err
}

// walkBed reads the walk's bed.env and reaches its controller and cluster.
func walkBed(t *testing.T, ctx context.Context, dir string, env map[string]string) *walk {
	t.Helper()
	w := &walk{vip: env["BED_VIP"]}
	if _, err := fmt.Sscanf(env["BED_NET"], "10.251.%d.0/24", &w.index); err != nil {
		t.Fatalf("BED_NET %q: %v", env["BED_NET"], err)
	}
	for i := 1; env[fmt.Sprintf("BED_HOST_%d", i)] != ""; i++ {
		w.hosts = append(w.hosts, &walkHost{name: env[fmt.Sprintf("BED_HOST_%d", i)], ip: env[fmt.Sprintf("BED_IP_%d", i)],
			sshLine: strings.Fields(env[fmt.Sprintf("BED_SSH_%d", i)])})
	}
	if len(w.hosts) != 3 || w.vip == "" {
		t.Fatalf("bed.env names %d hosts and VIP %q, want 3 and one", len(w.hosts), w.vip)
	}
	w.witness = w.hosts[2]
	ca, err := os.ReadFile(filepath.Join(dir, "bed-data", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	token, err := os.ReadFile(filepath.Join(dir, "bed-data", "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	roots, err := pki.Pool(ca)
	if err != nil {
		t.Fatal(err)
	}
	if w.api, err = client.New(client.Options{URL: "https://" + env["BED_GW"] + ":6385", Token: strings.TrimSpace(string(token)), Roots: roots}); err != nil {
		t.Fatal(err)
	}
	if w.cp, err = testbed.Reach(env["KUBECONFIG"]); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *walk) host(name string) *walkHost {
	for _, h := range w.hosts {
		if h.name == name {
			return h
		}
	}
	return nil
}

// waitApp polls the app press until ok says yes, for up to two minutes.
func (w *walk) waitApp(t *testing.T, ctx context.Context, what string, ok func(apitype.App) bool) apitype.App {
	t.Helper()
	var app apitype.App
	pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	pollUntil(t, pctx, what, func() error {
		var err error
		if app, err = w.api.GetApp(ctx, "press"); err != nil {
			return err
		}
		if !ok(app) {
			return fmt.Errorf("the app: active %q, standbys %v", app.Active, app.Standbys)
		}
		return nil
	})
	return app
}

// checkVIP waits up to 10 s for h alone to hold the VIP on its eth0, and the VIP to answer.
func (w *walk) checkVIP(t *testing.T, ctx context.Context, h *walkHost) {
	t.Helper()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pollUntil(t, pctx, "the VIP on "+h.name+" alone", func() error {
		for _, o := range w.hosts {
			out, err := exec.CommandContext(ctx, "ip", "-n", fmt.Sprintf("hb%d-%s", w.index, o.name), "-o", "addr", "show", "dev", "eth0").Output()
			if err != nil {
				return fmt.Errorf("addresses of %s: %v", o.name, err)
			}
			if on := strings.Contains(string(out), " "+w.vip+"/"); on != (o == h) {
				return fmt.Errorf("%s holds the VIP: %v", o.name, on)
			}
		}
		if body, err := get(ctx, "http://"+w.vip+":8080/"); err != nil || strings.TrimSpace(body) != "hello from Hummingbird" {
			return fmt.Errorf("the VIP answered %q, %v", body, err)
		}
		return nil
	})
}

// setLink sets h's eth0 up or down from outside the host, and says when.
func (w *walk) setLink(t *testing.T, ctx context.Context, h *walkHost, up bool) time.Time {
	t.Helper()
	state := map[bool]string{true: "up", false: "down"}[up]
	if out, err := exec.CommandContext(ctx, "ip", "-n", fmt.Sprintf("hb%d-%s", w.index, h.name), "link", "set", "eth0", state).CombinedOutput(); err != nil {
		t.Errorf("setting %s's eth0 %s: %v\n%s", h.name, state, err, out)
	}
	return time.Now()
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
