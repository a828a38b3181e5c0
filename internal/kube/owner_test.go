package kube

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"hummingbird.io/hummingbird/internal/testbed"
)

func TestMain(m *testing.M) {
	os.Exit(testbed.Main(m))
}

// requireBed skips the test unless the end-to-end tests were asked for.
func requireBed(t *testing.T) { t.Helper(); testbed.Require(t) }

// TestOwnerOnCluster, against the bed's kube-apiserver: a kubelet cannot write the mark, neither
// on its own Node nor when it registers (NodeRestriction, which the mark relies on); Cordon and
// the labels refuse a Node without the host's mark, and leave it as it is; ClaimNode marks an
// unmarked Node and refuses another host's; RegisteredWithToken finds no CSR for a Node that no
// kubelet joined.
func TestOwnerOnCluster(t *testing.T) {
	requireBed(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	b := testbed.Start(t, ctx, testbed.Options{})
	cp := b.ControlPlane
	c, err := Load(cp.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	const host, other = "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"
	if err := cp.CreateNode(ctx, "cp-1", map[string]string{"kubernetes.io/hostname": "cp-1",
		"node-role.kubernetes.io/control-plane": ""}); err != nil {
		t.Fatal(err)
	}

	// As the kubelet of cp-1 (the API server takes the admin's impersonation for that user).
	asKubelet := []string{"--as", "system:node:cp-1", "--as-group", "system:nodes", "--as-group", "system:authenticated"}
	// kubectl's error holds the API server's answer.
	forbidden := func(err error) bool { return err != nil && strings.Contains(err.Error(), "is forbidden") }
	out, err := cp.Kubectl(ctx, append(asKubelet, "label", "node", "cp-1", LabelHost+"="+host)...)
	if !forbidden(err) {
		t.Errorf("the kubelet of cp-1 labelled its own Node with %s: %v\n%s", LabelHost, err, out)
	}
	node := []byte(`{"apiVersion":"v1","kind":"Node","metadata":{"name":"edge-9","labels":{"` + LabelHost + `":"` + host + `"}}}`)
	asEdge9 := []string{"--as", "system:node:edge-9", "--as-group", "system:nodes", "--as-group", "system:authenticated"}
	out, err = cp.KubectlInput(ctx, node, append(asEdge9, "create", "-f", "-")...)
	if !forbidden(err) {
		t.Errorf("a kubelet registered its Node with %s: %v\n%s", LabelHost, err, out)
	}
	// A label of its own namespace it may set: the refusal above is the mark's.
	if out, err := cp.Kubectl(ctx, append(asKubelet, "label", "node", "cp-1", "example.com/x=y")...); err != nil {
		t.Errorf("the kubelet of cp-1 cannot set a label of its own on its Node: %v\n%s", err, out)
	}

	read := func() NodeState {
		t.Helper()
		s, err := c.Node(ctx, "cp-1")
		if err != nil || !s.Exists {
			t.Fatalf("node cp-1: %+v, %v", s, err)
		}
		return s
	}
	before := read()
	var notOwned *NotOwnedError
	if err := c.Cordon(ctx, "cp-1", host, true); !errors.As(err, &notOwned) {
		t.Errorf("Cordon of a Node without the mark: %v; want *NotOwnedError", err)
	}
	if _, err := c.ApplyManagedLabelsByName(ctx, "cp-1", host, map[string]string{"site": "x"}); !errors.As(err, &notOwned) {
		t.Errorf("labelling a Node without the mark: %v; want *NotOwnedError", err)
	}
	if after := read(); after.Unschedulable || len(after.Labels) != len(before.Labels) {
		t.Errorf("a Node without the mark changed: %+v, before %+v", after, before)
	}
	if ok, err := c.RegisteredWithToken(ctx, "cp-1", "abcdef"); ok || err != nil {
		t.Errorf("RegisteredWithToken of a Node no kubelet joined: %v, %v; want false", ok, err)
	}

	// Marked, it is the host's: Cordon and labels act, and another host cannot claim it.
	if err := c.ClaimNode(ctx, "cp-1", host, before.UID); err != nil {
		t.Fatal(err)
	}
	if err := c.ClaimNode(ctx, "cp-1", other, ""); !errors.As(err, &notOwned) || notOwned.Owner != host {
		t.Errorf("ClaimNode of another host's Node: %v; want *NotOwnedError naming %s", err, host)
	}
	if err := c.ClaimNode(ctx, "cp-1", host, "not-its-uid"); err == nil {
		t.Error("ClaimNode of a Node made again since it was checked: no error")
	}
	if err := c.Cordon(ctx, "cp-1", host, true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ApplyManagedLabelsByName(ctx, "cp-1", host, map[string]string{"site": "x"}); err != nil {
		t.Fatal(err)
	}
	if s := read(); !s.Unschedulable || s.Labels["site"] != "x" || s.Owner != host {
		t.Errorf("the host's own Node: %+v; want cordoned, labelled, marked", s)
	}
	n, err := c.cs.CoreV1().Nodes().Get(ctx, "cp-1", metav1.GetOptions{})
	if err != nil || n.Annotations[ManagedLabelsAnnotation] != "site" {
		t.Errorf("node cp-1 annotations %v (%v)", n.Annotations, err)
	}
}
