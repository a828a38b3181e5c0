package kube

// Draining a Node, as `kubectl drain` does: cordon it, then evict its pods through the eviction
// API, so that PodDisruptionBudgets are honoured, and wait until they are gone.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
)

// Cordon marks a Node unschedulable (on) or schedulable again (!on); the pods on it stay. A
// missing Node is an error, and so is one that is not the host's (host: its uuid; see
// LabelHost): *NotOwnedError, and the Node is not written.
func (c *Cluster) Cordon(ctx context.Context, node, host string, on bool) error {
	var v any // null removes the field: schedulable
	if on {
		v = true
	}
	_, err := c.patchOwned(ctx, node, host, func(s NodeState, _ map[string]string) (map[string]any, error) {
		return map[string]any{"spec": map[string]any{"unschedulable": v}}, nil
	})
	if err != nil {
		what := "uncordoning"
		if on {
			what = "cordoning"
		}
		return fmt.Errorf("%s node %s: %w", what, node, err)
	}
	return nil
}

// PodRef names a pod.
type PodRef struct {
	Namespace, Name string
	UID             types.UID
}

// String is namespace/name, as kubectl writes it.
func (p PodRef) String() string { return p.Namespace + "/" + p.Name }

func refOf(p *corev1.Pod) PodRef { return PodRef{Namespace: p.Namespace, Name: p.Name, UID: p.UID} }

// DrainPlan is what draining a Node would do with the pods on it now.
type DrainPlan struct {
	// Evict are the pods a drain evicts, Unmanaged among them.
	Evict []PodRef
	// Unmanaged are the running pods no controller manages: nothing recreates them once
	// evicted, so a drain evicts them only when forced.
	Unmanaged []PodRef
	// Skipped are the pods a drain leaves: those of DaemonSets, which belong on every Node and
	// tolerate a cordon, and static pods, which the kubelet runs from files on the host.
	Skipped []PodRef
}

// PlanDrain reads the pods on a Node and sorts them as a drain would.
func (c *Cluster) PlanDrain(ctx context.Context, node string) (DrainPlan, error) {
	pods, err := c.podsOn(ctx, node)
	if err != nil {
		return DrainPlan{}, err
	}
	return planDrain(pods), nil
}

// planDrain sorts pods into those to evict, unmanaged ones among them, and those to skip.
func planDrain(pods []corev1.Pod) DrainPlan {
	var plan DrainPlan
	for i := range pods {
		p := &pods[i]
		ref := refOf(p)
		owner := metav1.GetControllerOf(p)
		switch {
		case p.Annotations[corev1.MirrorPodAnnotationKey] != "":
			plan.Skipped = append(plan.Skipped, ref)
		case owner != nil && owner.Kind == "DaemonSet":
			plan.Skipped = append(plan.Skipped, ref)
		case owner == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed:
			plan.Unmanaged = append(plan.Unmanaged, ref)
			plan.Evict = append(plan.Evict, ref)
		default:
			plan.Evict = append(plan.Evict, ref)
		}
	}
	return plan
}

func (c *Cluster) podsOn(ctx context.Context, node string) ([]corev1.Pod, error) {
	list, err := c.cs.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String(),
	})
	if err != nil {
		return nil, fmt.Errorf("listing the pods on node %s: %w", node, err)
	}
	return list.Items, nil
}

// DrainOptions tune EvictPods. The drain's deadline is its context's.
type DrainOptions struct {
	// Force evicts the pods no controller manages too; without it, EvictPods refuses a Node
	// that runs any and evicts nothing.
	Force bool
	// RetryInterval is how long EvictPods waits before it asks again to evict a pod the API
	// server refused (a PodDisruptionBudget allows no disruption now); 5s when zero.
	RetryInterval time.Duration
	// PollInterval is how often it reads the pods on the Node while it waits; 1s when zero.
	PollInterval time.Duration
}

// DrainProgress is how far a drain has come.
type DrainProgress struct {
	Total   int          // the pods to evict
	Evicted int          // those of them gone from the Node
	Pending []PendingPod // those still there
}

// PendingPod is a pod still on the Node, and why.
type PendingPod struct {
	Pod    PodRef
	Reason string
}

func (p PendingPod) String() string { return p.Pod.String() + " (" + p.Reason + ")" }

// UnmanagedPodsError refuses a drain that is not forced, as the Node runs pods no controller
// manages.
type UnmanagedPodsError struct {
	Node string
	Pods []PodRef
}

func (e *UnmanagedPodsError) Error() string {
	return fmt.Sprintf("node %s runs pods that no controller manages, which nothing would recreate once evicted: %s",
		e.Node, joinRefs(e.Pods))
}

// DrainIncompleteError ends a drain whose context ended first: it names the pods still on the
// Node and why.
type DrainIncompleteError struct {
	Node    string
	Pending []PendingPod
	Err     error // the context's error
}

