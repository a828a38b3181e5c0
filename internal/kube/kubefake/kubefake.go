// Package kubefake is a generated Kubernetes API server of Nodes, for the tests and benchmarks
// of Hummingbird's Node cache and reconciler at sizes no test bed's etcd holds (100,000 Nodes).
// It runs in-process over TLS (httptest) and serves only what those use of the API:
//
//   - GET /api/v1/nodes: the list, in pages when asked for a limit (continue tokens), with the
//     list's resourceVersion;
//   - GET /api/v1/nodes?watch=1&resourceVersion=R: JSON watch events (ADDED, MODIFIED, DELETED,
//     and BOOKMARK when allowWatchBookmarks is set) after R, or an ERROR event 410 Expired when R
//     is older than the history the server keeps;
//   - GET and merge PATCH of /api/v1/nodes/NAME, a resourceVersion in the patch being a
//     precondition (409 Conflict when it is not the Node's);
//   - GET /version.
//
// Its Nodes are generated, not recorded: Node i comes from Options.Node. Each is held encoded,
// as it is served, so that a server of 100,000 Nodes costs little of the process it shares with
// what it measures. A test changes Nodes with Update, Add and Delete (each a watch event), and
// breaks watches with CloseWatches and Expire. Counts tells how many requests of each kind the
// server answered, so that a test can check that its client does no full list after start.
//
// Unlike a real API server, the later pages of a list show the Nodes as they are when the page
// is served, not as they were at the list's resourceVersion; a client that watches from that
// resourceVersion sees every change after it again, and ends up the same. It keeps no other
// kind of object, and checks no credentials.
package kubefake

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

// Options is what a server holds and how it keeps its history.
type Options struct {
	// Nodes is how many Nodes it starts with.
	Nodes int
	// Node makes Node i, from 0; nil: DefaultNode. Its resourceVersion is set by the server.
	Node func(i int) *corev1.Node
	// History is how many watch events the server keeps for watches that start behind its
	// newest resourceVersion; a watch from further back is answered 410 Expired. 0: 10,000.
	History int
	// Bookmarks is the time between the bookmarks of a watch that asks for them; 0: a minute,
	// as a real API server sends them.
	Bookmarks time.Duration
	// WatchBuffer is how many events may wait for a watch's client; a watch whose client falls
	// further behind is closed, as a real API server closes it. 0: 10,000.
	WatchBuffer int
}

// Counts are the requests a server answered, by kind.
type Counts struct {
	// Lists are the lists of the Nodes begun (a list request without a continue token), and
	// Pages every list request, continued ones included.
	Lists, Pages int
	// Unpaged are the list requests without a limit: each sends every Node at once.
	Unpaged  int
	Watches  int
	Gets     int
	Patches  int
	Versions int
	// Other are the requests for anything else, answered 404.
	Other int
}

// Server is a running fake API server.
type Server struct {
	opts Options
	srv  *httptest.Server
	stop chan struct{}

	mu       sync.Mutex
	rv       int64
	nodes    map[string]stored
	names    []string // sorted
	history  []event  // oldest first
	expired  int64    // a watch from this resourceVersion or older is answered 410
	watchers map[*watcher]struct{}
	held     chan struct{} // non-nil: the watches send nothing until it is closed
	counts   Counts
}

// stored is a Node as it is served.
type stored struct {
	rv   int64
	data []byte // JSON
}

// event is a watch event as it is sent.
type event struct {
	rv   int64
	line []byte // {"type":...,"object":...}\n
}

type watcher struct {
	events    chan event
	closed    chan struct{}
	bookmarks bool
}

