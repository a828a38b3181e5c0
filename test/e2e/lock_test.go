package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/client"
	"hummingbird.io/hummingbird/internal/controller"
	"hummingbird.io/hummingbird/internal/controller/controllertest"
	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/testbed"
)

// lockWorkloads are what runs on the locked host besides the bare pod of joinAndRun: a
// Deployment of two pods whose PodDisruptionBudget allows no disruption, and a DaemonSet.
const lockWorkloads = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{name: hello, image: %[1]s, imagePullPolicy: Never}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: default}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{name: hello, image: %[1]s, imagePullPolicy: Never}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web, namespace: default}
spec:
  minAvailable: 2
  selector: {matchLabels: {app: web}}
`

// TestLock locks and unlocks a Kubernetes node through the API, as hbctl host-lock and
// host-unlock do: a bare pod refuses the lock unless forced; a PodDisruptionBudget holds the
// drain, which host-lock-cancel and host-unlock leave at once, and until its timeout, after
// which the Node is schedulable again and the host unlocked;
// without the budget the Deployment's pods are evicted, the DaemonSet's stays, and the host is
// locked; unlock and lock again round trip the host's states and the Node's unschedulable.
func TestLock(t *testing.T) {
	requireBed(t)
	checkNothingLeft(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()

	b := testbed.Start(t, ctx, testbed.Options{Hosts: 1, Kubelet: true})
	h, cp := b.Hosts[0], b.ControlPlane
	joinAndRun(t, ctx, b, h) // and the bare pod default/hello on it
	in := controllertest.Start(t, "", func(c *controller.Config) {
		c.Kubeconfig = cp.Kubeconfig
		c.MgmtSubnet, c.MgmtControllerIPs = fmt.Sprintf("10.251.%d.0/24", b.Index), []string{fmt.Sprintf("10.251.%d.1", b.Index)}
	})
	api := in.Client(t, in.AdminToken)
	added, err := api.AddHost(ctx, apitype.HostCreate{Hostname: h.Name, Personality: "edgeworker",
		MgmtIP: h.IP.String(), MgmtMAC: h.MAC.String()})
	if err != nil {
		t.Fatal(err)
	}
	vouch(t, ctx, cp, h.Name, added.UUID) // joined by hand
	// A new host is locked; unlocking it leaves its Node schedulable.
	unlockAndCheck(t, ctx, api, cp, h.Name)

	if out, err := cp.KubectlInput(ctx, []byte(fmt.Sprintf(lockWorkloads, testbed.HelloImage)), "apply", "-f", "-"); err != nil {
		t.Fatalf("creating the workloads: %v\n%s", err, out)
	}
	pollUntil(t, ctx, "the web pods, the agent pod and the budget", func() error {
		pods := podsOnNode(t, ctx, cp, h.Name)
		if n := pods.running("ReplicaSet"); n != 2 {
			return fmt.Errorf("%d web pods run", n)
		}
		if n := pods.running("DaemonSet"); n != 1 {
			return fmt.Errorf("%d agent pods run", n)
		}
		var pdb struct {
			Status struct {
				CurrentHealthy     int `json:"currentHealthy"`
				DisruptionsAllowed int `json:"disruptionsAllowed"`
			} `json:"status"`
		}
		if err := cp.GetJSON(ctx, &pdb, "pdb", "--namespace", "default", "web"); err != nil {
			return err
		}
		if pdb.Status.CurrentHealthy != 2 {
			return fmt.Errorf("the budget counts %d healthy pods", pdb.Status.CurrentHealthy)
		}
		return nil
	})

	// The bare pod refuses the lock: nothing would recreate it.
	_, err = api.LockHost(ctx, h.Name, apitype.LockRequest{Timeout: "15s"})
	if !problem.Is(err, problem.Conflict) || !strings.Contains(err.Error(), "default/hello") || !strings.Contains(err.Error(), "--force") {
		t.Errorf("lock with a bare pod on the Node: %v; want a conflict naming default/hello and --force", err)
	}
	checkLockState(t, ctx, api, cp, h.Name, "unlocked", "enabled", false)

	// Forced, the bare pod is evicted, and the budget holds the web pods: host-lock-cancel
	// leaves the drain, the Node schedulable again and the host unlocked.
	op, err := api.LockHost(ctx, h.Name, apitype.LockRequest{Force: true, Timeout: "2m"})
	if err != nil {
		t.Fatal(err)
	}
	if op.State != "draining" {
		t.Errorf("a lock that drains answers %q, want draining", op.State)
	}
	heldByBudget := func() {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		pollUntil(t, wctx, "the budget to hold the drain", func() error {
			op, err := api.LockOperation(ctx, h.Name)
			if err != nil {
				return err
			}
			if op.State != "draining" || len(op.Pending) != 2 || !strings.Contains(op.Message, "disruption budget web") {
				return fmt.Errorf("the lock is %s with %v pending: %s", op.State, op.Pending, op.Message)
			}
			return nil
		})
	}
	heldByBudget()
	if op, err = api.CancelLock(ctx, h.Name); err != nil || op.State != "cancelled" || op.PodsEvicted != 1 ||
		!strings.Contains(op.Message, "cancelled by") || !strings.Contains(op.Message, "the Node is schedulable again") {
		t.Errorf("host-lock-cancel of the held drain: %+v, %v; want it cancelled with the bare pod evicted", op, err)
	}
	checkLockState(t, ctx, api, cp, h.Name, "unlocked", "enabled", false)

	// host-unlock of a host being locked cancels its lock too.
	if _, err := api.LockHost(ctx, h.Name, apitype.LockRequest{Timeout: "2m"}); err != nil {
		t.Fatal(err)
	}
	heldByBudget()
	if got, err := api.UnlockHost(ctx, h.Name); err != nil || got.Administrative != "unlocked" {
		t.Errorf("host-unlock during the drain: %+v, %v; want the lock cancelled and the host unlocked", got, err)
	}
	if op, err = api.LockOperation(ctx, h.Name); err != nil || op.State != "cancelled" {
		t.Errorf("the lock after host-unlock: %+v, %v; want it cancelled", op, err)
	}
	checkLockState(t, ctx, api, cp, h.Name, "unlocked", "enabled", false)

	// The budget holds the web pods until the timeout.
	if _, err := api.LockHost(ctx, h.Name, apitype.LockRequest{Timeout: "15s"}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	op = waitLock(t, ctx, api, h.Name)
	t.Logf("the drain held by the budget ended %s after %v", op.State, time.Since(start).Round(time.Second))
	if op.State != "failed" || op.PodsTotal != 2 || op.PodsEvicted != 0 || len(op.Pending) != 2 ||
		!strings.Contains(op.Message, "did not end within 15s") || !strings.Contains(op.Message, "disruption budget web") ||
		!strings.Contains(op.Message, op.Pending[0]) || !strings.HasPrefix(op.Pending[0], "default/web-") {
		t.Errorf("the lock held by the budget: %+v; want failed after 15s, 0 of 2 pods evicted, naming the 2 web pods and the budget", op)
	}
	pods := podsOnNode(t, ctx, cp, h.Name)
	if slices.Contains(pods.names(), "default/hello") || pods.running("ReplicaSet") != 2 || pods.running("DaemonSet") != 1 {
		t.Errorf("pods on the Node after the failed lock: %v; want the web and agent pods, and the bare pod gone", pods.names())
	}
	checkLockState(t, ctx, api, cp, h.Name, "unlocked", "enabled", false)

	// Without the budget, the web pods are evicted and the agent pod stays.
	if out, err := cp.Kubectl(ctx, "delete", "pdb", "--namespace", "default", "web"); err != nil {
		t.Fatalf("deleting the budget: %v\n%s", err, out)
	}
	if _, err := api.LockHost(ctx, h.Name, apitype.LockRequest{Timeout: "2m"}); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	op = waitLock(t, ctx, api, h.Name)
	t.Logf("the drain ended %s after %v", op.State, time.Since(start).Round(time.Second))
	if op.State != "locked" || op.PodsTotal != 2 || op.PodsEvicted != 2 || len(op.Pending) != 0 || op.FinishedAt == nil {
		t.Errorf("the lock: %+v; want locked with the 2 web pods evicted", op)
	}
	pods = podsOnNode(t, ctx, cp, h.Name)
	if len(pods) != 1 || pods.running("DaemonSet") != 1 {
		t.Errorf("pods on the locked Node: %v; want the agent pod alone", pods.names())
	}
	checkLockState(t, ctx, api, cp, h.Name, "locked", "disabled", true)
	if _, err := api.LockHost(ctx, h.Name, apitype.LockRequest{}); !problem.Is(err, problem.Conflict) {
		t.Errorf("locking a locked host: %v; want a conflict", err)
	}

	// Unlock and lock again.
	unlockAndCheck(t, ctx, api, cp, h.Name)
	if _, err := api.LockHost(ctx, h.Name, apitype.LockRequest{Timeout: "2m"}); err != nil {
		t.Fatal(err)
	}
	if op = waitLock(t, ctx, api, h.Name); op.State != "locked" {
		t.Errorf("the second lock: %+v", op)
	}
	checkLockState(t, ctx, api, cp, h.Name, "locked", "disabled", true)
	unlockAndCheck(t, ctx, api, cp, h.Name)

	events, err := api.ListEvents(ctx, client.EventFilter{EntityID: "host=" + h.Name})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range events {
		actions = append(actions, e.Action)
	}
	// Each lock that drains starts with host.lock.start; each lock raises 200.001 and each unlock
	// clears it; a cancellation of a drain is asked (host.lock.cancelling), then the drain ends.
	want := []string{"alarm.clear", "host.unlock", "alarm.set", "host.lock", "host.lock.start",
		"alarm.clear", "host.unlock", "alarm.set", "host.lock", "host.lock.start",
		"host.lock.failed", "host.lock.start",
		"host.lock.cancel", "host.lock.cancelling", "host.lock.start",
		"host.lock.cancel", "host.lock.cancelling", "host.lock.start", "host.unlock", "host.add"}
	if !slices.Equal(actions, want) {
		t.Errorf("events of %s: %v, want %v", h.Name, actions, want)
	}
}

// unlockAndCheck unlocks a host and checks its states and its Node's.
func unlockAndCheck(t *testing.T, ctx context.Context, api *client.Client, cp *testbed.ControlPlane, host string) {
	t.Helper()
	if _, err := api.UnlockHost(ctx, host); err != nil {
		t.Fatal(err)
	}
	checkLockState(t, ctx, api, cp, host, "unlocked", "enabled", false)
}

// checkLockState checks a host's administrative and operational states and its Node's spec.unschedulable.
func checkLockState(t *testing.T, ctx context.Context, api *client.Client, cp *testbed.ControlPlane, host, admin, oper string, unschedulable bool) {
	t.Helper()
	h, err := api.GetHost(ctx, host)
	if err != nil {
		t.Fatal(err)
	}
	var node struct {
		Spec struct {
			Unschedulable bool `json:"unschedulable"`
		} `json:"spec"`
	}
	if err := cp.GetJSON(ctx, &node, "node", host); err != nil {
		t.Fatal(err)
	}
	if h.Administrative != admin || h.Operational != oper || node.Spec.Unschedulable != unschedulable {
		t.Errorf("host %s is %s/%s with Node unschedulable %v; want %s/%s and %v", host, h.Administrative, h.Operational,
			node.Spec.Unschedulable, admin, oper, unschedulable)
	}
}

// waitLock follows a host's lock until its drain ends, logging each change, and returns it.
func waitLock(t *testing.T, ctx context.Context, api *client.Client, host string) apitype.LockOperation {
	t.Helper()
	last := ""
	for {
		op, err := api.LockOperation(ctx, host)
		if err != nil {
			t.Fatal(err)
		}
		if line := fmt.Sprintf("%s %d/%d %v %s", op.State, op.PodsEvicted, op.PodsTotal, op.Pending, op.Message); line != last {
			t.Logf("lock of %s: %s", host, line)
			last = line
		}
		if op.State != "draining" {
			return op
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the lock of %s still drains: %v", host, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// nodePodList are the pods on a Node.
type nodePodList []struct {
	Metadata struct {
		Namespace       string `json:"namespace"`
		Name            string `json:"name"`
		OwnerReferences []struct {
			Kind string `json:"kind"`
		} `json:"ownerReferences"`
	} `json:"metadata"`
	Status struct {
		Phase string `json:"phase"`
	} `json:"status"`
}

func podsOnNode(t *testing.T, ctx context.Context, cp *testbed.ControlPlane, node string) nodePodList {
	t.Helper()
	var list struct {
		Items nodePodList `json:"items"`
	}
	if err := cp.GetJSON(ctx, &list, "pods", "--all-namespaces", "--field-selector", "spec.nodeName="+node); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// running counts the Running pods owned by a kind of controller.
func (ps nodePodList) running(ownerKind string) int {
	n := 0
	for _, p := range ps {
		if p.Status.Phase == "Running" && len(p.Metadata.OwnerReferences) > 0 && p.Metadata.OwnerReferences[0].Kind == ownerKind {
			n++
		}
	}
	return n
}

func (ps nodePodList) names() []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Metadata.Namespace+"/"+p.Metadata.Name)
	}
	return out
}

// pollUntil polls check every second until it passes, failing the test when ctx ends first.
func pollUntil(t *testing.T, ctx context.Context, what string, check func() error) {
	t.Helper()
	for {
		err := check()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, err)
		case <-time.After(time.Second):
		}
	}
}
