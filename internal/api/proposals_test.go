package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/controller/controllertest"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// proposalRE finds the values an error message proposes to the person who
// reads it: a quoted value after "use", a value after "like" or "did you
// mean", one after "write it as" that ends the message, and the examples
// of Kubernetes' own messages ('…' after "e.g." or ", or"). (The
// inventory's tests read its messages the same way.)
var proposalRE = regexp.MustCompile(`use ("(?:[^"\\]|\\.)*")|like ("(?:[^"\\]|\\.)*"|[^\s,;()]+)|did you mean ([^\s?]+)\?|write it as ([^\s,;]+)$|(?:e\.g\.|,\s+or) '([^']*)'`)

func proposalsIn(t *testing.T, message string) []string {
	t.Helper()
	var out []string
	for _, m := range proposalRE.FindAllStringSubmatch(message, -1) {
		for _, v := range m[1:] {
			if v == "" {
				continue
			}
			if strings.HasPrefix(v, `"`) {
				u, err := strconv.Unquote(v)
				if err != nil {
					t.Fatalf("message %q: %v", message, err)
				}
				v = u
			}
			out = append(out, v)
		}
	}
	return out
}

// TestProposalsAccepted sends the API bad values of every field whose error
// message proposes a value, then sends each value proposed in its place:
// the server must not refuse the same field of a request that follows its
// own advice.
func TestProposalsAccepted(t *testing.T) {
	t.Parallel()
	in := controllertest.Start(t, storetest.SQLiteDSN(t), nil)
	r := newRaw(t, in)
	send := func(method, path, body string) (int, apitype.Error) {
		t.Helper()
		code, out := r.do(method, path, in.AdminToken, "application/json", body)
		var e apitype.Error
		if code >= 400 {
			if err := json.Unmarshal(out, &e); err != nil {
				t.Fatalf("%s %s %s: %d %s", method, path, body, code, out)
			}
		}
		return code, e
	}
	for _, body := range []string{`{"name":"press"}`,
		`{"hostname":"edge-02","personality":"edgeworker","mgmt_ip":"192.168.204.12","group":"press"}`,
		`{"hostname":"edge-03","personality":"edgeworker","mgmt_ip":"192.168.204.13","group":"press"}`} {
		path := "/v1/hosts"
		if strings.Contains(body, `"name"`) {
			path = "/v1/groups"
		}
		if code, e := send("POST", path, body); code != http.StatusCreated {
			t.Fatalf("POST %s %s: %d %+v", path, body, code, e)
		}
	}
	q := strconv.Quote
	for _, tc := range []struct {
		field, method, path string
		body                func(v string) string
		bad                 []string
	}{
		{"hostname", "POST", "/v1/hosts", func(v string) string {
			return fmt.Sprintf(`{"hostname":%s,"personality":"edgeworker","mgmt_ip":"192.168.204.20"}`, q(v))
		}, []string{"Edge_01", "edge_07", "EDGE 08", "Edge-09", "0F8FAD5B-D9CB-469F-A165-70867728950E", "édge"}},
		{"mgmt_mac", "POST", "/v1/hosts", func(v string) string {
			return fmt.Sprintf(`{"hostname":"edge-21","personality":"edgeworker","mgmt_ip":"192.168.204.21","mgmt_mac":%s}`, q(v))
		}, []string{"52:54:00", "zz:54:00:ab:cd:01"}},
		{"labels", "POST", "/v1/hosts/edge-02/labels", func(v string) string {
			if k, val, ok := strings.Cut(v, "="); ok { // a proposal of key=value
				return fmt.Sprintf(`{"labels":{%s:%s}}`, q(k), q(val))
			}
			return fmt.Sprintf(`{"labels":{%s:"x"}}`, q(v))
		}, []string{"-zone", "zone_"}},
		{"labels", "POST", "/v1/hosts/edge-02/labels", func(v string) string {
			if k, val, ok := strings.Cut(v, "="); ok { // a proposal of key=value
				return fmt.Sprintf(`{"labels":{%s:%s}}`, q(k), q(val))
			}
			if v == "" {
				return `{"labels":{}}`
			}
			return fmt.Sprintf(`{"labels":{"zone":%s}}`, q(v))
		}, []string{"", "has space"}},
		{"name", "POST", "/v1/groups", func(v string) string { return fmt.Sprintf(`{"name":%s}`, q(v)) },
			[]string{"", "Press Line", "press.line"}},
		{"name", "POST", "/v1/addrpools", func(v string) string {
			return fmt.Sprintf(`{"name":%s,"network":"10.1.0.0/24","mode":"dynamic"}`, q(v))
		}, []string{"Site-A", "site_a"}},
		{"network", "POST", "/v1/addrpools", func(v string) string {
			return fmt.Sprintf(`{"name":"site-b","network":%s,"mode":"dynamic"}`, q(v))
		}, []string{"10.2.0", "10.2.0.5/24", "10.2.0.1/31"}},
		{"ranges", "POST", "/v1/addrpools", func(v string) string {
			return fmt.Sprintf(`{"name":"site-c","network":"192.168.204.0/24","mode":"dynamic","ranges":[%s]}`, q(v))
		}, []string{"192.168.204.100", "a-b"}},
		{"name", "POST", "/v1/apps", func(v string) string {
			return fmt.Sprintf(`{"name":%s,"group":"press","image":"plc:1","members":["edge-02","edge-03"]}`, q(v))
		}, []string{"PLC_Bridge", "plc.bridge"}},
		{"image", "POST", "/v1/apps", func(v string) string {
			return fmt.Sprintf(`{"name":"hmi","group":"press","image":%s,"members":["edge-02","edge-03"]}`, q(v))
		}, []string{"", "a b", "reg_istry.example/x/y"}},
		{"vip", "POST", "/v1/apps", func(v string) string {
			return fmt.Sprintf(`{"name":"scada","group":"press","image":"scada:1","vip":%s,"members":["edge-02","edge-03"]}`, q(v))
		}, []string{"10.20.0.50", "::ffff:10.20.0.60/120", "::ffff:10.20.0.0/120", "::ffff:10.0.0.1/64"}},
		{"ttl", "POST", "/v1/tokens", func(v string) string { return fmt.Sprintf(`{"role":"reader","ttl":%s}`, q(v)) },
			[]string{"1 day", "-1h", "0s"}},
		{"ssh_user", "PATCH", "/v1/hosts/edge-02", func(v string) string { return fmt.Sprintf(`{"ssh_user":%s}`, q(v)) },
			[]string{"Root", "1admin"}},
		{"ssh_key", "PATCH", "/v1/hosts/edge-02", func(v string) string { return fmt.Sprintf(`{"ssh_key":%s}`, q(v)) },
			[]string{"/root/.ssh/id_ed25519", ".hidden"}},
	} {
		proposed := 0
		for _, bad := range tc.bad {
			code, e := send(tc.method, tc.path, tc.body(bad))
			if code != http.StatusBadRequest || e.Error.Field != tc.field {
				t.Errorf("%s %s with %s %q: %d %+v; want 400 blaming %s", tc.method, tc.path, tc.field, bad, code, e.Error, tc.field)
				continue
			}
			for _, p := range proposalsIn(t, e.Error.Message) {
				proposed++
				if code, again := send(tc.method, tc.path, tc.body(p)); again.Error.Code == "invalid_argument" && again.Error.Field == tc.field {
					t.Errorf("%s %q: the answer %q proposes %q, which is refused (%d): %s",
						tc.field, bad, e.Error.Message, p, code, again.Error.Message)
				}
			}
		}
		if proposed == 0 {
			t.Errorf("%s %s %s: no answer proposed a value; the case tests nothing", tc.method, tc.path, tc.field)
		}
	}
}
