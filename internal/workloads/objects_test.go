package workloads

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"hummingbird.io/hummingbird/internal/store"
)

func ptr[T any](v T) *T { return &v }

const (
	uuid1 = "00000000-0000-4000-8000-000000000001"
	uuid2 = "00000000-0000-4000-8000-000000000002"
)

// plcBridge is the app of the README: two members, a witness, a port.
func plcBridge() store.App {
	return store.App{ID: 7, Name: "plc-bridge", Group: "press", Image: "registry.example/plc-bridge:1.4", Port: 502,
		VIP: "10.20.0.50/24", HealthKind: "tcp",
		Members: []store.AppMember{{HostID: 2, Hostname: "edge-02", HostUUID: uuid2, Position: 1},
			{HostID: 1, Hostname: "edge-01", HostUUID: uuid1, Position: 2}},
		Witness: &store.AppMember{HostID: 9, Hostname: "edge-09", HostUUID: "00000000-0000-4000-8000-000000000009"}}
}

// TestDesired: the DaemonSet runs the app on its members' Nodes alone (not on the witness, not on
// a Node of a member's name without the member's uuid in node-restriction.kubernetes.io/hummingbird-host), on
// the host's network, with the agent's readiness probe; the Service has the app's port and
// selects its pods.
func TestDesired(t *testing.T) {
	t.Parallel()
	got, err := Desired(plcBridge())
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"hummingbird.io/app": "plc-bridge", "app.kubernetes.io/managed-by": "hummingbird"}
	meta := metav1.ObjectMeta{Name: "hb-app-plc-bridge", Namespace: "hummingbird-apps", Labels: labels}
	want := Objects{
		DaemonSet: &appsv1.DaemonSet{
			ObjectMeta: meta,
			Spec: appsv1.DaemonSetSpec{
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"hummingbird.io/app": "plc-bridge"}},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"hummingbird.io/app": "plc-bridge"}},
					Spec: corev1.PodSpec{
						Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
							RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
								NodeSelectorTerms: []corev1.NodeSelectorTerm{
									{MatchExpressions: []corev1.NodeSelectorRequirement{
										{Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{"edge-01"}},
										{Key: "node-restriction.kubernetes.io/hummingbird-host", Operator: corev1.NodeSelectorOpIn, Values: []string{uuid1}},
									}},
									{MatchExpressions: []corev1.NodeSelectorRequirement{
										{Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{"edge-02"}},
										{Key: "node-restriction.kubernetes.io/hummingbird-host", Operator: corev1.NodeSelectorOpIn, Values: []string{uuid2}},
									}},
								},
							},
						}},
						HostNetwork:                   true,
						DNSPolicy:                     corev1.DNSClusterFirstWithHostNet,
						TerminationGracePeriodSeconds: ptr(int64(10)),
						Containers: []corev1.Container{{
							Name:            "app",
							Image:           "registry.example/plc-bridge:1.4",
							ImagePullPolicy: corev1.PullIfNotPresent,
							Ports:           []corev1.ContainerPort{{ContainerPort: 502, HostPort: 502, Protocol: corev1.ProtocolTCP}},
							ReadinessProbe: &corev1.Probe{
								ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
									Scheme: corev1.URISchemeHTTPS, Host: "127.0.0.1", Port: intstr.FromInt32(6387),
									Path: "/v1/apps/plc-bridge/ready",
								}},
								PeriodSeconds: 1, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 1,
							},
						}},
					},
				},
				UpdateStrategy: appsv1.DaemonSetUpdateStrategy{
					Type:          appsv1.RollingUpdateDaemonSetStrategyType,
					RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: ptr(intstr.FromInt32(1))},
				},
			},
		},
		Service: &corev1.Service{
			ObjectMeta: meta,
			Spec: corev1.ServiceSpec{
				Type:     corev1.ServiceTypeClusterIP,
				Selector: map[string]string{"hummingbird.io/app": "plc-bridge"},
				Ports:    []corev1.ServicePort{{Name: "app", Protocol: corev1.ProtocolTCP, Port: 502, TargetPort: intstr.FromInt32(502)}},
			},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Desired (-want +got):\n%s", diff)
	}

	// Without a port: the same DaemonSet with no container port, and no Service.
	a := plcBridge()
	a.Port = 0
	got, err = Desired(a)
	if err != nil {
		t.Fatal(err)
	}
	want.DaemonSet.Spec.Template.Spec.Containers[0].Ports = nil
	want.Service = nil
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Desired of an app without a port (-want +got):\n%s", diff)
	}
}

