package workloads

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"

	"hummingbird.io/hummingbird/internal/kube"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/wire"
)

// Namespace holds every app's DaemonSet and Service.
const Namespace = "hummingbird-apps"

// Labels of the objects Hummingbird makes for apps.
const (
	// LabelApp names the app of a DaemonSet, a Service and the pods; the Service and the
	// DaemonSet select the pods by it.
	LabelApp = "hummingbird.io/app"
	// LabelManagedBy is ManagedBy on every object Hummingbird makes for apps.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "hummingbird"
)

// ContainerName is the name of the app's container in its pods.
const ContainerName = "app"

// namePrefix starts the names of an app's DaemonSet and Service.
const namePrefix = "hb-app-"

// MaxAppName is the longest app name whose objects Kubernetes accepts: namePrefix and the app's
// name make a DNS label of at most 63 characters.
const MaxAppName = validation.DNS1035LabelMaxLength - len(namePrefix)

// TerminationGracePeriod is how long, in seconds, an app's container has to stop.
const TerminationGracePeriod = 10

// Name is the name of an app's DaemonSet and Service.
func Name(app string) string { return namePrefix + app }

// Objects are the objects an app wants in the cluster.
type Objects struct {
	DaemonSet *appsv1.DaemonSet
	// Service is nil when the app has no port.
	Service *corev1.Service
}

// Desired builds the objects that run app a warm on each of its members' Nodes and nowhere else
// (not on its witness, not on a Node of a member's name that is not the member's), with a Service whose only endpoint is the active member's pod: the pods' readiness
// probe asks the member's agent, which answers 200 only on the active member.
func Desired(a store.App) (Objects, error) {
	if len(a.Name) > MaxAppName {
		return Objects{}, fmt.Errorf("app %s: its name has %d characters, and the name of its Kubernetes objects, %s, allows at most %d: delete the app and add it again under a shorter name",
			a.Name, len(a.Name), Name("<name>"), MaxAppName)
	}
	// A member's Node is the Node named like it that carries its uuid in kube.LabelHost: one
	// term per member, so that the pods never land on a Node of a member's name that is not
	// the member's (one Hummingbird did not join, like a control-plane Node).
	type member struct{ name, uuid string }
	hosts := make([]member, 0, len(a.Members))
	for _, m := range a.Members {
		if m.Hostname != "" && m.HostUUID != "" && !slices.ContainsFunc(hosts, func(x member) bool { return x.name == m.Hostname }) {
			hosts = append(hosts, member{m.Hostname, m.HostUUID})
		}
	}
	if len(hosts) == 0 {
		return Objects{}, fmt.Errorf("app %s has no members to run on: delete the app and add it again with --members", a.Name)
	}
	slices.SortFunc(hosts, func(x, y member) int { return strings.Compare(x.name, y.name) })
	terms := make([]corev1.NodeSelectorTerm, len(hosts))
	for i, h := range hosts {
		terms[i] = corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
			{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{h.name}},
			{Key: kube.LabelHost, Operator: corev1.NodeSelectorOpIn, Values: []string{h.uuid}},
		}}
	}
	if a.Image == "" {
		return Objects{}, fmt.Errorf("app %s has no image: delete the app and add it again with --image", a.Name)
	}
	selector := map[string]string{LabelApp: a.Name}
	meta := metav1.ObjectMeta{Name: Name(a.Name), Namespace: Namespace, Labels: objectLabels(a.Name)}
	c := corev1.Container{
		Name:            ContainerName,
		Image:           a.Image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		ReadinessProbe: &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Scheme: corev1.URISchemeHTTPS,
				Host:   "127.0.0.1",
				Port:   intstr.FromInt32(wire.ReadyPort),
				Path:   wire.ReadyPath(a.Name),
			}},
			PeriodSeconds:    1,
			TimeoutSeconds:   1,
			SuccessThreshold: 1,
			FailureThreshold: 1,
		},
	}
	if a.Port > 0 {
		// A pod on the host's network has its container ports as host ports; the API server
		// sets HostPort so, and it is set here too, so that what is read back compares equal.
		c.Ports = []corev1.ContainerPort{{ContainerPort: int32(a.Port), HostPort: int32(a.Port), Protocol: corev1.ProtocolTCP}}
	}
	grace := int64(TerminationGracePeriod)
	maxUnavailable := intstr.FromInt32(1)
	ds := &appsv1.DaemonSet{
		ObjectMeta: *meta.DeepCopy(),
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{LabelApp: a.Name}},
				Spec: corev1.PodSpec{
					Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
						RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms},
					}},
					// The member's agent holds the app's VIP on the node's interface and checks
					// the app's health on 127.0.0.1: the app listens in the node's network.
					HostNetwork:                   true,
					DNSPolicy:                     corev1.DNSClusterFirstWithHostNet,
					TerminationGracePeriodSeconds: &grace,
					Containers:                    []corev1.Container{c},
				},
			},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{
				Type:          appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &maxUnavailable},
			},
		},
	}
	o := Objects{DaemonSet: ds}
	if a.Port > 0 {
		o.Service = &corev1.Service{
			ObjectMeta: *meta.DeepCopy(),
			Spec: corev1.ServiceSpec{
				Type:     corev1.ServiceTypeClusterIP,
				Selector: map[string]string{LabelApp: a.Name},
				Ports: []corev1.ServicePort{{
					Name: ContainerName, Protocol: corev1.ProtocolTCP,
					Port: int32(a.Port), TargetPort: intstr.FromInt32(int32(a.Port)),
				}},
			},
		}
	}
	return o, nil
}