func (e *DrainIncompleteError) Error() string {
	parts := make([]string, len(e.Pending))
	for i, p := range e.Pending {
		parts[i] = p.String()
	}
	return fmt.Sprintf("%d pod(s) still on node %s: %s", len(e.Pending), e.Node, strings.Join(parts, "; "))
}

func (e *DrainIncompleteError) Unwrap() error { return e.Err }

func joinRefs(refs []PodRef) string {
	parts := make([]string, len(refs))
	for i, r := range refs {
		parts[i] = r.String()
	}
	return strings.Join(parts, ", ")
}

// Reasons a pending pod gives.
const (
	reasonToEvict     = "not evicted yet"
	reasonTerminating = "evicted, terminating"
)

// drainTarget is one pod EvictPods evicts.
type drainTarget struct {
	ref           PodRef
	evicted, gone bool
	next          time.Time // when to ask again to evict it
	reason        string
}

// EvictPods evicts the pods a drain evicts (see PlanDrain) from a Node and waits until they are
// gone, calling progress, when not nil, with every change. An eviction a PodDisruptionBudget
// refuses is asked again every RetryInterval. It returns *UnmanagedPodsError, without evicting
// anything, for unmanaged pods without Force, and *DrainIncompleteError when ctx ends first.
// It does not cordon the Node: do that first, or the evicted pods' replacements may land on it
// again.
func (c *Cluster) EvictPods(ctx context.Context, node string, o DrainOptions, progress func(DrainProgress)) error {
	if o.RetryInterval <= 0 {
		o.RetryInterval = 5 * time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	plan, err := c.PlanDrain(ctx, node)
	if err != nil {
		return err
	}
	if len(plan.Unmanaged) > 0 && !o.Force {
		return &UnmanagedPodsError{Node: node, Pods: plan.Unmanaged}
	}
	targets := make([]*drainTarget, len(plan.Evict))
	for i, ref := range plan.Evict {
		targets[i] = &drainTarget{ref: ref, reason: reasonToEvict}
	}
	var last *DrainProgress
	report := func() DrainProgress {
		p := DrainProgress{Total: len(targets)}
		for _, t := range targets {
			if t.gone {
				p.Evicted++
			} else {
				p.Pending = append(p.Pending, PendingPod{Pod: t.ref, Reason: t.reason})
			}
		}
		if progress != nil && (last == nil || !sameProgress(*last, p)) {
			progress(p)
		}
		last = &p
		return p
	}
	incomplete := func(err error) error {
		return &DrainIncompleteError{Node: node, Pending: report().Pending, Err: err}
	}
	report()
	tick := time.NewTicker(o.PollInterval)
	defer tick.Stop()
	for {
		now := time.Now()
		for _, t := range targets {
			if t.evicted || now.Before(t.next) {
				continue
			}
			err := c.evict(ctx, t.ref)
			switch {
			case err == nil:
				t.evicted, t.reason = true, reasonTerminating
			case apierrors.IsNotFound(err):
				t.evicted, t.gone = true, true
			case ctx.Err() != nil:
				return incomplete(ctx.Err())
			case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err), apierrors.IsBadRequest(err), apierrors.IsInvalid(err):
				return fmt.Errorf("evicting pod %s: %w", t.ref, err)
			default:
				// A PodDisruptionBudget's refusal (429), or a fault that may pass: ask again.
				t.reason, t.next = evictionRefusal(err), now.Add(o.RetryInterval)
			}
		}
		if pods, err := c.podsOn(ctx, node); err == nil {
			present := map[types.UID]bool{}
			for _, p := range pods {
				present[p.UID] = true
			}
			for _, t := range targets {
				if !present[t.ref.UID] {
					t.evicted, t.gone = true, true
				}
			}
		} else if ctx.Err() != nil {
			return incomplete(ctx.Err())
		}
		if p := report(); len(p.Pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return incomplete(ctx.Err())
		case <-tick.C:
		}
	}
}

func (c *Cluster) evict(ctx context.Context, ref PodRef) error {
	return c.cs.PolicyV1().Evictions(ref.Namespace).Evict(ctx, &policyv1.Eviction{
		ObjectMeta: metav1.ObjectMeta{Name: ref.Name, Namespace: ref.Namespace},
	})
}

// evictionRefusal says why the API server did not evict a pod, in the words of its
// PodDisruptionBudget when one refused.
func evictionRefusal(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) && apierrors.IsTooManyRequests(err) {
		var causes []string
		if d := status.Status().Details; d != nil {
			for _, c := range d.Causes {
				if c.Type == policyv1.DisruptionBudgetCause && c.Message != "" {
					causes = append(causes, lowerFirst(c.Message))
				}
			}
		}
		if len(causes) > 0 {
			return "a PodDisruptionBudget allows no eviction now: " + strings.Join(causes, "; ")
		}
		return "the API server refused the eviction for now: " + err.Error()
	}
	return "the eviction failed, retrying: " + err.Error()
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

func sameProgress(a, b DrainProgress) bool {
	return a.Total == b.Total && a.Evicted == b.Evicted && slices.Equal(a.Pending, b.Pending)
}
