package api_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/controller"
	"hummingbird.io/hummingbird/internal/controller/controllertest"
	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/pki"
	"hummingbird.io/hummingbird/internal/wire"
)

// FuzzAgentRequests sends arbitrary bodies to the agent API's join and
// heartbeat over real TLS to a real controller (auto-add on): join without
// a client certificate, heartbeat with the certificate of edge-01's
// enrolled agent. In a body, @token@ stands for a fleet enroll token and
// @csr@ for a valid certificate request. Whatever comes in, the answer is
// never a 5xx, an error has the error shape, a join admits only a new host
// with a valid hostname and a certificate naming it, and edge-01's agent
// keeps its identity.
func FuzzAgentRequests(f *testing.F) {
	in := controllertest.Start(f, "", func(c *controller.Config) {
		c.AgentAutoAdd = true
		c.MgmtSubnet, c.MgmtControllerIPs = "127.0.0.0/8", nil
	})
	ctx := context.Background()
	api := in.Client(f, in.AdminToken)
	if _, err := api.AddHost(ctx, apitype.HostCreate{Hostname: "edge-01", Personality: "edgeworker", MgmtIP: "127.0.0.2"}); err != nil {
		f.Fatal(err)
	}
	bound, err := api.CreateToken(ctx, apitype.TokenCreate{Type: "enroll", Host: "edge-01"})
	if err != nil {
		f.Fatal(err)
	}
	fleet, err := api.CreateToken(ctx, apitype.TokenCreate{Type: "enroll"})
	if err != nil {
		f.Fatal(err)
	}
	pool, err := pki.Pool(in.CAPEM)
	if err != nil {
		f.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "node"}}, key)
	if err != nil {
		f.Fatal(err)
	}
	csr := base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	newClient := func(cert *tls.Certificate) *http.Client {
		cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		tr := &http.Transport{TLSClientConfig: cfg}
		f.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 30 * time.Second}
	}
	anonymous := newClient(nil)
	post := func(c *http.Client, path, body string) (int, []byte, error) {
		resp, err := c.Post(in.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}

	// edge-01's agent, enrolled with the token bound to it.
	code, body, err := post(anonymous, wire.JoinPath, `{"capability":2,"token":"`+bound.Secret+`","hostname":"edge-01","csr":"`+csr+`"}`)
	if err != nil || code != http.StatusOK {
		f.Fatalf("join of edge-01: %d %s %v", code, body, err)
	}
	var joined wire.JoinResponse
	if err := json.Unmarshal(body, &joined); err != nil {
		f.Fatal(err)
	}
	block, _ := pem.Decode(joined.Certificate)
	agent := newClient(&tls.Certificate{Certificate: [][]byte{block.Bytes}, PrivateKey: key})
	beatOK := func(t *testing.T) {
		t.Helper()
		body := `{"capability":2,"seq":1,"boot":"` + rand.Text() + `"}`
		if code, out, err := post(agent, wire.HeartbeatPath, body); err != nil || code != http.StatusOK {
			t.Fatalf("edge-01's agent lost its identity: heartbeat %d %s %v", code, out, err)
		}
	}

	for _, seed := range []string{
		`{"capability":2,"token":"@token@","hostname":"edge-new","macs":["52:54:00:00:00:01"],"mgmt_mac":"52:54:00:00:00:01","csr":"@csr@"}`,
		`{"capability":2,"token":"@token@","hostname":"edge-01","macs":[],"csr":"@csr@"}`,
		`{"capability":2,"token":"@token@","hostname":" EDGE-01","csr":"@csr@"}`,
		`{"capability":2,"token":"@token@","hostname":"Edge_02","csr":"@csr@"}`,
		`{"capability":2,"token":"@token@","hostname":"edge-02","csr":"bm90IGEgY3Ny"}`,
		`{"capability":2,"token":"hb_aaaaaaaa.bbbb","hostname":"edge-02","csr":"@csr@"}`,
		`{"capability":2,"token":"@token@","hostname":"edge-02","mgmt_mac":"zz","csr":"@csr@"}`,
		`{"capability":2,"seq":2,"boot":"b","inventory_hash":"h","desired_version":0}`,
		`{"capability":2,"seq":3,"boot":"b","apps":[{"name":"plc","role":"active","epoch":1,"healthy":true,"peers":1}]}`,
		`{"capability":1,"seq":18446744073709551615,"boot":"b"}`,
		`{"capability":2,"seq":1,"boot":""}`,
		`{"apps":[{"name":"x","last":{"epoch":1,"to":"y","at":"2026-01-01T00:00:00Z"}}]}`,
		`{"token":`, `[]`, `null`, `"x"`, `{"seq":-1}`, `{"hostname":1e400}`, `{"csr":"\u0000"}`, `{"unknown":1}`, ``,
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, body string, heartbeat bool) {
		body = strings.NewReplacer("@token@", fleet.Secret, "@csr@", csr).Replace(body)
		c, path := anonymous, wire.JoinPath
		if heartbeat {
			c, path = agent, wire.HeartbeatPath
		}
		code, out, err := post(c, path, body)
		if err != nil {
			t.Fatalf("%s %q: %v", path, body, err)
		}
		if code >= 500 {
			t.Fatalf("%s %q: %d %s", path, body, code, out)
		}
		if code >= 400 {
			var e wire.Error
			if err := json.Unmarshal(out, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("%s %q: error without the error shape: %d %s", path, body, code, out)
			}
			beatOK(t)
			return
		}
		if heartbeat {
			var reply wire.HeartbeatReply
			if err := json.Unmarshal(out, &reply); err != nil || reply.IntervalMillis <= 0 {
				t.Fatalf("heartbeat %q: %d but reply %s (%v)", body, code, out, err)
			}
			beatOK(t)
			return
		}
		var resp wire.JoinResponse
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatalf("join %q: %d but %s (%v)", body, code, out, err)
		}
		if resp.Hostname == "edge-01" || resp.HostUUID == joined.HostUUID {
			t.Fatalf("join %q took edge-01: %s", body, out)
		}
		if err := inventory.CheckHostname(resp.Hostname); err != nil {
			t.Fatalf("join %q admitted a bad hostname %q: %v", body, resp.Hostname, err)
		}
		h, err := api.GetHost(ctx, resp.Hostname)
		if err != nil || h.UUID != resp.HostUUID {
			t.Fatalf("join %q admitted %s (%s), which the inventory has as %+v (%v)", body, resp.Hostname, resp.HostUUID, h, err)
		}
		block, _ := pem.Decode(resp.Certificate)
		if block == nil {
			t.Fatalf("join %q: no certificate: %s", body, out)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatalf("join %q: the certificate: %v", body, err)
		}
		if cert.Subject.CommonName != resp.HostUUID {
			t.Fatalf("join %q: the certificate names %q, not the host %s", body, cert.Subject.CommonName, resp.HostUUID)
		}
		if err := api.DeleteHost(ctx, resp.Hostname); err != nil {
			t.Fatalf("delete the admitted host: %v", err)
		}
		beatOK(t)
	})
}
