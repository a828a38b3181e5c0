package playbooks

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The facts files tests/os_families.yml is run with: one release of each supported
// distribution. Others in tests/facts are run too.
var recordedFacts = []string{"debian-12", "ubuntu-24.04", "rocky-9", "centos-stream-9"}

// requireTool returns the path of an Ansible tool, or skips the test when it is not installed.
// With the environment variable CI set the test fails instead: CI installs them (.ci/run).
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("CI is set and %s is not on PATH: apt-get install ansible-core ansible-lint yamllint", name)
	}
	t.Skipf("%s is not on PATH (apt-get install ansible-core ansible-lint yamllint)", name)
	return ""
}

// toolEnv is the environment the Ansible tools run in: the test's own, without Ansible settings
// and the controller's event pipe, with the playbooks' ansible.cfg, Ansible's and the linters'
// working directories in the test's temporary directory, and path as PATH.
func toolEnv(t *testing.T, path string) []string {
	t.Helper()
	cfg, err := filepath.Abs("ansible.cfg")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name == "PATH" || name == "HB_EVENTS_FD" || name == "XDG_CACHE_HOME" ||
			strings.HasPrefix(name, "ANSIBLE_") || strings.HasSuffix(name, "_COLOR") {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"PATH="+path,
		"ANSIBLE_CONFIG="+cfg,
		"ANSIBLE_HOME="+filepath.Join(tmp, "ansible"),
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(tmp, "local"),
		"ANSIBLE_REMOTE_TEMP="+filepath.Join(tmp, "remote"),
		"ANSIBLE_NOCOLOR=1",
		"NO_COLOR=1",
		"XDG_CACHE_HOME="+filepath.Join(tmp, "cache"),
	)
}

// playbookPath is the PATH ansible-playbook runs with: dirs first, then the directory of
// ansible-playbook itself and the system's, so that no kubelet of the machine is found.
func playbookPath(ansiblePlaybook string, dirs ...string) string {
	return strings.Join(append(dirs, filepath.Dir(ansiblePlaybook), "/usr/bin", "/bin"), string(filepath.ListSeparator))
}

