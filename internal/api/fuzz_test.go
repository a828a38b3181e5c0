package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/controller/controllertest"
	"hummingbird.io/hummingbird/internal/inventory"
)

// FuzzHostRequests sends arbitrary bodies to host add and update through
// the real handler and store. Whatever comes in, the answer is never a
// 5xx, an error always has the error shape, and whatever is stored passes
// the inventory's rules.
func FuzzHostRequests(f *testing.F) {
	for _, seed := range []string{
		`{"hostname":"edge-02","personality":"edgeworker","mgmt_ip":"192.168.204.12"}`,
		`{"hostname":"edge-03","personality":"worker","mgmt_ip":"192.168.204.13","bm_type":"ipmi","bm_ip":"10.0.0.1"}`,
		`{"hostname":"edge-04","personality":"edgeworker","mgmt_ip":"192.168.204.14","mgmt_mac":"52-54-00-AA-BB-CC","labels":{"a":"b"}}`,
		`{"location":"line 3","group":"press"}`,
		`{"labels":{"zone":"north"},"mgmt_mac":""}`,
		`{"hostname":`, `[]`, `null`, `"x"`, `{"hostname":1e400}`, `{"labels":{"a":1}}`,
		`{"hostname":"\u0000"}`, `{"mgmt_ip":"::ffff:192.168.204.20"}`,
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
	f.Fuzz(func(t *testing.T, body string, update bool) {
		method, path := "POST", "/v1/hosts"
		if update {
			method, path = "PATCH", "/v1/hosts/1"
		}
		code, out := do(method, path, body)
		if code >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, path, body, code, out)
		}
		if code >= 400 {
			var e apitype.Error
			if err := json.Unmarshal(out, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("%s %q: error without the error shape: %d %s", method, body, code, out)
			}
			return
		}
		var host apitype.Host
		if err := json.Unmarshal(out, &host); err != nil {
			t.Fatalf("%s %q: %d but no host: %s", method, body, code, out)
		}
		if err := inventory.CheckHostname(host.Hostname); err != nil {
			t.Fatalf("stored a bad hostname %q: %v", host.Hostname, err)
		}
		if host.MgmtMAC != "" {
			if mac, err := inventory.NormalizeMAC("mgmt_mac", host.MgmtMAC); err != nil || mac != host.MgmtMAC {
				t.Fatalf("stored MAC %q is not normalized (%v)", host.MgmtMAC, err)
			}
		}
		if err := inventory.CheckEnum("personality", host.Personality); err != nil {
			t.Fatalf("stored personality %q: %v", host.Personality, err)
		}
		// Start the next input from the same inventory: host 1 as it was.
		if update {
			restore := `{"hostname":"edge-01","personality":"edgeworker","mgmt_ip":"192.168.204.11",
				"mgmt_mac":"","location":"","group":"","labels":{},"bm_type":"","bm_ip":"","bm_username":"","ssh_user":"","ssh_key":""}`
			if code, out := do("PATCH", "/v1/hosts/1", restore); code != http.StatusOK {
				t.Fatalf("restore host 1: %d %s", code, out)
			}
		} else if code, out := do("DELETE", fmt.Sprintf("/v1/hosts/%d", host.ID), ""); code != http.StatusNoContent {
			t.Fatalf("delete added host: %d %s", code, out)
		}
	})
}