// TestDesiredRefuses: an app whose objects Kubernetes would refuse, or that could run nowhere,
// is an error that says what to do.
func TestDesiredRefuses(t *testing.T) {
	t.Parallel()
	long := plcBridge()
	long.Name = strings.Repeat("a", MaxAppName+1)
	noMembers := plcBridge()
	noMembers.Members = nil
	noImage := plcBridge()
	noImage.Image = ""
	for _, c := range []struct {
		name string
		app  store.App
		want string
	}{
		{"name too long", long, "at most 56: delete the app and add it again under a shorter name"},
		{"no members", noMembers, "has no members"},
		{"no image", noImage, "has no image"},
	} {
		if _, err := Desired(c.app); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want an error with %q", c.name, err, c.want)
		}
	}
	ok := plcBridge()
	ok.Name = strings.Repeat("a", MaxAppName)
	o, err := Desired(ok)
	if err != nil {
		t.Fatalf("a name of %d characters: %v", MaxAppName, err)
	}
	if n := len(o.Service.Name); n != 63 {
		t.Errorf("the objects of the longest app name have %d characters, want 63", n)
	}
}

// defaulted is what the API server makes of want: the defaults of the fields Hummingbird leaves
// unset, and what others added.
func defaulted(want Objects) Objects {
	ds := want.DaemonSet.DeepCopy()
	ds.ResourceVersion, ds.Generation = "41", 3
	ds.Labels["team"] = "plant"
	ds.Spec.RevisionHistoryLimit = ptr(int32(10))
	ds.Spec.UpdateStrategy.RollingUpdate.MaxSurge = ptr(intstr.FromInt32(0))
	ps := &ds.Spec.Template.Spec
	ps.RestartPolicy, ps.SchedulerName = corev1.RestartPolicyAlways, corev1.DefaultSchedulerName
	ps.SecurityContext = &corev1.PodSecurityContext{}
	c := &ps.Containers[0]
	c.TerminationMessagePath, c.TerminationMessagePolicy = corev1.TerminationMessagePathDefault, corev1.TerminationMessageReadFile
	c.Env = []corev1.EnvVar{{Name: "ADDED", Value: "by someone"}}
	ds.Status.NumberReady = 1
	svc := want.Service.DeepCopy()
	svc.ResourceVersion = "42"
	svc.Spec.ClusterIP, svc.Spec.ClusterIPs = "10.96.0.20", []string{"10.96.0.20"}
	svc.Spec.SessionAffinity = corev1.ServiceAffinityNone
	svc.Spec.InternalTrafficPolicy = ptr(corev1.ServiceInternalTrafficPolicyCluster)
	svc.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
	return Objects{DaemonSet: ds, Service: svc}
}

