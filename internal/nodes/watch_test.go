package nodes

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/kube"
	"hummingbird.io/hummingbird/internal/kube/kubefake"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// fleet is an inventory of hosts edge-0000… and a fake API server with their Nodes.
type fleet struct {
	st    store.Store
	inv   *inventory.Service
	hosts []store.Host
	api   *kubefake.Server
}

// Of the fleet's hosts, the first three are in group lab, the others in press; the last has no
// Node, and the one before a Node it does not own; every fourth one's Node is not labelled
// yet, the others' are as the inventory wants. One more Node belongs to no host.
const labHosts = 3

func newFleet(t *testing.T, n int) *fleet {
	t.Helper()
	ctx := t.Context()
	f := &fleet{st: storetest.Open(t, storetest.SQLiteDSN(t))}
	f.inv = inventory.New(f.st, inventory.Options{})
	for _, g := range []string{"press", "lab"} {
		if _, err := f.inv.AddGroup(ctx, "test", g, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.inv.AssignGroupLabels(ctx, "test", "press", map[string]string{"line": "7"}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	if err := f.st.Write(ctx, func(tx store.Tx) error {
		for i := range n {
			id, err := tx.NextID("hosts")
			if err != nil {
				return err
			}
			group := "press"
			if i < labHosts {
				group = "lab"
			}
			h := store.Host{ID: id, UUID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), Hostname: fmt.Sprintf("edge-%04d", i),
				Personality: "edgeworker", Administrative: "unlocked", Operational: "enabled", Availability: "available",
				InvProvision: "provisioned", Group: group, Labels: map[string]string{"site": "hall-2"}, CreatedAt: now, UpdatedAt: now}
			if err := tx.InsertHost(&h); err != nil {
				return err
			}
			f.hosts = append(f.hosts, h)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	groups := map[string]map[string]string{"press": {"line": "7"}}
	f.api = kubefake.Start(t, kubefake.Options{Nodes: n, Node: func(i int) *corev1.Node {
		if i == n-1 {
			return kubefake.NewNode("other-node", nil, true)
		}
		h := f.hosts[i]
		labels := map[string]string{kube.LabelHost: h.UUID}
		if i == n-2 {
			labels = nil
		}
		var managed string
		if i%4 != 0 && i != n-2 {
			want := Labels(h, groups[h.Group])
			maps.Copy(labels, want)
			managed = managedKeys(want)
		}
		node := kubefake.NewNode(h.Hostname, labels, true)
		if managed != "" {
			node.Annotations[kube.ManagedLabelsAnnotation] = managed
		}
		return node
	}})
	return f
}

// managedKeys is the value of kube.ManagedLabelsAnnotation for labels.
func managedKeys(labels map[string]string) string {
	return strings.Join(slices.Sorted(maps.Keys(labels)), ",")
}

func (f *fleet) cluster(t *testing.T) *kube.Cluster {
	t.Helper()
	cfg := f.api.Config()
	cfg.QPS, cfg.Burst = 1000, 1000
	c, err := kube.FromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// host reads a host as stored.
func (f *fleet) host(t *testing.T, name string) store.Host {
	t.Helper()
	var h store.Host
	if err := f.st.Read(t.Context(), func(tx store.Tx) (err error) { h, err = tx.HostByHostname(name); return err }); err != nil {
		t.Fatal(err)
	}
	return h
}

// kubeletAlarm says whether alarm 200.006 stands for host name.
func (f *fleet) kubeletAlarm(t *testing.T, name string) bool {
	t.Helper()
	var as []store.Alarm
	if err := f.st.Read(t.Context(), func(tx store.Tx) (err error) {
		as, err = tx.ListAlarms(store.AlarmFilter{EntityInstance: "host=" + name + ".process=kubelet"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return len(as) > 0
}

// label is a label of a Node as the API server holds it.
func (f *fleet) label(t *testing.T, node, key string) (string, bool) {
	t.Helper()
	n, err := f.api.Node(node)
	if err != nil {
		t.Fatal(err)
	}
	v, ok := n.Labels[key]
	return v, ok
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

// clock is a time that tests move.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// syncedBeats is lastBeats safe for a reconciler that runs in the background.
type syncedBeats struct {
	mu sync.Mutex
	at map[int64]time.Time
}

func (b *syncedBeats) LastHeartbeat(id int64) (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.at[id]
	return t, ok
}

func (b *syncedBeats) set(id int64, t time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.at[id] = t
}

// TestSyncFollowsWatch runs passes against a fake API server of 400 Nodes: one paged list at
// start, and then no list at all, pass after pass, while Nodes change by the watch, the
// inventory changes, the watch is closed and the server's history is lost. Each pass compares
// only the hosts that changed, and a pass when nothing changed sends no request.
func TestSyncFollowsWatch(t *testing.T) {
	t.Parallel()
	const n, page = 400, 100
	ctx := t.Context()
	f := newFleet(t, n)
	conflict, noNode := fmt.Sprintf("edge-%04d", n-2), fmt.Sprintf("edge-%04d", n-1)
	clk := &clock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	beats := &syncedBeats{at: map[int64]time.Time{}}
	r := New(f.st, f.cluster(t), Config{Now: clk.Now, Heartbeats: beats, Cache: kube.NodeCacheOptions{MinBackoff: 10 * time.Millisecond, PageSize: page}})

	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	c := f.api.Counts()
	if c.Lists != 1 || c.Pages != n/page || c.Unpaged != 0 || c.Patches != n/4 {
		t.Errorf("requests of the first pass %+v: want one list of %d pages, and %d patches", c, n/page, n/4)
	}
	for name, want := range map[string]string{"edge-0000": "Ready", "edge-0001": "Ready", conflict: NodeConflict, noNode: ""} {
		if h := f.host(t, name); h.NodeState != want {
			t.Errorf("host %s: node state %q, want %q", name, h.NodeState, want)
		}
	}
	for k, want := range map[string]string{"line": "7", "site": "hall-2", LabelGroup: "press"} {
		if v, _ := f.label(t, "edge-0004", k); v != want {
			t.Errorf("node edge-0004: label %s=%q, want %q", k, v, want)
		}
	}
	if v, ok := f.label(t, conflict, "site"); ok {
		t.Errorf("node %s, not its host's, was labelled site=%s", conflict, v)
	}
	// The watch brings the pass's own patches back; the next pass finds them in step.
	waitFor(t, "the patches' events", func() bool { return r.Cache().Stats().Events >= n/4 })
	pass := func(name string, most int) Stats {
		t.Helper()
		before := r.Stats()
		if err := r.SyncChanges(ctx); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		after := r.Stats()
		after.Passes -= before.Passes
		after.FullPasses -= before.FullPasses
		after.Hosts -= before.Hosts
		after.Labelled -= before.Labelled
		if after.Hosts > most {
			t.Errorf("%s: the pass compared %d hosts, want at most %d: those that changed", name, after.Hosts, most)
		}
		return after
	}
	c = f.api.Counts()
	pass("the patches come back", n/4)
	if got := f.api.Counts(); got != c {
		t.Errorf("requests of a pass over Nodes in step: %+v, want none (before %+v)", got, c)
	}

	// Nodes go NotReady.
	for _, name := range []string{"edge-0005", "edge-0006"} {
		if err := f.api.Update(name, func(n *corev1.Node) { kubefake.SetReady(n, false) }); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "edge-0006 NotReady in the cache", func() bool { n, _ := r.Cache().Node("edge-0006"); return !n.State.Ready })
	if s := pass("NotReady", 2); s.Hosts != 2 {
		t.Errorf("NotReady: %d hosts compared, want 2", s.Hosts)
	}
	if h := f.host(t, "edge-0005"); h.NodeState != "NotReady" || h.NodeReason == "" {
		t.Errorf("edge-0005: node state %q (%q), want NotReady and why", h.NodeState, h.NodeReason)
	}
	// edge-0005's agent heartbeats: its kubelet is down, not the host. No Node changed, but the
	// pass takes the hosts whose Node is NotReady.
	beats.set(f.host(t, "edge-0005").ID, clk.Add(time.Second))
	clk.Add(time.Second)
	c = f.api.Counts()
	pass("heartbeat", 2)
	if !f.kubeletAlarm(t, "edge-0005") || f.kubeletAlarm(t, "edge-0006") {
		t.Errorf("kubelet alarms: edge-0005 %v, edge-0006 %v; want edge-0005's only", f.kubeletAlarm(t, "edge-0005"), f.kubeletAlarm(t, "edge-0006"))
	}
	if got := f.api.Counts(); got != c {
		t.Errorf("requests of a pass over NotReady Nodes: %+v, want none (before %+v)", got, c)
	}

	// Someone removes a label Hummingbird set: it is put back.
	if err := f.api.Update("edge-0021", func(n *corev1.Node) { delete(n.Labels, "line") }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "edge-0021's drift in the cache", func() bool { n, _ := r.Cache().Node("edge-0021"); return n.State.Labels["line"] == "" })
	if s := pass("drift", 3); s.Labelled != 1 {
		t.Errorf("drift: %d nodes labelled, want 1", s.Labelled)
	}
	if v, _ := f.label(t, "edge-0021", "line"); v != "7" {
		t.Errorf("edge-0021: line=%q after the pass, want 7", v)
	}

	// The server ends the watch; the cache watches again, and edge-0005 is Ready again.
	f.api.CloseWatches()
	if err := f.api.Update("edge-0005", func(n *corev1.Node) { kubefake.SetReady(n, true) }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "edge-0005 Ready in the cache", func() bool { n, _ := r.Cache().Node("edge-0005"); return n.State.Ready })
	pass("watch closed", 3)
	if h := f.host(t, "edge-0005"); h.NodeState != "Ready" || f.kubeletAlarm(t, "edge-0005") {
		t.Errorf("edge-0005: node state %q, alarm %v; want Ready, no alarm", h.NodeState, f.kubeletAlarm(t, "edge-0005"))
	}

	// The inventory changes: a host's labels, a group's labels (events in the log).
	if _, err := f.inv.AssignLabels(ctx, "test", "edge-0010", map[string]string{"rack": "r1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.inv.AssignGroupLabels(ctx, "test", "lab", map[string]string{"floor": "2"}); err != nil {
		t.Fatal(err)
	}
	if s := pass("inventory", 3+labHosts); s.Labelled != 1+labHosts {
		t.Errorf("inventory: %d nodes labelled, want %d", s.Labelled, 1+labHosts)
	}
	for node, l := range map[string][2]string{"edge-0010": {"rack", "r1"}, "edge-0000": {"floor", "2"}, "edge-0002": {"floor", "2"}} {
		if v, _ := f.label(t, node, l[0]); v != l[1] {
			t.Errorf("%s: %s=%q, want %q", node, l[0], v, l[1])
		}
	}

	// A change the event log does not tell, named by KickHosts.
	h := f.host(t, "edge-0011")
	h.Labels["rack"] = "r2"
	if err := f.st.Write(ctx, func(tx store.Tx) error { return tx.UpdateHost(&h) }); err != nil {
		t.Fatal(err)
	}
	r.KickHosts(h.ID)
	// Besides it, the pass takes edge-0006, NotReady, and the Nodes the last pass labelled, which
	// the watch brings back.
	if s := pass("kicked", 3+1+labHosts); s.Labelled != 1 {
		t.Errorf("kicked: %d nodes labelled, want 1", s.Labelled)
	}

	// The server forgets its history, as a restarted API server: the cache lists again, in
	// pages, and the pass records what changed meanwhile.
	f.api.Expire()
	if err := f.api.Update("edge-0007", func(n *corev1.Node) { kubefake.SetReady(n, false) }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second list", func() bool { return r.Cache().Stats().Lists == 2 })
	waitFor(t, "edge-0007 NotReady in the cache", func() bool { n, _ := r.Cache().Node("edge-0007"); return !n.State.Ready })
	pass("history lost", 4)
	if h := f.host(t, "edge-0007"); h.NodeState != "NotReady" {
		t.Errorf("edge-0007: node state %q, want NotReady", h.NodeState)
	}

	// Nothing changes: the pass sends nothing and writes nothing. The
	// cache watches again once its second list is done, on its own
	// time: counted before, not as the pass's request.
	waitFor(t, "the watch after the second list", func() bool { return f.api.Counts().Watches >= 4 })
	waitFor(t, "the patches' events", func() bool { return len(r.cache.Changed()) == 0 })
	c = f.api.Counts()
	if s := pass("quiet", 2); s.Labelled != 0 || s.Hosts != 2 {
		t.Errorf("quiet: %d hosts compared, %d labelled; want the 2 NotReady ones, none", s.Hosts, s.Labelled)
	}
	if got := f.api.Counts(); got != c {
		t.Errorf("requests of a quiet pass: %+v, want none (before %+v)", got, c)
	}

	// The full pass every Resync compares every host, from the cache.
	clk.Add(DefaultResync)
	if err := r.step(ctx); err != nil {
		t.Fatal(err)
	}
	if s := r.Stats(); s.FullPasses != 2 {
		t.Errorf("%d full passes after Resync, want 2", s.FullPasses)
	}

	c = f.api.Counts()
	if c.Lists != 2 || c.Pages != 2*n/page || c.Unpaged != 0 || c.Watches != 4 {
		t.Errorf("requests %+v: want the first list, the one after the history was lost, and 4 watches: the first, "+
			"after the close, the one answered 410, after the second list", c)
	}
}

// TestSyncWaitsForList: while the cache has not listed the Nodes, a pass fails, and does not
// record that hosts have no Node.
func TestSyncWaitsForList(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 20)
	cluster := f.cluster(t)
	if err := f.st.Write(t.Context(), func(tx store.Tx) error {
		return tx.SetHostNode(store.HostNode{HostID: f.hosts[1].ID, State: "Ready", KubeletVersion: "v1.37.2", UpdatedAt: time.Now().UTC()})
	}); err != nil {
		t.Fatal(err)
	}
	f.api.Close()
	r := New(f.st, cluster, Config{Cache: kube.NodeCacheOptions{MinBackoff: time.Hour}})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := r.Sync(ctx); err == nil {
		t.Error("a pass of a cluster never listed succeeded")
	}
	if err := r.SyncChanges(ctx); err == nil {
		t.Error("a pass over changes of a cluster never listed succeeded")
	}
	if h := f.host(t, "edge-0001"); h.NodeState != "Ready" {
		t.Errorf("edge-0001: node state %q, want Ready as it was", h.NodeState)
	}
}

// TestRunListsOnce: Run makes a full pass, then passes over what changed, period after period,
// without listing the Nodes again.
func TestRunListsOnce(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 200)
	r := New(f.st, f.cluster(t), Config{Interval: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "the first pass", func() bool { return r.Stats().Passes > 0 })
	if err := f.api.Update("edge-0009", func(n *corev1.Node) { kubefake.SetReady(n, false) }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "edge-0009 NotReady in the store", func() bool { return f.host(t, "edge-0009").NodeState == "NotReady" })
	passes := r.Stats().Passes
	waitFor(t, "5 more passes", func() bool { return r.Stats().Passes >= passes+5 })
	c := f.api.Counts()
	if c.Lists != 1 || c.Unpaged != 0 {
		t.Errorf("requests %+v after %d passes: want the first list only", c, r.Stats().Passes)
	}
	if s := r.Stats(); s.FullPasses != 1 {
		t.Errorf("stats %+v: want one full pass", s)
	}
}
