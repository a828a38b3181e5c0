package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/client"
	"hummingbird.io/hummingbird/internal/controller"
	"hummingbird.io/hummingbird/internal/controller/controllertest"
	"hummingbird.io/hummingbird/internal/provision"
	"hummingbird.io/hummingbird/internal/testbed"
)

// provisionBed is a bed of n hosts without Kubernetes, a controller that manages its cluster
// from the offline bundle, and the hosts in its inventory with their management addresses.
type provisionBed struct {
	bed *testbed.Bed
	ctl *controllertest.Instance
	c   *client.Client
}

func startProvisionBed(t *testing.T, ctx context.Context, n int, group string) provisionBed {
	t.Helper()
	b := testbed.Start(t, ctx, testbed.Options{Hosts: n})
	cache, err := testbed.DefaultCache()
	if err != nil {
		t.Fatal(err)
	}
	bundleDir := t.TempDir()
	if _, err := cache.MakeBundle(bundleDir); err != nil {
		t.Fatal(err)
	}
	keys := t.TempDir()
	key, err := os.ReadFile(b.SSHKey())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(keys, "default"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	subnet := fmt.Sprintf("10.251.%d.0/24", b.Index)
	gateway := fmt.Sprintf("10.251.%d.1", b.Index)
	ctl := controllertest.Start(t, "", func(c *controller.Config) {
		c.Kubeconfig = b.ControlPlane.Kubeconfig
		c.MgmtSubnet, c.MgmtControllerIPs = subnet, []string{gateway}
		c.Provision.BundleDir = bundleDir
		c.Provision.SSHKeyDir = keys
		c.Provision.Vars = testbed.ProvisionVars()
		c.Provision.Parallel = 4
	})
	c := ctl.Client(t, ctl.AdminToken)
	if group != "" {
		if _, err := c.AddGroup(ctx, apitype.GroupCreate{Name: group}); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range b.Hosts {
		if _, err := c.AddHost(ctx, apitype.HostCreate{Hostname: h.Name, Personality: "edgeworker",
			MgmtIP: h.IP.String(), MgmtMAC: h.MAC.String(), Group: group, Labels: map[string]string{"site": "hall-2"}}); err != nil {
			t.Fatal(err)
		}
	}
	return provisionBed{bed: b, ctl: ctl, c: c}
}

// waitJob polls a host's job until it ends.
func waitJob(t *testing.T, ctx context.Context, c *client.Client, host string) apitype.ProvisionJob {
	t.Helper()
	for {
		j, err := c.ProvisionJob(ctx, host)
		if err != nil {
			t.Fatal(err)
		}
		if j.State != provision.StateQueued && j.State != provision.StateRunning {
			return j
		}
		select {
		case <-ctx.Done():
			t.Fatalf("job of %s did not end: %+v", host, j)
		case <-time.After(time.Second):
		}
	}
}

func provisionLog(t *testing.T, ctx context.Context, c *client.Client, host string) string {
	t.Helper()
	l, err := c.ProvisionLog(ctx, host, 0)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, ch := range l.Chunks {
		b.WriteString(ch.Text)
	}
	return b.String()
}

// plantKubelet puts a program on h that says it is kubelet version v, as an older or newer
// Kubernetes install would leave.
func plantKubelet(t *testing.T, ctx context.Context, h *testbed.Host, v string) {
	t.Helper()
	script := fmt.Sprintf("printf '#!/bin/sh\\necho Kubernetes %s\\n' >/usr/bin/kubelet && chmod 755 /usr/bin/kubelet", v)
	if out, err := h.SSH(ctx, script); err != nil {
		t.Fatalf("planting kubelet %s on %s: %v\n%s", v, h.Name, err, out)
	}
}

// TestProvision provisions two Debian hosts at once with hbctl's API: one carries an older
// kubelet, which is replaced; the other a newer one, which the skew policy refuses until asked
// to reinstall. Both become Ready Nodes with the host's labels, a pod runs on one, and a second
// run changes nothing.
func TestProvision(t *testing.T) {
	requireBed(t)
	checkNothingLeft(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
	defer cancel()
	pb := startProvisionBed(t, ctx, 2, "press")
	older, newer := pb.bed.Hosts[0], pb.bed.Hosts[1]
	plantKubelet(t, ctx, older, "v1.36.0")
	plantKubelet(t, ctx, newer, "v1.38.1")

	start := time.Now()
	var wg sync.WaitGroup
	jobs := map[string]apitype.ProvisionJob{}
	var mu sync.Mutex
	for _, h := range pb.bed.Hosts {
		if _, err := pb.c.ProvisionHost(ctx, h.Name, apitype.ProvisionRequest{}); err != nil {
			t.Fatalf("host-provision %s: %v", h.Name, err)
		}
	}
	// A host has one job at a time.
	if _, err := pb.c.ProvisionHost(ctx, older.Name, apitype.ProvisionRequest{}); err == nil {
		t.Errorf("a second job for %s was accepted while the first runs", older.Name)
	}
	for _, h := range pb.bed.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j := waitJob(t, ctx, pb.c, h.Name)
			mu.Lock()
			jobs[h.Name] = j
			mu.Unlock()
		}()
	}
	wg.Wait()
	t.Logf("two hosts at once: ended after %v", time.Since(start).Round(time.Second))

	if j := jobs[newer.Name]; j.State != provision.StateFailed || !strings.Contains(j.Task, "skew") ||
		!strings.Contains(j.Message, "v1.38.1") || !strings.Contains(j.Message, "--reinstall") {
		t.Errorf("the host with kubelet v1.38.1: job %+v; want failed at the skew check, naming the version and --reinstall", j)
	}
	if h, err := pb.c.GetHost(ctx, newer.Name); err != nil || h.InvProvision != "failed" {
		t.Errorf("refused host: invprovision %q (%v), want failed", h.InvProvision, err)
	}
	j := jobs[older.Name]
	if j.State != provision.StateSucceeded {
		t.Fatalf("the host with kubelet v1.36.0: job %+v\n%s", j, provisionLog(t, ctx, pb.c, older.Name))
	}
	if j.TasksTotal == 0 || j.TasksDone != j.TasksTotal || j.Changed == 0 {
		t.Errorf("progress of a first run: %d/%d tasks, %d changed", j.TasksDone, j.TasksTotal, j.Changed)
	}

	j, err := pb.c.ProvisionHost(ctx, newer.Name, apitype.ProvisionRequest{Reinstall: true})
	if err != nil {
		t.Fatal(err)
	}
	if j = waitJob(t, ctx, pb.c, newer.Name); j.State != provision.StateSucceeded {
		t.Fatalf("with --reinstall: job %+v\n%s", j, provisionLog(t, ctx, pb.c, newer.Name))
	}

	for _, h := range pb.bed.Hosts {
		host, err := pb.c.GetHost(ctx, h.Name)
		if err != nil || host.InvProvision != "provisioned" {
			t.Errorf("%s: invprovision %q (%v), want provisioned", h.Name, host.InvProvision, err)
		}
		var node testbed.Node
		if err := pb.bed.ControlPlane.GetJSON(ctx, &node, "node", h.Name); err != nil {
			t.Fatal(err)
		}
		if !node.Ready() || node.Status.NodeInfo.KubeletVersion != testbed.KubernetesVersion {
			t.Errorf("node %s: ready %v, kubelet %s; want Ready at %s", h.Name, node.Ready(),
				node.Status.NodeInfo.KubeletVersion, testbed.KubernetesVersion)
		}
		for k, v := range map[string]string{"node-role.kubernetes.io/edgeworker": "", provision.LabelPersonality: "edgeworker",
			provision.LabelGroup: "press", "site": "hall-2"} {
			if got, ok := node.Metadata.Labels[k]; !ok || got != v {
				t.Errorf("node %s: label %s=%q (present %v), want %q", h.Name, k, got, ok, v)
			}
		}
		log := provisionLog(t, ctx, pb.c, h.Name)
		if !strings.Contains(log, "PLAY RECAP") {
			t.Errorf("the log of %s has no recap:\n%s", h.Name, log)
		}
	}
	// No bootstrap token is left in the cluster, and none reached a log.
	var secrets struct {
		Items []struct {
			Metadata struct{ Name string } `json:"metadata"`
		} `json:"items"`
	}
	if err := pb.bed.ControlPlane.GetJSON(ctx, &secrets, "secrets", "--namespace", "kube-system"); err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets.Items {
		id := strings.TrimPrefix(s.Metadata.Name, "bootstrap-token-")
		if id == s.Metadata.Name {
			continue
		}
		for _, h := range pb.bed.Hosts {
			if strings.Contains(provisionLog(t, ctx, pb.c, h.Name), id+".") {
				t.Errorf("the log of %s holds bootstrap token %s", h.Name, id)
			}
		}
	}

	runHello(t, ctx, pb.bed.ControlPlane, older.Name)

	// Again: nothing changes.
	if _, err := pb.c.ProvisionHost(ctx, older.Name, apitype.ProvisionRequest{}); err != nil {
		t.Fatal(err)
	}
	if j := waitJob(t, ctx, pb.c, older.Name); j.State != provision.StateSucceeded || j.Changed != 0 {
		t.Errorf("second run: %s with %d changed tasks, want succeeded with none\n%s", j.State, j.Changed,
			provisionLog(t, ctx, pb.c, older.Name))
	}

	// Cancel a run in the middle.
	if _, err := pb.c.ProvisionHost(ctx, older.Name, apitype.ProvisionRequest{}); err != nil {
		t.Fatal(err)
	}
	for {
		j, err := pb.c.ProvisionJob(ctx, older.Name)
		if err != nil {
			t.Fatal(err)
		}
		if j.TasksDone > 3 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := pb.c.CancelProvision(ctx, older.Name); err != nil {
		t.Fatal(err)
	}
	if j := waitJob(t, ctx, pb.c, older.Name); j.State != provision.StateCancelled {
		t.Errorf("cancelled job ended %s: %+v", j.State, j)
	}
}

// runHello runs the bed's hello image on node and waits until it is Running.
func runHello(t *testing.T, ctx context.Context, cp *testbed.ControlPlane, node string) {
	t.Helper()
	pod, err := json.Marshal(map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": "hello-" + node, "namespace": "default"},
		"spec": map[string]any{
			"nodeName": node, "terminationGracePeriodSeconds": 1,
			"containers": []any{map[string]any{"name": "hello", "image": testbed.HelloImage, "imagePullPolicy": "Never"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := cp.KubectlInput(ctx, pod, "apply", "-f", "-"); err != nil {
		t.Fatalf("creating the pod: %v\n%s", err, out)
	}
	if _, err := cp.WaitPodRunning(ctx, "default", "hello-"+node); err != nil {
		t.Fatal(err)
	}
}
