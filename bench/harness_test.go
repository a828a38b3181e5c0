package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/controller"
	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/store"
)

// envPostgres names the variable holding a PostgreSQL server URL whose user
// may create databases. Without it the PostgreSQL cases are skipped.
const envPostgres = "HB_TEST_POSTGRES"

// backend is one kind of database the controller runs on.
type backend struct {
	name string
	// db returns the controller's --db value for a fresh, empty database
	// that is dropped when tb ends: "" for SQLite in the data directory.
	db func(tb testing.TB) string
}

var backends = []backend{
	{name: "sqlite", db: func(testing.TB) string { return "" }},
	{name: "postgres", db: postgresDB},
}

// skip skips tb for want of something it needs, or fails it when the
// environment variable CI is set: there everything a test or benchmark
// needs is installed (.ci/run), so a missing part is a failure to see.
func skip(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if os.Getenv("CI") != "" {
		tb.Fatalf("CI is set and this cannot run: "+format, args...)
	}
	tb.Skipf(format, args...)
}

// postgresDB creates a database of its own on the HB_TEST_POSTGRES server
// and drops it when tb ends.
func postgresDB(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv(envPostgres)
	if base == "" {
		skip(tb, "%s is not set: give it a postgres:// URL whose user may CREATE DATABASE to run the PostgreSQL case, e.g. %s='postgres://hb:hb@127.0.0.1:5432/postgres?sslmode=disable' (.ci/run and test/run start a server)", envPostgres, envPostgres)
	}
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("parse %s: %v", envPostgres, err)
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		tb.Fatalf("open %s: %v", store.Redact(base), err)
	}
	var b [6]byte
	rand.Read(b[:])
	name := "hbbench_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		tb.Fatalf("create database %s on %s: %v", name, store.Redact(base), err)
	}
	tb.Cleanup(func() {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("drop database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// mgmtSubnet is big enough for every host a benchmark adds.
const mgmtSubnet = "10.0.0.0/8"

// server is a running controller and a client of its API.
type server struct {
	ctrl    *controller.Controller
	dataDir string
	base    string // https://127.0.0.1:PORT
	token   string
	client  *http.Client
}

// startController runs the real controller on db (see backend) with a
// fresh data directory, serving HTTPS on 127.0.0.1:0, until tb ends.
func startController(tb testing.TB, db string) *server {
	tb.Helper()
	return startControllerMode(tb, db, "static")
}

// startControllerMode is startController with the management network in
// mode: static (hosts give their addresses) or dynamic (the controller
// allocates them).
func startControllerMode(tb testing.TB, db, mode string) *server {
	tb.Helper()
	return startControllerWith(tb, db, func(cfg *controller.Config) { cfg.MgmtMode = mode })
}

// startControllerWith is startController with the configuration adjusted
// by mutate first.
func startControllerWith(tb testing.TB, db string, mutate func(*controller.Config)) *server {
	tb.Helper()
	cfg := controller.Defaults()
	cfg.DataDir = tb.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.DB = db
	cfg.MgmtSubnet = mgmtSubnet
	cfg.MgmtControllerIPs = []string{"10.0.0.1", "10.0.0.2"}
	mutate(&cfg)
	log := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithCancel(context.Background())
	c, err := controller.New(ctx, cfg, log)
	if err != nil {
		cancel()
		tb.Fatalf("start the controller: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		c.Close()
		tb.Fatalf("listen: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- c.Serve(ctx, ln) }()
	tr := apiTransport(tb, c.CA.PEM)
	s := &server{
		ctrl:    c,
		dataDir: cfg.DataDir,
		base:    "https://" + ln.Addr().String(),
		token:   c.AdminToken,
		client:  &http.Client{Transport: tr, Timeout: 2 * time.Minute},
	}
	tb.Cleanup(func() {
		tr.CloseIdleConnections()
		cancel()
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			tb.Errorf("serve: %v", err)
		}
		c.Close()
	})
	if s.token == "" {
		tb.Fatal("the controller made no first admin token")
	}
	return s
}

// apiTransport is a client's transport to a controller whose CA is caPEM,
// keeping as many connections as the benchmarks' clients use.
func apiTransport(tb testing.TB, caPEM []byte) *http.Transport {
	tb.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		tb.Fatal("the controller's CA is not PEM")
	}
	return &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     time.Minute,
	}
}

// do sends one API request and decodes a 2xx answer into out (when not nil).
func (s *server) do(method, path string, body, out any, want int) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// Read as hbctl's client does: into one buffer of the declared length.
	var b []byte
	if resp.ContentLength >= 0 {
		b = make([]byte, resp.ContentLength)
		_, err = io.ReadFull(resp.Body, b)
	} else {
		b, err = io.ReadAll(resp.Body)
	}
	if err != nil {
		return fmt.Errorf("%s %s: read the answer: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	if out == nil {
		return nil
	}
	// Decode as hbctl's client does too: hosts and pages of hosts with
	// apitype's decoders, the rest with encoding/json.
	switch v := out.(type) {
	case *apitype.HostList:
		err = apitype.DecodeHostList(b, v)
	case *apitype.Host:
		err = apitype.DecodeHost(b, v)
	default:
		err = json.Unmarshal(b, out)
	}
	if err != nil {
		return fmt.Errorf("%s %s: decode the answer: %w", method, path, err)
	}
	return nil
}

// addHost is POST /v1/hosts.
func (s *server) addHost(h apitype.HostCreate) (apitype.Host, error) {
	var out apitype.Host
	err := s.do("POST", "/v1/hosts", h, &out, http.StatusCreated)
	return out, err
}

// showHost is GET /v1/hosts/{ref}.
func (s *server) showHost(ref string) (apitype.Host, error) {
	var out apitype.Host
	err := s.do("GET", "/v1/hosts/"+url.PathEscape(ref), nil, &out, http.StatusOK)
	return out, err
}

// listPage is one GET /v1/hosts with query q (url-encoded, may be empty).
func (s *server) listPage(q url.Values) (apitype.HostList, error) {
	var out apitype.HostList
	path := "/v1/hosts"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	err := s.do("GET", path, nil, &out, http.StatusOK)
	return out, err
}

// listAll pages through every host q selects, limit hosts a page, and
// returns them and the number of requests it took.
func (s *server) listAll(q url.Values, limit int) ([]apitype.Host, int, error) {
	var (
		all   []apitype.Host
		pages int
	)
	q = cloneValues(q)
	q.Set("limit", fmt.Sprint(limit))
	for {
		p, err := s.listPage(q)
		pages++
		if err != nil {
			return all, pages, err
		}
		all = append(all, p.Hosts...)
		if p.Next == "" {
			return all, pages, nil
		}
		q.Set("marker", p.Next)
	}
}

func cloneValues(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = slices.Clone(v)
	}
	return out
}

// The inventory the benchmarks build: host i (from 1) is named
// edge-0000001…, has a locally administered MAC and an address in
// 10.0.0.0/8 derived from i, and labels that spread hosts over sites.
const (
	sites       = 100 // label site=site-000…site-099: 1% of the hosts each
	workerEvery = 10  // every 10th host is a worker, the rest edgeworkers
	firstIP     = 256 // 10.0.1.0: clear of the network and controller addresses
)

// edgeworker is host i as an edgeworker with no labels: what BenchmarkHostAdd
// adds.
func edgeworker(i int) apitype.HostCreate {
	ip := firstIP + i
	return apitype.HostCreate{
		Hostname:    fmt.Sprintf("edge-%07d", i),
		Personality: apitype.PersonalityEdgeworker,
		MgmtMAC:     fmt.Sprintf("02:00:00:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff),
		MgmtIP:      fmt.Sprintf("10.%d.%d.%d", ip>>16&0xff, ip>>8&0xff, ip&0xff),
	}
}

// inventoryHost is host i of the preloaded inventory: a worker for every
// tenth, an edgeworker otherwise, with a site and a zone label.
func inventoryHost(i int) apitype.HostCreate {
	h := edgeworker(i)
	if i%workerEvery == 0 {
		h.Personality = apitype.PersonalityWorker
	}
	h.Location = fmt.Sprintf("site %03d", i%sites)
	h.Labels = map[string]string{
		"site": fmt.Sprintf("site-%03d", i%sites),
		"zone": fmt.Sprintf("zone-%d", i%4),
		"rack": fmt.Sprintf("rack-%04d", i%racks),
	}
	return h
}

// hostAdded is the event an add through the API stores for h.
func hostAdded(h store.Host, now time.Time) *store.Event {
	return &store.Event{
		UUID: uuid.NewString(), Time: now, Code: inventory.CodeHostAdded,
		EntityType: "host", EntityID: "host=" + h.Hostname, Action: "host.add",
		Actor: "bench", Reason: fmt.Sprintf("host %s added with personality %s", h.Hostname, h.Personality),
	}
}

// preload stores hosts from..to-1 of the inventory (inventoryHost) directly
// through the controller's store, in transactions of batch hosts, with the
// same rows and events an add through the API makes. It is setup, much
// faster than one API request per host.
func preload(ctx context.Context, st store.Store, from, to, batch int) error {
	for lo := from; lo < to; lo += batch {
		hi := min(lo+batch, to)
		err := st.Write(ctx, func(tx store.Tx) error {
			now := time.Now().UTC().Truncate(time.Microsecond)
			mgmt, err := tx.ManagementPool()
			if err != nil {
				return err
			}
			for i := lo; i < hi; i++ {
				req := inventoryHost(i)
				h := store.Host{
					UUID: uuid.NewString(), Hostname: req.Hostname, Personality: req.Personality,
					Administrative: inventory.AdminLocked, Operational: inventory.OperDisabled,
					Availability: inventory.AvailOffline, InvProvision: inventory.ProvUnprovisioned,
					MgmtMAC: req.MgmtMAC, MgmtIP: req.MgmtIP, Location: req.Location,
					Group: req.Group, Labels: req.Labels, PoolID: mgmt.ID, CreatedAt: now, UpdatedAt: now,
				}
				id, err := tx.NextID("hosts")
				if err != nil {
					return err
				}
				h.ID = id
				if err := tx.InsertHost(&h); err != nil {
					return err
				}
				if err := tx.AppendEvent(hostAdded(h, now)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("preload hosts %d-%d: %w", lo, hi-1, err)
		}
	}
	return nil
}

// latencies collects the duration of every operation of a benchmark run,
// from any number of goroutines.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d ...time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d...)
	l.mu.Unlock()
}

// percentile returns the nearest-rank q-quantile (0 < q <= 1).
func (l *latencies) percentile(q float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	slices.Sort(l.d)
	i := int(math.Ceil(q*float64(len(l.d)))) - 1
	return l.d[max(i, 0)]
}

// report adds the median and 99th percentile latency to the benchmark's
// results, in ns like ns/op so that benchstat scales them (p50-sec).
func (l *latencies) report(b *testing.B) {
	b.ReportMetric(float64(l.percentile(0.50)), "p50-ns")
	b.ReportMetric(float64(l.percentile(0.99)), "p99-ns")
}
