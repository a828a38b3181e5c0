package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/uuid"
	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // the "sqlite" driver

	"hummingbird.io/hummingbird/internal/controller"
	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/pki"
	"hummingbird.io/hummingbird/internal/store"
)

// envFleetIdle is how long BenchmarkControllerFleet measures the idle
// controller's CPU (default 60s). The hosts' agents send no heartbeats, so
// the measure must end within the grace every host has after a start
// (three heartbeat intervals of 30 s): the benchmark refuses more than 75s.
const envFleetIdle = "HB_BENCH_FLEET_IDLE"

// fleetApps is how many redundant apps the fleet's first hosts run: each
// in a group of its own, two members and a witness.
const fleetApps = 1000

// Targets of the inventory-scale issue for the controller at 100,000 hosts.
const (
	maxFleetRSS       = 128 << 20 // idle
	maxFleetStartup   = 5 * time.Second
	maxFleetMigration = time.Minute
	maxFleetIdleCPU   = 0.05 // of one core: the monitor's sweep and the app sync
)

// BenchmarkControllerFleet measures hb-controller, a process of its own, on
// a database of HB_BENCH_FLEET_HOSTS (default 100,000) hosts whose agents
// are enrolled, fleetApps of them running redundant apps: the start-up time
// (exec to /readyz answering: open, migrate, load the heartbeat table,
// serve), the RSS once idle and its peak, the CPU the idle leader uses over
// HB_BENCH_FLEET_IDLE (its heartbeat monitor sweeps every host every 7.5 s,
// the apps' view is rebuilt every 10 s), and then the time a migration
// adding a column with a default and an index to the hosts table takes.
// b.N is ignored: run with -benchtime 1x.
func BenchmarkControllerFleet(b *testing.B) {
	n := benchSize(b, envFleetHosts, 100_000, 1)
	idle := time.Minute
	if s := os.Getenv(envFleetIdle); s != "" {
		var err error
		if idle, err = time.ParseDuration(s); err != nil || idle <= 0 || idle > 75*time.Second {
			b.Fatalf("%s=%q: give a duration up to 75s, such as 60s", envFleetIdle, s)
		}
	}
	bin := buildController(b)
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			r := measureFleet(b, bin, be.db(b), n, fleetApps, idle)
			b.ReportMetric(r.startup.Seconds(), "startup-s")
			b.ReportMetric(mib(r.rss), "rss-MiB")
			b.ReportMetric(mib(r.hwm), "hwm-MiB")
			b.ReportMetric(100*r.idleCPU, "idle-cpu-%")
			b.ReportMetric(r.migration.Seconds(), "migration-s")
			b.Logf("%s, %d hosts, %d apps: start-up %v, RSS %.1f MiB (peak %.1f), idle CPU %.2f %% of a core, migration %v",
				be.name, n, fleetApps, r.startup.Round(time.Millisecond), mib(r.rss), mib(r.hwm), 100*r.idleCPU,
				r.migration.Round(time.Millisecond))
			for _, c := range []struct {
				bad  bool
				what string
			}{
				{r.rss > maxFleetRSS, fmt.Sprintf("RSS %.1f MiB is over %d MiB", mib(r.rss), maxFleetRSS>>20)},
				{r.startup > maxFleetStartup, fmt.Sprintf("start-up %v is over %v", r.startup, maxFleetStartup)},
				{r.migration > maxFleetMigration, fmt.Sprintf("the migration took %v, over %v", r.migration, maxFleetMigration)},
				{r.idleCPU > maxFleetIdleCPU, fmt.Sprintf("idle CPU %.2f %% is over %.0f %%", 100*r.idleCPU, 100*maxFleetIdleCPU)},
			} {
				if c.bad {
					b.Errorf("%s at %d hosts: %s", be.name, n, c.what)
				}
			}
		})
	}
}