// run runs a tool in this directory (playbooks/) and returns its output and exit status.
func run(t *testing.T, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestRecordedFacts checks that each facts file holds the facts the roles read.
func TestRecordedFacts(t *testing.T) {
	t.Parallel()
	for _, name := range recordedFacts {
		data, err := os.ReadFile(filepath.Join("tests", "facts", name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var facts map[string]any
		if err := json.Unmarshal(data, &facts); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, k := range []string{
			"ansible_os_family", "ansible_distribution", "ansible_distribution_version",
			"ansible_distribution_major_version", "ansible_distribution_release", "ansible_pkg_mgr",
			"ansible_service_mgr", "ansible_architecture", "ansible_all_ipv4_addresses",
			"ansible_all_ipv6_addresses", "ansible_interfaces",
		} {
			if _, ok := facts[k]; !ok {
				t.Errorf("%s: no %s", name, k)
			}
		}
		ifaces, _ := facts["ansible_interfaces"].([]any)
		if len(ifaces) < 2 {
			t.Errorf("%s: ansible_interfaces is %v; want the loopback and the management interface", name, ifaces)
		}
		// The node role looks every interface up in ansible_facts.
		for _, i := range ifaces {
			key := "ansible_" + strings.ReplaceAll(i.(string), "-", "_")
			iface, ok := facts[key].(map[string]any)
			if !ok {
				t.Errorf("%s: interface %v has no %s", name, i, key)
				continue
			}
			if iface["device"] != i {
				t.Errorf("%s: %s.device is %v", name, key, iface["device"])
			}
		}
	}
}

// TestOSFamilies runs tests/os_families.yml for every facts file: the roles pick the names of
// the family (packages, repositories, services, files) and render its files.
func TestOSFamilies(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("tests", "facts", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range recordedFacts {
		if !slices.Contains(files, filepath.Join("tests", "facts", name+".json")) {
			t.Errorf("no tests/facts/%s.json", name)
		}
	}
	ap := requireTool(t, "ansible-playbook")
	for _, file := range files {
		abs, err := filepath.Abs(file)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			t.Parallel()
			out, err := run(t, toolEnv(t, playbookPath(ap)), ap, "-i", "localhost,", "-c", "local",
				"tests/os_families.yml", "-e", "facts_file="+abs, "-e", "hb_kubernetes_version=v1.37.2")
			if err != nil {
				t.Fatalf("os_families.yml with %s: %v\n%s", file, err, out)
			}
		})
	}
}

// TestVersionSkew runs the kubernetes role's version check (tests/skew.yml) against fake
// kubelets: a kubelet up to three minor versions older than the cluster is taken over, one that
// is older still or newer is refused unless hb_reinstall is set.
func TestVersionSkew(t *testing.T) {
	t.Parallel()
	ap := requireTool(t, "ansible-playbook")
	for _, c := range []struct {
		name      string
		kubelet   string // the version the fake kubelet reports; "" for none
		reinstall bool
		refused   bool
	}{
		{name: "same version", kubelet: "v1.37.2"},
		{name: "one minor older", kubelet: "v1.36.0"},
		{name: "three minors older", kubelet: "v1.34.5"},
		{name: "four minors older", kubelet: "v1.33.9", refused: true},
		{name: "newer minor", kubelet: "v1.38.0", refused: true},
		{name: "newer major", kubelet: "v2.0.0", refused: true},
		{name: "four minors older, reinstall", kubelet: "v1.33.9", reinstall: true},
		{name: "no kubelet"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			bin := t.TempDir()
			if c.kubelet != "" {
				script := "#!/bin/sh\necho 'Kubernetes " + c.kubelet + "'\n"
				if err := os.WriteFile(filepath.Join(bin, "kubelet"), []byte(script), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			path := playbookPath(ap, bin)
			if c.kubelet == "" {
				for _, dir := range filepath.SplitList(path) {
					if _, err := os.Stat(filepath.Join(dir, "kubelet")); err == nil {
						t.Skipf("this machine has %s/kubelet", dir)
					}
				}
			}
			args := []string{"-i", "localhost,", "-c", "local", "tests/skew.yml"}
			if c.reinstall {
				args = append(args, "-e", "hb_reinstall=true")
			}
			out, err := run(t, toolEnv(t, path), ap, args...)
			if c.refused {
				if err == nil {
					t.Fatalf("kubelet %s was taken over:\n%s", c.kubelet, out)
				}
				if !strings.Contains(out, "version skew policy") ||
					!strings.Contains(out, "localhost runs kubelet "+c.kubelet+", which the cluster at v1.37.2 must not take over") {
					t.Fatalf("kubelet %s: the run failed without the refusal (%v):\n%s", c.kubelet, err, out)
				}
				return
			}
			if err != nil {
				t.Fatalf("kubelet %q was refused: %v\n%s", c.kubelet, err, out)
			}
			want := c.kubelet
			if want == "" {
				want = "none"
			}
			if !strings.Contains(out, `"installed kubelet: `+want+`"`) {
				t.Fatalf("the check did not read kubelet %s:\n%s", want, out)
			}
		})
	}
}

// TestLint runs yamllint and ansible-lint on the playbooks, with the settings in this directory.
func TestLint(t *testing.T) {
	t.Parallel()
	t.Run("yamllint", func(t *testing.T) {
		t.Parallel()
		yl := requireTool(t, "yamllint")
		out, err := run(t, toolEnv(t, os.Getenv("PATH")), yl, "--strict", "-c", ".yamllint", ".")
		if err != nil || strings.TrimSpace(out) != "" {
			t.Fatalf("yamllint: %v\n%s", err, out)
		}
	})
	t.Run("ansible-lint", func(t *testing.T) {
		t.Parallel()
		al := requireTool(t, "ansible-lint")
		out, err := run(t, toolEnv(t, os.Getenv("PATH")), al, "--strict")
		if err != nil {
			t.Fatalf("ansible-lint: %v\n%s", err, out)
		}
	})
}

// TestEmbedded checks that WriteTo writes the playbook, its configuration, callback plugin and
// every file of its roles as they are in the repository.
func TestEmbedded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := WriteTo(dir); err != nil {
		t.Fatal(err)
	}
	want := []string{Main, "ansible.cfg", "callback_plugins/hummingbird_events.py"}
	roles, err := os.ReadDir("roles")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roles {
		if r.IsDir() {
			want = append(want, "roles/"+r.Name()+"/tasks/main.yml")
		}
	}
	if err := filepath.WalkDir("roles", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			want = append(want, filepath.ToSlash(p))
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, p := range want {
		repo, err := os.ReadFile(filepath.FromSlash(p))
		if err != nil {
			t.Fatal(err)
		}
		written, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil {
			t.Errorf("WriteTo did not write %s: %v", p, err)
			continue
		}
		if !bytes.Equal(written, repo) {
			t.Errorf("WriteTo wrote a %s that differs from the repository's", p)
		}
	}
	// Nor does it write anything the repository does not have.
	if err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if !slices.Contains(want, filepath.ToSlash(rel)) {
			t.Errorf("WriteTo wrote %s, which is not among the playbooks", rel)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
