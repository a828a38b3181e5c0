// Package apptest brings up what a test or benchmark of a redundant app on the test bed needs: a
// bed with two edge hosts joined to its cluster as Nodes (marked as their hosts') and a third
// without a kubelet, a controller in-process that manages the bed's cluster with a one-second
// heartbeat, the three hosts in its inventory in group line-1, each running the real hb-agent
// (built static here) enrolled with a one-use token and run by systemd-run as the unit hb-agent,
// and unlocked. AddApp then adds app press on the two members with the third as its witness.
//
// It is a package of its own, not part of testbed, because it needs the controller
// (controllertest), and testbed must stay free of it.
package apptest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/client"
	"hummingbird.io/hummingbird/internal/controller"
	"hummingbird.io/hummingbird/internal/controller/controllertest"
	"hummingbird.io/hummingbird/internal/kube"
	"hummingbird.io/hummingbird/internal/pki"
	"hummingbird.io/hummingbird/internal/testbed"
)

// Bed is the bed, its controller and the admin client of it.
type Bed struct {
	Bed        *testbed.Bed
	Controller *controllertest.Instance
	API        *client.Client
	Members    []*testbed.Host // two, with kubelets
	Witness    *testbed.Host   // without a kubelet
	VIP        string          // the address AddApp gives the app, without its prefix length
	// Agent is the hb-agent binary the hosts run.
	Agent string
}

// Start brings the bed up; mutate, when not nil, changes the controller's settings.
func Start(tb testing.TB, ctx context.Context, mutate func(*controller.Config)) *Bed {
	tb.Helper()
	bin := BuildAgent(tb, ctx)
	b := testbed.Start(tb, ctx, testbed.Options{Hosts: 2, Kubelet: true})
	cp := b.ControlPlane
	witness, err := b.AddHost(ctx, testbed.HostOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	members := b.Hosts[:2]
	for _, h := range members {
		JoinNode(tb, ctx, b, h)
	}
	bridge := fmt.Sprintf("10.251.%d.1", b.Index)
	ctl := controllertest.Start(tb, "", func(c *controller.Config) {
		c.Kubeconfig = cp.Kubeconfig
		c.Listen = net.JoinHostPort(bridge, "0")
		c.MgmtSubnet, c.MgmtControllerIPs = fmt.Sprintf("10.251.%d.0/24", b.Index), []string{bridge}
		c.NodeSyncInterval = time.Second
		c.Heartbeat.Interval, c.Heartbeat.DegradeAfter, c.Heartbeat.FailAfter = time.Second, 3, 6
		if mutate != nil {
			mutate(c)
		}
	})
	api := ctl.Client(tb, ctl.AdminToken)
	if _, err := api.AddGroup(ctx, apitype.GroupCreate{Name: "line-1"}); err != nil {
		tb.Fatal(err)
	}
	for _, h := range b.Hosts {
		added, err := api.AddHost(ctx, apitype.HostCreate{Hostname: h.Name, Personality: "edgeworker",
			MgmtIP: h.IP.String(), MgmtMAC: h.MAC.String(), Group: "line-1"})
		if err != nil {
			tb.Fatal(err)
		}
		if h != witness {
			// Joined by hand: a cluster admin vouches for the Node.
			if out, err := cp.Kubectl(ctx, "label", "node", h.Name, kube.LabelHost+"="+added.UUID, "--overwrite"); err != nil {
				tb.Fatalf("marking node %s as host %s's: %v\n%s", h.Name, added.UUID, err, out)
			}
		}
		StartAgent(tb, ctx, ctl, api, h, bin)
	}
	for _, h := range b.Hosts {
		deadline := time.Now().Add(2 * time.Minute)
		for {
			got, err := api.GetHost(ctx, h.Name)
			if err == nil && got.Availability == "available" {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("%s not available after 2 minutes: %+v %v", h.Name, got, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if _, err := api.UnlockHost(ctx, h.Name); err != nil {
			tb.Fatal(err)
		}
	}
	return &Bed{Bed: b, Controller: ctl, API: api, Members: members, Witness: witness,
		VIP: fmt.Sprintf("10.251.%d.200", b.Index), Agent: bin}
}

// AddApp adds app press (the bed's hello image on port 8080, an http health check) on the two
// members, with the third host as its witness and the bed's VIP.
func (ab *Bed) AddApp(tb testing.TB, ctx context.Context) {
	tb.Helper()
	if _, err := ab.API.AddApp(ctx, apitype.AppCreate{Name: "press", Group: "line-1", Image: testbed.HelloImage, Port: 8080,
		VIP: ab.VIP + "/24", Members: []string{ab.Members[0].Name, ab.Members[1].Name}, Witness: ab.Witness.Name,
		Health: "http"}); err != nil {
		tb.Fatal(err)
	}
}

// Host is the bed's host of that name, nil when there is none.
func (ab *Bed) Host(name string) *testbed.Host {
	for _, h := range ab.Bed.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// ReadyEndpoints lists the addresses of the ready endpoints of app press's Service.
func ReadyEndpoints(ctx context.Context, cp *testbed.ControlPlane) ([]string, error) {
	var eps struct {
		Items []struct {
			Endpoints []struct {
				Addresses  []string `json:"addresses"`
				Conditions struct {
					Ready *bool `json:"ready"`
				} `json:"conditions"`
			} `json:"endpoints"`
		} `json:"items"`
	}
	if err := cp.GetJSON(ctx, &eps, "endpointslices", "--namespace", "hummingbird-apps", "-l",
		"kubernetes.io/service-name=hb-app-press"); err != nil {
		return nil, err
	}
	var ready []string
	for _, s := range eps.Items {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && *e.Conditions.Ready {
				ready = append(ready, e.Addresses...)
			}
		}
	}
	return ready, nil
}

// BuildAgent builds hb-agent, static, as the bed's hosts run it.
func BuildAgent(tb testing.TB, ctx context.Context) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "hb-agent")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "hummingbird.io/hummingbird/cmd/hb-agent")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		tb.Fatalf("build hb-agent: %v\n%s", err, out)
	}
	return bin
}