// TestControllerFleetSetup runs BenchmarkControllerFleet's steps at 2,000
// hosts so that a broken benchmark fails go test ./bench. It checks what
// the steps must do (the controller starts, answers, leaves every host as
// it was, the migration applies), not how fast.
func TestControllerFleetSetup(t *testing.T) {
	t.Parallel()
	bin := buildController(t)
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			r := measureFleet(t, bin, be.db(t), 2000, 20, 2*time.Second)
			if r.startup <= 0 || r.rss <= 0 || r.hwm < r.rss || r.migration <= 0 {
				t.Errorf("measured %+v", r)
			}
		})
	}
}

// buildController builds cmd/hb-controller into a temporary directory.
func buildController(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "hb-controller")
	if out, err := exec.Command("go", "build", "-o", bin, "hummingbird.io/hummingbird/cmd/hb-controller").CombinedOutput(); err != nil {
		tb.Fatalf("build hb-controller: %v\n%s", err, out)
	}
	return bin
}

// fleetResult is what measureFleet measured.
type fleetResult struct {
	startup   time.Duration
	rss, hwm  int64
	idleCPU   float64 // of one core
	migration time.Duration
}

// measureFleet starts hb-controller on db ("" for SQLite in its data
// directory) once to make its data directory and schema, stops it, stores n
// hosts with enrolled agents and apps redundant apps, and then measures a
// start, the idle controller for idle, and a migration.
func measureFleet(tb testing.TB, bin, db string, n, apps int, idle time.Duration) fleetResult {
	tb.Helper()
	ctx := tb.Context()
	dir := tb.TempDir()
	dsn := db
	if dsn == "" {
		dsn = store.SQLitePath(dir)
	}
	first := startControllerProcess(tb, bin, dir, db)
	first.stop(tb)

	st, err := store.Open(ctx, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	t0 := time.Now()
	if err := preloadFleet(ctx, st, n, apps); err != nil {
		st.Close()
		tb.Fatal(err)
	}
	before, err := fleetState(ctx, st)
	st.Close()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Logf("stored %d hosts with enrolled agents and %d apps in %v", n, apps, time.Since(t0).Round(time.Millisecond))

	var r fleetResult
	p := startControllerProcess(tb, bin, dir, db)
	r.startup = p.ready
	// Past the first sweeps and rebuilds, and the leader's election.
	time.Sleep(min(idle, 5*time.Second))
	cpu0, w0 := procCPU(tb, p.pid()), time.Now()
	time.Sleep(idle)
	cpu1, w1 := procCPU(tb, p.pid()), time.Now()
	r.idleCPU = (cpu1 - cpu0).Seconds() / w1.Sub(w0).Seconds()
	r.rss, r.hwm = procMemory(tb, p.pid())
	p.stop(tb)

	st, err = store.Open(ctx, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	after, err := fleetState(ctx, st)
	st.Close()
	if err != nil {
		tb.Fatal(err)
	}
	if after != before {
		tb.Errorf("the idle controller changed the fleet: before %+v, after %+v", before, after)
	}
	r.migration = timeMigration(tb, dsn)
	return r
}

// fleetCounts is what must not change while the controller idles.
type fleetCounts struct {
	hosts, available, lastEvent int64
}

func fleetState(ctx context.Context, st store.Store) (fleetCounts, error) {
	var c fleetCounts
	err := st.Read(ctx, func(tx store.Tx) error {
		for after := int64(0); ; {
			hosts, err := tx.ListHosts(store.HostFilter{AfterID: after, Limit: 5000})
			if err != nil {
				return err
			}
			if len(hosts) == 0 {
				break
			}
			for _, h := range hosts {
				c.hosts++
				if h.Availability == inventory.AvailAvailable {
					c.available++
				}
			}
			after = hosts[len(hosts)-1].ID
		}
		evs, err := tx.ListEvents(store.EventFilter{Limit: 1})
		if len(evs) > 0 {
			c.lastEvent = evs[0].ID
		}
		return err
	})
	return c, err
}

// preloadFleet stores n hosts (fleetHost: edge-0000001…) available, their
// agents enrolled, each with its host.add event, and apps redundant apps:
// app i in group grp-i, its members the hosts 3i+1 and 3i+2 and its witness
// 3i+3.
func preloadFleet(ctx context.Context, st store.Store, n, apps int) error {
	const batch = 5000
	for lo := 1; lo <= n; lo += batch {
		hi := min(lo+batch, n+1)
		err := st.Write(ctx, func(tx store.Tx) error {
			now := time.Now().UTC().Truncate(time.Microsecond)
			// A controller's database has a management pool; a bare store
			// (BenchmarkAppSync) has none, and the hosts no pool then.
			mgmt, err := tx.ManagementPool()
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			for i := lo; i < hi; i++ {
				req := fleetHost(i)
				group := ""
				if app := (i - 1) / 3; app < apps {
					group = fmt.Sprintf("grp-%04d", app)
					if (i-1)%3 == 0 {
						if err := tx.InsertGroup(&store.Group{Name: group, CreatedAt: now, UpdatedAt: now}); err != nil {
							return err
						}
					}
				}
				id, err := tx.NextID("hosts")
				if err != nil {
					return err
				}
				h := store.Host{
					ID: id, UUID: uuid.NewString(), Hostname: req.Hostname, Personality: req.Personality,
					Administrative: inventory.AdminUnlocked, Operational: inventory.OperEnabled,
					Availability: inventory.AvailAvailable, InvProvision: inventory.ProvProvisioned,
					MgmtMAC: req.MgmtMAC, MgmtIP: fleetAddr(i), Group: group, Labels: req.Labels,
					PoolID: mgmt.ID, CreatedAt: now, UpdatedAt: now,
				}
				if err := tx.InsertHost(&h); err != nil {
					return err
				}
				if err := tx.SetHostAgent(h.ID, fmt.Sprintf("%032x", i)); err != nil {
					return err
				}
				if err := tx.AppendEvent(hostAdded(h, now)); err != nil {
					return err
				}
				if (i-1)/3 < apps && (i-1)%3 == 2 {
					appID, err := tx.NextID("apps")
					if err != nil {
						return err
					}
					if err := tx.InsertApp(&store.App{
						ID: appID, UUID: uuid.NewString(), Name: fmt.Sprintf("app-%04d", (i-1)/3), Group: group,
						Image: "registry.example/app:1", Port: 8080, HealthKind: "tcp",
						Members: []store.AppMember{{HostID: id - 2, Position: 1}, {HostID: id - 1, Position: 2}},
						Witness: &store.AppMember{HostID: id}, CreatedAt: now, UpdatedAt: now,
					}); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("store hosts %d-%d: %w", lo, hi-1, err)
		}
	}
	return nil
}

// fleetAddr is host i's management address in mgmtSubnet, past the
// controllers' 10.0.0.1 and .2.
func fleetAddr(i int) string {
	v := i + 16
	return fmt.Sprintf("10.%d.%d.%d", v>>16&0xff, v>>8&0xff, v&0xff)
}

// controllerProcess is a running hb-controller.
type controllerProcess struct {
	cmd   *exec.Cmd
	log   *bytes.Buffer
	ready time.Duration // from exec to /readyz answering
	base  string        // https://127.0.0.1:PORT
}

func (p *controllerProcess) pid() int { return p.cmd.Process.Pid }

// startControllerProcess runs bin on dir and db and waits until /readyz
// answers.
func startControllerProcess(tb testing.TB, bin, dir, db string) *controllerProcess {
	tb.Helper()
	port := freePort(tb)
	p := &controllerProcess{log: &bytes.Buffer{}, base: "https://127.0.0.1:" + strconv.Itoa(port)}
	p.cmd = exec.Command(bin, "--name", "fleet", "--data-dir", dir, "--db", db,
		"--listen", "127.0.0.1:"+strconv.Itoa(port), "--mgmt-subnet", mgmtSubnet,
		"--mgmt-controller-ips", "10.0.0.1,10.0.0.2", "--log-level", "warn")
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	// The readiness probe is what an orchestrator would ask: is the API
	// up and the database answering. The CA is the controller's own.
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}}
	t0 := time.Now()
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("start hb-controller: %v", err)
	}
	tb.Cleanup(func() { p.kill() })
	url := fmt.Sprintf("https://127.0.0.1:%d/readyz", port)
	for deadline := t0.Add(2 * time.Minute); ; time.Sleep(10 * time.Millisecond) {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				p.ready = time.Since(t0)
				return p
			}
		}
		if p.cmd.ProcessState != nil || time.Now().After(deadline) {
			tb.Fatalf("hb-controller never answered %s: %v\n%s", url, err, p.log)
		}
	}
}

