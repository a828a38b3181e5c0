package workloads_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/controller"
	"hummingbird.io/hummingbird/internal/controller/controllertest"
	"hummingbird.io/hummingbird/internal/kube"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
	"hummingbird.io/hummingbird/internal/testbed"
	"hummingbird.io/hummingbird/internal/testbed/apptest"
	"hummingbird.io/hummingbird/internal/workloads"
)

func TestMain(m *testing.M) {
	os.Exit(testbed.Main(m))
}

// requireBed skips the test unless the end-to-end tests were asked for.
func requireBed(t *testing.T) { t.Helper(); testbed.Require(t) }

// dsView is what Hummingbird sets in a DaemonSet.
type dsView struct {
	Labels, Selector, PodLabels map[string]string
	Affinity                    *corev1.Affinity
	HostNetwork                 bool
	DNSPolicy                   corev1.DNSPolicy
	Grace                       *int64
	Containers                  []containerView
	Strategy                    appsv1.DaemonSetUpdateStrategyType
	MaxUnavailable              *intstr.IntOrString
}

type containerView struct {
	Name, Image string
	PullPolicy  corev1.PullPolicy
	Ports       []corev1.ContainerPort
	Probe       *corev1.Probe
}

func viewDS(ds *appsv1.DaemonSet) dsView {
	v := dsView{Labels: ds.Labels, Selector: ds.Spec.Selector.MatchLabels, PodLabels: ds.Spec.Template.Labels,
		Affinity: ds.Spec.Template.Spec.Affinity, HostNetwork: ds.Spec.Template.Spec.HostNetwork,
		DNSPolicy: ds.Spec.Template.Spec.DNSPolicy, Grace: ds.Spec.Template.Spec.TerminationGracePeriodSeconds,
		Strategy: ds.Spec.UpdateStrategy.Type}
	if ru := ds.Spec.UpdateStrategy.RollingUpdate; ru != nil {
		v.MaxUnavailable = ru.MaxUnavailable
	}
	for _, c := range ds.Spec.Template.Spec.Containers {
		v.Containers = append(v.Containers, containerView{Name: c.Name, Image: c.Image, PullPolicy: c.ImagePullPolicy,
			Ports: c.Ports, Probe: c.ReadinessProbe})
	}
	return v
}

// member is a host an app runs on: its name and uuid.
type member struct{ name, uuid string }

// wantDS is the DaemonSet of app: image on the Nodes of hosts (in order of name), with port
// when it is not 0.
func wantDS(app, image string, port int32, hosts ...member) dsView {
	grace := int64(10)
	one := intstr.FromInt32(1)
	c := containerView{Name: "app", Image: image, PullPolicy: corev1.PullIfNotPresent,
		Probe: &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Scheme: corev1.URISchemeHTTPS, Host: "127.0.0.1",
				Port: intstr.FromInt32(6387), Path: "/v1/apps/" + app + "/ready"}},
			PeriodSeconds: 1, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 1,
		}}
	if port != 0 {
		c.Ports = []corev1.ContainerPort{{ContainerPort: port, HostPort: port, Protocol: corev1.ProtocolTCP}}
	}
	var terms []corev1.NodeSelectorTerm
	for _, h := range hosts {
		terms = append(terms, corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
			{Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{h.name}},
			{Key: kube.LabelHost, Operator: corev1.NodeSelectorOpIn, Values: []string{h.uuid}},
		}})
	}
	return dsView{
		Labels:    map[string]string{"hummingbird.io/app": app, "app.kubernetes.io/managed-by": "hummingbird"},
		Selector:  map[string]string{"hummingbird.io/app": app},
		PodLabels: map[string]string{"hummingbird.io/app": app},
		Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
			NodeSelectorTerms: terms}}},
		HostNetwork: true, DNSPolicy: corev1.DNSClusterFirstWithHostNet, Grace: &grace,
		Containers: []containerView{c},
		Strategy:   appsv1.RollingUpdateDaemonSetStrategyType, MaxUnavailable: &one,
	}
}

