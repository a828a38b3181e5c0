package e2e

import (
	"bytes"
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
	"hummingbird.io/hummingbird/internal/cli"
	"hummingbird.io/hummingbird/internal/kube"
	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/provision"
	"hummingbird.io/hummingbird/internal/testbed"
	"hummingbird.io/hummingbird/internal/testbed/provisiontest"
)

// hbctl runs hbctl against the bed's controller with the admin token.
func hbctl(t *testing.T, pb *provisiontest.Bed, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	dir := t.TempDir()
	ca, tok := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "admin.token")
	if err := os.WriteFile(ca, pb.Controller.CAPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tok, []byte(pb.Controller.AdminToken), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HB_URL": pb.Controller.URL, "HB_CACERT": ca, "HB_TOKEN_FILE": tok, "HOME": dir}
	var out, errb bytes.Buffer
	code = cli.Main(t.Context(), args, cli.IO{In: strings.NewReader(""), Out: &out, Err: &errb},
		func(k string) string { return env[k] })
	return code, out.String(), errb.String()
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
	pb := provisiontest.Start(t, ctx, 2, "press")
	older, newer := pb.Bed.Hosts[0], pb.Bed.Hosts[1]
	plantKubelet(t, ctx, older, "v1.36.0")
	plantKubelet(t, ctx, newer, "v1.38.1")

	start := time.Now()
	var wg sync.WaitGroup
	jobs := map[string]apitype.ProvisionJob{}
	var mu sync.Mutex
	for _, h := range pb.Bed.Hosts {
		if _, err := pb.Client.ProvisionHost(ctx, h.Name, apitype.ProvisionRequest{}); err != nil {
			t.Fatalf("host-provision %s: %v", h.Name, err)
		}
	}
	// A host has one job at a time.
	if _, err := pb.Client.ProvisionHost(ctx, older.Name, apitype.ProvisionRequest{}); err == nil {
		t.Errorf("a second job for %s was accepted while the first runs", older.Name)
	}
	for _, h := range pb.Bed.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j := provisiontest.WaitJob(t, ctx, pb.Client, h.Name)
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
	if h, err := pb.Client.GetHost(ctx, newer.Name); err != nil || h.InvProvision != "failed" {
		t.Errorf("refused host: invprovision %q (%v), want failed", h.InvProvision, err)
	}
	j := jobs[older.Name]
	if j.State != provision.StateSucceeded {
		t.Fatalf("the host with kubelet v1.36.0: job %+v\n%s", j, provisiontest.Log(t, ctx, pb.Client, older.Name))
	}
	if j.TasksTotal == 0 || j.TasksDone != j.TasksTotal || j.Changed == 0 {
		t.Errorf("progress of a first run: %d/%d tasks, %d changed", j.TasksDone, j.TasksTotal, j.Changed)
	}

	j, err := pb.Client.ProvisionHost(ctx, newer.Name, apitype.ProvisionRequest{Reinstall: true})
	if err != nil {
		t.Fatal(err)
	}
	if j = provisiontest.WaitJob(t, ctx, pb.Client, newer.Name); j.State != provision.StateSucceeded {
		t.Fatalf("with --reinstall: job %+v\n%s", j, provisiontest.Log(t, ctx, pb.Client, newer.Name))
	}

	for _, h := range pb.Bed.Hosts {
		host, err := pb.Client.GetHost(ctx, h.Name)
		if err != nil || host.InvProvision != "provisioned" {
			t.Errorf("%s: invprovision %q (%v), want provisioned", h.Name, host.InvProvision, err)
		}
		var node testbed.Node
		if err := pb.Bed.ControlPlane.GetJSON(ctx, &node, "node", h.Name); err != nil {
			t.Fatal(err)
		}
		if !node.Ready() || node.Status.NodeInfo.KubeletVersion != testbed.KubernetesVersion {
			t.Errorf("node %s: ready %v, kubelet %s; want Ready at %s", h.Name, node.Ready(),
				node.Status.NodeInfo.KubeletVersion, testbed.KubernetesVersion)
		}
		// A new host is locked: provisioned, it is out of service until host-unlock.
		if host.Administrative != "locked" || !node.Spec.Unschedulable {
			t.Errorf("%s: %s, its Node unschedulable %v; want it locked and its Node cordoned until host-unlock",
				h.Name, host.Administrative, node.Spec.Unschedulable)
		}
		// The Node registered from the job is marked as the host's: by the controller, as the
		// kubelet cannot write node-restriction.kubernetes.io/ labels.
		for k, v := range map[string]string{"node-role.kubernetes.io/edgeworker": "", provision.LabelPersonality: "edgeworker",
			provision.LabelGroup: "press", "site": "hall-2", kube.LabelHost: host.UUID} {
			if got, ok := node.Metadata.Labels[k]; !ok || got != v {
				t.Errorf("node %s: label %s=%q (present %v), want %q", h.Name, k, got, ok, v)
			}
		}
		log := provisiontest.Log(t, ctx, pb.Client, h.Name)
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
	if err := pb.Bed.ControlPlane.GetJSON(ctx, &secrets, "secrets", "--namespace", "kube-system"); err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets.Items {
		id := strings.TrimPrefix(s.Metadata.Name, "bootstrap-token-")
		if id == s.Metadata.Name {
			continue
		}
		for _, h := range pb.Bed.Hosts {
			if strings.Contains(provisiontest.Log(t, ctx, pb.Client, h.Name), id+".") {
				t.Errorf("the log of %s holds bootstrap token %s", h.Name, id)
			}
		}
	}

	unlockAndCheck(t, ctx, pb.Client, pb.Bed.ControlPlane, older.Name) // in service: schedulable
	runHello(t, ctx, pb.Bed.ControlPlane, older.Name)

	// A host named like a Node Hummingbird did not join (a control plane's) is refused, and the
	// Node left alone.
	if err := pb.Bed.ControlPlane.CreateNode(ctx, "cp-1", map[string]string{"kubernetes.io/hostname": "cp-1",
		"node-role.kubernetes.io/control-plane": ""}); err != nil {
		t.Fatal(err)
	}
	if _, err := pb.Client.AddHost(ctx, apitype.HostCreate{Hostname: "cp-1", Personality: "edgeworker", Group: "press",
		MgmtIP: fmt.Sprintf("10.251.%d.99", pb.Bed.Index)}); err != nil {
		t.Fatal(err)
	}
	// host-show says so.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(500 * time.Millisecond) {
		h, err := pb.Client.GetHost(ctx, "cp-1")
		if err != nil {
			t.Fatal(err)
		}
		if h.NodeState == "Conflict" && strings.Contains(h.NodeReason, kube.LabelHost) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("host cp-1, named like a control-plane Node: node state %q (%s), want Conflict naming %s",
				h.NodeState, h.NodeReason, kube.LabelHost)
		}
	}
	if _, err := pb.Client.ProvisionHost(ctx, "cp-1", apitype.ProvisionRequest{}); !problem.Is(err, problem.Conflict) ||
		!strings.Contains(err.Error(), kube.LabelHost) {
		t.Errorf("host-provision of a host named like a control-plane Node: %v; want a conflict that names %s", err, kube.LabelHost)
	}
	var cpNode testbed.Node
	if err := pb.Bed.ControlPlane.GetJSON(ctx, &cpNode, "node", "cp-1"); err != nil {
		t.Fatal(err)
	}
	if len(cpNode.Metadata.Labels) != 2 {
		t.Errorf("the control-plane Node got labels: %v", cpNode.Metadata.Labels)
	}

	// Again, as a person does it with hbctl: a line per step of progress, and nothing changes.
	code, out, errs := hbctl(t, pb, "host-provision", older.Name, "--follow", "-c", "state", "-c", "changed", "-f", "value")
	if code != 0 || out != "succeeded\n0\n" || !strings.Contains(errs, "tasks (100%) Wait for the Node to be Ready") {
		t.Errorf("hbctl host-provision --follow of a provisioned host: exit %d, %q\n%s\n%s", code, out, errs,
			provisiontest.Log(t, ctx, pb.Client, older.Name))
	}
	if code, out, _ := hbctl(t, pb, "provision-log", older.Name); code != 0 || !strings.Contains(out, "changed=0") {
		t.Errorf("hbctl provision-log: exit %d, no recap with changed=0:\n%s", code, out)
	}

	// Cancel a run in the middle.
	if _, err := pb.Client.ProvisionHost(ctx, older.Name, apitype.ProvisionRequest{}); err != nil {
		t.Fatal(err)
	}
	for {
		j, err := pb.Client.ProvisionJob(ctx, older.Name)
		if err != nil {
			t.Fatal(err)
		}
		if j.TasksDone > 3 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := pb.Client.CancelProvision(ctx, older.Name); err != nil {
		t.Fatal(err)
	}
	if j := provisiontest.WaitJob(t, ctx, pb.Client, older.Name); j.State != provision.StateCancelled {
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
