package provision

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/bundle"
	"hummingbird.io/hummingbird/internal/store"
)

func TestProgress(t *testing.T) {
	t.Parallel()
	var p progress
	events := []event{
		{Event: "play", Tasks: 2},
		{Event: "task", Name: "controller : Check"},
		{Event: "result", Status: "ok", Task: "controller : Check"},
		{Event: "play", Tasks: 3},
		{Event: "task", Name: "node : Install"},
		{Event: "result", Status: "changed", Task: "node : Install"},
		{Event: "result", Status: "changed", Task: "node : Restart chrony", Handler: true},
		{Event: "task", Name: "kubernetes : Refuse"},
		{Event: "result", Status: "failed", Task: "kubernetes : Refuse", Msg: "runs kubelet v1.38.0"},
		{Event: "result", Status: "failed", Task: "kubernetes : Later", Msg: "not the first"},
		{Event: "end", Failures: 1},
	}
	for _, e := range events {
		p.apply(e)
	}
	want := progress{total: 5, done: 4, changed: 2, task: "kubernetes : Refuse",
		failedTask: "kubernetes : Refuse", failMsg: "runs kubelet v1.38.0"}
	if diff := cmp.Diff(want, p, cmp.AllowUnexported(progress{})); diff != "" {
		t.Errorf("progress (-want +got):\n%s", diff)
	}

	var u progress
	u.apply(event{Event: "result", Status: "unreachable", Task: "Gathering Facts", Msg: "Connection timed out"})
	if u.failedTask != "Gathering Facts" || !strings.Contains(u.failMsg, "cannot be reached over SSH") {
		t.Errorf("unreachable host: %+v", u)
	}
}

func TestVars(t *testing.T) {
	t.Parallel()
	r := New(nil, nil, Config{PackageSource: SourceOffline, Vars: map[string]any{
		"hb_cgroup_driver": "cgroupfs", "hb_ntp_servers": []string{"ntp.site"}, "hb_dns_servers": []string{"10.0.0.53"},
	}})
	h := store.Host{Hostname: "edge-1", MgmtIP: "10.1.0.5"}
	b := &bundle.Bundle{Dir: "/b/v1.37.2", Images: []bundle.Image{{File: "p.tar", Ref: "registry.k8s.io/pause:3.10"}}}
	v := r.vars(h, store.Pool{DNS: "10.1.0.1, 10.1.0.2"}, store.ProvisionJob{Reinstall: true}, "v1.37.2", "10.1.0.1:6443", "sha256:ab", "abcdef.0123456789abcdef", b)
	want := map[string]any{
		"hb_cgroup_driver":          "cgroupfs",
		"hb_ntp_servers":            []string{"ntp.site"},             // the pool names none: the site's stay
		"hb_dns_servers":            []unsafe{"10.1.0.1", "10.1.0.2"}, // the pool's win
		"hb_kubernetes_version":     unsafe("v1.37.2"),
		"hb_control_plane_endpoint": unsafe("10.1.0.1:6443"),
		"hb_ca_cert_hash":           unsafe("sha256:ab"),
		"hb_join_token":             unsafe("abcdef.0123456789abcdef"),
		"hb_node_name":              unsafe("edge-1"),
		"hb_node_ip":                unsafe("10.1.0.5"),
		"hb_reinstall":              true,
		"hb_package_source":         unsafe("offline"),
		"hb_bundle_dir":             unsafe("/b/v1.37.2"),
		"hb_bundle_images":          []image{{File: "p.tar", Ref: "registry.k8s.io/pause:3.10"}},
	}
	if diff := cmp.Diff(want, v); diff != "" {
		t.Errorf("vars (-want +got):\n%s", diff)
	}
}

func TestInventory(t *testing.T) {
	t.Parallel()
	got := inventoryFor(store.Host{Hostname: "edge-1", MgmtIP: "10.1.0.5", SSHUser: "ops"}, "/keys/site", "/data/known")
	hv := got["edgeworkers"].(map[string]any)["hosts"].(map[string]any)["edge-1"].(map[string]any)
	if hv["ansible_host"] != unsafe("10.1.0.5") || hv["ansible_user"] != unsafe("ops") || hv["ansible_become"] != true ||
		hv["ansible_ssh_private_key_file"] != "/keys/site" ||
		!strings.Contains(hv["ansible_ssh_common_args"].(string), "UserKnownHostsFile=/data/known -o StrictHostKeyChecking=accept-new") {
		t.Errorf("host vars %v", hv)
	}
	root := inventoryFor(store.Host{Hostname: "edge-2", MgmtIP: "10.1.0.6"}, "/keys/default", "/k")
	rv := root["edgeworkers"].(map[string]any)["hosts"].(map[string]any)["edge-2"].(map[string]any)
	if rv["ansible_user"] != unsafe("root") || rv["ansible_become"] != nil {
		t.Errorf("root login: %v", rv)
	}
}

func TestLoadVars(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	v, err := LoadVars(write("ok.yaml", "hb_cgroup_driver: cgroupfs\nhb_kubelet_config:\n  maxPods: 50\n"))
	if err != nil || v["hb_cgroup_driver"] != "cgroupfs" || v["hb_kubelet_config"].(map[string]any)["maxPods"] != 50 {
		t.Errorf("LoadVars = %v, %v", v, err)
	}
	for name, text := range map[string]string{
		"token.yaml": "hb_join_token: abcdef.0123456789abcdef\n",
		"list.yaml":  "- a\n- b\n",
	} {
		if _, err := LoadVars(write(name, text)); err == nil {
			t.Errorf("LoadVars(%s) accepted %q", name, text)
		}
	}
	if _, err := LoadVars(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("LoadVars accepted a missing file")
	}
}

func TestScrub(t *testing.T) {
	t.Parallel()
	got := scrub(`"cmd": "kubeadm join 10.0.0.1:6443 --token abcdef.0123456789abcdef --x"`)
	if strings.Contains(got, "abcdef.0123456789abcdef") || !strings.Contains(got, "--token <hidden>") {
		t.Errorf("scrub left %q", got)
	}
	if s := "edge-1.example.com ok"; scrub(s) != s {
		t.Errorf("scrub changed %q", s)
	}
}

func TestConfigCheck(t *testing.T) {
	t.Parallel()
	if err := DefaultConfig().Check(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	for _, mut := range []func(*Config){
		func(c *Config) { c.PackageSource = "usb" },
		func(c *Config) { c.Parallel = 0 },
		func(c *Config) { c.Timeout = 0 },
	} {
		c := DefaultConfig()
		mut(&c)
		if err := c.Check(); err == nil {
			t.Errorf("accepted %+v", c)
		}
	}
}
