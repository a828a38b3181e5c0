package controller_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/controller"
	"hummingbird.io/hummingbird/internal/controller/controllertest"
	"hummingbird.io/hummingbird/internal/mtce"
	"hummingbird.io/hummingbird/internal/pki"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// TestBadSettingsWriteNothing: a controller told something wrong refuses
// to start and leaves no data directory, CA or token behind.
func TestBadSettingsWriteNothing(t *testing.T) {
	t.Parallel()
	for name, mutate := range map[string]func(*controller.Config){
		"subnet":    func(c *controller.Config) { c.MgmtSubnet = "10.0.0.1/8" },
		"mode":      func(c *controller.Config) { c.MgmtMode = "sometimes" },
		"reserved":  func(c *controller.Config) { c.MgmtControllerIPs = []string{"10.9.9.9"} },
		"heartbeat": func(c *controller.Config) { c.Heartbeat.FailAfter = c.Heartbeat.DegradeAfter },
		"personality": func(c *controller.Config) {
			c.Heartbeat.Personalities = map[string]mtce.Timing{"gateway": c.Heartbeat.Timing}
		},
		"webhook": func(c *controller.Config) { c.AlarmWebhook = "mailto:ops@example.com" },
		"relay":   func(c *controller.Config) { c.DHCPRelays = []string{"10.20.0.1", "relay.example"} },
		"tls":     func(c *controller.Config) { c.TLSCert = "/nonexistent.crt" },
		"lease":   func(c *controller.Config) { c.LeaderLease = 100 * time.Millisecond },
		"events":  func(c *controller.Config) { c.EventRetention.Count = -1 },
		"age":     func(c *controller.Config) { c.EventRetention.Age = -time.Hour },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := controller.Defaults()
			cfg.DataDir = filepath.Join(t.TempDir(), "data")
			mutate(&cfg)
			c, err := controller.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
			if err == nil {
				c.Close()
				t.Fatal("the controller started")
			}
			if _, serr := os.Stat(cfg.DataDir); !os.IsNotExist(serr) {
				t.Errorf("refused with %q but the data directory was made", err)
			}
		})
	}
}

// TestDataDirIsPrivate: a data directory and a database file made before,
// with the modes a umask of 022 gives, are made private when the
// controller starts on them: the directory 0700, the database and its WAL
// files 0600.
func TestDataDirIsPrivate(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	db := store.SQLitePath(dir)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for p, mode := range map[string]os.FileMode{dir: 0o755, db: 0o644} {
		if err := os.Chmod(p, mode); err != nil { // whatever the umask
			t.Fatal(err)
		}
	}
	cfg := controller.Defaults()
	cfg.DataDir = dir
	c, err := controller.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Store.Write(context.Background(), func(store.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	want := map[string]os.FileMode{dir: 0o700, db: 0o600, db + "-wal": 0o600, db + "-shm": 0o600}
	for p, mode := range want {
		st, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if got := st.Mode().Perm(); got != mode {
			t.Errorf("%s has mode %v, want %v", filepath.Base(p), got, mode)
		}
	}
}

// TestOneLeader: two controllers on one PostgreSQL database both serve, and the duties that run
// once run on one of them; stopped, it hands them to the other at once, and started again it
// follows.
func TestOneLeader(t *testing.T) {
	t.Parallel()
	dsn := storetest.PostgresDSN(t)
	a := controllertest.Start(t, dsn, nil)
	b := controllertest.Start(t, dsn, controllertest.ShareCA(t, a))
	// running says which of the named parts run on in.
	running := func(in *controllertest.Instance) map[string]bool {
		out := map[string]bool{}
		for _, p := range in.Controller.Parts() {
			out[p.Name] = p.Running
		}
		return out
	}
	// leaderOf waits up to 5 s for exactly one of the instances to lead with its monitor
	// running, the other's not, and the apps' view running on both.
	leaderOf := func(ins ...*controllertest.Instance) *controllertest.Instance {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			var leaders []*controllertest.Instance
			ok := true
			for _, in := range ins {
				r := running(in)
				lead := in.Controller.Elector.Leading() != nil
				if lead {
					leaders = append(leaders, in)
				}
				ok = ok && r["apps"] && r["monitor"] == lead
			}
			if ok && len(leaders) == 1 {
				return leaders[0]
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 5 s: %d leaders; parts %v and %v", len(leaders), running(ins[0]), running(ins[1]))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	lead := leaderOf(a, b)
	other := a
	if lead == a {
		other = b
	}
	epoch := lead.Controller.Elector.Leading().Epoch
	// Both list both (controller-list), the leader with its epoch and duties.
	listed := func(in *controllertest.Instance, want int) []apitype.Controller {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			cs, err := in.Controller.Inventory.ListControllers(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(cs) == want {
				return cs
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d controllers listed, want %d: %+v", len(cs), want, cs)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for _, in := range []*controllertest.Instance{a, b} {
		for _, c := range listed(in, 2) {
			isLead := c.Address == strings.TrimPrefix(lead.URL, "https://")
			if c.Leader != isLead || c.State != apitype.ControllerUp || (isLead && (c.Epoch != epoch || !slices.Contains(c.Duties, "monitor"))) ||
				(!isLead && (c.Epoch != 0 || len(c.Duties) != 0)) {
				t.Errorf("listed %+v; the leader is at %s in epoch %d", c, lead.URL, epoch)
			}
		}
	}
	lead.Stop(t)
	start := time.Now()
	if got := leaderOf(other); got != other {
		t.Fatal("the other controller does not lead")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the other controller led %v after the leader stopped cleanly, want within a second", d)
	}
	if got := other.Controller.Elector.Leading().Epoch; got != epoch+1 {
		t.Errorf("epoch %d after %d, want the next", got, epoch)
	}
	// A controller that stopped cleanly is not listed, and not lost.
	if cs := listed(other, 1); !cs[0].Leader || cs[0].Epoch != epoch+1 {
		t.Errorf("after the leader stopped: %+v", cs)
	}
	lead.Restart(t)
	if got := leaderOf(a, b); got != other {
		t.Error("the restarted controller took the lead from the running one")
	}
}

// TestSharedCA: a controller that joins a database other controllers use refuses to make a
// CA of its own, or to run with another CA than theirs, and says which files to copy; with
// theirs it starts.
func TestSharedCA(t *testing.T) {
	t.Parallel()
	dsn := storetest.PostgresDSN(t)
	first := controllertest.Start(t, dsn, nil)
	try := func(mutate func(*controller.Config)) error {
		cfg := controller.Defaults()
		cfg.DataDir, cfg.DB, cfg.Listen, cfg.Name = t.TempDir(), dsn, "127.0.0.1:0", "second"
		if mutate != nil {
			mutate(&cfg)
		}
		c, err := controller.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := try(nil); err == nil || !strings.Contains(err.Error(), "copy ca.crt and ca.key from another controller's data directory") {
		t.Errorf("a controller without a CA: %v; want it refused, saying what to copy", err)
	}
	err := try(func(c *controller.Config) {
		if _, _, err := pki.EnsureCA(c.DataDir, time.Now()); err != nil {
			t.Fatal(err)
		}
	})
	if err == nil || !strings.Contains(err.Error(), "replace ca.crt and ca.key with theirs") || !strings.Contains(err.Error(), pki.CAHash(first.Controller.CA.Cert)) {
		t.Errorf("a controller with another CA: %v; want it refused, naming the pinned CA", err)
	}
	if err := try(controllertest.ShareCA(t, first)); err != nil {
		t.Errorf("a controller with the shared CA: %v", err)
	}
}
