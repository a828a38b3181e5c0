package kube

// The objects that run redundant apps in the cluster: a namespace, DaemonSets and Services. The
// caller decides what they hold; these read and write them, and say in their errors what to fix.

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// EnsureNamespace creates the namespace name with labels unless it exists; created says whether
// it did. An existing namespace is left as it is.
func (c *Cluster) EnsureNamespace(ctx context.Context, name string, l map[string]string) (created bool, err error) {
	ns, err := c.cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		if ns.DeletionTimestamp != nil {
			return false, fmt.Errorf("namespace %s is being deleted: wait until it is gone, and it is made again", name)
		}
		return false, nil
	case !apierrors.IsNotFound(err):
		return false, objectError("reading", "namespace", "", name, err)
	}
	want := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
	if _, err := c.cs.CoreV1().Namespaces().Create(ctx, want, metav1.CreateOptions{}); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return false, nil
		}
		return false, objectError("creating", "namespace", "", name, err)
	}
	return true, nil
}

// DaemonSet reads a DaemonSet; a missing one is no error: nil.
func (c *Cluster) DaemonSet(ctx context.Context, ns, name string) (*appsv1.DaemonSet, error) {
	ds, err := c.cs.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, objectError("reading", "DaemonSet", ns, name, err)
	}
	return ds, nil
}

// DaemonSets lists the DaemonSets in ns that the label selector selects (as kubectl -l takes it).
func (c *Cluster) DaemonSets(ctx context.Context, ns, selector string) ([]appsv1.DaemonSet, error) {
	list, err := c.cs.AppsV1().DaemonSets(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, objectError("listing", "DaemonSets", ns, "", err)
	}
	return list.Items, nil
}

// CreateDaemonSet creates ds in its namespace.
func (c *Cluster) CreateDaemonSet(ctx context.Context, ds *appsv1.DaemonSet) error {
	if _, err := c.cs.AppsV1().DaemonSets(ds.Namespace).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		return objectError("creating", "DaemonSet", ds.Namespace, ds.Name, err)
	}
	return nil
}

// UpdateDaemonSet writes ds, which was read from the cluster and changed: a change by someone
// else since it was read fails with a conflict.
func (c *Cluster) UpdateDaemonSet(ctx context.Context, ds *appsv1.DaemonSet) error {
	if _, err := c.cs.AppsV1().DaemonSets(ds.Namespace).Update(ctx, ds, metav1.UpdateOptions{}); err != nil {
		return objectError("updating", "DaemonSet", ds.Namespace, ds.Name, err)
	}
	return nil
}

// DeleteDaemonSet deletes a DaemonSet and, in the background, its pods; a missing one is no
// error.
func (c *Cluster) DeleteDaemonSet(ctx context.Context, ns, name string) error {
	err := c.cs.AppsV1().DaemonSets(ns).Delete(ctx, name, deleteOptions())
	if err != nil && !apierrors.IsNotFound(err) {
		return objectError("deleting", "DaemonSet", ns, name, err)
	}
	return nil
}

// Service reads a Service; a missing one is no error: nil.
func (c *Cluster) Service(ctx context.Context, ns, name string) (*corev1.Service, error) {
	svc, err := c.cs.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, objectError("reading", "Service", ns, name, err)
	}
	return svc, nil
}

// Services lists the Services in ns that the label selector selects (as kubectl -l takes it).
func (c *Cluster) Services(ctx context.Context, ns, selector string) ([]corev1.Service, error) {
	list, err := c.cs.CoreV1().Services(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, objectError("listing", "Services", ns, "", err)
	}
	return list.Items, nil
}

// CreateService creates svc in its namespace.
func (c *Cluster) CreateService(ctx context.Context, svc *corev1.Service) error {
	if _, err := c.cs.CoreV1().Services(svc.Namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return objectError("creating", "Service", svc.Namespace, svc.Name, err)
	}
	return nil
}

