package hostlock

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/kube"
	"hummingbird.io/hummingbird/internal/store/storetest"
	"hummingbird.io/hummingbird/internal/testbed"
)

func TestMain(m *testing.M) {
	os.Exit(testbed.Main(m))
}

// requireBed skips the test unless the end-to-end tests were asked for.
func requireBed(t *testing.T) { t.Helper(); testbed.Require(t) }

// nodeAndPod is what a lock could change of a Node and of a pod bound to it.
type nodeAndPod struct {
	Unschedulable bool
	PodDeleting   bool
}

// TestLockLeavesForeignNode locks and unlocks, against a real kube-apiserver, a host named like a
// control-plane Node that Hummingbird did not join, which runs a pod no controller manages: even
// forced, the lock neither cordons the Node nor evicts the pod, and says so; the unlock does not
// uncordon the Node its admin cordoned.
func TestLockLeavesForeignNode(t *testing.T) {
	requireBed(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	b := testbed.Start(t, ctx, testbed.Options{})
	cp := b.ControlPlane
	cluster, err := kube.Load(cp.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.CreateNode(ctx, "cp-1", map[string]string{"kubernetes.io/hostname": "cp-1", "kubernetes.io/os": "linux",
		"node-role.kubernetes.io/control-plane": ""}); err != nil {
		t.Fatal(err)
	}
	pod, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": "etcd-ish", "namespace": "default"},
		"spec":     map[string]any{"nodeName": "cp-1", "containers": []any{map[string]any{"name": "c", "image": testbed.HelloImage}}}})
	// Until the controller manager has made the namespace's service account, pods are refused.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out, err := cp.KubectlInput(ctx, pod, "create", "-f", "-")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("creating a pod on cp-1: %v\n%s", err, out)
		}
	}
	read := func() nodeAndPod {
		t.Helper()
		var n struct {
			Spec struct {
				Unschedulable bool `json:"unschedulable"`
			} `json:"spec"`
		}
		if err := cp.GetJSON(ctx, &n, "node", "cp-1"); err != nil {
			t.Fatal(err)
		}
		var p struct {
			Metadata struct {
				DeletionTimestamp *time.Time `json:"deletionTimestamp"`
			} `json:"metadata"`
		}
		err := cp.GetJSON(ctx, &p, "pod", "--namespace", "default", "etcd-ish")
		return nodeAndPod{Unschedulable: n.Spec.Unschedulable, PodDeleting: err != nil || p.Metadata.DeletionTimestamp != nil}
	}

	st := storetest.Open(t, storetest.SQLiteDSN(t))
	inv := newInventory(t, st)
	l := New(st, cluster, Config{RetryInterval: 100 * time.Millisecond, PollInterval: 100 * time.Millisecond})
	if _, err := inv.Add(ctx, "test", apitype.HostCreate{Hostname: "cp-1", Personality: apitype.PersonalityEdgeworker,
		MgmtIP: "192.168.204.10"}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Unlock(ctx, "cp-1", "test"); err != nil {
		t.Fatal(err)
	}

	op, err := l.Lock(ctx, Request{Host: "cp-1", Force: true, Timeout: MinTimeout, Actor: "test"})
	if err != nil {
		t.Fatalf("lock: %v", err)
	}
	if op, err = l.Operation(ctx, "cp-1"); err != nil {
		t.Fatal(err)
	}
	if op.State != StateLocked || !strings.Contains(op.Message, kube.LabelHost) {
		t.Errorf("lock of a host named like a Node that is not its own: %s, %q; want locked, saying why nothing was drained",
			op.State, op.Message)
	}
	if got := read(); got != (nodeAndPod{}) {
		t.Errorf("after the lock: the Node that Hummingbird did not join and its pod: %+v; want them untouched", got)
	}

	// Its admin cordons it: unlocking the host leaves it so.
	if out, err := cp.Kubectl(ctx, "cordon", "cp-1"); err != nil {
		t.Fatalf("kubectl cordon: %v\n%s", err, out)
	}
	if _, err := l.Unlock(ctx, "cp-1", "test"); err != nil {
		t.Fatalf("unlock: %v", err)
	}
	if got := read(); got != (nodeAndPod{Unschedulable: true}) {
		t.Errorf("after the unlock: the Node that Hummingbird did not join and its pod: %+v; want it cordoned still", got)
	}
}