// Start runs a server with opts until tb ends.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	if opts.Node == nil {
		opts.Node = DefaultNode
	}
	if opts.History <= 0 {
		opts.History = 10000
	}
	if opts.Bookmarks <= 0 {
		opts.Bookmarks = time.Minute
	}
	if opts.WatchBuffer <= 0 {
		opts.WatchBuffer = 10000
	}
	s := &Server{opts: opts, stop: make(chan struct{}), nodes: make(map[string]stored, opts.Nodes),
		names: make([]string, 0, opts.Nodes), watchers: map[*watcher]struct{}{}}
	for i := range opts.Nodes {
		n := opts.Node(i)
		if _, dup := s.nodes[n.Name]; dup {
			tb.Fatalf("kubefake: Node %d is named %s like another", i, n.Name)
		}
		s.rv++
		data, err := encode(n, s.rv)
		if err != nil {
			tb.Fatalf("kubefake: Node %d: %v", i, err)
		}
		s.nodes[n.Name] = stored{rv: s.rv, data: data}
		s.names = append(s.names, n.Name)
	}
	sort.Strings(s.names)
	s.expired = s.rv - 1 // the history of the Nodes' making is not kept
	s.srv = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	go s.bookmark()
	tb.Cleanup(s.Close)
	return s
}

// Close closes every watch and stops the server.
func (s *Server) Close() {
	s.mu.Lock()
	select {
	case <-s.stop:
		s.mu.Unlock()
		return
	default:
	}
	close(s.stop)
	s.closeWatchesLocked()
	s.mu.Unlock()
	s.srv.Close()
}

// URL is the server's https://127.0.0.1:PORT.
func (s *Server) URL() string { return s.srv.URL }

// Config is a client configuration for the server: its URL and the CA of its certificate.
func (s *Server) Config() *rest.Config {
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
	return &rest.Config{Host: s.srv.URL, BearerToken: "kubefake", TLSClientConfig: rest.TLSClientConfig{CAData: ca}}
}

// Counts are the requests answered so far.
func (s *Server) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts
}

// Len is the number of Nodes.
func (s *Server) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.nodes)
}

// ResourceVersion is the server's newest resourceVersion.
func (s *Server) ResourceVersion() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strconv.FormatInt(s.rv, 10)
}

// Node reads a Node as the server holds it.
func (s *Server) Node(name string) (*corev1.Node, error) {
	s.mu.Lock()
	st, ok := s.nodes[name]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("kubefake: no Node %s", name)
	}
	var n corev1.Node
	if err := json.Unmarshal(st.data, &n); err != nil {
		return nil, err
	}
	return &n, nil
}

// Update changes Node name with change, a MODIFIED event.
func (s *Server) Update(name string, change func(*corev1.Node)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.nodes[name]
	if !ok {
		return fmt.Errorf("kubefake: no Node %s", name)
	}
	var n corev1.Node
	if err := json.Unmarshal(st.data, &n); err != nil {
		return err
	}
	change(&n)
	n.Name = name
	return s.putLocked(&n, "MODIFIED")
}

// Add adds a Node, an ADDED event.
func (s *Server) Add(n *corev1.Node) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.nodes[n.Name]; ok {
		return fmt.Errorf("kubefake: Node %s exists", n.Name)
	}
	i, _ := slices.BinarySearch(s.names, n.Name)
	s.names = slices.Insert(s.names, i, n.Name)
	return s.putLocked(n.DeepCopy(), "ADDED")
}

// Delete deletes a Node, a DELETED event.
func (s *Server) Delete(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.nodes[name]
	if !ok {
		return fmt.Errorf("kubefake: no Node %s", name)
	}
	var n corev1.Node
	if err := json.Unmarshal(st.data, &n); err != nil {
		return err
	}
	delete(s.nodes, name)
	if i, found := slices.BinarySearch(s.names, name); found {
		s.names = slices.Delete(s.names, i, i+1)
	}
	s.rv++
	data, err := encode(&n, s.rv)
	if err != nil {
		return err
	}
	s.publishLocked("DELETED", data)
	return nil
}

// CloseWatches ends every open watch, as a server does at its request timeout: their clients
// watch again from where they were.
func (s *Server) CloseWatches() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeWatchesLocked()
}