// objectLabels are the labels of an app's DaemonSet and Service.
func objectLabels(app string) map[string]string {
	return map[string]string{LabelApp: app, LabelManagedBy: ManagedBy}
}

// mergeDaemonSet returns have with the fields want sets set as want sets them, everything else
// (what the API server defaulted, what others added) left as it is, and whether that changed
// anything. replace says that have cannot be made to match by an update: its selector, which
// is immutable, differs.
func mergeDaemonSet(have, want *appsv1.DaemonSet) (merged *appsv1.DaemonSet, changed, replace bool) {
	if !equality.Semantic.DeepEqual(have.Spec.Selector, want.Spec.Selector) {
		return nil, false, true
	}
	m := have.DeepCopy()
	m.Labels = mergeLabels(m.Labels, want.Labels)
	t, wt := &m.Spec.Template, &want.Spec.Template
	t.Labels = mergeLabels(t.Labels, wt.Labels)
	t.Spec.Affinity = wt.Spec.Affinity.DeepCopy()
	t.Spec.HostNetwork = wt.Spec.HostNetwork
	t.Spec.DNSPolicy = wt.Spec.DNSPolicy
	grace := *wt.Spec.TerminationGracePeriodSeconds
	t.Spec.TerminationGracePeriodSeconds = &grace
	wc := &wt.Spec.Containers[0]
	if len(t.Spec.Containers) != 1 || t.Spec.Containers[0].Name != wc.Name {
		t.Spec.Containers = []corev1.Container{*wc.DeepCopy()}
	} else {
		c := &t.Spec.Containers[0]
		c.Image = wc.Image
		c.ImagePullPolicy = wc.ImagePullPolicy
		c.Ports = slices.Clone(wc.Ports)
		c.ReadinessProbe = wc.ReadinessProbe.DeepCopy()
	}
	s, ws := &m.Spec.UpdateStrategy, &want.Spec.UpdateStrategy
	s.Type = ws.Type
	if s.RollingUpdate == nil {
		s.RollingUpdate = &appsv1.RollingUpdateDaemonSet{}
	}
	maxUnavailable := *ws.RollingUpdate.MaxUnavailable
	s.RollingUpdate.MaxUnavailable = &maxUnavailable
	return m, !equality.Semantic.DeepEqual(have, m), false
}

// mergeService is mergeDaemonSet for a Service: replace says that have is headless, which an
// update may not change. A Service whose type was changed gets its type back by an update (the
// API server drops the fields of the other type), keeping its cluster IP.
func mergeService(have, want *corev1.Service) (merged *corev1.Service, changed, replace bool) {
	if have.Spec.ClusterIP == corev1.ClusterIPNone {
		return nil, false, true
	}
	m := have.DeepCopy()
	m.Labels = mergeLabels(m.Labels, want.Labels)
	if m.Spec.Type != want.Spec.Type {
		m.Spec.Type = want.Spec.Type
		m.Spec.ExternalName = ""
	}
	m.Spec.Selector = maps.Clone(want.Spec.Selector)
	m.Spec.Ports = slices.Clone(want.Spec.Ports)
	return m, !equality.Semantic.DeepEqual(have, m), false
}

// mergeLabels sets want's labels in have, leaving the others.
func mergeLabels(have, want map[string]string) map[string]string {
	if have == nil {
		have = make(map[string]string, len(want))
	}
	for k, v := range want {
		have[k] = v
	}
	return have
}
