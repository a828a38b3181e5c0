package kube

// The cluster's Nodes, known without listing them again: a NodeCache lists them once, in pages,
// then follows a watch from the list's resourceVersion. It lists again, in pages, only when the
// watch says that resourceVersion is too old (410 Expired or Gone: the API server restarted, or
// etcd was compacted past it); a watch that merely ends is opened again where it stopped.
//
// Per Node it keeps only what the controller reads of it (NodeState), and of its labels only the
// ones Hummingbird reads: LabelHost, the node roles, and those ManagedLabelsAnnotation names.
// That is all ApplyManagedLabels needs to tell whether a Node agrees with the labels it wants:
// when the annotation names every wanted key, each is kept; when it does not, a patch is needed
// anyway. Strings that many Nodes share (label keys and values, reasons, versions) are held
// once.

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unique"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// NodeCacheOptions is how a NodeCache lists and watches.
type NodeCacheOptions struct {
	// PageSize is how many Nodes a list request asks for; 0: 500.
	PageSize int64
	// MinBackoff and MaxBackoff bound the wait after a failed list or watch, which doubles
	// from the one to the other; 0: 200 ms and 30 s.
	MinBackoff, MaxBackoff time.Duration
	// RequestTimeout bounds each list request; 0: a minute.
	RequestTimeout time.Duration
	Log            *slog.Logger
	Now            func() time.Time
}

// NodeCacheStats counts what a NodeCache did.
type NodeCacheStats struct {
	// Lists are the complete lists of the cluster's Nodes: the first, and one after each watch
	// that was too old. Pages are their requests.
	Lists, Pages int
	// Watches are the watch requests, and Events the ADDED, MODIFIED and DELETED events they
	// brought, Bookmarks their bookmarks.
	Watches, Events, Bookmarks int
	// Changes are the Nodes marked changed: events and lists that changed what is kept of a
	// Node (a status update of a Node that stays Ready changes nothing).
	Changes int
	// Nodes is how many Nodes are kept.
	Nodes int
	// FirstList is how long the first complete list took, from its first request until the
	// cache was synced.
	FirstList time.Duration
}

// NodeCache holds the cluster's Nodes, kept current by a watch.
type NodeCache struct {
	cs   kubernetes.Interface
	host string
	opts NodeCacheOptions
	log  *slog.Logger

	mu      sync.Mutex
	running bool
	nodes   map[string]cachedNode
	changed map[string]struct{}
	synced  bool
	listErr error         // of the last list attempt, while not synced
	wake    chan struct{} // closed when synced or listErr changes
	stats   NodeCacheStats
}

// cachedNode is what a NodeCache keeps of a Node.
type cachedNode struct {
	uid           types.UID
	owner         string
	created       int64 // Unix seconds: the API server keeps no finer time
	ready         bool
	unschedulable bool
	reason        unique.Handle[string]
	kubelet       unique.Handle[string]
	managed       unique.Handle[string] // ManagedLabelsAnnotation
	labels        []cachedLabel         // by key
}

type cachedLabel struct{ key, value unique.Handle[string] }