// Expire forgets the server's history, as a restarted API server or a compacted etcd does: every
// open watch is closed, and one from any resourceVersion served until now is answered 410
// Expired, as is a list continued from a page served until now. Its clients must list again.
func (s *Server) Expire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeWatchesLocked()
	s.history = nil
	s.expired = s.rv
	s.rv++ // so that a list from now on can be watched from
}

// HoldWatches makes every watch send nothing until ReleaseWatches: the events queue, so that a
// benchmark can tell the cost of making changes from the cost of following them.
func (s *Server) HoldWatches() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held == nil {
		s.held = make(chan struct{})
	}
}

// ReleaseWatches lets the watches send the events queued since HoldWatches.
func (s *Server) ReleaseWatches() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held != nil {
		close(s.held)
		s.held = nil
	}
}

// hold is the channel a watch waits on before it sends; nil: it need not wait.
func (s *Server) hold() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

// putLocked stores n with the next resourceVersion and publishes it as an event of type typ.
func (s *Server) putLocked(n *corev1.Node, typ string) error {
	s.rv++
	data, err := encode(n, s.rv)
	if err != nil {
		return err
	}
	s.nodes[n.Name] = stored{rv: s.rv, data: data}
	s.publishLocked(typ, data)
	return nil
}

// publishLocked keeps an event in the history and sends it to every watch.
func (s *Server) publishLocked(typ string, data []byte) {
	ev := event{rv: s.rv, line: eventLine(typ, data)}
	s.history = append(s.history, ev)
	if over := len(s.history) - s.opts.History; over > 0 {
		s.expired = s.history[over-1].rv
		s.history = slices.Delete(s.history, 0, over)
	}
	for w := range s.watchers {
		select {
		case w.events <- ev:
		default: // too far behind
			close(w.closed)
			delete(s.watchers, w)
		}
	}
}

func (s *Server) closeWatchesLocked() {
	for w := range s.watchers {
		close(w.closed)
		delete(s.watchers, w)
	}
}

// bookmark sends a bookmark of the newest resourceVersion to every watch that asks for them,
// every opts.Bookmarks. It goes through the watch's queue, after the events before it.
func (s *Server) bookmark() {
	t := time.NewTicker(s.opts.Bookmarks)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		ev := event{rv: s.rv, line: eventLine("BOOKMARK",
			fmt.Appendf(nil, `{"kind":"Node","apiVersion":"v1","metadata":{"resourceVersion":"%d"}}`, s.rv))}
		for w := range s.watchers {
			if !w.bookmarks {
				continue
			}
			select {
			case w.events <- ev:
			default:
				close(w.closed)
				delete(s.watchers, w)
			}
		}
		s.mu.Unlock()
	}
}

func eventLine(typ string, obj []byte) []byte {
	line := make([]byte, 0, len(obj)+32)
	line = append(line, `{"type":"`...)
	line = append(line, typ...)
	line = append(line, `","object":`...)
	line = append(line, obj...)
	return append(line, "}\n"...)
}

// encode is n as served, at resourceVersion rv.
func encode(n *corev1.Node, rv int64) ([]byte, error) {
	n.Kind, n.APIVersion = "Node", "v1"
	n.ResourceVersion = strconv.FormatInt(rv, 10)
	return json.Marshal(n)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	const nodes = "/api/v1/nodes"
	switch {
	case r.URL.Path == "/version" && r.Method == http.MethodGet:
		s.count(func(c *Counts) { c.Versions++ })
		writeJSON(w, http.StatusOK, map[string]string{"major": "1", "minor": "37", "gitVersion": "v1.37.2-kubefake",
			"platform": "linux/amd64"})
	case r.URL.Path == nodes && r.Method == http.MethodGet:
		if w1 := r.URL.Query().Get("watch"); w1 == "1" || w1 == "true" {
			s.watch(w, r)
		} else {
			s.list(w, r)
		}
	case strings.HasPrefix(r.URL.Path, nodes+"/") && !strings.Contains(r.URL.Path[len(nodes)+1:], "/"):
		name := r.URL.Path[len(nodes)+1:]
		switch r.Method {
		case http.MethodGet:
			s.get(w, name)
		case http.MethodPatch:
			s.patch(w, r, name)
		default:
			s.count(func(c *Counts) { c.Other++ })
			writeStatus(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "kubefake does not serve "+r.Method+" of a Node")
		}
	default:
		s.count(func(c *Counts) { c.Other++ })
		writeStatus(w, http.StatusNotFound, "NotFound", "kubefake does not serve "+r.Method+" "+r.URL.Path)
	}
}

