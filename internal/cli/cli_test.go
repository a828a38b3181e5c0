package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/cli"
	"hummingbird.io/hummingbird/internal/controller/controllertest"
	"hummingbird.io/hummingbird/internal/pki"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
	"hummingbird.io/hummingbird/internal/wire"
)

// envControllers set to 2 runs the tests that take newHbctl against two controllers on one
// PostgreSQL database, hbctl asking them in turns (test/run does, after the pass with one).
const envControllers = "HB_TEST_CONTROLLERS"

// hbctl runs the CLI against a real controller, as a person would.
type hbctl struct {
	t   *testing.T
	env map[string]string
	// urls are several controllers: each run lists them to hbctl starting from the next one,
	// so that one command goes to one and the next to the other.
	urls []string
	runs atomic.Int64
}

// newHbctl starts a controller on SQLite, or two on PostgreSQL with HB_TEST_CONTROLLERS=2,
// and returns hbctl pointed at it or them.
func newHbctl(t *testing.T) *hbctl {
	t.Helper()
	switch n := os.Getenv(envControllers); n {
	case "", "1":
		return newHbctlFor(t, controllertest.Start(t, "", nil))
	case "2":
		dsn := storetest.PostgresDSN(t)
		a := controllertest.Start(t, dsn, nil)
		b := controllertest.Start(t, dsn, controllertest.ShareCA(t, a))
		h := newHbctlFor(t, a)
		h.urls = []string{a.URL, b.URL}
		return h
	default:
		t.Fatalf("%s=%q: want 1 or 2", envControllers, n)
		return nil
	}
}