// UpdateService writes svc, which was read from the cluster and changed: a change by someone
// else since it was read fails with a conflict.
func (c *Cluster) UpdateService(ctx context.Context, svc *corev1.Service) error {
	if _, err := c.cs.CoreV1().Services(svc.Namespace).Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		return objectError("updating", "Service", svc.Namespace, svc.Name, err)
	}
	return nil
}

// DeleteService deletes a Service; a missing one is no error.
func (c *Cluster) DeleteService(ctx context.Context, ns, name string) error {
	err := c.cs.CoreV1().Services(ns).Delete(ctx, name, deleteOptions())
	if err != nil && !apierrors.IsNotFound(err) {
		return objectError("deleting", "Service", ns, name, err)
	}
	return nil
}

func deleteOptions() metav1.DeleteOptions {
	bg := metav1.DeletePropagationBackground
	return metav1.DeleteOptions{PropagationPolicy: &bg}
}

// objectError says what failed on which object, and what to do about the failures an operator
// can fix.
func objectError(verb, kind, ns, name string, err error) error {
	what := kind
	if name != "" {
		what += " " + name
	}
	if ns != "" {
		if name != "" {
			what = kind + " " + ns + "/" + name
		} else {
			what += " in namespace " + ns
		}
	}
	switch {
	case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
		return fmt.Errorf("%s %s: %w (give the user of the controller's kubeconfig the right to get, list, create, update and delete namespaces, DaemonSets and Services)", verb, what, err)
	case apierrors.IsAlreadyExists(err):
		return fmt.Errorf("%s %s: %w (one that Hummingbird did not make is in the way, without label app.kubernetes.io/managed-by=hummingbird: delete it, or give the app another name)", verb, what, err)
	case apierrors.IsConflict(err):
		return fmt.Errorf("%s %s: %w (someone else changed it meanwhile; it is tried again on the next pass)", verb, what, err)
	case apierrors.IsInvalid(err):
		return fmt.Errorf("%s %s: %w (the cluster refuses what the app asks for: correct the app, by deleting it and adding it again)", verb, what, err)
	}
	return fmt.Errorf("%s %s: %w", verb, what, err)
}

// Pod is what the controller reads of an app's pod: where it runs and its Ready condition.
type Pod struct {
	// App is the pod's value of the label the listing selected on.
	Name, Node, App string
	Ready           bool
	// Reason is the Ready condition's reason, as its last writer set it.
	Reason string
	// Running: every container of the pod runs.
	Running bool
}

// Pods lists the pods in ns that carry the label key, with its value as their App.
func (c *Cluster) Pods(ctx context.Context, ns, key string) ([]Pod, error) {
	list, err := c.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: key})
	if err != nil {
		return nil, objectError("listing", "Pods", ns, "", err)
	}
	out := make([]Pod, 0, len(list.Items))
	for _, p := range list.Items {
		pod := Pod{Name: p.Name, Node: p.Spec.NodeName, App: p.Labels[key], Running: len(p.Status.ContainerStatuses) > 0}
		for _, c := range p.Status.ContainerStatuses {
			pod.Running = pod.Running && c.State.Running != nil
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady {
				pod.Ready, pod.Reason = cond.Status == corev1.ConditionTrue, cond.Reason
			}
		}
		out = append(out, pod)
	}
	return out, nil
}

// SetPodReady sets the Ready condition of pod name in its status, as the node lifecycle
// controller does for the pods of a Node that stopped reporting: Endpoints and EndpointSlices
// follow at once. The pod's kubelet writes the condition again when its own view of it changes.
func (c *Cluster) SetPodReady(ctx context.Context, ns, name string, ready bool, reason, message string, now time.Time) error {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": []any{map[string]any{
		"type": corev1.PodReady, "status": status, "reason": reason, "message": message,
		"lastTransitionTime": metav1.NewTime(now).Rfc3339Copy(),
	}}}})
	if err != nil {
		return err
	}
	if _, err := c.cs.CoreV1().Pods(ns).Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		return objectError("setting the Ready condition of", "Pod", ns, name, err)
	}
	return nil
}