func (s *Server) count(f func(*Counts)) {
	s.mu.Lock()
	f(&s.counts)
	s.mu.Unlock()
}

// continueToken is where a list goes on: after Node Start, in the list of resourceVersion RV.
type continueToken struct {
	RV    int64  `json:"rv"`
	Start string `json:"start"`
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	var tok continueToken
	if c := q.Get("continue"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err == nil {
			err = json.Unmarshal(b, &tok)
		}
		if err != nil {
			s.count(func(c *Counts) { c.Pages++ })
			writeStatus(w, http.StatusBadRequest, "BadRequest", "continue key is not valid: "+err.Error())
			return
		}
	}
	var buf bytes.Buffer
	s.mu.Lock()
	s.counts.Pages++
	if tok.RV == 0 {
		s.counts.Lists++
		tok.RV = s.rv
	}
	if limit <= 0 {
		s.counts.Unpaged++
	}
	if tok.RV <= s.expired {
		s.mu.Unlock()
		writeStatus(w, http.StatusGone, metav1.StatusReasonExpired,
			"The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.")
		return
	}
	i := 0
	if tok.Start != "" {
		i, _ = slices.BinarySearch(s.names, tok.Start)
		if i < len(s.names) && s.names[i] == tok.Start {
			i++
		}
	}
	end := len(s.names)
	if limit > 0 {
		end = min(i+limit, end)
	}
	fmt.Fprintf(&buf, `{"kind":"NodeList","apiVersion":"v1","metadata":{"resourceVersion":"%d"`, tok.RV)
	if end < len(s.names) {
		next, _ := json.Marshal(continueToken{RV: tok.RV, Start: s.names[end-1]})
		fmt.Fprintf(&buf, `,"continue":"%s","remainingItemCount":%d`, base64.RawURLEncoding.EncodeToString(next), len(s.names)-end)
	}
	buf.WriteString(`},"items":[`)
	for j, name := range s.names[i:end] {
		if j > 0 {
			buf.WriteByte(',')
		}
		buf.Write(s.nodes[name].data)
	}
	s.mu.Unlock()
	buf.WriteString("]}\n")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
}

func (s *Server) get(w http.ResponseWriter, name string) {
	s.mu.Lock()
	s.counts.Gets++
	st, ok := s.nodes[name]
	s.mu.Unlock()
	if !ok {
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf(`nodes "%s" not found`, name))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(st.data)
}

