package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/kube"
	"hummingbird.io/hummingbird/internal/testbed"
)

// TestSmoke joins an edge host with a hand-run `kubeadm join`, waits for its Node to be Ready at
// the bed's Kubernetes version, runs a pod on it and reaches the pod's server. Afterwards the
// machine must look as it did before.
func TestSmoke(t *testing.T) {
	requireBed(t)
	checkNothingLeft(t)
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()

	b := testbed.Start(t, ctx, testbed.Options{Hosts: 1, Kubelet: true})
	h := b.Hosts[0]
	joinAndRun(t, ctx, b, h)

	// The pod's server answers on the pod network, inside the host.
	out, err := h.SSH(ctx, "python3 -c 'import sys,urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' http://$(cat /run/hello-ip):8080/")
	if err != nil {
		t.Fatalf("reaching the pod: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != "hello from Hummingbird" {
		t.Errorf("the pod answered %q, want %q", got, "hello from Hummingbird")
	}
	// The API server reaches the kubelet: logs come back.
	logs, err := b.ControlPlane.Kubectl(ctx, "logs", "--namespace", "default", "hello")
	if err != nil {
		t.Fatalf("reading the pod's logs: %v", err)
	}
	if !strings.Contains(string(logs), "serving") {
		t.Errorf("pod logs = %q, want the server's start line", logs)
	}
}

// vouch marks node as the Node of the host with uuid, as a cluster admin does for a Node joined
// by hand, outside Hummingbird's provisioning: Hummingbird acts only on Nodes so marked.
func vouch(t *testing.T, ctx context.Context, cp *testbed.ControlPlane, node, uuid string) {
	t.Helper()
	if out, err := cp.Kubectl(ctx, "label", "node", node, kube.LabelHost+"="+uuid, "--overwrite"); err != nil {
		t.Fatalf("marking node %s as host %s's: %v\n%s", node, uuid, err, out)
	}
}

// joinAndRun joins h to the bed's cluster by hand as a person would, and runs the hello pod on it.
func joinAndRun(t *testing.T, ctx context.Context, b *testbed.Bed, h *testbed.Host) {
	t.Helper()
	cp := b.ControlPlane
	if err := h.ImportImages(ctx); err != nil {
		t.Fatal(err)
	}
	join, err := cp.JoinCommand(ctx, h.Name)
	if err != nil {
		t.Fatal(err)
	}
	// The bed's hosts have no br_netfilter: pods talk over a bridge inside one host only.
	join = append(join, "--ignore-preflight-errors=FileContent--proc-sys-net-bridge-bridge-nf-call-iptables,SystemVerification")
	start := time.Now()
	if out, err := h.SSH(ctx, strings.Join(join, " ")); err != nil {
		journal, _ := h.SSH(ctx, "journalctl --no-pager -n 40 -u kubelet -u containerd")
		t.Fatalf("kubeadm join: %v\n%s\nthe host's journal:\n%s", err, out, journal)
	}
	t.Logf("kubeadm join took %v", time.Since(start).Round(time.Millisecond))

	node, err := cp.WaitNodeReady(ctx, h.Name)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("node %s Ready after %v", h.Name, time.Since(start).Round(time.Millisecond))
	if got := node.Status.NodeInfo.KubeletVersion; got != testbed.KubernetesVersion {
		t.Errorf("kubeletVersion = %q, want %q", got, testbed.KubernetesVersion)
	}

	pod, err := json.Marshal(map[string]any{
		"apiVersion": "v1",
		"kind":       "Pod",
		"metadata":   map[string]any{"name": "hello", "namespace": "default"},
		"spec": map[string]any{
			"nodeName":                      h.Name,
			"terminationGracePeriodSeconds": 1,
			"containers": []any{map[string]any{
				"name":            "hello",
				"image":           testbed.HelloImage,
				"imagePullPolicy": "Never",
				"ports":           []any{map[string]any{"containerPort": 8080}},
			}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := cp.KubectlInput(ctx, pod, "apply", "-f", "-"); err != nil {
		t.Fatalf("creating the pod: %v\n%s", err, out)
	}
	running, err := cp.WaitPodRunning(ctx, "default", "hello")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pod Running after %v at %s", time.Since(start).Round(time.Millisecond), running.Status.PodIP)
	if _, err := h.SSH(ctx, "echo "+running.Status.PodIP+" >/run/hello-ip"); err != nil {
		t.Fatal(err)
	}
}

// checkNothingLeft records the machine's footprint now and, once the test and its cleanups are
// done, fails the test if it differs.
func checkNothingLeft(t *testing.T) {
	t.Helper()
	before, err := testbed.TakeFootprint(testbed.DefaultDir())
	if err != nil {
		t.Fatal(err)
	}
	// Registered first, so it runs after every other cleanup, the bed's teardown included.
	t.Cleanup(func() {
		after, err := testbed.TakeFootprint(testbed.DefaultDir())
		if err != nil {
			t.Fatal(err)
		}
		if left := after.Since(before); !cmp.Equal(left, testbed.Footprint{}) {
			t.Errorf("the test bed left something behind: %+v", left)
		}
	})
}
