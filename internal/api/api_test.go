package api_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/client"
	"hummingbird.io/hummingbird/internal/controller/controllertest"
	"hummingbird.io/hummingbird/internal/pki"
	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// raw sends a request as it is, so tests can send what no client would.
type raw struct {
	t    *testing.T
	base string
	http *http.Client
}

func newRaw(t *testing.T, in *controllertest.Instance) *raw {
	t.Helper()
	pool, err := pki.Pool(in.CAPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &raw{t: t, base: in.URL, http: &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
	}}}
}

func (r *raw) do(method, path, token, contentType, body string) (int, []byte) {
	r.t.Helper()
	req, err := http.NewRequest(method, r.base+path, strings.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := r.http.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatal(err)
	}
	return resp.StatusCode, b
}

func TestAPI(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			t.Run("bad requests", func(t *testing.T) { t.Parallel(); testBadRequests(t, controllertest.Start(t, dsnFor(t, b), nil)) })
			t.Run("auth", func(t *testing.T) { t.Parallel(); testAuth(t, controllertest.Start(t, dsnFor(t, b), nil)) })
			t.Run("concurrent adds", func(t *testing.T) { t.Parallel(); testConcurrentAdds(t, controllertest.Start(t, dsnFor(t, b), nil)) })
			t.Run("paging and filters", func(t *testing.T) { t.Parallel(); testPaging(t, controllertest.Start(t, dsnFor(t, b), nil)) })
			t.Run("concurrent allocation", func(t *testing.T) {
				t.Parallel()
				testConcurrentAllocation(t, controllertest.Start(t, dsnFor(t, b), nil))
			})
		})
	}
}

// dsnFor gives the controller "" (its own SQLite file) or a PostgreSQL URL.
func dsnFor(t *testing.T, b storetest.Backend) string {
	if b.Name == "sqlite" {
		return ""
	}
	return b.DSN(t)
}

