package nodes

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"hummingbird.io/hummingbird/internal/kube"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
	"hummingbird.io/hummingbird/internal/testbed"
)

func TestMain(m *testing.M) {
	os.Exit(testbed.Main(m))
}

// requireBed skips the test unless the end-to-end tests were asked for.
func requireBed(t *testing.T) { t.Helper(); testbed.Require(t) }

// clientset is an admin client of the bed's cluster, to read Nodes whole.
func clientset(t *testing.T, kubeconfig string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// nodeView is what Hummingbird could change of a Node: its labels, its annotations of
// Hummingbird's, and whether it is cordoned. (Controllers of the cluster add annotations of
// their own, like node.alpha.kubernetes.io/ttl.)
type nodeView struct {
	Labels        map[string]string
	Annotations   map[string]string
	Unschedulable bool
}

func viewNode(n *corev1.Node) nodeView {
	v := nodeView{Labels: n.Labels, Annotations: map[string]string{}, Unschedulable: n.Spec.Unschedulable}
	for k, a := range n.Annotations {
		if strings.Contains(k, "hummingbird") {
			v.Annotations[k] = a
		}
	}
	return v
}

// TestOwnedNodesOnCluster runs passes against a real kube-apiserver with four Nodes named like
// hosts: one Hummingbird marked, one a provisioning job joined before Nodes were marked, and two
// it did not join: a control plane's, and one it labelled before it marked Nodes (the host was
// named like it), created before the host's job ran. Only the first two are labelled; the
// others are not changed at all, and their hosts' node state is Conflict.
func TestOwnedNodesOnCluster(t *testing.T) {
	requireBed(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	b := testbed.Start(t, ctx, testbed.Options{})
	cp := b.ControlPlane
	cluster, err := kube.Load(cp.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs := clientset(t, cp.Kubeconfig)

	now := time.Now().UTC().Truncate(time.Microsecond)
	st := storetest.Open(t, storetest.SQLiteDSN(t))
	hosts := map[string]store.Host{}
	if err := st.Write(ctx, func(tx store.Tx) error {
		if err := tx.InsertGroup(&store.Group{Name: "press", CreatedAt: now, UpdatedAt: now}); err != nil {
			return err
		}
		for i, name := range []string{"cp-1", "edge-1", "edge-2", "cp-2"} {
			id, err := tx.NextID("hosts")
			if err != nil {
				return err
			}
			h := store.Host{ID: id, UUID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i+1), Hostname: name,
				Personality: "edgeworker", Administrative: "unlocked", Operational: "enabled", Availability: "available",
				InvProvision: "provisioned", Group: "press", Labels: map[string]string{"site": "hall-2"}, CreatedAt: now, UpdatedAt: now}
			if err := tx.InsertHost(&h); err != nil {
				return err
			}
			hosts[name] = h
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	cpLabels := map[string]string{"kubernetes.io/hostname": "cp-1", "kubernetes.io/os": "linux",
		"node-role.kubernetes.io/control-plane": "", "node.kubernetes.io/exclude-from-external-load-balancers": ""}
	// What Hummingbird set, before it marked Nodes, on a Node named like a host it had not joined.
	labelledBefore := map[string]string{"kubernetes.io/hostname": "cp-2", "node-role.kubernetes.io/control-plane": "",
		"node-role.kubernetes.io/edgeworker": "", "hummingbird.io/personality": "edgeworker", "hummingbird.io/group": "press"}
	for name, labels := range map[string]map[string]string{
		"cp-1":   cpLabels,
		"cp-2":   labelledBefore,
		"edge-1": {"kubernetes.io/hostname": "edge-1", kube.LabelHost: hosts["edge-1"].UUID},
		"edge-2": {"kubernetes.io/hostname": "edge-2", "node-role.kubernetes.io/edgeworker": ""},
	} {
		if err := cp.CreateNode(ctx, name, labels); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cs.CoreV1().Nodes().Patch(ctx, "cp-2", "application/merge-patch+json",
		[]byte(`{"metadata":{"annotations":{"hummingbird.io/managed-labels":"hummingbird.io/group,hummingbird.io/personality,node-role.kubernetes.io/edgeworker"}}}`),
		metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	before := map[string]nodeView{}
	for _, name := range []string{"cp-1", "cp-2"} {
		n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		before[name] = viewNode(n)
	}
	// The succeeded jobs: edge-2's ran while its Node registered; cp-2's an hour ago, long after
	// the Node it is named like had registered (here: an hour before that Node, which is the same).
	if err := st.Write(ctx, func(tx store.Tx) error {
		for _, j := range []struct {
			host       string
			start, end time.Time
		}{
			{"edge-2", now.Add(-2 * time.Minute), now.Add(2 * time.Minute)},
			{"cp-2", now.Add(-time.Hour), now.Add(-50 * time.Minute)},
			{"cp-1", now.Add(-time.Hour), now.Add(-50 * time.Minute)},
		} {
			id, err := tx.NextID("provision_jobs")
			if err != nil {
				return err
			}
			job := store.ProvisionJob{ID: id, UUID: fmt.Sprintf("00000000-0000-4000-9000-%012d", id), HostID: hosts[j.host].ID,
				State: "succeeded", CreatedAt: j.start, StartedAt: j.start, FinishedAt: j.end, UpdatedAt: j.end}
			if err := tx.InsertProvisionJob(&job); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	r := New(st, cluster, Config{})
	for pass := 1; pass <= 2; pass++ {
		if err := r.Sync(ctx); err != nil {
			t.Fatalf("pass %d: %v", pass, err)
		}
	}

	// The Nodes Hummingbird did not join are as they were.
	for _, name := range []string{"cp-1", "cp-2"} {
		n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(before[name], viewNode(n)); diff != "" {
			t.Errorf("node %s, which Hummingbird did not join, changed (-before +after):\n%s", name, diff)
		}
	}
	// Its own are labelled, the one of the job marked.
	for _, name := range []string{"edge-1", "edge-2"} {
		n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range map[string]string{kube.LabelHost: hosts[name].UUID, "site": "hall-2", "hummingbird.io/group": "press",
			"node-role.kubernetes.io/edgeworker": ""} {
			if got, ok := n.Labels[k]; !ok || got != v {
				t.Errorf("node %s: label %s=%q (present %v), want %q", name, k, got, ok, v)
			}
		}
	}
	// host-show: the hosts named like Nodes that are not theirs are in conflict, and say why.
	if err := st.Read(ctx, func(tx store.Tx) error {
		for name, want := range map[string]string{"cp-1": NodeConflict, "cp-2": NodeConflict, "edge-1": "NotReady", "edge-2": "NotReady"} {
			h, err := tx.HostByHostname(name)
			if err != nil {
				return err
			}
			if h.NodeState != want {
				t.Errorf("host %s: node state %q (%s), want %s", name, h.NodeState, h.NodeReason, want)
			}
			if want == NodeConflict && !strings.Contains(h.NodeReason, kube.LabelHost) {
				t.Errorf("host %s: node reason %q does not name the mark", name, h.NodeReason)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// A cluster admin vouches for cp-2 (kubectl label): from then on it is its host's.
	if out, err := cp.Kubectl(ctx, "label", "node", "cp-2", kube.LabelHost+"="+hosts["cp-2"].UUID); err != nil {
		t.Fatalf("kubectl label: %v\n%s", err, out)
	}
	// The reconciler learns it by its watch of the Nodes.
	waitFor(t, "the mark of cp-2 in the cache", func() bool {
		n, _ := r.Cache().Node("cp-2")
		return n.State.Owner == hosts["cp-2"].UUID
	})
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := cs.CoreV1().Nodes().Get(ctx, "cp-2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Labels["site"] != "hall-2" {
		t.Errorf("node cp-2, vouched for by an admin: labels %v, want the host's", n.Labels)
	}
}