// patch applies a JSON merge patch (a strategic merge patch of labels and annotations is the
// same), its metadata.resourceVersion, if any, being a precondition.
func (s *Server) patch(w http.ResponseWriter, r *http.Request, name string) {
	s.count(func(c *Counts) { c.Patches++ })
	switch ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); ct {
	case "application/merge-patch+json", "application/strategic-merge-patch+json":
	default:
		writeStatus(w, http.StatusUnsupportedMediaType, metav1.StatusReasonUnsupportedMediaType, "kubefake takes merge patches only, not "+ct)
		return
	}
	body, err := io.ReadAll(r.Body)
	var patch map[string]any
	if err == nil {
		err = json.Unmarshal(body, &patch)
	}
	if err != nil {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, "the patch is not a JSON object: "+fmt.Sprint(err))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.nodes[name]
	if !ok {
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf(`nodes "%s" not found`, name))
		return
	}
	if meta, _ := patch["metadata"].(map[string]any); meta != nil {
		if want, ok := meta["resourceVersion"].(string); ok {
			if want != strconv.FormatInt(st.rv, 10) {
				writeStatus(w, http.StatusConflict, metav1.StatusReasonConflict, fmt.Sprintf(`Operation cannot be fulfilled on nodes "%s": `+
					"the object has been modified; please apply your changes to the latest version and try again", name))
				return
			}
			delete(meta, "resourceVersion")
		}
	}
	var doc map[string]any
	if err := json.Unmarshal(st.data, &doc); err != nil {
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, err.Error())
		return
	}
	merged, _ := mergePatch(doc, patch).(map[string]any)
	data, err := json.Marshal(merged)
	var n corev1.Node
	if err == nil {
		err = json.Unmarshal(data, &n)
	}
	if err != nil {
		writeStatus(w, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, "the patched Node is not valid: "+err.Error())
		return
	}
	n.Name = name
	if err := s.putLocked(&n, "MODIFIED"); err != nil {
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(s.nodes[name].data)
}

// mergePatch applies patch to doc as RFC 7386 says: objects merge, null deletes, anything else
// replaces.
func mergePatch(doc, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	d, ok := doc.(map[string]any)
	if !ok {
		d = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(d, k)
		} else {
			d[k] = mergePatch(d[k], v)
		}
	}
	return d
}

func (s *Server) watch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, err := strconv.ParseInt(q.Get("resourceVersion"), 10, 64)
	if err != nil || from <= 0 {
		s.count(func(c *Counts) { c.Watches++ })
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, "kubefake serves watches from a resourceVersion only")
		return
	}
	timeout := time.Duration(0)
	if t, err := strconv.Atoi(q.Get("timeoutSeconds")); err == nil && t > 0 {
		timeout = time.Duration(t) * time.Second
	}
	wt := &watcher{events: make(chan event, s.opts.WatchBuffer), closed: make(chan struct{}),
		bookmarks: q.Get("allowWatchBookmarks") == "true" || q.Get("allowWatchBookmarks") == "1"}
	s.mu.Lock()
	s.counts.Watches++
	if from <= s.expired {
		s.mu.Unlock()
		// As a real API server: the watch is opened, and its one event says why it ends.
		status, _ := json.Marshal(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
			Code: http.StatusGone, Reason: metav1.StatusReasonExpired, Message: fmt.Sprintf("too old resource version: %d (%d)", from, s.expired+1)})
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.Write(eventLine("ERROR", status))
		return
	}
	var backlog []event
	i := sort.Search(len(s.history), func(i int) bool { return s.history[i].rv > from })
	backlog = slices.Clone(s.history[i:])
	s.watchers[wt] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if _, open := s.watchers[wt]; open {
			close(wt.closed)
			delete(s.watchers, wt)
		}
		s.mu.Unlock()
	}()

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	flush := func() {
		if flusher != nil {
			flusher.Flush()
		}
	}
	for _, ev := range backlog {
		if _, err := w.Write(ev.line); err != nil {
			return
		}
	}
	flush()
	var end <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		end = t.C
	}
	for {
		select {
		case ev := <-wt.events:
			if held := s.hold(); held != nil {
				select {
				case <-held:
				case <-wt.closed:
					return
				case <-r.Context().Done():
					return
				}
			}
			if _, err := w.Write(ev.line); err != nil {
				return
			}
			// Write what else is queued before flushing.
			for more := true; more; {
				select {
				case ev := <-wt.events:
					if _, err := w.Write(ev.line); err != nil {
						return
					}
				default:
					more = false
				}
			}
			flush()
		case <-wt.closed:
			return
		case <-end:
			return
		case <-r.Context().Done():
			return
		case <-s.stop:
			return
		}
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string) {
	writeJSON(w, code, metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
		Code: int32(code), Reason: reason, Message: msg})
}