func newHbctlFor(t *testing.T, in *controllertest.Instance) *hbctl {
	t.Helper()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.crt")
	tok := filepath.Join(dir, "admin.token")
	if err := os.WriteFile(ca, in.CAPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tok, []byte(in.AdminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &hbctl{t: t, env: map[string]string{
		"HB_URL": in.URL, "HB_CACERT": ca, "HB_TOKEN_FILE": tok, "HOME": dir,
	}}
}

func (h *hbctl) run(stdin string, args ...string) (code int, stdout, stderr string) {
	h.t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) string { return h.env[k] }
	if len(h.urls) > 1 {
		i := int(h.runs.Add(1)) % len(h.urls)
		list := strings.Join(append(slices.Clone(h.urls[i:]), h.urls[:i]...), ",")
		getenv = func(k string) string {
			if k == "HB_URL" {
				return list
			}
			return h.env[k]
		}
	}
	code = cli.Main(context.Background(), args,
		cli.IO{In: strings.NewReader(stdin), Out: &out, Err: &errb, Interactive: stdin != ""}, getenv)
	return code, out.String(), errb.String()
}

func (h *hbctl) ok(args ...string) string {
	h.t.Helper()
	code, out, errs := h.run("", args...)
	if code != 0 {
		h.t.Fatalf("hbctl %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return out
}

func TestWalkThrough(t *testing.T) {
	t.Parallel()
	h := newHbctl(t)
	out := h.ok("host-add", "-n", "edge-01", "-p", "edgeworker", "-m", "52:54:00:12:34:56",
		"-i", "192.168.204.10", "-l", "line-3", "--label", "zone=north")
	for _, want := range []string{"| hostname | edge-01 ", "| mgmt_mac | 52:54:00:12:34:56 ", "| labels | zone=north "} {
		if !strings.Contains(squeeze(out), want) {
			t.Errorf("host-add table lacks %q:\n%s", want, out)
		}
	}
	h.ok("host-add", "-n", "edge-02", "-p", "edgeworker", "-i", "192.168.204.11")
	if got := h.ok("group-add", "press", "--description", "the press line", "-c", "name", "-f", "value"); got != "press\n" {
		t.Errorf("group-add: %q", got)
	}

	want := `+----+----------+-------------+----------------+-------------+--------------+
| id | hostname | personality | administrative | operational | availability |
+----+----------+-------------+----------------+-------------+--------------+
| 1  | edge-01  | edgeworker  | locked         | disabled    | offline      |
| 2  | edge-02  | edgeworker  | locked         | disabled    | offline      |
+----+----------+-------------+----------------+-------------+--------------+
`
	if diff := cmp.Diff(want, h.ok("host-list")); diff != "" {
		t.Errorf("host-list (-want +got):\n%s", diff)
	}
	if got := h.ok("host-list", "--label", "zone=north", "-c", "hostname", "-c", "mgmt_ip", "-f", "value"); got != "edge-01 192.168.204.10\n" {
		t.Errorf("host-list value: %q", got)
	}
	var hosts []apitype.Host
	if err := json.Unmarshal([]byte(h.ok("host-list", "-f", "json")), &hosts); err != nil || len(hosts) != 2 {
		t.Errorf("host-list json: %v, %d hosts", err, len(hosts))
	}
	var shown map[string]any
	if err := yaml.Unmarshal([]byte(h.ok("host-show", "edge-01", "-f", "yaml")), &shown); err != nil || shown["mgmt_ip"] != "192.168.204.10" {
		t.Errorf("host-show yaml: %v %v", err, shown)
	}
	if got := h.ok("host-update", "edge-01", "location=hall-2", "group=press", "-f", "value", "-c", "location", "-c", "group"); got != "hall-2\npress\n" {
		t.Errorf("host-update value: %q", got)
	}
	if got := h.ok("host-show", "1", "-c", "location", "-f", "value"); got != "hall-2\n" {
		t.Errorf("host-show by id: %q", got)
	}
	if out := h.ok("event-list", "--host", "edge-01", "-c", "action", "-f", "value"); out != "host.update\nhost.add\n" {
		t.Errorf("event-list: %q", out)
	}

	// Refusals say why and exit 1; a wrong command line exits 2.
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"host-upgrade", "edge-01"}, 1, "owner"},
		{[]string{"host-add", "-n", "edge-03", "-p", "edgeworker", "-i", "192.168.204.10"}, 1, "already used by host edge-01"},
		{[]string{"host-add", "-n", "Edge_03", "-p", "edgeworker", "-i", "192.168.204.12"}, 1, "hostname"},
		{[]string{"host-update", "edge-01", "uptime=5"}, 1, `unknown field "uptime"`},
		{[]string{"host-show", "edge-99"}, 1, `no host "edge-99"`},
		{[]string{"host-show"}, 2, "HOST"},
		{[]string{"host-list", "--bogus"}, 2, "bogus"},
		{[]string{"host-add", "-n", "x"}, 2, "personality"},
		{[]string{"host-list", "-f", "xml"}, 1, "--format"},
		{[]string{"host-delete", "edge-02"}, 1, "--yes"},
	} {
		code, _, errs := h.run("", tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.msg) {
			t.Errorf("hbctl %s: exit %d %q; want exit %d mentioning %q", strings.Join(tc.args, " "), code, errs, tc.code, tc.msg)
		}
	}

	// Shell completion offers the hostnames.
	if _, out, _ := h.run("", "__complete", "host-show", ""); !strings.Contains(out, "edge-01\nedge-02\n") {
		t.Errorf("completion of host-show: %q", out)
	}
	// host-delete asks; "n" keeps the host, --yes deletes it.
	if code, _, errs := h.run("n\n", "host-delete", "edge-02"); code != 0 || !strings.Contains(errs, "Not deleted") {
		t.Errorf("host-delete answered n: %d %q", code, errs)
	}
	h.ok("host-show", "edge-02")
	h.ok("host-delete", "edge-02", "--yes")
	if code, _, _ := h.run("", "host-show", "edge-02"); code != 1 {
		t.Errorf("edge-02 still there after host-delete --yes")
	}
}