// client returns a client of p's API as the first admin, trusting the CA
// in dir, p's data directory: what hbctl has on the controller's host.
func (p *controllerProcess) client(tb testing.TB, dir string) *server {
	tb.Helper()
	tok, err := os.ReadFile(filepath.Join(dir, controller.AdminTokenFile))
	if err != nil {
		tb.Fatalf("the controller's first admin token: %v", err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, pki.CACertFile))
	if err != nil {
		tb.Fatalf("the controller's CA: %v", err)
	}
	tr := apiTransport(tb, caPEM)
	tb.Cleanup(tr.CloseIdleConnections)
	return &server{
		dataDir: dir,
		base:    p.base,
		token:   strings.TrimSpace(string(tok)),
		client:  &http.Client{Transport: tr, Timeout: 2 * time.Minute},
	}
}

// stop ends the controller as systemd would, and fails tb if it does not
// stop cleanly.
func (p *controllerProcess) stop(tb testing.TB) {
	tb.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			tb.Errorf("hb-controller stopped with %v:\n%s", err, p.log)
		}
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-done
		tb.Errorf("hb-controller did not stop within 30 s of SIGTERM:\n%s", p.log)
	}
}

func (p *controllerProcess) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}
}

// benchMigration is a migration of the kind a release adds: a column with
// a default on the hosts table, and an index on it. Its number is past any
// of the controller's own.
const benchMigration = `-- +goose Up
ALTER TABLE hosts ADD COLUMN bench_rack TEXT NOT NULL DEFAULT '';
CREATE INDEX hosts_bench_rack_idx ON hosts (bench_rack, id);

-- +goose Down
DROP INDEX hosts_bench_rack_idx;
ALTER TABLE hosts DROP COLUMN bench_rack;
`

