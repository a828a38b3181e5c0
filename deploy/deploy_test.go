// Package deploy holds the files that install Hummingbird: systemd units and
// a Kubernetes DaemonSet for hb-agent. Its test checks their key settings.
package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// unit is a systemd unit file: every key's values, in order, by
// "Section.Key".
type unit map[string][]string

func readUnit(t *testing.T, path string) unit {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unit{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: not a key=value line: %q", path, line)
			}
			u[section+"."+strings.TrimSpace(k)] = append(u[section+"."+strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return u
}

func (u unit) want(t *testing.T, name, key, value string) {
	t.Helper()
	if !slices.Contains(u[key], value) {
		t.Errorf("%s: %s is %q, want %q", name, key, u[key], value)
	}
}

func TestSystemdUnits(t *testing.T) {
	hardening := map[string]string{
		"Service.Restart":            "always",
		"Unit.StartLimitIntervalSec": "0",
		"Service.NoNewPrivileges":    "yes",
		"Service.ProtectSystem":      "strict",
		"Service.ProtectHome":        "yes",
		"Service.PrivateTmp":         "yes",
		"Install.WantedBy":           "multi-user.target",
	}
	for _, tc := range []struct {
		file, exec, state, env string
	}{
		{"hb-agent.service", "/usr/local/bin/hb-agent run", "hummingbird/agent", "-/etc/hummingbird/agent.env"},
		{"hb-controller.service", "/usr/local/bin/hb-controller", "hummingbird/controller", "-/etc/hummingbird/controller.env"},
	} {
		u := readUnit(t, filepath.Join("systemd", tc.file))
		for k, v := range hardening {
			u.want(t, tc.file, k, v)
		}
		u.want(t, tc.file, "Service.StateDirectory", tc.state)
		u.want(t, tc.file, "Service.EnvironmentFile", tc.env)
		if e := u["Service.ExecStart"]; len(e) != 1 || !strings.HasPrefix(e[0], tc.exec+" ") || !strings.Contains(e[0], "${STATE_DIRECTORY}") {
			t.Errorf("%s: ExecStart is %q, want %s … ${STATE_DIRECTORY}", tc.file, e, tc.exec)
		}
		if len(u["Service.RestartSec"]) != 1 || len(u["Service.RestartMaxDelaySec"]) != 1 {
			t.Errorf("%s: no restart backoff (RestartSec, RestartMaxDelaySec)", tc.file)
		}
	}
	agent := readUnit(t, filepath.Join("systemd", "hb-agent.service"))
	// What the agent's features need, as deploy/README.md's table lists it.
	agent.want(t, "hb-agent.service", "Service.CapabilityBoundingSet", "CAP_NET_ADMIN CAP_NET_RAW")
	agent.want(t, "hb-agent.service", "Service.RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX AF_NETLINK AF_PACKET")
	agent.want(t, "hb-agent.service", "Service.RuntimeDirectory", "hummingbird")
	agent.want(t, "hb-agent.service", "Service.RuntimeDirectoryPreserve", "yes")
	controller := readUnit(t, filepath.Join("systemd", "hb-controller.service"))
	controller.want(t, "hb-controller.service", "Service.LimitNOFILE", "1048576")
}

// TestSystemdVerify runs systemd-analyze verify on the units, with their
// programs replaced by stubs (verify wants ExecStart to exist). systemd
// before 254 does not know RestartSteps and RestartMaxDelaySec; their
// warnings are expected there.
func TestSystemdVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("systemd-analyze is not installed (apt-get install systemd): the units cannot be verified")
		}
		t.Skip("systemd-analyze is not installed: the units are not verified")
	}
	dir := t.TempDir()
	for _, prog := range []string{"hb-agent", "hb-controller"} {
		if err := os.WriteFile(filepath.Join(dir, prog), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"hb-agent.service", "hb-controller.service"} {
		data, err := os.ReadFile(filepath.Join("systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, bytes.ReplaceAll(data, []byte("/usr/local/bin/"), []byte(dir+"/")), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(analyze, "verify", path).CombinedOutput()
		var bad []string
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if line != "" && !strings.Contains(line, "Unknown key 'RestartSteps'") && !strings.Contains(line, "Unknown key 'RestartMaxDelaySec'") {
				bad = append(bad, line)
			}
		}
		if err != nil || len(bad) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", name, err, strings.Join(bad, "\n"))
		}
	}
}

