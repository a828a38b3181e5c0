package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/controller/controllertest"
	"hummingbird.io/hummingbird/internal/pki"
	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/wire"
)

// agedNode is the agent of host, enrolled with a certificate signed age ago.
func agedNode(t *testing.T, in *controllertest.Instance, host string, age time.Duration) *wireNode {
	t.Helper()
	n := newWireNode(t, in)
	var certPEM []byte
	if err := in.Controller.Store.Write(context.Background(), func(tx store.Tx) error {
		h, err := tx.HostByHostname(host)
		if err != nil {
			return err
		}
		prev, err := tx.HostAgent(h.ID)
		if err != nil {
			return err
		}
		var serial string
		if certPEM, serial, err = pki.SignAgent(in.Controller.CA, n.csr(), h.UUID, prev, false, time.Now().Add(-age)); err != nil {
			return err
		}
		return tx.SetHostAgent(h.ID, serial)
	}); err != nil {
		t.Fatal(err)
	}
	n.use(certPEM)
	return n
}

// TestRenewWindow: renewal is offered, and granted, only when less than a
// third of the certificate's validity is left; earlier it is refused with a
// conflict that says when.
func TestRenewWindow(t *testing.T) {
	t.Parallel()
	in := controllertest.Start(t, "", nil)
	api := in.Client(t, in.AdminToken)
	if _, err := api.AddHost(context.Background(), apitype.HostCreate{Hostname: "edge-01", Personality: "edgeworker", MgmtIP: "192.168.204.10"}); err != nil {
		t.Fatal(err)
	}
	third := pki.AgentCertValidity / 3
	for _, c := range []struct {
		name  string
		age   time.Duration
		offer bool
		want  int
	}{
		{"new certificate", 0, false, http.StatusConflict},
		{"a day before the window", 2*third - 24*time.Hour, false, http.StatusConflict},
		{"a day into the window", 2*third + 24*time.Hour, true, http.StatusOK},
	} {
		n := agedNode(t, in, "edge-01", c.age)
		code, reply, body := n.beat()
		if code != http.StatusOK || (reply.RenewBy != nil) != c.offer {
			t.Errorf("%s: heartbeat: %d, renew_by %v, want renewal offered %t: %s", c.name, code, reply.RenewBy, c.offer, body)
		}
		code, body = n.call(wire.RenewPath, wire.RenewRequest{Capability: wire.CapabilityVersion, CSR: n.csr()})
		if code != c.want {
			t.Errorf("%s: renewal: %d %s, want %d", c.name, code, body, c.want)
			continue
		}
		if code != http.StatusOK {
			var e wire.Error
			if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != problem.Conflict.Code() {
				t.Errorf("%s: refused renewal: %v: %s", c.name, err, body)
			}
			n.wantBeat(c.name+" after a refused renewal", http.StatusOK)
			continue
		}
		var resp wire.RenewResponse
		if err := json.Unmarshal(body, &resp); err != nil {
			t.Fatal(err)
		}
		old := n.cert
		n.use(resp.Certificate)
		n.wantBeat(c.name+" with the renewed certificate", http.StatusOK)
		n.cert = old
		n.wantBeat(c.name+" with the certificate renewed away", http.StatusForbidden)
	}
}
