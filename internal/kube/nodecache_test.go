package kube

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"hummingbird.io/hummingbird/internal/kube/kubefake"
)

// fakeCluster is a client of a fake API server.
func fakeCluster(t *testing.T, s *kubefake.Server) *Cluster {
	t.Helper()
	c, err := FromConfig(s.Config())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startCache runs a cache of s's Nodes until the test ends, and waits until it is synced.
func startCache(t *testing.T, s *kubefake.Server, opts NodeCacheOptions) *NodeCache {
	t.Helper()
	if opts.MinBackoff == 0 {
		opts.MinBackoff = 10 * time.Millisecond
	}
	nc := fakeCluster(t, s).NewNodeCache(opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); nc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	for {
		err := nc.WaitSynced(wctx)
		if err == nil {
			return nc
		}
		if wctx.Err() != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFor polls cond until it holds, or fails the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestNodeCacheLists: the cache lists in pages, keeps of each Node what the controller reads,
// and tells every Node as changed once.
func TestNodeCacheLists(t *testing.T) {
	t.Parallel()
	const n = 1234
	s := kubefake.Start(t, kubefake.Options{Nodes: n, Node: func(i int) *corev1.Node {
		node := kubefake.NewNode(fmt.Sprintf("edge-%04d", i), map[string]string{
			LabelHost: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), "node-role.kubernetes.io/edgeworker": "",
			"site": "hall-2", "hummingbird.io/group": "press", "team": "theirs",
		}, i%2 == 0)
		node.Annotations[ManagedLabelsAnnotation] = "hummingbird.io/group,node-role.kubernetes.io/edgeworker,site"
		return node
	}})
	nc := startCache(t, s, NodeCacheOptions{PageSize: 100})
	c := s.Counts()
	if c.Lists != 1 || c.Pages != 13 || c.Unpaged != 0 {
		t.Errorf("requests %+v, want 1 list of 13 pages", c)
	}
	if got := nc.Len(); got != n {
		t.Errorf("%d nodes cached, want %d", got, n)
	}
	if changed := nc.Changed(); len(changed) != n || changed[0] != "edge-0000" {
		t.Errorf("first Changed: %d names from %v, want all %d", len(changed), changed[:min(3, len(changed))], n)
	}
	if changed := nc.Changed(); len(changed) != 0 {
		t.Errorf("Changed again: %v, want none", changed)
	}
	got, ok := nc.Node("edge-0007")
	if !ok {
		t.Fatal("edge-0007 is not cached")
	}
	want := Node{Name: "edge-0007", State: NodeState{Exists: true, Ready: false, Reason: "Kubelet stopped posting node status.",
		KubeletVersion: "v1.37.2", Owner: "00000000-0000-4000-8000-000000000007",
		Labels: map[string]string{LabelHost: "00000000-0000-4000-8000-000000000007", "node-role.kubernetes.io/edgeworker": "",
			"site": "hall-2", "hummingbird.io/group": "press"},
		UID:     got.State.UID,
		Created: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)},
		Annotations: map[string]string{ManagedLabelsAnnotation: "hummingbird.io/group,node-role.kubernetes.io/edgeworker,site"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("cached node (-want +got):\n%s", diff)
	}
	if got.State.UID == "" {
		t.Error("cached node has no uid")
	}
	if _, ok := nc.Node("edge-9999"); ok {
		t.Error("a node the server does not hold is cached")
	}
}

// TestNodeCacheFollowsWatch: changes come by the watch, with no list after the first; a status
// update that changes nothing the controller reads is not a change.
func TestNodeCacheFollowsWatch(t *testing.T) {
	t.Parallel()
	s := kubefake.Start(t, kubefake.Options{Nodes: 50, Bookmarks: 20 * time.Millisecond})
	nc := startCache(t, s, NodeCacheOptions{PageSize: 20})
	nc.Changed()

	if err := s.Update("node-000003", func(n *corev1.Node) { kubefake.SetReady(n, false) }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "node-000003 NotReady", func() bool { n, _ := nc.Node("node-000003"); return !n.State.Ready })
	if err := s.Add(kubefake.NewNode("node-new", nil, true)); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("node-000004"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "node-000004 deleted", func() bool { _, ok := nc.Node("node-000004"); return !ok })
	if _, ok := nc.Node("node-new"); !ok {
		t.Error("node-new, added before node-000004 was deleted, is not cached")
	}
	if diff := cmp.Diff([]string{"node-000003", "node-000004", "node-new"}, nc.Changed()); diff != "" {
		t.Errorf("changed (-want +got):\n%s", diff)
	}

	// A kubelet's status update: the heartbeat time moves, nothing else.
	events := nc.Stats().Events
	if err := s.Update("node-000005", func(n *corev1.Node) {
		for i := range n.Status.Conditions {
			n.Status.Conditions[i].LastHeartbeatTime.Time = n.Status.Conditions[i].LastHeartbeatTime.Add(time.Minute)
		}
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the status update's event", func() bool { return nc.Stats().Events > events })
	if changed := nc.Changed(); len(changed) != 0 {
		t.Errorf("changed after a status update: %v, want none", changed)
	}
	waitFor(t, "a bookmark", func() bool { return nc.Stats().Bookmarks > 0 })

	c := s.Counts()
	if c.Lists != 1 || c.Unpaged != 0 || c.Watches != 1 {
		t.Errorf("requests %+v, want the first list and one watch", c)
	}
	if st := nc.Stats(); st.Lists != 1 || st.Pages != 3 || st.Nodes != 50 {
		t.Errorf("stats %+v, want 1 list of 3 pages, 50 nodes", st)
	}
}

// TestNodeCacheWatchesAgain: a watch the server ends is watched again from where it was, without
// a list; a watch that is too old (the server's history is gone) lists again, in pages, and
// tells as changed only the Nodes that changed meanwhile.
func TestNodeCacheWatchesAgain(t *testing.T) {
	t.Parallel()
	s := kubefake.Start(t, kubefake.Options{Nodes: 120})
	nc := startCache(t, s, NodeCacheOptions{PageSize: 50})
	nc.Changed()

	waitFor(t, "the watch", func() bool { return s.Counts().Watches == 1 })
	s.CloseWatches()
	waitFor(t, "a second watch", func() bool { return s.Counts().Watches == 2 })
	if err := s.Update("node-000010", func(n *corev1.Node) { n.Labels["node-role.kubernetes.io/edgeworker"] = "" }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "node-000010's role", func() bool {
		n, _ := nc.Node("node-000010")
		_, ok := n.State.Labels["node-role.kubernetes.io/edgeworker"]
		return ok
	})
	if c := s.Counts(); c.Lists != 1 {
		t.Errorf("requests %+v after a watch ended: want no list", c)
	}
	if diff := cmp.Diff([]string{"node-000010"}, nc.Changed()); diff != "" {
		t.Errorf("changed (-want +got):\n%s", diff)
	}

	// The server forgets its history (as a restarted API server) while Nodes change.
	s.Expire()
	if err := s.Update("node-000011", func(n *corev1.Node) { kubefake.SetReady(n, false) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("node-000012"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a second list", func() bool { return nc.Stats().Lists == 2 })
	waitFor(t, "node-000012 deleted", func() bool { _, ok := nc.Node("node-000012"); return !ok })
	if n, _ := nc.Node("node-000011"); n.State.Ready {
		t.Error("node-000011 is Ready in the cache after the list")
	}
	if diff := cmp.Diff([]string{"node-000011", "node-000012"}, nc.Changed()); diff != "" {
		t.Errorf("changed after the second list (-want +got):\n%s", diff)
	}
	c := s.Counts()
	if c.Lists != 2 || c.Pages != 6 || c.Unpaged != 0 {
		t.Errorf("requests %+v: want 2 lists of 3 pages", c)
	}
	// And it watches on from the new list.
	if err := s.Update("node-000013", func(n *corev1.Node) { kubefake.SetReady(n, false) }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "node-000013 NotReady", func() bool { n, _ := nc.Node("node-000013"); return !n.State.Ready })
}

// TestNodeCacheNotSynced: until the cache has listed the Nodes it is not synced, and WaitSynced
// says why.
func TestNodeCacheNotSynced(t *testing.T) {
	t.Parallel()
	s := kubefake.Start(t, kubefake.Options{Nodes: 3})
	c := fakeCluster(t, s)
	s.Close()
	nc := c.NewNodeCache(NodeCacheOptions{MinBackoff: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nc.Start(ctx)
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := nc.WaitSynced(wctx); err == nil || wctx.Err() != nil {
		t.Errorf("WaitSynced of an unreachable server: %v, want the list's error", err)
	}
	if nc.Synced() || nc.Len() != 0 {
		t.Errorf("synced %v with %d nodes, want not synced", nc.Synced(), nc.Len())
	}
}

func TestKeepLabel(t *testing.T) {
	t.Parallel()
	managed := "hummingbird.io/group,site"
	var kept []string
	for _, k := range []string{"site", "sites", "hummingbird.io/group", "node-role.kubernetes.io/edgeworker", "kubernetes.io/hostname", "sit"} {
		if keepLabel(k, managed) {
			kept = append(kept, k)
		}
	}
	if want := []string{"site", "hummingbird.io/group", "node-role.kubernetes.io/edgeworker"}; !slices.Equal(kept, want) {
		t.Errorf("kept %v, want %v", kept, want)
	}
}