func testBadRequests(t *testing.T, in *controllertest.Instance) {
	r := newRaw(t, in)
	tok := in.AdminToken
	const js = "application/json"
	if code, body := r.do("POST", "/v1/groups", tok, js, `{"name":"press"}`); code != http.StatusCreated {
		t.Fatalf("add group: %d %s", code, body)
	}
	good := `{"hostname":"edge-01","personality":"edgeworker","mgmt_ip":"192.168.204.10","mgmt_mac":"52:54:00:00:00:01"}`
	if code, body := r.do("POST", "/v1/hosts", tok, js, good); code != http.StatusCreated {
		t.Fatalf("add edge-01: %d %s", code, body)
	}
	for _, tc := range []struct {
		name, method, path, ctype, body string
		status                          int
		code, field                     string
	}{
		{"malformed json", "POST", "/v1/hosts", js, `{"hostname":`, 400, "invalid_argument", ""},
		{"not an object", "POST", "/v1/hosts", js, `["edge-02"]`, 400, "invalid_argument", ""},
		{"null body", "POST", "/v1/hosts", js, `null`, 400, "invalid_argument", ""},
		{"empty body", "POST", "/v1/hosts", js, ``, 400, "invalid_argument", ""},
		{"trailing data", "POST", "/v1/hosts", js, `{"hostname":"a1","personality":"worker"} {}`, 400, "invalid_argument", ""},
		{"wrong content type", "POST", "/v1/hosts", "text/plain", good, 400, "invalid_argument", ""},
		{"unknown field", "POST", "/v1/hosts", js, `{"hostname":"edge-02","personality":"edgeworker","colour":"red"}`, 400, "invalid_argument", "colour"},
		{"wrong type", "POST", "/v1/hosts", js, `{"hostname":42,"personality":"edgeworker"}`, 400, "invalid_argument", "hostname"},
		{"labels wrong type", "POST", "/v1/hosts", js, `{"hostname":"edge-02","personality":"edgeworker","labels":"a=b"}`, 400, "invalid_argument", "labels"},
		{"oversize", "POST", "/v1/hosts", js, `{"hostname":"` + strings.Repeat("a", 2<<20) + `"}`, 413, "too_large", ""},
		{"bad hostname", "POST", "/v1/hosts", js, `{"hostname":"Edge_02","personality":"edgeworker","mgmt_ip":"192.168.204.11"}`, 400, "invalid_argument", "hostname"},
		{"long hostname", "POST", "/v1/hosts", js, `{"hostname":"` + strings.Repeat("a", 64) + `","personality":"edgeworker","mgmt_ip":"192.168.204.11"}`, 400, "invalid_argument", "hostname"},
		{"bad mac", "POST", "/v1/hosts", js, `{"hostname":"edge-02","personality":"edgeworker","mgmt_mac":"52:54:00:zz:00:01","mgmt_ip":"192.168.204.11"}`, 400, "invalid_argument", "mgmt_mac"},
		{"bad ip", "POST", "/v1/hosts", js, `{"hostname":"edge-02","personality":"edgeworker","mgmt_ip":"192.168.204.300"}`, 400, "invalid_argument", "mgmt_ip"},
		{"ip outside", "POST", "/v1/hosts", js, `{"hostname":"edge-02","personality":"edgeworker","mgmt_ip":"10.0.0.1"}`, 400, "invalid_argument", "mgmt_ip"},
		{"unknown personality", "POST", "/v1/hosts", js, `{"hostname":"edge-02","personality":"gateway","mgmt_ip":"192.168.204.11"}`, 400, "invalid_argument", "personality"},
		{"edgeworker bmc", "POST", "/v1/hosts", js, `{"hostname":"edge-02","personality":"edgeworker","mgmt_ip":"192.168.204.11","bm_type":"ipmi"}`, 400, "invalid_argument", "bm_type"},
		{"bad ssh user", "POST", "/v1/hosts", js, `{"hostname":"edge-02","personality":"edgeworker","mgmt_ip":"192.168.204.11","ssh_user":"Root!"}`, 400, "invalid_argument", "ssh_user"},
		{"ssh key path", "POST", "/v1/hosts", js, `{"hostname":"edge-02","personality":"edgeworker","mgmt_ip":"192.168.204.11","ssh_key":"../id_rsa"}`, 400, "invalid_argument", "ssh_key"},
		{"duplicate hostname", "POST", "/v1/hosts", js, `{"hostname":"edge-01","personality":"edgeworker","mgmt_ip":"192.168.204.11"}`, 409, "conflict", "hostname"},
		{"duplicate mac", "POST", "/v1/hosts", js, `{"hostname":"edge-02","personality":"edgeworker","mgmt_ip":"192.168.204.11","mgmt_mac":"52:54:00:00:00:01"}`, 409, "conflict", "mgmt_mac"},
		{"duplicate ip", "POST", "/v1/hosts", js, `{"hostname":"edge-02","personality":"edgeworker","mgmt_ip":"192.168.204.10"}`, 409, "conflict", "mgmt_ip"},
		{"patch unknown field", "PATCH", "/v1/hosts/edge-01", js, `{"uptime":"1"}`, 400, "invalid_argument", "uptime"},
		{"patch bad mac", "PATCH", "/v1/hosts/edge-01", js, `{"mgmt_mac":"nope"}`, 400, "invalid_argument", "mgmt_mac"},
		{"patch bad ssh user", "PATCH", "/v1/hosts/edge-01", js, `{"ssh_user":"Root!"}`, 400, "invalid_argument", "ssh_user"},
		{"patch ssh key path", "PATCH", "/v1/hosts/edge-01", js, `{"ssh_key":"../id_rsa"}`, 400, "invalid_argument", "ssh_key"},
		{"patch unknown host", "PATCH", "/v1/hosts/edge-99", js, `{"location":"x"}`, 404, "not_found", ""},
		{"show unknown host", "GET", "/v1/hosts/edge-99", "", "", 404, "not_found", ""},
		{"show unknown id", "GET", "/v1/hosts/99", "", "", 404, "not_found", ""},
		{"delete unknown host", "DELETE", "/v1/hosts/edge-99", "", "", 404, "not_found", ""},
		{"upgrade edgeworker", "POST", "/v1/hosts/edge-01/upgrade", "", "", 422, "not_supported", ""},
		{"bad filter", "GET", "/v1/hosts?personality=gateway", "", "", 400, "invalid_argument", "personality"},
		{"unknown query", "GET", "/v1/hosts?sort=name", "", "", 400, "invalid_argument", "sort"},
		{"bad limit", "GET", "/v1/hosts?limit=0", "", "", 400, "invalid_argument", "limit"},
		{"huge limit", "GET", "/v1/hosts?limit=99999", "", "", 400, "invalid_argument", "limit"},
		{"bad marker", "GET", "/v1/hosts?marker=abc", "", "", 400, "invalid_argument", "marker"},
		{"bad label selector", "GET", "/v1/hosts?label==x", "", "", 400, "invalid_argument", "label"},
		{"unknown path", "GET", "/v1/nodes", "", "", 404, "not_found", ""},
		{"wrong method", "PUT", "/v1/hosts", js, good, 405, "method_not_allowed", ""},
		{"bad role", "POST", "/v1/tokens", js, `{"role":"root"}`, 400, "invalid_argument", "role"},
		{"bad ttl", "POST", "/v1/tokens", js, `{"role":"reader","ttl":"forever"}`, 400, "invalid_argument", "ttl"},
		{"unknown token", "DELETE", "/v1/tokens/nope", "", "", 404, "not_found", ""},
		{"bad event limit", "GET", "/v1/events?limit=-1", "", "", 400, "invalid_argument", "limit"},
		{"repeated limit", "GET", "/v1/hosts?limit=5&limit=abc", "", "", 400, "invalid_argument", "limit"},
		{"zero marker", "GET", "/v1/hosts?marker=0", "", "", 400, "invalid_argument", "marker"},
		{"query on a path without any", "GET", "/v1/tokens?all=1", "", "", 400, "invalid_argument", "all"},
		{"query on host show", "GET", "/v1/hosts/edge-01?x=1", "", "", 400, "invalid_argument", "x"},
		{"label value type", "POST", "/v1/hosts", js, `{"hostname":"edge-02","personality":"edgeworker","labels":{"a":1}}`, 400, "invalid_argument", "labels"},
		{"uuid hostname", "POST", "/v1/hosts", js, `{"hostname":"0f8fad5b-d9cb-469f-a165-70867728950e","personality":"edgeworker","mgmt_ip":"192.168.204.11"}`, 400, "invalid_argument", "hostname"},
		{"token description control", "POST", "/v1/tokens", js, "{\"role\":\"reader\",\"description\":\"a\\u0007b\"}", 400, "invalid_argument", "description"},
	} {
		status, body := r.do(tc.method, tc.path, tok, tc.ctype, tc.body)
		var e apitype.Error
		if err := json.Unmarshal(body, &e); err != nil {
			t.Errorf("%s: body is not the error shape: %v: %s", tc.name, err, body)
			continue
		}
		got := []any{status, e.Error.Code, e.Error.Field}
		want := []any{tc.status, tc.code, tc.field}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: (-want +got):\n%s\nbody: %s", tc.name, diff, body)
		}
		if e.Error.Message == "" {
			t.Errorf("%s: no message", tc.name)
		}
	}
	// A merge-patch body is JSON too.
	if code, body := r.do("PATCH", "/v1/hosts/edge-01", tok, "application/merge-patch+json", `{"group":"press"}`); code != 200 {
		t.Errorf("merge-patch content type: %d %s", code, body)
	}
	// Nothing that was refused changed the stored host.
	h, err := in.Client(t, tok).GetHost(context.Background(), "edge-01")
	if err != nil {
		t.Fatal(err)
	}
	if h.MgmtMAC != "52:54:00:00:00:01" || h.Location != "" || h.Group != "press" {
		t.Errorf("edge-01 changed by refused requests: %+v", h)
	}
}

