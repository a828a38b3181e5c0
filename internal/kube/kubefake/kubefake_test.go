package kubefake

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

func client(t *testing.T, s *Server) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(s.Config())
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// TestListPages: a list with a limit comes in pages of one resourceVersion; one without, whole.
func TestListPages(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{Nodes: 25})
	cs := client(t, s)
	ctx := context.Background()
	var names []string
	opts := metav1.ListOptions{Limit: 10}
	rv := ""
	for {
		l, err := cs.CoreV1().Nodes().List(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		if rv == "" {
			rv = l.ResourceVersion
		} else if l.ResourceVersion != rv {
			t.Errorf("page at resourceVersion %s, the first at %s", l.ResourceVersion, rv)
		}
		for _, n := range l.Items {
			names = append(names, n.Name)
		}
		if l.Continue == "" {
			break
		}
		opts.Continue = l.Continue
	}
	if len(names) != 25 || names[0] != "node-000000" || names[24] != "node-000024" {
		t.Errorf("listed %v", names)
	}
	if _, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Counts{Lists: 2, Pages: 4, Unpaged: 1}, s.Counts()); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

// TestPatch: a merge patch sets and removes labels, and its resourceVersion is a precondition.
func TestPatch(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{Nodes: 1})
	cs := client(t, s)
	ctx := context.Background()
	n, err := cs.CoreV1().Nodes().Get(ctx, "node-000000", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cs.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{ResourceVersion: n.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	patch := `{"metadata":{"resourceVersion":"` + n.ResourceVersion + `","labels":{"site":"hall-2","kubernetes.io/os":null}}}`
	got, err := cs.CoreV1().Nodes().Patch(ctx, n.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got.Labels["kubernetes.io/os"]; ok || got.Labels["site"] != "hall-2" || got.ResourceVersion == n.ResourceVersion {
		t.Errorf("patched: labels %v at resourceVersion %s", got.Labels, got.ResourceVersion)
	}
	if ev := <-w.ResultChan(); ev.Type != watch.Modified {
		t.Errorf("event %v, want MODIFIED", ev.Type)
	}
	// The same patch again: its resourceVersion is no longer the Node's.
	_, err = cs.CoreV1().Nodes().Patch(ctx, n.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if !apierrors.IsConflict(err) {
		t.Errorf("a patch at an old resourceVersion: %v, want a conflict", err)
	}
}

// TestWatchExpired: after Expire, a watch from before is answered 410 Expired.
func TestWatchExpired(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{Nodes: 2})
	cs := client(t, s)
	rv := s.ResourceVersion()
	s.Expire()
	w, err := cs.CoreV1().Nodes().Watch(context.Background(), metav1.ListOptions{ResourceVersion: rv})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ev := <-w.ResultChan()
	if err := apierrors.FromObject(ev.Object); ev.Type != watch.Error || !apierrors.IsResourceExpired(err) {
		t.Errorf("event %v %v, want an error 410 Expired", ev.Type, err)
	}
}