// JoinNode joins h to the bed's cluster by hand and waits for its Node to be Ready.
func JoinNode(tb testing.TB, ctx context.Context, b *testbed.Bed, h *testbed.Host) {
	tb.Helper()
	if err := h.ImportImages(ctx); err != nil {
		tb.Fatal(err)
	}
	join, err := b.ControlPlane.JoinCommand(ctx, h.Name)
	if err != nil {
		tb.Fatal(err)
	}
	// The bed's hosts have no br_netfilter, and the machine is cgroup v1.
	join = append(join, "--ignore-preflight-errors=FileContent--proc-sys-net-bridge-bridge-nf-call-iptables,SystemVerification")
	if out, err := h.SSH(ctx, strings.Join(join, " ")); err != nil {
		tb.Fatalf("kubeadm join %s: %v\n%s", h.Name, err, out)
	}
	if _, err := b.ControlPlane.WaitNodeReady(ctx, h.Name); err != nil {
		tb.Fatal(err)
	}
}

// StartAgent puts hb-agent into h, joins it with a one-use enroll token and the pinned CA, and
// runs it as the unit hb-agent.
func StartAgent(tb testing.TB, ctx context.Context, ctl *controllertest.Instance, api *client.Client, h *testbed.Host, bin string) {
	tb.Helper()
	data, err := os.ReadFile(bin)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.Dir, "root", "usr", "local", "bin", "hb-agent"), data, 0o755); err != nil {
		tb.Fatal(err)
	}
	tok, err := api.CreateToken(ctx, apitype.TokenCreate{Type: "enroll", Uses: 1, Host: h.Name})
	if err != nil {
		tb.Fatal(err)
	}
	cmd := fmt.Sprintf("hb-agent join --controller %s --token %s --ca-hash %s --hostname %s && systemd-run --unit hb-agent /usr/local/bin/hb-agent run",
		ctl.URL, tok.Secret, pki.CAHash(ctl.Controller.CA.Cert), h.Name)
	if out, err := h.SSH(ctx, cmd); err != nil {
		tb.Fatalf("starting the agent on %s: %v\n%s", h.Name, err, out)
	}
}

// SetLink sets h's eth0 up or down from outside the host (its network namespace): down, the
// host reaches nobody, its kubelet and agent included, and nobody reaches it.
func SetLink(tb testing.TB, ctx context.Context, h *testbed.Host, up bool) {
	tb.Helper()
	state := "down"
	if up {
		state = "up"
	}
	if out, err := exec.CommandContext(ctx, "ip", "-n", h.NetNS, "link", "set", "eth0", state).CombinedOutput(); err != nil {
		tb.Fatalf("setting %s's eth0 %s: %v\n%s", h.Name, state, err, out)
	}
}