func testAuth(t *testing.T, in *controllertest.Instance) {
	ctx := context.Background()
	r := newRaw(t, in)
	admin := in.Client(t, in.AdminToken)
	mk := func(role, ttl string) string {
		c, err := admin.CreateToken(ctx, apitype.TokenCreate{Role: role, TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		return c.Secret
	}
	reader, operator, expired := mk("reader", ""), mk("operator", ""), mk("reader", "1ns")
	revoked := mk("operator", "")
	// An enroll token lets an agent join; it is no credential on the REST API.
	enroll, err := admin.CreateToken(ctx, apitype.TokenCreate{Type: "enroll"})
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.DeleteToken(ctx, strings.SplitN(strings.TrimPrefix(revoked, "hb_"), ".", 2)[0]); err != nil {
		t.Fatal(err)
	}
	add := `{"hostname":"edge-%d","personality":"edgeworker","mgmt_ip":"192.168.204.%d"}`
	req, _ := http.NewRequest("GET", r.base+"/v1/hosts", nil)
	req.Header.Set("Authorization", "bearer "+reader)
	if resp, err := r.http.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("lower-case bearer scheme: %v %v", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}
	for i, tc := range []struct {
		name, method, path, token, body string
		status                          int
	}{
		{"no token", "GET", "/v1/hosts", "", "", 401},
		{"garbage token", "GET", "/v1/hosts", "garbage", "", 401},
		{"wrong secret", "GET", "/v1/hosts", reader[:len(reader)-2] + "xx", "", 401},
		{"expired", "GET", "/v1/hosts", expired, "", 401},
		{"revoked", "GET", "/v1/hosts", revoked, "", 401},
		{"enroll token reads", "GET", "/v1/hosts", enroll.Secret, "", 401},
		{"enroll token writes", "POST", "/v1/hosts", enroll.Secret, fmt.Sprintf(add, 4, 14), 401},
		{"reader reads", "GET", "/v1/hosts", reader, "", 200},
		{"reader reads events", "GET", "/v1/events", reader, "", 200},
		{"reader writes", "POST", "/v1/hosts", reader, fmt.Sprintf(add, 1, 11), 403},
		{"reader lists tokens", "GET", "/v1/tokens", reader, "", 403},
		{"operator writes", "POST", "/v1/hosts", operator, fmt.Sprintf(add, 2, 12), 201},
		{"operator makes tokens", "POST", "/v1/tokens", operator, `{"role":"admin"}`, 403},
		{"admin writes", "POST", "/v1/hosts", in.AdminToken, fmt.Sprintf(add, 3, 13), 201},
		{"health needs nothing", "GET", "/healthz", "", "", 200},
		{"ready needs nothing", "GET", "/readyz", "", "", 200},
		{"metrics need nothing", "GET", "/metrics", "", "", 200},
	} {
		status, body := r.do(tc.method, tc.path, tc.token, "application/json", tc.body)
		if status != tc.status {
			t.Errorf("%d %s: status %d, want %d: %s", i, tc.name, status, tc.status, body)
		}
	}
	// The last admin token cannot be deleted; the token list shows no secret.
	toks, err := admin.ListTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range toks {
		if tok.Role == "admin" {
			err := admin.DeleteToken(ctx, tok.ID)
			if !problem.Is(err, problem.Conflict) {
				t.Errorf("deleting the last admin token: %v, want a conflict", err)
			}
		}
	}
	status, body := r.do("GET", "/v1/tokens", in.AdminToken, "", "")
	if status != 200 || strings.Contains(string(body), strings.SplitN(reader, ".", 2)[1]) {
		t.Errorf("token list: %d, leaks a secret: %s", status, body)
	}
}

func testConcurrentAdds(t *testing.T, in *controllertest.Instance) {
	ctx := context.Background()
	c := in.Client(t, in.AdminToken)
	const n = 50
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.AddHost(ctx, apitype.HostCreate{
				Hostname: fmt.Sprintf("edge-%02d", i), Personality: "edgeworker",
				MgmtIP: fmt.Sprintf("192.168.204.%d", 10+i), MgmtMAC: fmt.Sprintf("52:54:00:00:01:%02x", i),
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("distinct add %d: %v", i, err)
		}
	}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.AddHost(ctx, apitype.HostCreate{
				Hostname: "same", Personality: "edgeworker", MgmtIP: fmt.Sprintf("192.168.204.%d", 100+i),
			})
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case problem.Is(err, problem.Conflict):
		default:
			t.Errorf("same-name add: %v, want success or conflict", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d adds of one hostname succeeded, want exactly 1", ok)
	}
	hosts, err := c.ListHosts(ctx, client.HostFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(hosts) != n+1 {
		t.Errorf("%d hosts stored, want %d", len(hosts), n+1)
	}
	evs, err := c.ListEvents(ctx, client.EventFilter{Action: "host.add", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != n+1 {
		t.Errorf("%d host.add events, want one per stored host (%d)", len(evs), n+1)
	}
}

func testPaging(t *testing.T, in *controllertest.Instance) {
	ctx := context.Background()
	c := in.Client(t, in.AdminToken)
	if _, err := c.AddGroup(ctx, apitype.GroupCreate{Name: "press"}); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := 0; i < 7; i++ {
		name := fmt.Sprintf("edge-%d", i)
		req := apitype.HostCreate{Hostname: name, Personality: "edgeworker", MgmtIP: fmt.Sprintf("192.168.204.%d", 10+i)}
		if i%2 == 0 {
			req.Labels = map[string]string{"zone": "north"}
			req.Group = "press"
			want = append(want, name)
		}
		if _, err := c.AddHost(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	names := func(hosts []apitype.Host) []string {
		var out []string
		for _, h := range hosts {
			out = append(out, h.Hostname)
		}
		return out
	}
	all, err := c.ListHosts(ctx, client.HostFilter{PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 7 {
		t.Errorf("paged list has %d hosts, want 7", len(all))
	}
	for _, f := range []client.HostFilter{
		{Labels: []string{"zone=north"}, PageSize: 3},
		{Labels: []string{"zone"}},
		{Group: "press", Personality: "edgeworker"},
	} {
		got, err := c.ListHosts(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, names(got)); diff != "" {
			t.Errorf("ListHosts(%+v) (-want +got):\n%s", f, diff)
		}
	}
}

// testConcurrentAllocation adds 50 hosts at once to a dynamic pool whose
// range holds exactly 50 addresses: every add succeeds with its own address,
// and the next one finds the pool full.
func testConcurrentAllocation(t *testing.T, in *controllertest.Instance) {
	ctx := context.Background()
	c := in.Client(t, in.AdminToken)
	r := newRaw(t, in)
	if code, body := r.do("POST", "/v1/addrpools", in.AdminToken, "application/json",
		`{"name":"site-a","network":"10.20.0.0/24","mode":"dynamic","ranges":["10.20.0.100-10.20.0.149"]}`); code != 201 {
		t.Fatalf("add pool: %d %s", code, body)
	}
	const n = 50
	var wg sync.WaitGroup
	ips := make([]string, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := c.AddHost(ctx, apitype.HostCreate{
				Hostname: fmt.Sprintf("edge-%02d", i), Personality: "edgeworker",
				MgmtMAC: fmt.Sprintf("52:54:00:00:02:%02x", i), Pool: "site-a",
			})
			ips[i], errs[i] = h.MgmtIP, err
		}()
	}
	wg.Wait()
	seen := map[string]int{}
	for i, err := range errs {
		if err != nil {
			t.Errorf("add %d: %v", i, err)
			continue
		}
		if j, dup := seen[ips[i]]; dup {
			t.Errorf("hosts %d and %d both got %s", j, i, ips[i])
		}
		seen[ips[i]] = i
	}
	for a := 100; a < 150; a++ {
		if _, ok := seen[fmt.Sprintf("10.20.0.%d", a)]; !ok {
			t.Errorf("10.20.0.%d was not given although the pool had to fill up", a)
		}
	}
	_, err := c.AddHost(ctx, apitype.HostCreate{Hostname: "edge-full", Personality: "edgeworker", MgmtMAC: "52:54:00:00:03:01", Pool: "site-a"})
	if !problem.Is(err, problem.Conflict) {
		t.Errorf("add to a full pool: %v, want a conflict", err)
	}
}