// NewNodeCache makes an empty cache of the cluster's Nodes; Run or Start fills it.
func (c *Cluster) NewNodeCache(opts NodeCacheOptions) *NodeCache {
	if opts.PageSize <= 0 {
		opts.PageSize = 500
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 200 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(30*time.Second, opts.MinBackoff)
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = time.Minute
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &NodeCache{cs: c.cs, host: c.cfg.Host, opts: opts, log: opts.Log.With("logger", "nodecache"),
		nodes: map[string]cachedNode{}, changed: map[string]struct{}{}, wake: make(chan struct{})}
}

// Start runs the cache in the background until ctx ends, unless it runs already.
func (nc *NodeCache) Start(ctx context.Context) {
	if nc.claim() {
		go nc.run(ctx)
	}
}

// Run lists and watches the cluster's Nodes until ctx ends; it returns at once if the cache
// runs already. Each run lists the Nodes anew before it is synced.
func (nc *NodeCache) Run(ctx context.Context) {
	if nc.claim() {
		nc.run(ctx)
	}
}

func (nc *NodeCache) claim() bool {
	nc.mu.Lock()
	defer nc.mu.Unlock()
	if nc.running {
		return false
	}
	nc.running = true
	nc.synced, nc.listErr = false, nil
	return true
}

func (nc *NodeCache) run(ctx context.Context) {
	defer func() {
		nc.mu.Lock()
		nc.running, nc.synced = false, false
		nc.mu.Unlock()
	}()
	var (
		rv       string // "" lists
		failures int
		failing  bool
	)
	for ctx.Err() == nil {
		var err error
		opened := nc.opts.Now()
		if rv == "" {
			rv, err = nc.list(ctx)
		} else {
			rv, err = nc.watch(ctx, rv)
		}
		switch {
		case ctx.Err() != nil:
			return
		case expired(err):
			nc.log.Info("the watch of the cluster's nodes is too old; listing them again", "err", err)
			rv, failures = "", 0
			continue
		case err != nil:
			if !failing {
				nc.log.Warn("cannot follow the cluster's nodes; trying again", "err", err)
			}
			failing = true
			failures++
		case nc.opts.Now().Sub(opened) < time.Second:
			failures++ // a watch that ends at once is watched again after a while
		default:
			if failing {
				nc.log.Info("following the cluster's nodes again")
			}
			failing, failures = false, 0
			continue
		}
		wait := nc.opts.MinBackoff << min(failures-1, 16)
		if wait > nc.opts.MaxBackoff || wait <= 0 {
			wait = nc.opts.MaxBackoff
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// expired says whether err is the API server's answer to a resourceVersion or continue token too
// old to be served.
func expired(err error) bool {
	return err != nil && (apierrors.IsResourceExpired(err) || apierrors.IsGone(err))
}

// list reads every Node, in pages, into the cache, forgets the Nodes it did not see, and returns
// the list's resourceVersion.
func (nc *NodeCache) list(ctx context.Context) (string, error) {
	start := nc.opts.Now()
	nc.mu.Lock()
	nc.listErr = nil
	nc.mu.Unlock()
	rv, err := nc.listPages(ctx)
	if err != nil {
		nc.mu.Lock()
		if !nc.synced {
			nc.listErr = err
			nc.notifyLocked()
		}
		nc.mu.Unlock()
		return "", err
	}
	nc.mu.Lock()
	nc.stats.Lists++
	if !nc.synced {
		nc.synced = true
		if nc.stats.Lists == 1 {
			nc.stats.FirstList = nc.opts.Now().Sub(start)
		}
		nc.notifyLocked()
	}
	n := len(nc.nodes)
	nc.mu.Unlock()
	nc.log.Info("listed the cluster's nodes", "nodes", n, "took", nc.opts.Now().Sub(start).Round(time.Millisecond))
	return rv, nil
}

func (nc *NodeCache) listPages(ctx context.Context) (string, error) {
	nc.mu.Lock()
	seen := make(map[string]struct{}, len(nc.nodes))
	nc.mu.Unlock()
	opts := metav1.ListOptions{Limit: nc.opts.PageSize}
	var rv string
	for restarts := 0; ; {
		reqCtx, cancel := context.WithTimeout(ctx, nc.opts.RequestTimeout)
		page, err := nc.cs.CoreV1().Nodes().List(reqCtx, opts)
		cancel()
		nc.mu.Lock()
		nc.stats.Pages++
		nc.mu.Unlock()
		if expired(err) && opts.Continue != "" && restarts < 3 {
			// The continue token outlived the API server's history: start over.
			restarts++
			opts.Continue, rv = "", ""
			clear(seen)
			continue
		}
		if err != nil {
			return "", fmt.Errorf("listing the nodes of %s: %w", nc.host, err)
		}
		if rv == "" {
			rv = page.ResourceVersion
		}
		nc.mu.Lock()
		for i := range page.Items {
			n := &page.Items[i]
			seen[n.Name] = struct{}{}
			nc.putLocked(n.Name, cacheNode(n))
		}
		nc.mu.Unlock()
		if page.Continue == "" {
			break
		}
		opts.Continue = page.Continue
	}
	nc.mu.Lock()
	for name := range nc.nodes {
		if _, ok := seen[name]; !ok {
			nc.deleteLocked(name)
		}
	}
	nc.mu.Unlock()
	return rv, nil
}

// watch follows the Nodes' changes after resourceVersion rv until the watch ends, and returns
// the resourceVersion it reached.
func (nc *NodeCache) watch(ctx context.Context, rv string) (string, error) {
	// A real API server ends a watch after its own timeout too; this one spreads the watches of
	// several controllers, as client-go's reflector does.
	timeout := int64(300 + rand.IntN(300))
	nc.mu.Lock()
	nc.stats.Watches++
	nc.mu.Unlock()
	w, err := nc.cs.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true,
		TimeoutSeconds: &timeout})
	if err != nil {
		return rv, fmt.Errorf("watching the nodes of %s: %w", nc.host, err)
	}
	defer w.Stop()
	for {
		var ev watch.Event
		var ok bool
		select {
		case <-ctx.Done():
			return rv, ctx.Err()
		case ev, ok = <-w.ResultChan():
		}
		if !ok {
			return rv, nil
		}
		switch ev.Type {
		case watch.Error:
			return rv, fmt.Errorf("watching the nodes of %s: %w", nc.host, apierrors.FromObject(ev.Object))
		case watch.Bookmark:
			if m, err := meta.Accessor(ev.Object); err == nil {
				rv = m.GetResourceVersion()
			}
			nc.mu.Lock()
			nc.stats.Bookmarks++
			nc.mu.Unlock()
		case watch.Added, watch.Modified, watch.Deleted:
			n, isNode := ev.Object.(*corev1.Node)
			if !isNode {
				return rv, fmt.Errorf("watching the nodes of %s: an event of a %T", nc.host, ev.Object)
			}
			rv = n.ResourceVersion
			nc.mu.Lock()
			nc.stats.Events++
			if ev.Type == watch.Deleted {
				nc.deleteLocked(n.Name)
			} else {
				nc.putLocked(n.Name, cacheNode(n))
			}
			nc.mu.Unlock()
		}
	}
}

func (nc *NodeCache) notifyLocked() {
	close(nc.wake)
	nc.wake = make(chan struct{})
}

// putLocked keeps a Node, and marks it changed unless it is kept as it was.
func (nc *NodeCache) putLocked(name string, n cachedNode) {
	if old, ok := nc.nodes[name]; ok && old.equal(n) {
		return
	}
	nc.nodes[name] = n
	nc.markLocked(name)
}

func (nc *NodeCache) deleteLocked(name string) {
	if _, ok := nc.nodes[name]; !ok {
		return
	}
	delete(nc.nodes, name)
	nc.markLocked(name)
}

func (nc *NodeCache) markLocked(name string) {
	nc.changed[name] = struct{}{}
	nc.stats.Changes++
}

// WaitSynced waits until the cache has listed the cluster's Nodes since it started to run. It
// fails at once when the last list failed (the cache tries again), and when ctx ends.
func (nc *NodeCache) WaitSynced(ctx context.Context) error {
	for {
		nc.mu.Lock()
		synced, err, wake := nc.synced, nc.listErr, nc.wake
		nc.mu.Unlock()
		switch {
		case synced:
			return nil
		case err != nil:
			return fmt.Errorf("the nodes of the cluster are not listed yet: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the nodes of the cluster to be listed: %w", ctx.Err())
		case <-wake:
		}
	}
}

// Synced says whether the cache has listed the cluster's Nodes since it started to run.
func (nc *NodeCache) Synced() bool {
	nc.mu.Lock()
	defer nc.mu.Unlock()
	return nc.synced
}

// Node is the Node of that name as last seen; false: there is none. Of its labels it holds the
// ones the cache keeps, and of its annotations ManagedLabelsAnnotation.
func (nc *NodeCache) Node(name string) (Node, bool) {
	nc.mu.Lock()
	n, ok := nc.nodes[name]
	nc.mu.Unlock()
	if !ok {
		return Node{Name: name}, false
	}
	return n.node(name), true
}

// Changed returns the names of the Nodes that were added, changed or deleted since the last
// call (since the cache was made, the first time), sorted, and forgets them.
func (nc *NodeCache) Changed() []string {
	nc.mu.Lock()
	names := make([]string, 0, len(nc.changed))
	for name := range nc.changed {
		names = append(names, name)
	}
	nc.changed = map[string]struct{}{} // a map keeps the room it grew to when cleared
	nc.mu.Unlock()
	sort.Strings(names)
	return names
}

// Len is the number of Nodes kept.
func (nc *NodeCache) Len() int {
	nc.mu.Lock()
	defer nc.mu.Unlock()
	return len(nc.nodes)
}

// Stats counts what the cache did.
func (nc *NodeCache) Stats() NodeCacheStats {
	nc.mu.Lock()
	defer nc.mu.Unlock()
	s := nc.stats
	s.Nodes = len(nc.nodes)
	return s
}

// keepLabel says whether the cache keeps a label of a Node whose ManagedLabelsAnnotation is
// managed.
func keepLabel(key, managed string) bool {
	if strings.HasPrefix(key, NodeRolePrefix) {
		return true
	}
	for m := range strings.SplitSeq(managed, ",") {
		if m == key {
			return true
		}
	}
	return false
}

// NodeRolePrefix starts the labels that give a Node its roles (kubectl get nodes shows them).
const NodeRolePrefix = "node-role.kubernetes.io/"

// cacheNode is what the cache keeps of n.
func cacheNode(n *corev1.Node) cachedNode {
	s := nodeState(n)
	managed := n.Annotations[ManagedLabelsAnnotation]
	c := cachedNode{uid: s.UID, owner: s.Owner, created: s.Created.Unix(), ready: s.Ready, unschedulable: s.Unschedulable,
		reason: unique.Make(s.Reason), kubelet: unique.Make(s.KubeletVersion), managed: unique.Make(managed)}
	if s.Created.IsZero() {
		c.created = 0
	}
	for k, v := range n.Labels {
		if k != LabelHost && keepLabel(k, managed) {
			c.labels = append(c.labels, cachedLabel{key: unique.Make(k), value: unique.Make(v)})
		}
	}
	slices.SortFunc(c.labels, func(a, b cachedLabel) int { return strings.Compare(a.key.Value(), b.key.Value()) })
	return c
}

func (c cachedNode) equal(o cachedNode) bool {
	return c.uid == o.uid && c.owner == o.owner && c.created == o.created && c.ready == o.ready &&
		c.unschedulable == o.unschedulable && c.reason == o.reason && c.kubelet == o.kubelet && c.managed == o.managed &&
		slices.Equal(c.labels, o.labels)
}

// node is the kept Node named name, as Nodes returned it.
func (c cachedNode) node(name string) Node {
	labels := make(map[string]string, len(c.labels)+1)
	for _, l := range c.labels {
		labels[l.key.Value()] = l.value.Value()
	}
	if c.owner != "" {
		labels[LabelHost] = c.owner
	}
	var created time.Time
	if c.created != 0 {
		created = time.Unix(c.created, 0).UTC()
	}
	n := Node{Name: name, State: NodeState{Exists: true, Ready: c.ready, Reason: c.reason.Value(), KubeletVersion: c.kubelet.Value(),
		Unschedulable: c.unschedulable, Labels: labels, Owner: c.owner, UID: c.uid, Created: created}}
	if m := c.managed.Value(); m != "" {
		n.Annotations = map[string]string{ManagedLabelsAnnotation: m}
	}
	return n
}