// k8sObject is the part of a Kubernetes object this test reads.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string `yaml:"name"`
		Namespace string `yaml:"namespace"`
	} `yaml:"metadata"`
	Spec struct {
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type toleration struct {
	Key      string `yaml:"key"`
	Operator string `yaml:"operator"`
	Effect   string `yaml:"effect"`
}

type podSpec struct {
	HostNetwork bool         `yaml:"hostNetwork"`
	DNSPolicy   string       `yaml:"dnsPolicy"`
	Tolerations []toleration `yaml:"tolerations"`
	Containers  []struct {
		Name      string   `yaml:"name"`
		Image     string   `yaml:"image"`
		Args      []string `yaml:"args"`
		Resources struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		SecurityContext struct {
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
			ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
			Capabilities             struct {
				Drop []string `yaml:"drop"`
				Add  []string `yaml:"add"`
			} `yaml:"capabilities"`
		} `yaml:"securityContext"`
		Env []struct {
			Name  string `yaml:"name"`
			Value string `yaml:"value"`
		} `yaml:"env"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
			ReadOnly  bool   `yaml:"readOnly"`
		} `yaml:"volumeMounts"`
	} `yaml:"containers"`
	Volumes []struct {
		Name     string `yaml:"name"`
		HostPath *struct {
			Path string `yaml:"path"`
			Type string `yaml:"type"`
		} `yaml:"hostPath"`
	} `yaml:"volumes"`
}

func TestDaemonSet(t *testing.T) {
	f, err := os.Open(filepath.Join("kubernetes", "hb-agent-daemonset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ds *k8sObject
	dec := yaml.NewDecoder(f)
	for {
		var o k8sObject
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if o.Kind == "DaemonSet" {
			ds = &o
		}
	}
	if ds == nil {
		t.Fatal("no DaemonSet in the manifest")
	}
	if ds.APIVersion != "apps/v1" || ds.Metadata.Name != "hb-agent" {
		t.Errorf("DaemonSet is %s %s, want apps/v1 hb-agent", ds.APIVersion, ds.Metadata.Name)
	}
	for k, v := range ds.Spec.Selector.MatchLabels {
		if ds.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("the selector %s=%s does not select the pods (labels %v)", k, v, ds.Spec.Template.Metadata.Labels)
		}
	}
	pod := ds.Spec.Template.Spec
	if !pod.HostNetwork || pod.DNSPolicy != "ClusterFirstWithHostNet" {
		t.Errorf("hostNetwork %v, dnsPolicy %q: want the host network with ClusterFirstWithHostNet", pod.HostNetwork, pod.DNSPolicy)
	}
	tolerateAll := slices.ContainsFunc(pod.Tolerations, func(tl toleration) bool {
		return tl.Key == "" && tl.Operator == "Exists" && tl.Effect == ""
	})
	if !tolerateAll {
		t.Errorf("tolerations %+v do not tolerate every taint (operator: Exists, no key, no effect)", pod.Tolerations)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	if !slices.Equal(c.Args, []string{"run"}) {
		t.Errorf("args %q, want [run]", c.Args)
	}
	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" || c.Resources.Limits[r] == "" {
			t.Errorf("resources %+v: want a request and a limit of %s", c.Resources, r)
		}
	}
	if c.Resources.Limits["memory"] != "48Mi" || c.Resources.Requests["memory"] != "16Mi" {
		t.Errorf("memory %s/%s: sized from the measured RSS (bench/README.md), want 16Mi/48Mi", c.Resources.Requests["memory"], c.Resources.Limits["memory"])
	}
	if caps := c.SecurityContext.Capabilities; !slices.Equal(caps.Drop, []string{"ALL"}) || !slices.Equal(caps.Add, []string{"NET_ADMIN", "NET_RAW"}) {
		t.Errorf("capabilities %+v: want ALL dropped and NET_ADMIN and NET_RAW added, as deploy/README.md lists", caps)
	}
	if c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation || !c.SecurityContext.ReadOnlyRootFilesystem {
		t.Errorf("securityContext %+v: want no privilege escalation and a read-only root", c.SecurityContext)
	}
	hostPaths := map[string]string{}
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	var stateDir string
	for _, e := range c.Env {
		if e.Name == "HB_STATE_DIR" {
			stateDir = e.Value
		}
	}
	mounts := map[string]string{} // mount path → host path
	for _, m := range c.VolumeMounts {
		host, ok := hostPaths[m.Name]
		if !ok {
			t.Errorf("mount %s: volume %s is not a hostPath", m.MountPath, m.Name)
			continue
		}
		if m.MountPath != stateDir && m.MountPath != "/run/hummingbird" && !m.ReadOnly {
			t.Errorf("host mount %s at %s is writable", host, m.MountPath)
		}
		mounts[m.MountPath] = host
	}
	for mount, host := range map[string]string{
		"/host/proc": "/proc", "/host/sys": "/sys", "/host/etc/os-release": "/etc/os-release",
		"/var/lib/hummingbird/agent": "/var/lib/hummingbird/agent", "/run/hummingbird": "/run/hummingbird",
	} {
		if mounts[mount] != host {
			t.Errorf("%s mounts %q, want the host's %s", mount, mounts[mount], host)
		}
	}
	for _, e := range c.Env {
		if e.Name == "HB_HOST_ROOT" && e.Value != "/host" {
			t.Errorf("HB_HOST_ROOT is %q, want /host where the host's files are mounted", e.Value)
		}
	}
	if stateDir != "/var/lib/hummingbird/agent" {
		t.Errorf("HB_STATE_DIR is %q, want the state hostPath /var/lib/hummingbird/agent", stateDir)
	}
}
