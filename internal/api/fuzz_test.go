package api_test

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/controller/controllertest"
)

// The reference rules the fuzzing compares the server with, written here
// from the standards and the README, not taken from the inventory, so that
// a wrong rule there shows as a disagreement.
var (
	// RFC 1123 (2.1) on RFC 952: labels of letters, digits and '-', 1 to
	// 63 characters, neither starting nor ending with '-'; Hummingbird
	// takes them lowercase only (they become Kubernetes node names).
	refLabelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	// Hummingbird refuses names that read as a host's uuid: the 8-4-4-4-12
	// form and 32 hex digits.
	refUUIDRE = regexp.MustCompile(`^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})$`)
	// EUI-48 written as six pairs of hex digits separated by ':' or by
	// '-', as three groups of four separated by '.', or as twelve hex
	// digits.
	refMACRE         = regexp.MustCompile(`^([0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{2}(-[0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{4}(\.[0-9A-Fa-f]{4}){2}|[0-9A-Fa-f]{12})$`)
	refPersonalities = []string{"controller", "worker", "storage", "edgeworker"}
)

// refHostname says whether name is a hostname Hummingbird takes: RFC 1123,
// lowercase, 253 characters at most, not digits and dots only (that reads
// as a host id), not of the form of a uuid.
func refHostname(name string) bool {
	if len(name) == 0 || len(name) > 253 || refUUIDRE.MatchString(name) {
		return false
	}
	for _, label := range strings.Split(name, ".") {
		if !refLabelRE.MatchString(label) {
			return false
		}
	}
	return strings.Trim(name, "0123456789.") != ""
}

// refMAC returns the MAC s stands for in lowercase colon form, and whether
// it is one a NIC can have: EUI-48, unicast (the group bit of the first
// octet clear), not all zeros. Space around it is ignored.
func refMAC(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if !refMACRE.MatchString(s) {
		return "", false
	}
	b, err := hex.DecodeString(strings.NewReplacer(":", "", "-", "", ".", "").Replace(s))
	if err != nil || len(b) != 6 || b[0]&1 == 1 || string(b) == "\x00\x00\x00\x00\x00\x00" {
		return "", false
	}
	pairs := make([]string, 6)
	for i, o := range b {
		pairs[i] = fmt.Sprintf("%02x", o)
	}
	return strings.Join(pairs, ":"), true
}

