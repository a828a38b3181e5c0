package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"hummingbird.io/hummingbird/internal/apitype"

	"hummingbird.io/hummingbird/internal/api"
	"hummingbird.io/hummingbird/internal/auth"
	"hummingbird.io/hummingbird/internal/fm"
	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// The -update flag rewrites the golden files: go test ./internal/api/ -run Golden -update
// It is defined in init, after every package variable, so that another test
// file of this package may define it too.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files in testdata")
	}
}

func goldenUpdating() bool {
	f := flag.Lookup("update")
	if f == nil {
		return false
	}
	g, ok := f.Value.(flag.Getter)
	return ok && g.Get() == true
}

// goldenClock is a clock the test moves: one minute before each request.
type goldenClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *goldenClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *goldenClock) tick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Minute)
}

// goldenUUIDs hands out uuids in order.
type goldenUUIDs struct {
	mu sync.Mutex
	n  int
}

func (u *goldenUUIDs) next() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.n++
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", u.n)
}

// goldenServer is an API server whose clock, uuids and token secrets are
// predictable, on a fresh SQLite database.
type goldenServer struct {
	h     http.Handler
	st    *specFaultStore
	clock *goldenClock
	admin string
	roles map[string]string // bearer token -> role, to name it in golden files
}

func goldenNewServer(t *testing.T) *goldenServer {
	t.Helper()
	st := &specFaultStore{Store: storetest.Open(t, storetest.SQLiteDSN(t))}
	clock := &goldenClock{now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	ids := &goldenUUIDs{}
	tokens := auth.New(st, auth.Options{Clock: clock.Now, Rand: rand.NewChaCha8([32]byte{'h', 'b'}), NewUUID: ids.next})
	admin, err := tokens.Bootstrap(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	srv := api.New(api.Deps{
		Inventory: specInventory(t, st, inventory.Options{Clock: clock.Now, NewUUID: ids.next}),
		Tokens:    tokens,
		Ready:     st.Ping,
		Version:   "v0.1.0",
		Log:       slog.New(slog.DiscardHandler),
		Registry:  prometheus.NewRegistry(),
	})
	return &goldenServer{h: srv.Handler(), st: st, clock: clock, admin: admin, roles: map[string]string{admin: "admin"}}
}

// goldenToken makes a token with role through the API.
func (g *goldenServer) goldenToken(t *testing.T, role string) string {
	t.Helper()
	var created struct {
		Token string `json:"token"`
	}
	body := g.do(t, "", "POST", "/v1/tokens", g.admin, `{"role":"`+role+`"}`)
	if err := json.Unmarshal(body, &created); err != nil || created.Token == "" {
		t.Fatalf("create %s token: %v: %s", role, err, body)
	}
	g.roles[created.Token] = role
	return created.Token
}

// goldenSecret matches the secret part of a bearer token in an answer.
var goldenSecret = regexp.MustCompile(`("token": "hb_[a-z2-7]+\.)[a-z2-7]+"`)

// goldenShownHeaders are the response headers golden files record.
var goldenShownHeaders = []string{"Allow", "Content-Type", "Retry-After", "Www-Authenticate"}

// do sends a request one minute after the previous one and, when name is
// set, compares the exchange with testdata/<name>.golden.
func (g *goldenServer) do(t *testing.T, name, method, path, token, body string) []byte {
	t.Helper()
	g.clock.tick()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	g.h.ServeHTTP(rec, r)
	if name == "" {
		if rec.Code >= 300 {
			t.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
		}
		return rec.Body.Bytes()
	}

	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", method, path)
	if token != "" {
		role := g.roles[token]
		if role == "" {
			role = "unknown"
		}
		fmt.Fprintf(&b, "Authorization: Bearer <%s token>\n", role)
	}
	if body != "" {
		if len(body) > 200 {
			body = fmt.Sprintf("%s… (%d bytes)", body[:60], len(body))
		}
		fmt.Fprintf(&b, "Content-Type: application/json\n\n%s\n", body)
	}
	fmt.Fprintf(&b, "\n%d %s\n", rec.Code, http.StatusText(rec.Code))
	headers := append([]string(nil), goldenShownHeaders...)
	sort.Strings(headers)
	for _, h := range headers {
		if v := rec.Header().Get(h); v != "" {
			fmt.Fprintf(&b, "%s: %s\n", h, v)
		}
	}
	// The API answers compact JSON; the golden files show it indented.
	shown := rec.Body.String()
	var indented bytes.Buffer
	if json.Indent(&indented, rec.Body.Bytes(), "", "  ") == nil {
		shown = indented.String()
	}
	if out := goldenSecret.ReplaceAllString(shown, `${1}<secret>"`); out != "" {
		fmt.Fprintf(&b, "\n%s", out)
	}
	goldenCompare(t, name, b.String())
	return rec.Body.Bytes()
}

// goldenCompare checks got against testdata/<name>.golden, or rewrites it
// under -update.
func goldenCompare(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if goldenUpdating() {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/api/ -run Golden -update to make it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got); if the change is meant, rerun with -update:\n%s", path, diff)
	}
}

func TestGoldenHosts(t *testing.T) {
	t.Parallel()
	g := goldenNewServer(t)
	op := g.goldenToken(t, "operator")
	reader := g.goldenToken(t, "reader")

	g.do(t, "group_add", "POST", "/v1/groups", op, `{"name":"plant-a","description":"plant A"}`)
	added := g.do(t, "host_add", "POST", "/v1/hosts", op,
		`{"hostname":"edge-01","personality":"edgeworker","mgmt_mac":"52-54-00-12-34-56","mgmt_ip":"192.168.204.10","location":"line-3","group":"plant-a","labels":{"zone":"north","gpu":"no"}}`)
	g.do(t, "", "POST", "/v1/hosts", op, `{"hostname":"edge-02","personality":"edgeworker","mgmt_ip":"192.168.204.11","labels":{"zone":"south"}}`)
	g.do(t, "host_add_worker", "POST", "/v1/hosts", op,
		`{"hostname":"worker-01","personality":"worker","mgmt_ip":"::ffff:192.168.204.20","bm_type":"redfish","bm_ip":"10.0.0.20","bm_username":"root"}`)
	g.do(t, "host_list_page1", "GET", "/v1/hosts?limit=2", reader, "")
	g.do(t, "host_list_page2", "GET", "/v1/hosts?limit=2&marker=2", reader, "")
	g.do(t, "host_list_filtered", "GET", "/v1/hosts?personality=edgeworker&label=zone=north", reader, "")
	g.do(t, "host_show", "GET", "/v1/hosts/edge-01", reader, "")
	g.do(t, "group_show", "GET", "/v1/groups/plant-a", reader, "")
	var first apitype.Host
	if err := json.Unmarshal(added, &first); err != nil || first.UUID == "" {
		t.Fatalf("host_add answer: %v: %s", err, added)
	}
	g.do(t, "host_show_by_uuid", "GET", "/v1/hosts/"+first.UUID, reader, "")
	g.do(t, "host_update", "PATCH", "/v1/hosts/edge-01", op, `{"location":"line-4","group":"","labels":{"zone":"north","gpu":"yes"}}`)
	g.do(t, "host_update_unchanged", "PATCH", "/v1/hosts/edge-01", op, `{"location":"line-4"}`)
	g.do(t, "host_delete", "DELETE", "/v1/hosts/worker-01", op, "")
	page1 := g.do(t, "event_list", "GET", "/v1/events?entity_type=host&limit=3", reader, "")
	var events apitype.EventList
	if err := json.Unmarshal(page1, &events); err != nil || events.Next == "" {
		t.Fatalf("event_list answer has no next page: %v: %s", err, page1)
	}
	g.do(t, "event_list_page2", "GET", "/v1/events?entity_type=host&limit=3&marker="+events.Next, reader, "")
	g.do(t, "version", "GET", "/v1/version", reader, "")
}

func TestGoldenGroupLabels(t *testing.T) {
	t.Parallel()
	g := goldenNewServer(t)
	op := g.goldenToken(t, "operator")
	reader := g.goldenToken(t, "reader")
	g.do(t, "", "POST", "/v1/groups", op, `{"name":"press","description":"the presses of hall 2"}`)
	g.do(t, "", "POST", "/v1/groups", op, `{"name":"paint"}`)
	g.do(t, "group_label_assign", "POST", "/v1/groups/press/labels", op, `{"labels":{"line":"3","example.com/hall":"2"}}`)
	g.do(t, "group_label_remove", "DELETE", "/v1/groups/press/labels?key=example.com/hall", op, "")
	g.do(t, "group_label_list", "GET", "/v1/groups/press/labels", reader, "")
	g.do(t, "group_list", "GET", "/v1/groups", reader, "")
	g.do(t, "error_label_reserved", "POST", "/v1/groups/press/labels", op, `{"labels":{"hummingbird.io/group":"paint"}}`)
	g.do(t, "error_label_missing", "DELETE", "/v1/groups/press/labels?key=line&key=hall", op, "")
	g.do(t, "event_list_groups", "GET", "/v1/events?entity_type=group&entity_id=group%3Dpress", reader, "")
}

func TestGoldenPools(t *testing.T) {
	t.Parallel()
	g := goldenNewServer(t)
	admin := g.goldenToken(t, "admin")
	op := g.goldenToken(t, "operator")
	reader := g.goldenToken(t, "reader")
	g.do(t, "pool_add", "POST", "/v1/addrpools", admin,
		`{"name":"site-a","network":"10.20.0.0/24","mode":"dynamic","ranges":["10.20.0.100-10.20.0.199"],"gateway":"10.20.0.1","dns":["10.20.0.1"],"ntp":["10.20.0.1"],"lease_seconds":3600}`)
	g.do(t, "pool_host_add_dynamic", "POST", "/v1/hosts", op,
		`{"hostname":"edge-a1","personality":"edgeworker","mgmt_mac":"52:54:00:00:0a:01","pool":"site-a"}`)
	g.do(t, "pool_list", "GET", "/v1/addrpools", reader, "")
	g.do(t, "pool_show_management", "GET", "/v1/addrpools/management", reader, "")
	g.do(t, "error_pool_overlap", "POST", "/v1/addrpools", admin, `{"name":"site-b","network":"10.20.0.0/16","mode":"static"}`)
	g.do(t, "error_pool_in_use", "DELETE", "/v1/addrpools/site-a", admin, "")
	g.do(t, "error_pool_management", "DELETE", "/v1/addrpools/management", admin, "")
}

func TestGoldenTokens(t *testing.T) {
	t.Parallel()
	g := goldenNewServer(t)
	g.do(t, "token_create", "POST", "/v1/tokens", g.admin, `{"role":"operator","description":"line crew","ttl":"720h"}`)
	g.do(t, "token_list", "GET", "/v1/tokens", g.admin, "")
	id := specTokenID(t, g.goldenToken(t, "reader"))
	g.do(t, "token_delete", "DELETE", "/v1/tokens/"+id, g.admin, "")
	g.do(t, "event_list_tokens", "GET", "/v1/events?entity_type=token", g.admin, "")
}

func TestGoldenErrors(t *testing.T) {
	t.Parallel()
	g := goldenNewServer(t)
	op := g.goldenToken(t, "operator")
	reader := g.goldenToken(t, "reader")
	g.do(t, "", "POST", "/v1/hosts", op, `{"hostname":"edge-01","personality":"edgeworker","mgmt_ip":"192.168.204.10"}`)

	for _, c := range []struct{ name, method, path, token, body string }{
		{"error_bad_hostname", "POST", "/v1/hosts", op, `{"hostname":"Edge_01","personality":"edgeworker","mgmt_ip":"192.168.204.12"}`},
		{"error_bad_personality", "POST", "/v1/hosts", op, `{"hostname":"edge-02","personality":"router","mgmt_ip":"192.168.204.12"}`},
		{"error_mgmt_ip_outside", "POST", "/v1/hosts", op, `{"hostname":"edge-02","personality":"edgeworker","mgmt_ip":"10.1.1.1"}`},
		{"error_edgeworker_bmc", "POST", "/v1/hosts", op, `{"hostname":"edge-02","personality":"edgeworker","mgmt_ip":"192.168.204.12","bm_ip":"10.0.0.1"}`},
		{"error_unknown_field", "POST", "/v1/hosts", op, `{"hostname":"edge-02","personality":"edgeworker","mgmt_ip":"192.168.204.12","ip":"x"}`},
		{"error_malformed_json", "POST", "/v1/hosts", op, `{"hostname":"edge-02",}`},
		{"error_wrong_type", "POST", "/v1/hosts", op, `{"hostname":["edge-02"],"personality":"edgeworker"}`},
		{"error_bad_filter", "GET", "/v1/hosts?availability=up", reader, ""},
		{"error_bad_limit", "GET", "/v1/hosts?limit=5000", reader, ""},
		{"error_unknown_query", "GET", "/v1/events?host=edge-01", reader, ""},
		{"error_no_token", "GET", "/v1/hosts", "", ""},
		{"error_bad_token", "GET", "/v1/hosts", "hb_aaaaaaaa.bbbbbbbbbbbb", ""},
		{"error_forbidden", "POST", "/v1/hosts", reader, `{"hostname":"edge-02","personality":"edgeworker","mgmt_ip":"192.168.204.12"}`},
		{"error_forbidden_tokens", "GET", "/v1/tokens", op, ""},
		{"error_not_found", "GET", "/v1/hosts/edge-99", reader, ""},
		{"error_conflict", "POST", "/v1/hosts", op, `{"hostname":"edge-02","personality":"edgeworker","mgmt_ip":"192.168.204.10"}`},
		{"error_last_admin", "DELETE", "/v1/tokens/" + specTokenID(t, g.admin), g.admin, ""},
		{"error_too_large", "PATCH", "/v1/hosts/edge-01", op, `{"location":"` + strings.Repeat("x", api.MaxBodyBytes) + `"}`},
		{"error_not_supported", "POST", "/v1/hosts/edge-01/upgrade", op, ""},
		{"error_method_not_allowed", "PUT", "/v1/hosts/edge-01", op, `{"location":"x"}`},
		{"error_no_such_path", "GET", "/v1/nodes", reader, ""},
	} {
		g.do(t, c.name, c.method, c.path, c.token, c.body)
	}
}

// TestGoldenAlarms: alarm-list pages in the order alarms were raised, and
// says what to fix in a bad limit or marker.
func TestGoldenAlarms(t *testing.T) {
	t.Parallel()
	g := goldenNewServer(t)
	reader := g.goldenToken(t, "reader")
	ids := &goldenUUIDs{n: 100}
	const repair = "Check the node's power and its network path to the controller, and that hb-agent runs on it (systemctl status hb-agent)."
	for _, a := range []struct{ host, severity, state string }{
		{"edge-01", fm.Major, "degraded"}, {"edge-02", fm.Critical, "failed"}, {"edge-03", fm.Major, "degraded"},
	} {
		g.clock.tick()
		err := g.st.Write(context.Background(), func(tx store.Tx) error {
			return fm.Raise(tx, store.Alarm{
				UUID: ids.next(), AlarmID: fm.AlarmHeartbeatLoss, EntityType: "host", EntityInstance: "host=" + a.host,
				Severity: a.severity, Reason: a.host + ": management heartbeat loss (" + a.state + ")",
				AlarmType: "communication", ProbableCause: "loss of signal", ProposedRepairAction: repair,
				ServiceAffecting: a.severity == fm.Critical,
			}, ids.next(), g.clock.Now())
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	page1 := g.do(t, "alarm_list_page1", "GET", "/v1/alarms?limit=2", reader, "")
	var alarms apitype.AlarmList
	if err := json.Unmarshal(page1, &alarms); err != nil || alarms.Next == "" {
		t.Fatalf("alarm_list_page1 answer has no next page: %v: %s", err, page1)
	}
	g.do(t, "alarm_list_page2", "GET", "/v1/alarms?limit=2&marker="+alarms.Next, reader, "")
	g.do(t, "alarm_list_filtered", "GET", "/v1/alarms?severity=major&limit=1&marker=1", reader, "")
	g.do(t, "error_bad_alarm_limit", "GET", "/v1/alarms?limit=0", reader, "")
	g.do(t, "error_bad_alarm_marker", "GET", "/v1/alarms?marker=edge-01", reader, "")
}

func TestGoldenFaults(t *testing.T) {
	t.Parallel()
	g := goldenNewServer(t)
	g.st.set(specErrBusy)
	g.do(t, "error_unavailable", "GET", "/v1/hosts", g.admin, "")
	g.do(t, "readyz_unavailable", "GET", "/readyz", "", "")
	g.st.set(specErrFault)
	g.do(t, "error_internal", "GET", "/v1/hosts/edge-01", g.admin, "")
}