func TestTokensAndSettings(t *testing.T) {
	t.Parallel()
	h := newHbctl(t)
	secret := strings.TrimSpace(h.ok("token-create", "--role", "reader", "-c", "token", "-f", "value"))
	if !strings.HasPrefix(secret, "hb_") {
		t.Fatalf("token-create printed %q", secret)
	}
	if strings.Contains(h.ok("token-list", "-f", "json"), strings.SplitN(secret, ".", 2)[1]) {
		t.Error("token-list shows a secret")
	}
	// HB_TOKEN wins over HB_TOKEN_FILE's layer only when set: the reader may
	// read but not write.
	reader := &hbctl{t: t, env: map[string]string{}}
	for k, v := range h.env {
		reader.env[k] = v
	}
	reader.env["HB_TOKEN"] = secret
	reader.ok("host-list")
	if code, _, errs := reader.run("", "host-add", "-n", "edge-09", "-p", "edgeworker", "-i", "192.168.204.19"); code != 1 || !strings.Contains(errs, "operator role") {
		t.Errorf("reader host-add: %d %q", code, errs)
	}
	// A required flag may come from its HB_ variable.
	h.env["HB_ROLE"] = "operator"
	if out := h.ok("token-create", "-c", "role", "-f", "value"); out != "operator\n" {
		t.Errorf("token-create with HB_ROLE: %q", out)
	}
	delete(h.env, "HB_ROLE")
	// A config file sets the shared flags; the environment overrides it.
	cfg := filepath.Join(h.env["HOME"], ".config", "hummingbird", "hbctl.yaml")
	if err := os.MkdirAll(filepath.Dir(cfg), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte("format: json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := h.ok("host-list"); strings.TrimSpace(out) != "[]" {
		t.Errorf("format from the config file: %q", out)
	}
	h.env["HB_FORMAT"] = "value"
	if out := h.ok("token-list", "-c", "role"); out != "admin\nreader\noperator\n" {
		t.Errorf("HB_FORMAT over the file: %q", out)
	}
	if err := os.WriteFile(cfg, []byte("formt: json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := h.run("", "host-list"); code == 0 || !strings.Contains(errs, "formt") {
		t.Errorf("misspelt config key: %d %q", code, errs)
	}
	// No token at all says where to get one.
	delete(h.env, "HB_TOKEN_FILE")
	if err := os.Remove(cfg); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := h.run("", "host-list"); code != 1 || !strings.Contains(errs, "admin.token") {
		t.Errorf("no token: %d %q", code, errs)
	}
}

func TestPools(t *testing.T) {
	t.Parallel()
	h := newHbctl(t)
	out := h.ok("addrpool-add", "site-a", "--network", "10.20.0.0/24", "--mode", "dynamic",
		"--ranges", "10.20.0.100-10.20.0.199", "--gateway", "10.20.0.1", "--dns", "10.20.0.1,10.20.0.2", "--lease-time", "1h")
	for _, want := range []string{"| ranges     | 10.20.0.100-10.20.0.199 ", "| dns        | 10.20.0.1,10.20.0.2 ", "| lease      | 1h0m0s "} {
		if !strings.Contains(out, want) {
			t.Errorf("addrpool-add lacks %q:\n%s", want, out)
		}
	}
	if got := h.ok("host-add", "-n", "edge-a1", "-p", "edgeworker", "-m", "52:54:00:00:0a:01", "--pool", "site-a",
		"-c", "mgmt_ip", "-c", "pool", "-f", "value"); got != "10.20.0.100\nsite-a\n" {
		t.Errorf("host on a dynamic pool: %q", got)
	}
	if got := h.ok("addrpool-list", "-c", "name", "-c", "used", "-f", "value"); got != "management 0\nsite-a 1\n" {
		t.Errorf("addrpool-list: %q", got)
	}
	if code, _, errs := h.run("", "addrpool-delete", "site-a", "--yes"); code != 1 || !strings.Contains(errs, "in use by edge-a1") {
		t.Errorf("delete a pool in use: %d %q", code, errs)
	}
	if code, _, errs := h.run("", "addrpool-add", "site-b", "--network", "10.20.0.0/16"); code != 2 || !strings.Contains(errs, "--mode") {
		t.Errorf("addrpool-add without --mode: %d %q", code, errs)
	}
	h.ok("host-delete", "edge-a1", "--yes")
	h.ok("addrpool-delete", "site-a", "--yes")
	if code, _, _ := h.run("", "addrpool-show", "site-a"); code != 1 {
		t.Error("site-a still shown after addrpool-delete")
	}
}

func TestHostSSHLogin(t *testing.T) {
	t.Parallel()
	h := newHbctl(t)
	// --ssh-key, like every flag, may come from its HB_ variable.
	h.env["HB_SSH_KEY"] = "site-a"
	if got := h.ok("host-add", "-n", "edge-01", "-p", "edgeworker", "-i", "192.168.204.10", "--ssh-user", "hummingbird",
		"-c", "ssh_user", "-c", "ssh_key", "-f", "value"); got != "hummingbird\nsite-a\n" {
		t.Errorf("host-add with an SSH login: %q", got)
	}
	delete(h.env, "HB_SSH_KEY")
	if got := h.ok("host-update", "edge-01", "ssh_user=", "ssh_key=lab.ed25519", "-c", "ssh_user", "-c", "ssh_key", "-f", "value"); got != "\nlab.ed25519\n" {
		t.Errorf("host-update of the SSH login: %q", got)
	}
	if code, _, errs := h.run("", "host-update", "edge-01", "ssh_key=/root/.ssh/id_rsa"); code != 1 || !strings.Contains(errs, "ssh_key") {
		t.Errorf("host-update with a key path: %d %q", code, errs)
	}
}

func TestHardwareReads(t *testing.T) {
	t.Parallel()
	in := controllertest.Start(t, "", nil)
	h := newHbctlFor(t, in)
	h.ok("host-add", "-n", "edge-01", "-p", "edgeworker", "-i", "192.168.204.10")
	if out := h.ok("host-show", "edge-01"); strings.Contains(out, "| kernel") {
		t.Errorf("host-show summarizes an inventory that was never reported:\n%s", out)
	}
	if code, _, errs := h.run("", "host-cpu-list", "edge-01"); code != 1 || !strings.Contains(errs, "no hardware inventory yet") {
		t.Errorf("host-cpu-list before a report: %d %q", code, errs)
	}
	inv, err := json.Marshal(wire.Inventory{Kernel: "6.1.0-28-amd64",
		OS:     wire.OS{PrettyName: "Debian GNU/Linux 12 (bookworm)"},
		CPUs:   []wire.CPU{{Socket: 0, Model: "Atom x6425E", Cores: 4, Threads: 4}},
		Memory: wire.Memory{TotalBytes: 8 << 30},
		Disks:  []wire.Disk{{Name: "nvme0n1", SizeBytes: 256 << 30, Type: "nvme", InUse: true}},
		Interfaces: []wire.Interface{{Name: "enp1s0", MAC: "52:54:00:12:34:56", State: "up", MTU: 1500,
			Addresses: []string{"192.168.204.10/24"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Controller.Store.Write(context.Background(), func(tx store.Tx) error {
		return tx.SetHostInventory(1, string(inv), "sha256:00")
	}); err != nil {
		t.Fatal(err)
	}
	show := h.ok("host-show", "edge-01")
	for _, want := range []string{"| os | Debian GNU/Linux 12 (bookworm)", "| cpus | 1 socket(s), 4 cores, 4 threads: Atom x6425E",
		"| memory | 8.0 GiB", "| disks | 1, 256.0 GiB"} {
		if !strings.Contains(squeeze(show), want) {
			t.Errorf("host-show lacks %q:\n%s", want, show)
		}
	}
	for cmd, want := range map[string]string{
		"host-cpu-list":    "0 Atom x6425E 4 4 0\n",
		"host-memory-show": "8.0 GiB\n0 B\n0\n",
		"host-disk-list":   "nvme0n1 256.0 GiB nvme false true  \n",
		"host-if-list":     "enp1s0 52:54:00:12:34:56 up 0 1500 192.168.204.10/24 false\n",
	} {
		if got := h.ok(cmd, "edge-01", "-f", "value"); got != want {
			t.Errorf("%s: %q, want %q", cmd, got, want)
		}
	}
}

func TestLabels(t *testing.T) {
	t.Parallel()
	h := newHbctl(t)
	h.ok("host-add", "-n", "edge-01", "-p", "edgeworker", "-i", "192.168.204.10")
	if got := h.ok("host-label-assign", "edge-01", "zone=north", "example.com/line=3", "-f", "value"); got != "example.com/line 3\nzone north\n" {
		t.Errorf("host-label-assign: %q", got)
	}
	if code, _, errs := h.run("", "host-label-remove", "edge-01", "zone", "typo"); code != 1 || !strings.Contains(errs, `no label "typo"`) {
		t.Errorf("remove with a typo: %d %q", code, errs)
	}
	if got := h.ok("host-label-remove", "edge-01", "zone", "-f", "value"); got != "example.com/line 3\n" {
		t.Errorf("host-label-remove: %q", got)
	}
	if got := h.ok("host-label-list", "edge-01", "-f", "json"); strings.TrimSpace(got) != `{
  "example.com/line": "3"
}` {
		t.Errorf("host-label-list json: %q", got)
	}
	if code, _, _ := h.run("", "host-label-assign", "edge-01"); code != 2 {
		t.Errorf("host-label-assign without labels exits %d, want 2", code)
	}
}

func TestGroupLabels(t *testing.T) {
	t.Parallel()
	h := newHbctl(t)
	h.ok("group-add", "press")
	if got := h.ok("group-label-assign", "press", "line=3", "example.com/hall=2", "-f", "value"); got != "example.com/hall 2\nline 3\n" {
		t.Errorf("group-label-assign: %q", got)
	}
	if code, _, errs := h.run("", "group-label-assign", "press", "hummingbird.io/group=paint"); code != 1 || !strings.Contains(errs, "Hummingbird's own") {
		t.Errorf("assign under the reserved prefix: %d %q", code, errs)
	}
	if code, _, errs := h.run("", "group-label-remove", "press", "line", "typo"); code != 1 || !strings.Contains(errs, `no label "typo"`) {
		t.Errorf("remove with a typo: %d %q", code, errs)
	}
	if got := h.ok("group-label-remove", "press", "example.com/hall", "-f", "value"); got != "line 3\n" {
		t.Errorf("group-label-remove: %q", got)
	}
	if got := h.ok("group-label-list", "press", "-f", "json"); strings.TrimSpace(got) != `{
  "line": "3"
}` {
		t.Errorf("group-label-list json: %q", got)
	}
	if got := h.ok("group-show", "press", "-c", "labels", "-f", "value"); got != "line=3\n" {
		t.Errorf("group-show labels: %q", got)
	}
	if got := h.ok("group-list", "-c", "name", "-c", "labels", "-f", "value"); got != "press line=3\n" {
		t.Errorf("group-list labels: %q", got)
	}
	if code, _, errs := h.run("", "group-label-list", "paint"); code != 1 || !strings.Contains(errs, `no group "paint"`) {
		t.Errorf("labels of an unknown group: %d %q", code, errs)
	}
	for _, args := range [][]string{{"group-label-assign", "press"}, {"group-label-remove", "press"}, {"group-label-list"}} {
		if code, _, _ := h.run("", args...); code != 2 {
			t.Errorf("hbctl %s exits %d, want 2", strings.Join(args, " "), code)
		}
	}
	if _, out, _ := h.run("", "__complete", "group-label-assign", ""); !strings.Contains(out, "press\n") {
		t.Errorf("completion of group-label-assign: %q", out)
	}
}

func TestClusterShowWithoutCluster(t *testing.T) {
	t.Parallel()
	h := newHbctl(t)
	code, out, errs := h.run("", "cluster-show", "-c", "configured", "-f", "value")
	if code != 0 || out != "false\n" || !strings.Contains(errs, "--kubeconfig") {
		t.Errorf("cluster-show without a cluster: %d %q %q", code, out, errs)
	}
}

var spaces = regexp.MustCompile(` {2,}`)

// squeeze collapses runs of spaces, so table rows compare whatever the column width.
func squeeze(s string) string { return spaces.ReplaceAllString(s, " ") }

// TestEveryFieldIsAColumn: every field of a host in host-show -f json can
// be picked with -c, as the column of the same name.
func TestEveryFieldIsAColumn(t *testing.T) {
	t.Parallel()
	h := newHbctl(t)
	h.ok("host-add", "-n", "edge-01", "-p", "edgeworker", "-i", "192.168.204.10")
	var fields map[string]any
	if err := json.Unmarshal([]byte(h.ok("host-show", "edge-01", "-f", "json")), &fields); err != nil {
		t.Fatal(err)
	}
	for name := range fields {
		if code, _, errs := h.run("", "host-show", "edge-01", "-c", name, "-f", "value"); code != 0 {
			t.Errorf("host-show -c %s: exit %d: %s", name, code, errs)
		}
	}
}

// TestCAShow: ca-show prints the pin of the controller's own CA, the one
// hb-agent join takes, whatever cluster the controller manages.
func TestCAShow(t *testing.T) {
	t.Parallel()
	in := controllertest.Start(t, "", nil)
	h := newHbctlFor(t, in)
	if got, want := strings.TrimSpace(h.ok("ca-show", "-c", "ca_hash", "-f", "value")), pki.CAHash(in.Controller.CA.Cert); got != want {
		t.Errorf("ca-show: %q, want %q", got, want)
	}
	if out := h.ok("ca-show"); !strings.Contains(out, "| not_after") {
		t.Errorf("ca-show table:\n%s", out)
	}
}

// TestControllerList: controller-list shows the one controller, leading in the first epoch
// with its duties; json gives the same as the API.
func TestControllerList(t *testing.T) {
	t.Parallel()
	h := newHbctlFor(t, controllertest.Start(t, "", nil)) // one controller, whatever HB_TEST_CONTROLLERS says
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := h.ok("controller-list", "-c", "state,leader,epoch,duties", "-f", "value")
		if got == "up true 1 monitor, provision, locks, controllers, retention\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("controller-list: %q, want the controller up, leading in epoch 1 with its duties", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var list []apitype.Controller
	if err := json.Unmarshal([]byte(h.ok("controller-list", "-f", "json")), &list); err != nil || len(list) != 1 ||
		!list[0].Leader || !strings.HasPrefix(list[0].Name, "controller-") {
		t.Fatalf("controller-list -f json: %+v, %v", list, err)
	}
	// controller-delete refuses the leader and a name not listed, and says why.
	for _, c := range []struct{ name, want string }{
		{list[0].Name, "leads: it cannot be removed"},
		{"ctl-none", `no controller "ctl-none"`},
	} {
		code, _, stderr := h.run("", "controller-delete", "--yes", c.name)
		if code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("controller-delete %s: exit %d, stderr %q, want a failure saying %q", c.name, code, stderr, c.want)
		}
	}
	if got := h.ok("controller-list", "-c", "name", "-f", "value"); got != list[0].Name+"\n" {
		t.Errorf("controller-list after the refused deletes: %q", got)
	}
}