// sent is s as the server reads it from a JSON string: encoding/json
// replaces invalid UTF-8.
func sent(t *testing.T, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var out string
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestReferenceRules(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"edge-01": true, "e": true, "10-20": true, "1-2.3-4": true, "0edge": true, "a.b-c.d": true,
		strings.Repeat("a", 63): true, strings.Repeat("a", 64): false,
		strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("a", 61): true,
		strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("a", 62): false,
		"": false, "Edge-01": false, "edge_01": false, "-edge": false, "edge-": false, "a..b": false, "a.": false,
		"123": false, "1.2": false, "0f8fad5b-d9cb-469f-a165-70867728950e": false, strings.Repeat("ab", 16): false,
		"0f8fad5b-d9cb-469f-a165-70867728950": true,
	} {
		if got := refHostname(name); got != want {
			t.Errorf("refHostname(%q) = %v, want %v", name, got, want)
		}
	}
	for in, want := range map[string]string{
		"52:54:00:AB:cd:01": "52:54:00:ab:cd:01", "52-54-00-ab-cd-01": "52:54:00:ab:cd:01", "5254.00ab.cd01": "52:54:00:ab:cd:01",
		"525400ABcd01": "52:54:00:ab:cd:01", "525400abcd0": "", "525400abcd0102": "",
		" 52:54:00:ab:cd:01\t": "52:54:00:ab:cd:01", "52:54-00:ab:cd:01": "", "52:54:00:ab:cd": "", "01:00:5e:00:00:01": "",
		"ff:ff:ff:ff:ff:ff": "", "00:00:00:00:00:00": "", "00:00:00:00:fe:80:00:00": "", "5:54:00:ab:cd:01": "",
	} {
		if got, ok := refMAC(in); got != want || ok != (want != "") {
			t.Errorf("refMAC(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

// FuzzHostRequests sends arbitrary bodies to host add and update through
// the real handler and store. Whatever comes in, the answer is never a
// 5xx, an error always has the error shape, and what is stored passes the
// reference rules above. The input is also sent as the hostname and as the
// MAC of an otherwise valid host: the server must accept it exactly when
// the reference rules do, so a rule of the inventory that is too strict
// or too lax shows as a disagreement either way.
func FuzzHostRequests(f *testing.F) {
	for _, seed := range []string{
		`{"hostname":"edge-02","personality":"edgeworker","mgmt_ip":"192.168.204.12"}`,
		`{"hostname":"edge-03","personality":"worker","mgmt_ip":"192.168.204.13","bm_type":"ipmi","bm_ip":"10.0.0.1"}`,
		`{"hostname":"edge-04","personality":"edgeworker","mgmt_ip":"192.168.204.14","mgmt_mac":"52-54-00-AA-BB-CC","labels":{"a":"b"}}`,
		`{"location":"line 3","group":"press"}`,
		`{"labels":{"zone":"north"},"mgmt_mac":""}`,
		`{"hostname":`, `[]`, `null`, `"x"`, `{"hostname":1e400}`, `{"labels":{"a":1}}`,
		`{"hostname":"\u0000"}`, `{"mgmt_ip":"::ffff:192.168.204.20"}`,
		`{"hostname":"10-20"}`, `{"hostname":"Edge_01"}`, `{"HOSTNAME":"edge-05"}`, `{"hostname":" edge-05 "}`,
		// Names and MACs, to send as such.
		"edge-05", "10-20", "1.2", "a-", strings.Repeat("deadbeef", 4), "Edge_01", " edge-05\t", "0f8fad5b-d9cb-469f-a165-70867728950e", "a.b-c.d", "-a", "a..b",
		"52:54:00:ab:cd:ef", "52-54-00-AB-CD-EF", "5254.00ab.cdef", "525400abcdef", "525400abcdef0102", "01:00:5e:00:00:01", "00:00:00:00:00:00",
		"52:54:00:ab:cd", "52:54:00-ab:cd:ef", " 52:54:00:ab:cd:ef ", "\xff\xfe",
		strings.Repeat("a", 63), strings.Repeat("a", 64), strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("a", 61),
		strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("a", 62),
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	in := controllertest.Start(f, "", nil)
	h := in.Controller.API().Handler()
	do := func(method, path, body string) (int, []byte) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+in.AdminToken)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.Bytes()
	}
	const original = `{"hostname":"edge-01","personality":"edgeworker","mgmt_ip":"192.168.204.11"}`
	if code, body := do("POST", "/v1/hosts", original); code != http.StatusCreated {
		f.Fatalf("seed host: %d %s", code, body)
	}
	// errorOf reads an error answer, failing when it lacks the error shape.
	errorOf := func(t *testing.T, what string, code int, out []byte) apitype.Error {
		t.Helper()
		var e apitype.Error
		if err := json.Unmarshal(out, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
			t.Fatalf("%s: error without the error shape: %d %s", what, code, out)
		}
		return e
	}
	hostOf := func(t *testing.T, what string, code int, out []byte) apitype.Host {
		t.Helper()
		var host apitype.Host
		if err := json.Unmarshal(out, &host); err != nil {
			t.Fatalf("%s: %d but no host: %s", what, code, out)
		}
		return host
	}
	// Each input starts from the same inventory, host 1 as it was: what a
	// request added or changed is undone at once, before it is checked, so
	// that a failure leaves nothing behind for the fuzzer's minimizing.
	undo := func(t *testing.T, host apitype.Host, update bool) {
		t.Helper()
		if update {
			restore := `{"hostname":"edge-01","personality":"edgeworker","mgmt_ip":"192.168.204.11",
				"mgmt_mac":"","location":"","group":"","labels":{},"bm_type":"","bm_ip":"","bm_username":"","ssh_user":"","ssh_key":""}`
			if code, out := do("PATCH", "/v1/hosts/1", restore); code != http.StatusOK {
				t.Fatalf("restore host 1: %d %s", code, out)
			}
			return
		}
		if code, out := do("DELETE", fmt.Sprintf("/v1/hosts/%d", host.ID), ""); code != http.StatusNoContent {
			t.Fatalf("delete added host: %d %s", code, out)
		}
	}
	f.Fuzz(func(t *testing.T, body string, update bool) {
		method, path := "POST", "/v1/hosts"
		if update {
			method, path = "PATCH", "/v1/hosts/1"
		}
		what := fmt.Sprintf("%s %s %q", method, path, body)
		// The hostname and MAC the body gives, read as the server reads it.
		var fields struct {
			Hostname *string `json:"hostname"`
			MgmtMAC  *string `json:"mgmt_mac"`
		}
		parsed := json.Unmarshal([]byte(body), &fields) == nil
		code, out := do(method, path, body)
		if code >= 500 {
			t.Fatalf("%s: %d %s", what, code, out)
		}
		if code >= 400 {
			e := errorOf(t, what, code, out)
			if parsed && e.Error.Code == "invalid_argument" {
				if e.Error.Field == "hostname" && fields.Hostname != nil && refHostname(strings.TrimSpace(*fields.Hostname)) {
					t.Fatalf("%s: refused hostname %q, which RFC 1123 allows: %s", what, *fields.Hostname, out)
				}
				if _, ok := refMAC(deref(fields.MgmtMAC)); e.Error.Field == "mgmt_mac" && ok {
					t.Fatalf("%s: refused MAC %q, which is a unicast EUI-48: %s", what, *fields.MgmtMAC, out)
				}
			}
		} else {
			host := hostOf(t, what, code, out)
			undo(t, host, update)
			if !refHostname(host.Hostname) {
				t.Fatalf("%s: stored hostname %q, which RFC 1123 refuses", what, host.Hostname)
			}
			if parsed && fields.Hostname != nil && strings.TrimSpace(*fields.Hostname) != host.Hostname {
				t.Fatalf("%s: stored hostname %q for %q", what, host.Hostname, *fields.Hostname)
			}
			if host.MgmtMAC != "" {
				if mac, ok := refMAC(host.MgmtMAC); !ok || mac != host.MgmtMAC {
					t.Fatalf("%s: stored MAC %q is not a unicast EUI-48 in lowercase colon form", what, host.MgmtMAC)
				}
			}
			if parsed && deref(fields.MgmtMAC) != "" {
				if mac, ok := refMAC(*fields.MgmtMAC); !ok || mac != host.MgmtMAC {
					t.Fatalf("%s: stored MAC %q for %q (reference: %q, %v)", what, host.MgmtMAC, *fields.MgmtMAC, mac, ok)
				}
			}
			if !slices.Contains(refPersonalities, host.Personality) {
				t.Fatalf("%s: stored personality %q", what, host.Personality)
			}
		}

		// The input as the hostname of a valid host: accepted exactly when
		// the reference accepts it (edge-01 is taken).
		name := sent(t, body)
		req, _ := json.Marshal(apitype.HostCreate{Hostname: name, Personality: "edgeworker", MgmtIP: "192.168.204.12"})
		what = fmt.Sprintf("POST /v1/hosts with hostname %q", body)
		code, out = do("POST", "/v1/hosts", string(req))
		want := refHostname(strings.TrimSpace(name))
		switch {
		case code == http.StatusCreated:
			host := hostOf(t, what, code, out)
			undo(t, host, false)
			if !want || host.Hostname != strings.TrimSpace(name) {
				t.Fatalf("%s: stored as %q; the reference refuses it", what, host.Hostname)
			}
		case code == http.StatusConflict && strings.TrimSpace(name) == "edge-01":
		case code == http.StatusBadRequest:
			if e := errorOf(t, what, code, out); want || e.Error.Field != "hostname" {
				t.Fatalf("%s: refused (field %q), but the reference accepts it: %s", what, e.Error.Field, out)
			}
		default:
			t.Fatalf("%s: %d %s", what, code, out)
		}

		// The input as the MAC of a valid host.
		mac := sent(t, body)
		req, _ = json.Marshal(apitype.HostCreate{Hostname: "edge-02", Personality: "edgeworker", MgmtIP: "192.168.204.12", MgmtMAC: mac})
		what = fmt.Sprintf("POST /v1/hosts with mgmt_mac %q", body)
		code, out = do("POST", "/v1/hosts", string(req))
		wantMAC, ok := refMAC(mac)
		if mac == "" {
			ok = true // no MAC
		}
		switch code {
		case http.StatusCreated:
			host := hostOf(t, what, code, out)
			undo(t, host, false)
			if !ok || host.MgmtMAC != wantMAC {
				t.Fatalf("%s: stored as %q; the reference gives %q, %v", what, host.MgmtMAC, wantMAC, ok)
			}
		case http.StatusBadRequest:
			if e := errorOf(t, what, code, out); ok || e.Error.Field != "mgmt_mac" {
				t.Fatalf("%s: refused (field %q), but the reference accepts it as %q: %s", what, e.Error.Field, wantMAC, out)
			}
		default:
			t.Fatalf("%s: %d %s", what, code, out)
		}
	})
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