// svcView is what Hummingbird sets in a Service.
type svcView struct {
	Labels, Selector map[string]string
	Type             corev1.ServiceType
	Ports            []corev1.ServicePort
}

func viewSvc(svc *corev1.Service) svcView {
	return svcView{Labels: svc.Labels, Selector: svc.Spec.Selector, Type: svc.Spec.Type, Ports: svc.Spec.Ports}
}

func wantSvc(app string, port int32) svcView {
	return svcView{
		Labels:   map[string]string{"hummingbird.io/app": app, "app.kubernetes.io/managed-by": "hummingbird"},
		Selector: map[string]string{"hummingbird.io/app": app},
		Type:     corev1.ServiceTypeClusterIP,
		Ports:    []corev1.ServicePort{{Name: "app", Protocol: corev1.ProtocolTCP, Port: port, TargetPort: intstr.FromInt32(port)}},
	}
}

// inventory is a real store with hosts edge-1 to edge-4 in group press.
type inventory struct {
	t     *testing.T
	st    store.Store
	hosts map[string]int64
	uuids map[string]string
}

// members are the hosts of names.
func (inv *inventory) members(names ...string) []member {
	out := make([]member, len(names))
	for i, n := range names {
		out[i] = member{n, inv.uuids[n]}
	}
	return out
}

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func newInventory(t *testing.T) *inventory {
	inv := &inventory{t: t, st: storetest.Open(t, storetest.SQLiteDSN(t)), hosts: map[string]int64{}, uuids: map[string]string{}}
	if err := inv.st.Write(t.Context(), func(tx store.Tx) error {
		if err := tx.InsertGroup(&store.Group{Name: "press", CreatedAt: t0, UpdatedAt: t0}); err != nil {
			return err
		}
		for i := 1; i <= 4; i++ {
			id, err := tx.NextID("hosts")
			if err != nil {
				return err
			}
			h := store.Host{ID: id, UUID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), Hostname: fmt.Sprintf("edge-%d", i),
				Personality: "edgeworker", Administrative: "unlocked", Operational: "enabled", Availability: "available",
				InvProvision: "provisioned", Group: "press", CreatedAt: t0, UpdatedAt: t0}
			if err := tx.InsertHost(&h); err != nil {
				return err
			}
			inv.hosts[h.Hostname] = id
			inv.uuids[h.Hostname] = h.UUID
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return inv
}

// addApp stores an app of members, and witness unless it is empty.
func (inv *inventory) addApp(name, image string, port int, witness string, members ...string) {
	inv.t.Helper()
	if err := inv.st.Write(inv.t.Context(), func(tx store.Tx) error {
		id, err := tx.NextID("apps")
		if err != nil {
			return err
		}
		a := store.App{ID: id, UUID: fmt.Sprintf("00000000-0000-4000-8000-%012d", 100+id), Name: name, Group: "press",
			Image: image, Port: port, HealthKind: "none", CreatedAt: t0, UpdatedAt: t0}
		for i, m := range members {
			a.Members = append(a.Members, store.AppMember{HostID: inv.hosts[m], Position: i + 1})
		}
		if witness != "" {
			a.Witness = &store.AppMember{HostID: inv.hosts[witness]}
		}
		return tx.InsertApp(&a)
	}); err != nil {
		inv.t.Fatalf("adding app %s: %v", name, err)
	}
}

func (inv *inventory) deleteApp(name string) {
	inv.t.Helper()
	if err := inv.st.Write(inv.t.Context(), func(tx store.Tx) error {
		a, err := tx.AppByName(name)
		if err != nil {
			return err
		}
		return tx.DeleteApp(a.ID)
	}); err != nil {
		inv.t.Fatalf("deleting app %s: %v", name, err)
	}
}

func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

// TestOnCluster runs the reconciler, and then a controller, against a real kube-apiserver.
func TestOnCluster(t *testing.T) {
	requireBed(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	b := testbed.Start(t, ctx, testbed.Options{})
	cluster, err := kube.Load(b.ControlPlane.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("reconciler", func(t *testing.T) { testReconciler(t, ctx, b.ControlPlane, cluster) })
	t.Run("controller", func(t *testing.T) { testController(t, ctx, b.ControlPlane, cluster) })
}

// testReconciler: a pass makes each app's DaemonSet and Service as specified, and the namespace;
// a pass that finds them in order writes nothing; drift and deletion are put right; a change of
// members changes the affinity; the objects of a deleted app go, those Hummingbird did not make
// stay; Kick makes a pass soon.
func testReconciler(t *testing.T, ctx context.Context, cp *testbed.ControlPlane, cluster *kube.Cluster) {
	const ns = workloads.Namespace
	inv := newInventory(t)
	inv.addApp("plc-bridge", "registry.example/plc-bridge:1.4", 502, "edge-3", "edge-2", "edge-1")
	inv.addApp("logger", "registry.example/logger:2", 0, "", "edge-3", "edge-4", "edge-1")
	r := workloads.New(inv.st, cluster, workloads.Config{Log: testLog(t)})

	pass := func(what string, want workloads.Pass) {
		t.Helper()
		got, err := r.Sync(ctx)
		if err != nil {
			t.Fatalf("%s: pass: %v", what, err)
		}
		if got != want {
			t.Errorf("%s: the pass wrote %+v, want %+v", what, got, want)
		}
	}
	getDS := func(name string) *appsv1.DaemonSet {
		t.Helper()
		ds, err := cluster.DaemonSet(ctx, ns, name)
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}
	getSvc := func(name string) *corev1.Service {
		t.Helper()
		svc, err := cluster.Service(ctx, ns, name)
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	checkDS := func(what, name string, want dsView) *appsv1.DaemonSet {
		t.Helper()
		ds := getDS(name)
		if ds == nil {
			t.Fatalf("%s: no DaemonSet %s", what, name)
		}
		if diff := cmp.Diff(want, viewDS(ds)); diff != "" {
			t.Errorf("%s: DaemonSet %s (-want +got):\n%s", what, name, diff)
		}
		return ds
	}
	checkSvc := func(what, name string, want svcView) *corev1.Service {
		t.Helper()
		svc := getSvc(name)
		if svc == nil {
			t.Fatalf("%s: no Service %s", what, name)
		}
		if diff := cmp.Diff(want, viewSvc(svc)); diff != "" {
			t.Errorf("%s: Service %s (-want +got):\n%s", what, name, diff)
		}
		if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
			t.Errorf("%s: Service %s has cluster IP %q", what, name, svc.Spec.ClusterIP)
		}
		return svc
	}
	kubectl := func(args ...string) {
		t.Helper()
		if out, err := cp.Kubectl(ctx, append([]string{"-n", ns}, args...)...); err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	// The first pass makes the namespace, two DaemonSets and one Service: logger has no port.
	pass("first pass", workloads.Pass{Created: 4})
	var nsObj corev1.Namespace
	if err := cp.GetJSON(ctx, &nsObj, "namespace", ns); err != nil {
		t.Fatal(err)
	}
	if got := nsObj.Labels["app.kubernetes.io/managed-by"]; got != "hummingbird" {
		t.Errorf("namespace %s is managed by %q, want hummingbird", ns, got)
	}
	plcWant := wantDS("plc-bridge", "registry.example/plc-bridge:1.4", 502, inv.members("edge-1", "edge-2")...)
	plcDS := checkDS("first pass", "hb-app-plc-bridge", plcWant)
	plcSvc := checkSvc("first pass", "hb-app-plc-bridge", wantSvc("plc-bridge", 502))
	logDS := checkDS("first pass", "hb-app-logger", wantDS("logger", "registry.example/logger:2", 0, inv.members("edge-1", "edge-3", "edge-4")...))
	if svc := getSvc("hb-app-logger"); svc != nil {
		t.Errorf("an app without a port has Service %s", svc.Name)
	}

	// Nothing changed: nothing is written. (The DaemonSet controller writes the DaemonSets'
	// status, so their generation, which only their spec moves, tells.)
	pass("second pass", workloads.Pass{})
	for name, gen := range map[string]int64{"plc-bridge": plcDS.Generation, "logger": logDS.Generation} {
		if got := getDS("hb-app-" + name).Generation; got != gen {
			t.Errorf("second pass: the DaemonSet of %s went from generation %d to %d", name, gen, got)
		}
	}
	if got := getSvc("hb-app-plc-bridge").ResourceVersion; got != plcSvc.ResourceVersion {
		t.Errorf("second pass: the Service went from resourceVersion %s to %s", plcSvc.ResourceVersion, got)
	}

	// Someone changes the image and adds a label, and deletes the Service: the image and the
	// Service come back, the label stays.
	kubectl("set", "image", "daemonset/hb-app-plc-bridge", "app=registry.example/other:9")
	kubectl("label", "daemonset/hb-app-plc-bridge", "team=plant")
	kubectl("delete", "service", "hb-app-plc-bridge")
	if got := getDS("hb-app-plc-bridge").Spec.Template.Spec.Containers[0].Image; got != "registry.example/other:9" {
		t.Fatalf("kubectl set image left image %s", got)
	}
	pass("after drift", workloads.Pass{Created: 1, Updated: 1})
	withTeam := plcWant
	withTeam.Labels = map[string]string{"hummingbird.io/app": "plc-bridge", "app.kubernetes.io/managed-by": "hummingbird", "team": "plant"}
	checkDS("after drift", "hb-app-plc-bridge", withTeam)
	plcSvc = checkSvc("after drift", "hb-app-plc-bridge", wantSvc("plc-bridge", 502))
	pass("after drift, again", workloads.Pass{})

	// Someone makes the Service a NodePort: it is a ClusterIP again, with the same address.
	kubectl("patch", "service", "hb-app-plc-bridge", "-p", `{"spec":{"type":"NodePort"}}`)
	pass("after NodePort", workloads.Pass{Updated: 1})
	if svc := checkSvc("after NodePort", "hb-app-plc-bridge", wantSvc("plc-bridge", 502)); svc.Spec.ClusterIP != plcSvc.Spec.ClusterIP {
		t.Errorf("after NodePort: cluster IP %s, want %s kept", svc.Spec.ClusterIP, plcSvc.Spec.ClusterIP)
	}
	pass("after NodePort, again", workloads.Pass{})

	// Other members: the affinity follows; the Service stays as it is.
	plcSvc = getSvc("hb-app-plc-bridge")
	inv.deleteApp("plc-bridge")
	inv.addApp("plc-bridge", "registry.example/plc-bridge:1.4", 502, "edge-1", "edge-4", "edge-2")
	pass("other members", workloads.Pass{Updated: 1})
	withTeam.Affinity = wantDS("plc-bridge", "", 0, inv.members("edge-2", "edge-4")...).Affinity
	checkDS("other members", "hb-app-plc-bridge", withTeam)
	if got := getSvc("hb-app-plc-bridge").ResourceVersion; got != plcSvc.ResourceVersion {
		t.Errorf("other members: the Service went from resourceVersion %s to %s", plcSvc.ResourceVersion, got)
	}

	// A Service Hummingbird did not make is in the way of an app: the pass says so, and leaves
	// it; once the app is gone, its DaemonSet goes and the Service stays.
	kubectl("create", "service", "clusterip", "hb-app-foreign", "--tcp=80:80")
	foreign := getSvc("hb-app-foreign")
	inv.addApp("foreign", "registry.example/foreign:1", 80, "", "edge-1", "edge-2")
	p, err := r.Sync(ctx)
	if err == nil || !strings.Contains(err.Error(), "app.kubernetes.io/managed-by=hummingbird") || !strings.Contains(err.Error(), "hb-app-foreign") {
		t.Errorf("a foreign Service in the way: %v; want an error that names it and the label", err)
	}
	if p != (workloads.Pass{Created: 1}) {
		t.Errorf("a foreign Service in the way: the pass wrote %+v, want the DaemonSet alone", p)
	}
	inv.deleteApp("foreign")
	pass("foreign app deleted", workloads.Pass{Deleted: 1})
	if svc := getSvc("hb-app-foreign"); svc == nil || svc.ResourceVersion != foreign.ResourceVersion {
		t.Errorf("the Service Hummingbird did not make was changed or deleted: %v", svc)
	}

	// The app is deleted: its DaemonSet and Service go; the other app's stays.
	inv.deleteApp("plc-bridge")
	pass("app deleted", workloads.Pass{Deleted: 2})
	if getDS("hb-app-plc-bridge") != nil || getSvc("hb-app-plc-bridge") != nil {
		t.Error("app deleted: its DaemonSet or Service is still there")
	}
	if ds := getDS("hb-app-logger"); ds == nil || ds.UID != logDS.UID || ds.Generation != logDS.Generation {
		t.Error("app deleted: the DaemonSet of another app changed or went")
	}

	// Run makes a pass at once and another soon after Kick, long before its interval.
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	t.Cleanup(func() { stop(); <-done })
	kubectl("delete", "daemonset", "hb-app-logger")
	run := workloads.New(inv.st, cluster, workloads.Config{Interval: time.Hour, Log: testLog(t)})
	go func() { run.Run(runCtx); close(done) }()
	waitFor(t, ctx, "the first pass of Run to make the DaemonSet of logger again", func() bool { return getDS("hb-app-logger") != nil })
	inv.addApp("hmi", "registry.example/hmi:3", 8080, "", "edge-3", "edge-4")
	run.Kick()
	waitFor(t, ctx, "a pass after Kick to make the objects of hmi", func() bool {
		return getDS("hb-app-hmi") != nil && getSvc("hb-app-hmi") != nil
	})
	checkDS("after Kick", "hb-app-hmi", wantDS("hmi", "registry.example/hmi:3", 8080, inv.members("edge-3", "edge-4")...))
	checkSvc("after Kick", "hb-app-hmi", wantSvc("hmi", 8080))
}

// testController: a controller with a kubeconfig makes an app's objects soon after app-add,
// and deletes them soon after app-delete, through the API.
func testController(t *testing.T, ctx context.Context, cp *testbed.ControlPlane, cluster *kube.Cluster) {
	in := controllertest.Start(t, "", func(c *controller.Config) {
		c.Kubeconfig = cp.Kubeconfig
		c.AppSyncInterval = time.Hour // only a kick makes a pass soon
	})
	c := in.Client(t, in.AdminToken)
	if _, err := c.AddGroup(ctx, apitype.GroupCreate{Name: "press"}); err != nil {
		t.Fatal(err)
	}
	uuids := map[string]string{}
	for i, name := range []string{"edge-01", "edge-02", "edge-03"} {
		h, err := c.AddHost(ctx, apitype.HostCreate{Hostname: name, Personality: "edgeworker",
			MgmtIP: fmt.Sprintf("192.168.204.%d", 10+i), Group: "press"})
		if err != nil {
			t.Fatal(err)
		}
		uuids[name] = h.UUID
	}
	if in.Controller.Workloads == nil {
		t.Fatal("a controller with a kubeconfig has no Workloads reconciler")
	}
	// The objects of the last subtest's apps, which this controller's store does not have, go
	// on its first pass.
	waitFor(t, ctx, "the controller's first pass to delete the objects of apps it does not have", func() bool {
		list, err := cluster.DaemonSets(ctx, workloads.Namespace, "app.kubernetes.io/managed-by=hummingbird")
		return err == nil && len(list) == 0
	})
	if _, err := c.AddApp(ctx, apitype.AppCreate{Name: "plc", Group: "press", Image: "registry.example/plc:1", Port: 502,
		Members: []string{"edge-02", "edge-01"}, Witness: "edge-03"}); err != nil {
		t.Fatal(err)
	}
	var ds *appsv1.DaemonSet
	var svc *corev1.Service
	waitFor(t, ctx, "the objects of an app after app-add", func() bool {
		ds, _ = cluster.DaemonSet(ctx, workloads.Namespace, "hb-app-plc")
		svc, _ = cluster.Service(ctx, workloads.Namespace, "hb-app-plc")
		return ds != nil && svc != nil
	})
	if diff := cmp.Diff(wantDS("plc", "registry.example/plc:1", 502,
		member{"edge-01", uuids["edge-01"]}, member{"edge-02", uuids["edge-02"]}), viewDS(ds)); diff != "" {
		t.Errorf("DaemonSet after app-add (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantSvc("plc", 502), viewSvc(svc)); diff != "" {
		t.Errorf("Service after app-add (-want +got):\n%s", diff)
	}
	if err := c.DeleteApp(ctx, "plc"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the objects of an app to go after app-delete", func() bool {
		ds, err1 := cluster.DaemonSet(ctx, workloads.Namespace, "hb-app-plc")
		svc, err2 := cluster.Service(ctx, workloads.Namespace, "hb-app-plc")
		return err1 == nil && err2 == nil && ds == nil && svc == nil
	})
}

// waitFor polls cond until it holds, for at most 20 s: far less than any interval the test sets.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("waited 20 s for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPlacementOnOwnedNodes: against a real kube-apiserver and scheduler, the pods of an app
// whose member is named like a Node Hummingbird did not join (a control plane's) have nowhere to
// go, and those of an app whose member's Node carries the member's mark land on it.
func TestPlacementOnOwnedNodes(t *testing.T) {
	requireBed(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	b := testbed.Start(t, ctx, testbed.Options{})
	cp := b.ControlPlane
	cluster, err := kube.Load(cp.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	inv := newInventory(t)
	if err := cp.CreateNode(ctx, "edge-1", map[string]string{"kubernetes.io/hostname": "edge-1", "kubernetes.io/os": "linux",
		"node-role.kubernetes.io/control-plane": ""}); err != nil {
		t.Fatal(err)
	}
	if err := cp.CreateNode(ctx, "edge-2", map[string]string{"kubernetes.io/hostname": "edge-2",
		kube.LabelHost: inv.uuids["edge-2"]}); err != nil {
		t.Fatal(err)
	}
	inv.addApp("on-foreign", "registry.example/a:1", 0, "", "edge-1")
	inv.addApp("on-own", "registry.example/b:1", 0, "", "edge-2")
	if _, err := workloads.New(inv.st, cluster, workloads.Config{Log: testLog(t)}).Sync(ctx); err != nil {
		t.Fatal(err)
	}

	// Where the scheduler puts a pod of each DaemonSet's template, tolerating every taint (the
	// Nodes have no kubelet, and are tainted as unreachable in time).
	placed := func(app string) (node, why string) {
		t.Helper()
		ds, err := cluster.DaemonSet(ctx, workloads.Namespace, workloads.Name(app))
		if err != nil || ds == nil {
			t.Fatalf("the DaemonSet of %s: %v, %v", app, ds, err)
		}
		pod, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Pod",
			"metadata": map[string]any{"name": "probe-" + app, "namespace": "default"},
			"spec": map[string]any{
				"affinity":                     ds.Spec.Template.Spec.Affinity,
				"tolerations":                  []any{map[string]any{"operator": "Exists"}},
				"automountServiceAccountToken": false,
				"containers":                   []any{map[string]any{"name": "c", "image": testbed.HelloImage}},
			}})
		waitFor(t, ctx, "the probe pod of "+app+" to be created", func() bool {
			_, err := cp.KubectlInput(ctx, pod, "create", "-f", "-")
			return err == nil
		})
		waitFor(t, ctx, "the scheduler to decide on the probe pod of "+app, func() bool {
			var p corev1.Pod
			if err := cp.GetJSON(ctx, &p, "pod", "--namespace", "default", "probe-"+app); err != nil {
				return false
			}
			node = p.Spec.NodeName
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
					why = c.Message
				}
			}
			return node != "" || why != ""
		})
		return node, why
	}
	if node, why := placed("on-foreign"); node != "" || !strings.Contains(why, "affinity") {
		t.Errorf("an app whose member is named like a Node Hummingbird did not join: its pod went to %q (%s); want none, for the node affinity",
			node, why)
	}
	if node, why := placed("on-own"); node != "edge-2" {
		t.Errorf("an app whose member's Node is its own: its pod went to %q (%s); want edge-2", node, why)
	}
}

// TestReadinessFollowsActive: once the members confirm an active member, the pods of the app's
// other members that their kubelets last reported Ready (a kubelet cut off with its node reports
// nothing new) are set NotReady by the reconciler, and the Service's EndpointSlice holds the
// active member's pod alone; a pod it so marked is set Ready again when its member is active
// again, and so is a new active member's pod whose containers run, in the first moments of its
// epoch; a pod its kubelet reported NotReady is left so otherwise; with no active member confirmed, the kubelets' word
// stands. The pods are the DaemonSet's, on Nodes without kubelets, their status
// written here as kubelets would.
func TestReadinessFollowsActive(t *testing.T) {
	requireBed(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	b := testbed.Start(t, ctx, testbed.Options{})
	cp := b.ControlPlane
	cluster, err := kube.Load(cp.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	inv := newInventory(t)
	ips := map[string]string{"edge-1": "10.99.0.1", "edge-2": "10.99.0.2"}
	kubelet := func(kind, name string, status map[string]any) {
		t.Helper()
		patch, _ := json.Marshal(map[string]any{"status": status})
		args := []string{"patch", kind, name, "--subresource=status", "--type=merge", "-p", string(patch)}
		if kind == "pod" {
			args = append(args, "--namespace", workloads.Namespace)
		}
		if out, err := cp.Kubectl(ctx, args...); err != nil {
			t.Fatalf("kubectl %v: %v\n%s", args, err, out)
		}
	}
	for _, n := range []string{"edge-1", "edge-2"} {
		if err := cp.CreateNode(ctx, n, map[string]string{"kubernetes.io/hostname": n, kube.LabelHost: inv.uuids[n]}); err != nil {
			t.Fatal(err)
		}
		kubelet("node", n, map[string]any{"conditions": []any{map[string]any{"type": "Ready", "status": "True", "reason": "KubeletReady",
			"lastHeartbeatTime": time.Now().UTC().Format(time.RFC3339), "lastTransitionTime": time.Now().UTC().Format(time.RFC3339)}},
			"addresses": []any{map[string]any{"type": "InternalIP", "address": ips[n]}}})
	}
	inv.addApp("press", "registry.example/press:1", 8080, "", "edge-1", "edge-2")
	// A new active member's pod is made Ready in the first pass of its epoch alone.
	r := workloads.New(inv.st, cluster, workloads.Config{Log: testLog(t), Settle: time.Nanosecond})
	sync := func(what string, marked int) {
		t.Helper()
		p, err := r.Sync(ctx)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if p.Marked != marked {
			t.Errorf("%s: the pass set the readiness of %d pods, want %d", what, p.Marked, marked)
		}
	}
	sync("first pass", 0)
	pods := map[string]string{} // node -> pod name
	waitFor(t, ctx, "the DaemonSet's two pods", func() bool {
		list, err := cluster.Pods(ctx, workloads.Namespace, workloads.LabelApp)
		for _, p := range list {
			if p.Node != "" { // scheduled
				pods[p.Node] = p.Name
			}
		}
		return err == nil && len(pods) == 2
	})
	podReady := func(node string, ready bool, reason string) {
		t.Helper()
		status := "False"
		if ready {
			status = "True"
		}
		kubelet("pod", pods[node], map[string]any{"phase": "Running", "hostIP": ips[node], "podIP": ips[node],
			"podIPs":     []any{map[string]any{"ip": ips[node]}},
			"conditions": []any{map[string]any{"type": "Ready", "status": status, "reason": reason}}})
	}
	// Both Ready, as two kubelets last said (the old active's cut off since).
	podReady("edge-1", true, "")
	podReady("edge-2", true, "")
	sync("no active member confirmed", 0)
	setActive := func(host string, epoch int64) {
		t.Helper()
		if err := inv.st.Write(ctx, func(tx store.Tx) error {
			a, err := tx.AppByName("press")
			if err != nil {
				return err
			}
			_, err = tx.SetAppActive(a.ID, inv.hosts[host], epoch)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	readiness := func() map[string]string {
		t.Helper()
		list, err := cluster.Pods(ctx, workloads.Namespace, workloads.LabelApp)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, p := range list {
			out[p.Node] = fmt.Sprintf("%v %s", p.Ready, p.Reason)
		}
		return out
	}
	endpoints := func(want string) {
		t.Helper()
		waitFor(t, ctx, "the Service's ready endpoints to be "+want, func() bool {
			got, err := apptest.ReadyEndpoints(ctx, cp)
			return err == nil && len(got) == 1 && got[0] == want
		})
	}
	setActive("edge-2", 3)
	sync("edge-2 confirmed active", 1)
	if diff := cmp.Diff(map[string]string{"edge-1": "false " + workloads.ReasonNotActive, "edge-2": "true "}, readiness()); diff != "" {
		t.Errorf("edge-2 active (-want +got):\n%s", diff)
	}
	endpoints(ips["edge-2"])
	sync("again", 0)

	setActive("edge-1", 4)
	sync("edge-1 confirmed active again", 2)
	if diff := cmp.Diff(map[string]string{"edge-1": "true " + workloads.ReasonActive, "edge-2": "false " + workloads.ReasonNotActive},
		readiness()); diff != "" {
		t.Errorf("edge-1 active again (-want +got):\n%s", diff)
	}
	endpoints(ips["edge-1"])

	// A pod its kubelet reports NotReady stays so, also on the active member.
	podReady("edge-1", false, "ContainersNotReady")
	sync("edge-1's kubelet reports its pod NotReady", 0)
	if got := readiness()["edge-1"]; got != "false ContainersNotReady" {
		t.Errorf("edge-1's pod after its kubelet's report: %s", got)
	}

	// A new active member's pod whose containers run is Ready at once, before its kubelet's
	// next readiness probe says so.
	kubelet("pod", pods["edge-2"], map[string]any{
		"conditions": []any{map[string]any{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}},
		"containerStatuses": []any{map[string]any{"name": "app", "image": "registry.example/press:1", "imageID": "",
			"ready": false, "restartCount": 0, "state": map[string]any{"running": map[string]any{"startedAt": time.Now().UTC().Format(time.RFC3339)}}}}})
	setActive("edge-2", 5)
	sync("edge-2 confirmed active, its container running", 1)
	if diff := cmp.Diff(map[string]string{"edge-1": "false ContainersNotReady", "edge-2": "true " + workloads.ReasonActive},
		readiness()); diff != "" {
		t.Errorf("edge-2 active, running (-want +got):\n%s", diff)
	}
	endpoints(ips["edge-2"])
	// Once the epoch settled, a kubelet that says NotReady knows better.
	podReady("edge-2", false, "ContainersNotReady")
	sync("edge-2's kubelet reports its pod NotReady", 0)
	if got := readiness()["edge-2"]; got != "false ContainersNotReady" {
		t.Errorf("edge-2's pod after its kubelet's report: %s", got)
	}
}