// TestMergeDaemonSet: a DaemonSet that has the fields Hummingbird sets is left alone, whatever
// else it has; one that drifted gets them back, and keeps the rest.
func TestMergeDaemonSet(t *testing.T) {
	t.Parallel()
	want, err := Desired(plcBridge())
	if err != nil {
		t.Fatal(err)
	}
	have := defaulted(want).DaemonSet
	if m, changed, replace := mergeDaemonSet(have, want.DaemonSet); changed || replace {
		t.Errorf("an agreeing DaemonSet: changed %v, replace %v; want neither:\n%s", changed, replace, cmp.Diff(have, m))
	}

	for _, c := range []struct {
		name  string
		drift func(ds *appsv1.DaemonSet)
	}{
		{"image", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.Containers[0].Image = "other:1" }},
		{"probe", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.Containers[0].ReadinessProbe.PeriodSeconds = 10 }},
		{"no probe", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.Containers[0].ReadinessProbe = nil }},
		{"port", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.Containers[0].Ports[0].ContainerPort = 80 }},
		{"pull policy", func(ds *appsv1.DaemonSet) {
			ds.Spec.Template.Spec.Containers[0].ImagePullPolicy = corev1.PullAlways
		}},
		{"affinity", func(ds *appsv1.DaemonSet) {
			ds.Spec.Template.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions[0].Values = []string{"cp-1"}
		}},
		{"affinity without the owner", func(ds *appsv1.DaemonSet) {
			terms := ds.Spec.Template.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
			terms[1].MatchExpressions = terms[1].MatchExpressions[:1]
		}},
		{"no affinity", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.Affinity = nil }},
		{"host network", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.HostNetwork = false }},
		{"dns policy", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.DNSPolicy = corev1.DNSClusterFirst }},
		{"grace", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr(int64(30)) }},
		{"pod label", func(ds *appsv1.DaemonSet) { delete(ds.Spec.Template.Labels, LabelApp) }},
		{"label", func(ds *appsv1.DaemonSet) { ds.Labels[LabelApp] = "other" }},
		{"strategy", func(ds *appsv1.DaemonSet) {
			ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
		}},
		{"max unavailable", func(ds *appsv1.DaemonSet) {
			ds.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable = ptr(intstr.FromString("50%"))
		}},
	} {
		drifted := have.DeepCopy()
		c.drift(drifted)
		m, changed, replace := mergeDaemonSet(drifted, want.DaemonSet)
		if !changed || replace {
			t.Errorf("%s drifted: changed %v, replace %v; want changed", c.name, changed, replace)
			continue
		}
		// The result is what the API server had before the drift, apart from what it defaults
		// again (MaxSurge of a strategy that was OnDelete).
		if diff := cmp.Diff(have, m, cmp.Comparer(func(a, b *intstr.IntOrString) bool {
			return a == nil || b == nil || *a == *b
		})); diff != "" {
			t.Errorf("%s drifted: merged (-want +got):\n%s", c.name, diff)
		}
	}

	// Another container, or another one first: the app's container alone, as wanted.
	other := have.DeepCopy()
	other.Spec.Template.Spec.Containers = append(other.Spec.Template.Spec.Containers, corev1.Container{Name: "sidecar", Image: "s:1"})
	m, changed, _ := mergeDaemonSet(other, want.DaemonSet)
	if !changed {
		t.Error("a second container: unchanged")
	} else if diff := cmp.Diff(want.DaemonSet.Spec.Template.Spec.Containers, m.Spec.Template.Spec.Containers); diff != "" {
		t.Errorf("containers after a second one was added (-want +got):\n%s", diff)
	}

	// A selector, which cannot change, asks for the DaemonSet to be made again.
	sel := have.DeepCopy()
	sel.Spec.Selector.MatchLabels = map[string]string{"app": "x"}
	if _, _, replace := mergeDaemonSet(sel, want.DaemonSet); !replace {
		t.Error("another selector: not replaced")
	}
}

// TestMergeService: as TestMergeDaemonSet, for the Service; a changed type comes back by an
// update, a headless Service is made again.
func TestMergeService(t *testing.T) {
	t.Parallel()
	want, err := Desired(plcBridge())
	if err != nil {
		t.Fatal(err)
	}
	have := defaulted(want).Service
	if m, changed, replace := mergeService(have, want.Service); changed || replace {
		t.Errorf("an agreeing Service: changed %v, replace %v; want neither:\n%s", changed, replace, cmp.Diff(have, m))
	}
	for _, c := range []struct {
		name  string
		drift func(svc *corev1.Service)
	}{
		{"selector", func(svc *corev1.Service) { svc.Spec.Selector = map[string]string{"app": "x"} }},
		{"port", func(svc *corev1.Service) { svc.Spec.Ports[0].Port = 80 }},
		{"target port", func(svc *corev1.Service) { svc.Spec.Ports[0].TargetPort = intstr.FromString("http") }},
		{"second port", func(svc *corev1.Service) {
			svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: "x", Port: 9, Protocol: corev1.ProtocolTCP})
		}},
		{"label", func(svc *corev1.Service) { delete(svc.Labels, LabelManagedBy) }},
	} {
		drifted := have.DeepCopy()
		c.drift(drifted)
		m, changed, replace := mergeService(drifted, want.Service)
		if !changed || replace {
			t.Errorf("%s drifted: changed %v, replace %v; want changed", c.name, changed, replace)
			continue
		}
		if diff := cmp.Diff(have, m); diff != "" {
			t.Errorf("%s drifted: merged (-want +got):\n%s", c.name, diff)
		}
	}
	nodePort := have.DeepCopy()
	nodePort.Spec.Type = corev1.ServiceTypeNodePort
	nodePort.Spec.Ports[0].NodePort = 30502
	m, changed, replace := mergeService(nodePort, want.Service)
	if !changed || replace || m.Spec.Type != corev1.ServiceTypeClusterIP || m.Spec.Ports[0].NodePort != 0 || m.Spec.ClusterIP != have.Spec.ClusterIP {
		t.Errorf("a NodePort Service: changed %v, replace %v, merged spec %+v; want an update to ClusterIP that keeps %s",
			changed, replace, m.Spec, have.Spec.ClusterIP)
	}
	headless := have.DeepCopy()
	headless.Spec.ClusterIP, headless.Spec.ClusterIPs = corev1.ClusterIPNone, []string{corev1.ClusterIPNone}
	if _, _, replace := mergeService(headless, want.Service); !replace {
		t.Error("a headless Service: not replaced")
	}
}
