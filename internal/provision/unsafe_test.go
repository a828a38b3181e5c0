package provision

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/bundle"
	"hummingbird.io/hummingbird/internal/store"
)

// TestVarsStayText runs the real ansible-playbook on a job's real
// inventory and variables files in which a host's address, a pool's DNS
// server, the version and a bundle image carry Jinja that would run a
// command on the controller: every value reaches the play as the text
// it was, and no command runs.
func TestVarsStayText(t *testing.T) {
	t.Parallel()
	ap, err := exec.LookPath("ansible-playbook")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("CI is set and ansible-playbook is not on PATH: apt-get install ansible-core")
		}
		t.Skip("ansible-playbook is not on PATH (apt-get install ansible-core)")
	}
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	evil := func(n string) string { return "{{ lookup('pipe', 'touch " + marker + n + "') }}" }
	h := store.Host{Hostname: "edge-1", MgmtIP: evil("ip")}
	b := &bundle.Bundle{Dir: "/b/v1.37.2", Images: []bundle.Image{{File: evil("file"), Ref: "{% raw %}" + evil("ref")}}}
	r := New(nil, nil, Config{PackageSource: SourceOffline})
	vars := r.vars(h, store.Pool{DNS: evil("dns")}, store.ProvisionJob{}, evil("version"), "10.0.0.1:6443", "sha256:ab", "abcdef.0123456789abcdef", b)
	echo := filepath.Join(dir, "echo.json")
	vars["echo_file"] = echo
	if err := writeJobFiles(dir, inventoryFor(h, "/keys/k", filepath.Join(dir, "known")), vars); err != nil {
		t.Fatal(err)
	}
	play, err := filepath.Abs("testdata/echo.yml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "ansible.cfg")
	if err := os.WriteFile(cfg, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ap, "-i", filepath.Join(dir, "inventory.json"), "-e", "@"+filepath.Join(dir, "vars.json"), play)
	cmd.Env = append(os.Environ(), "ANSIBLE_HOME="+filepath.Join(dir, "ansible"), "ANSIBLE_LOCAL_TEMP="+filepath.Join(dir, "tmp"),
		"ANSIBLE_NOCOLOR=1", "ANSIBLE_CONFIG="+cfg)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ansible-playbook: %v\n%s", err, out)
	}
	if m, _ := filepath.Glob(marker + "*"); len(m) > 0 {
		t.Errorf("the variables ran commands on the controller: %v\n%s", m, out)
	}
	data, err := os.ReadFile(echo)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("%v: %s", err, data)
	}
	// A pool's servers are a comma-separated list: the play sees the parts.
	first, rest, _ := strings.Cut(evil("dns"), ",")
	rest = strings.TrimSpace(rest)
	want := map[string]any{
		"node_name": "edge-1", "node_ip": evil("ip"), "host": evil("ip"), "dns": []any{first, rest},
		"version": evil("version"),
		"images":  []any{map[string]any{"file": evil("file"), "ref": "{% raw %}" + evil("ref")}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the variables as the play read them (-want +got):\n%s", diff)
	}
	if !strings.Contains(string(out), "{% raw %}") {
		t.Errorf("the image's label is not its reference as written:\n%s", out)
	}
}
