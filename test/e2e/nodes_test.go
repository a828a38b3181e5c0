package e2e

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/client"
	"hummingbird.io/hummingbird/internal/controller"
	"hummingbird.io/hummingbird/internal/controller/controllertest"
	"hummingbird.io/hummingbird/internal/kube"
	"hummingbird.io/hummingbird/internal/nodes"
	"hummingbird.io/hummingbird/internal/testbed"
	"hummingbird.io/hummingbird/internal/testbed/apptest"
)

// TestNodesFollowInventory: a host's Node carries its role, group, group labels and labels;
// drift and a re-created Node are put right, removed labels go while others' stay, a group
// change follows; host-show has the Node's state; a NotReady Node of a host that still
// heartbeats raises 200.006 until it is Ready again, and a host cut off (its agent silent too)
// gets the heartbeat alarms alone.
func TestNodesFollowInventory(t *testing.T) {
	requireBed(t)
	checkNothingLeft(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	bin := apptest.BuildAgent(t, ctx)
	b := testbed.Start(t, ctx, testbed.Options{Hosts: 1, Kubelet: true})
	h := b.Hosts[0]
	cp := b.ControlPlane
	joinAndRun(t, ctx, b, h)

	// The host's agent heartbeats every 5 s: a silent host is degraded after 15 s, before
	// its Node goes NotReady (20 s on the bed).
	bridge := fmt.Sprintf("10.251.%d.1", b.Index)
	ctl := controllertest.Start(t, "", func(c *controller.Config) {
		c.Kubeconfig = cp.Kubeconfig
		c.Listen = net.JoinHostPort(bridge, "0")
		c.NodeSyncInterval = time.Second
		c.MgmtSubnet, c.MgmtControllerIPs = fmt.Sprintf("10.251.%d.0/24", b.Index), []string{bridge}
		c.Heartbeat.Interval, c.Heartbeat.DegradeAfter, c.Heartbeat.FailAfter = 5*time.Second, 3, 6
	})
	c := ctl.Client(t, ctl.AdminToken)
	for _, g := range []string{"press", "paint"} {
		if _, err := c.AddGroup(ctx, apitype.GroupCreate{Name: g}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.AssignGroupLabels(ctx, "press", map[string]string{"line": "3", "site": "from-group"}); err != nil {
		t.Fatal(err)
	}
	added, err := c.AddHost(ctx, apitype.HostCreate{Hostname: h.Name, Personality: "edgeworker", MgmtIP: h.IP.String(),
		Group: "press", Labels: map[string]string{"site": "hall-2"}})
	if err != nil {
		t.Fatal(err)
	}
	apptest.StartAgent(t, ctx, ctl, c, h, bin)
	waitHost(t, ctx, ctl, h.Name, func(h apitype.Host) bool { return h.Availability == "available" })
	// Joined by hand, the Node is not the host's until a cluster admin says so: host-show says
	// Conflict, and Hummingbird labels nothing.
	waitHost(t, ctx, ctl, h.Name, func(h apitype.Host) bool {
		return h.NodeState == nodes.NodeConflict && strings.Contains(h.NodeReason, kube.LabelHost)
	})
	var unmarked testbed.Node
	if err := cp.GetJSON(ctx, &unmarked, "node", h.Name); err != nil {
		t.Fatal(err)
	}
	if _, ok := unmarked.Metadata.Labels[nodes.LabelGroup]; ok {
		t.Errorf("a Node joined by hand and not marked got Hummingbird's labels: %v", unmarked.Metadata.Labels)
	}
	vouch(t, ctx, cp, h.Name, added.UUID)

	// labelsAre waits until the Node's labels match want (a missing value: the label is absent).
	labelsAre := func(what string, want map[string]*string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			var n testbed.Node
			err := cp.GetJSON(ctx, &n, "node", h.Name)
			ok := err == nil
			for k, v := range want {
				got, present := n.Metadata.Labels[k]
				if (v == nil && present) || (v != nil && (!present || got != *v)) {
					ok = false
				}
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: node labels %v (err %v), want %v", what, n.Metadata.Labels, err, show(want))
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	s := func(v string) *string { return &v }
	labelsAre("first pass", map[string]*string{
		"node-role.kubernetes.io/edgeworker": s(""), nodes.LabelPersonality: s("edgeworker"),
		nodes.LabelGroup: s("press"), "line": s("3"), "site": s("hall-2"),
	})
	host := waitHost(t, ctx, ctl, h.Name, func(h apitype.Host) bool { return h.NodeState == "Ready" })
	if host.KubeletVersion != testbed.KubernetesVersion {
		t.Errorf("host-show kubelet_version %q, want %s", host.KubeletVersion, testbed.KubernetesVersion)
	}

	// Drift, and someone else's label, which stays.
	for _, args := range [][]string{
		{"label", "node", h.Name, "site=wrong", "--overwrite"},
		{"label", "node", h.Name, nodes.LabelGroup + "-"},
		{"label", "node", h.Name, "owner=facilities"},
	} {
		if out, err := cp.Kubectl(ctx, args...); err != nil {
			t.Fatalf("kubectl %v: %v\n%s", args, err, out)
		}
	}
	labelsAre("after drift", map[string]*string{nodes.LabelGroup: s("press"), "site": s("hall-2"), "owner": s("facilities")})

	// A removed host label goes (the group's own value of it then shows), a group change follows.
	if _, err := c.RemoveLabels(ctx, h.Name, []string{"site"}); err != nil {
		t.Fatal(err)
	}
	labelsAre("host label removed", map[string]*string{"site": s("from-group"), "owner": s("facilities")})
	paint := "paint"
	if _, err := c.UpdateHost(ctx, h.Name, map[string]any{"group": paint}); err != nil {
		t.Fatal(err)
	}
	labelsAre("group changed", map[string]*string{nodes.LabelGroup: s("paint"), "line": nil, "site": nil, "owner": s("facilities")})

	// The Node made again, by a kubelet restarted after its Node was deleted.
	if out, err := cp.Kubectl(ctx, "delete", "node", h.Name); err != nil {
		t.Fatalf("deleting the node: %v\n%s", err, out)
	}
	if out, err := h.SSH(ctx, "systemctl restart kubelet"); err != nil {
		t.Fatalf("restarting the kubelet: %v\n%s", err, out)
	}
	// A Node made again has lost its mark: it is not the host's until an admin says so again.
	waitHost(t, ctx, ctl, h.Name, func(h apitype.Host) bool { return h.NodeState == nodes.NodeConflict })
	vouch(t, ctx, cp, h.Name, added.UUID)
	labelsAre("node made again", map[string]*string{nodes.LabelGroup: s("paint"), nodes.LabelPersonality: s("edgeworker")})

	entity := "host=" + h.Name + ".process=kubelet"
	waitAlarm := func(want bool) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			alarms, err := c.ListAlarms(ctx, entity, "")
			if err != nil {
				t.Fatal(err)
			}
			if (len(alarms) == 1 && alarms[0].AlarmID == nodes.AlarmKubelet) == want {
				if want && !strings.Contains(alarms[0].ReasonText, "available") {
					t.Errorf("alarm text %q, want it to say the host is available", alarms[0].ReasonText)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("alarm on %s: %+v, want raised %v", entity, alarms, want)
			}
			time.Sleep(time.Second)
		}
	}

	// Cut off: neither the agent nor the kubelet answers. The host gets the heartbeat
	// alarms; its Node goes NotReady, and 200.006 is not raised for it.
	cutAt := time.Now()
	for _, cmd := range []string{"systemctl kill --signal=SIGSTOP hb-agent", "systemctl stop kubelet"} {
		if out, err := h.SSH(ctx, cmd); err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, out)
		}
	}
	waitHost(t, ctx, ctl, h.Name, func(h apitype.Host) bool { return h.NodeState == "NotReady" && h.Availability != "available" })
	time.Sleep(3 * time.Second) // three node passes
	evs, err := c.ListEvents(ctx, client.EventFilter{EntityID: entity, Action: "alarm.set"})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Time.After(cutAt) {
			t.Errorf("200.006 raised for a host cut off: %+v", e)
		}
	}
	waitAlarm(false)
	// The agent heartbeats again while the kubelet is down: that is the kubelet's failure.
	if out, err := h.SSH(ctx, "systemctl kill --signal=SIGCONT hb-agent"); err != nil {
		t.Fatalf("thawing the agent: %v\n%s", err, out)
	}
	waitAlarm(true)
	host = waitHost(t, ctx, ctl, h.Name, func(h apitype.Host) bool { return h.NodeState == "NotReady" })
	if host.NodeReason == "" {
		t.Error("a NotReady node without a reason")
	}
	if out, err := h.SSH(ctx, "systemctl start kubelet"); err != nil {
		t.Fatalf("starting the kubelet: %v\n%s", err, out)
	}
	waitAlarm(false)
	waitHost(t, ctx, ctl, h.Name, func(h apitype.Host) bool { return h.NodeState == "Ready" && h.NodeReason == "" })
}

func show(m map[string]*string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if v == nil {
			out[k] = "<absent>"
		} else {
			out[k] = *v
		}
	}
	return out
}

// waitHost polls a host until ok says yes, for up to two minutes.
func waitHost(t *testing.T, ctx context.Context, ctl *controllertest.Instance, name string, ok func(apitype.Host) bool) apitype.Host {
	t.Helper()
	c := ctl.Client(t, ctl.AdminToken)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		h, err := c.GetHost(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if ok(h) {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("host %s: %+v", name, h)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