// DefaultNode is Node i as a kubelet registers it and reports it Ready: named node-000000 on,
// with a kubelet's labels, annotations, addresses, capacity, conditions and node info, and no
// images.
func DefaultNode(i int) *corev1.Node {
	name := fmt.Sprintf("node-%06d", i)
	return NewNode(name, map[string]string{}, true)
}

// NewNode is a Node named name as a kubelet registers it, with labels added to the kubelet's,
// Ready or NotReady.
func NewNode(name string, labels map[string]string, ready bool) *corev1.Node {
	l := map[string]string{
		"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
		"kubernetes.io/arch": "amd64", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
	}
	for k, v := range labels {
		l[k] = v
	}
	created := metav1.NewTime(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Labels: l,
			UID:               types.UID(uuid.NewSHA1(uuid.NameSpaceOID, []byte(name)).String()),
			CreationTimestamp: created,
			Annotations: map[string]string{
				"node.alpha.kubernetes.io/ttl":                           "0",
				"volumes.kubernetes.io/controller-managed-attach-detach": "true",
			},
		},
		Spec: corev1.NodeSpec{PodCIDR: "10.244.0.0/24", PodCIDRs: []string{"10.244.0.0/24"}},
		Status: corev1.NodeStatus{
			Capacity: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8141256Ki"),
				corev1.ResourcePods: resource.MustParse("110"), corev1.ResourceEphemeralStorage: resource.MustParse("61202244Ki"),
			},
			Allocatable: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8038856Ki"),
				corev1.ResourcePods: resource.MustParse("110"), corev1.ResourceEphemeralStorage: resource.MustParse("56403987978"),
			},
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}, {Type: corev1.NodeHostName, Address: name},
			},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}},
			NodeInfo: corev1.NodeSystemInfo{
				MachineID: "0123456789abcdef0123456789abcdef", SystemUUID: "01234567-89ab-cdef-0123-456789abcdef",
				BootID: "fedcba98-7654-3210-fedc-ba9876543210", KernelVersion: "6.1.0-28-amd64",
				OSImage: "Debian GNU/Linux 12 (bookworm)", ContainerRuntimeVersion: "containerd://1.6.20",
				KubeletVersion: "v1.37.2", OperatingSystem: "linux", Architecture: "amd64",
			},
		},
	}
	t := created
	for _, c := range []struct {
		typ             corev1.NodeConditionType
		reason, message string
	}{
		{corev1.NodeMemoryPressure, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"},
		{corev1.NodeDiskPressure, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"},
		{corev1.NodePIDPressure, "KubeletHasSufficientPID", "kubelet has sufficient PID available"},
	} {
		n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{Type: c.typ, Status: corev1.ConditionFalse,
			LastHeartbeatTime: t, LastTransitionTime: t, Reason: c.reason, Message: c.message})
	}
	n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{Type: corev1.NodeReady, LastHeartbeatTime: t, LastTransitionTime: t})
	SetReady(n, ready)
	return n
}

// SetReady makes n's Ready condition say it is Ready, as a kubelet posting its status does, or
// NotReady, as the node controller marks a Node whose kubelet stopped posting.
func SetReady(n *corev1.Node, ready bool) {
	for i := range n.Status.Conditions {
		c := &n.Status.Conditions[i]
		if c.Type != corev1.NodeReady {
			continue
		}
		if ready {
			c.Status, c.Reason, c.Message = corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"
		} else {
			c.Status, c.Reason, c.Message = corev1.ConditionUnknown, "NodeStatusUnknown", "Kubelet stopped posting node status."
		}
		return
	}
	n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{Type: corev1.NodeReady})
	SetReady(n, ready)
}