// timeMigration applies benchMigration to the database at dsn as the
// controller applies its own (goose, in a transaction) and says how long
// that took.
func timeMigration(tb testing.TB, dsn string) time.Duration {
	tb.Helper()
	driver, dialect := "sqlite", goose.DialectSQLite3
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		driver, dialect = "pgx", goose.DialectPostgres
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	fsys := fstest.MapFS{"09999_bench_rack.sql": {Data: []byte(benchMigration)}}
	p, err := goose.NewProvider(dialect, db, fsys)
	if err != nil {
		tb.Fatal(err)
	}
	t0 := time.Now()
	res, err := p.Up(tb.Context())
	d := time.Since(t0)
	if err != nil {
		tb.Fatalf("migrate: %v", err)
	}
	if len(res) != 1 {
		tb.Fatalf("the migration applied %d steps, want 1", len(res))
	}
	var rows int64
	if err := db.QueryRowContext(tb.Context(), `SELECT COUNT(*) FROM hosts WHERE bench_rack = ''`).Scan(&rows); err != nil {
		tb.Fatal(err)
	}
	if rows == 0 {
		tb.Fatal("after the migration no host has the new column's default")
	}
	return d
}

// procCPU is a process's user and system CPU time (utime+stime of
// /proc/PID/stat, in clock ticks of 10 ms: USER_HZ is 100 on Linux).
func procCPU(tb testing.TB, pid int) time.Duration {
	tb.Helper()
	d, err := readProcCPU(pid)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// readProcCPU is procCPU's reading, with an error for a process gone.
func readProcCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command's closing parenthesis start at field 3
	// (state); utime and stime are fields 14 and 15.
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, data)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, data)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// procMemory is a process's VmRSS and VmHWM in bytes.
func procMemory(tb testing.TB, pid int) (rss, hwm int64) {
	tb.Helper()
	status := fmt.Sprintf("/proc/%d/status", pid)
	rss, hwm = procStatusBytes(status, "VmRSS:"), procStatusBytes(status, "VmHWM:")
	if rss < 0 || hwm < 0 {
		tb.Fatalf("no VmRSS or VmHWM in %s", status)
	}
	return rss, hwm
}
