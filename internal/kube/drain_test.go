package kube

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPlanDrain(t *testing.T) {
	t.Parallel()
	yes := true
	pod := func(name, ownerKind string, phase corev1.PodPhase, annotations map[string]string) corev1.Pod {
		p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Annotations: annotations},
			Status: corev1.PodStatus{Phase: phase}}
		if ownerKind != "" {
			p.OwnerReferences = []metav1.OwnerReference{{Kind: ownerKind, Name: "owner", Controller: &yes}}
		}
		return p
	}
	plan := planDrain([]corev1.Pod{
		pod("web-1", "ReplicaSet", corev1.PodRunning, nil),
		pod("agent-x", "DaemonSet", corev1.PodRunning, nil),
		pod("bare", "", corev1.PodRunning, nil),
		pod("etcd-edge-1", "Node", corev1.PodRunning, map[string]string{corev1.MirrorPodAnnotationKey: "abc"}),
		pod("done", "", corev1.PodSucceeded, nil),
		pod("db-0", "StatefulSet", corev1.PodPending, nil),
	})
	names := func(refs []PodRef) []string {
		var out []string
		for _, r := range refs {
			out = append(out, r.String())
		}
		return out
	}
	want := map[string][]string{
		"evict":     {"default/web-1", "default/bare", "default/done", "default/db-0"},
		"unmanaged": {"default/bare"},
		"skipped":   {"default/agent-x", "default/etcd-edge-1"},
	}
	got := map[string][]string{"evict": names(plan.Evict), "unmanaged": names(plan.Unmanaged), "skipped": names(plan.Skipped)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}
}

func TestEvictionRefusal(t *testing.T) {
	t.Parallel()
	pdb := apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 0)
	pdb.ErrStatus.Details.Causes = append(pdb.ErrStatus.Details.Causes, metav1.StatusCause{Type: policyv1.DisruptionBudgetCause,
		Message: "The disruption budget web needs 2 healthy pods and has 2 currently"})
	for _, tc := range []struct {
		err  error
		want string
	}{
		{pdb, "a PodDisruptionBudget allows no eviction now: the disruption budget web needs 2 healthy pods and has 2 currently"},
		{apierrors.NewTooManyRequests("slow down", 1), "the API server refused the eviction for now: slow down"},
		{apierrors.NewInternalError(fmt.Errorf("etcd")), "the eviction failed, retrying: Internal error occurred: etcd"},
	} {
		if got := evictionRefusal(tc.err); got != tc.want {
			t.Errorf("evictionRefusal(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestDrainErrors(t *testing.T) {
	t.Parallel()
	web := PodRef{Namespace: "default", Name: "web-1"}
	err := error(&DrainIncompleteError{Node: "edge-1", Err: context.DeadlineExceeded,
		Pending: []PendingPod{{Pod: web, Reason: "a PodDisruptionBudget allows no eviction now"}}})
	if want := "1 pod(s) still on node edge-1: default/web-1 (a PodDisruptionBudget allows no eviction now)"; err.Error() != want {
		t.Errorf("DrainIncompleteError = %q, want %q", err, want)
	}
	if !strings.Contains((&UnmanagedPodsError{Node: "edge-1", Pods: []PodRef{web}}).Error(), "default/web-1") {
		t.Error("UnmanagedPodsError does not name the pod")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Error("DrainIncompleteError does not wrap its context's error")
	}
}
