package api_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/client"
	"hummingbird.io/hummingbird/internal/controller"
	"hummingbird.io/hummingbird/internal/controller/controllertest"
	"hummingbird.io/hummingbird/internal/pki"
	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/store/storetest"
	"hummingbird.io/hummingbird/internal/wire"
)

// wireNode is a node speaking the agent protocol to a controller over real
// TLS, as hb-agent does or as an attacker with a stolen token would: its
// own key, the certificate its last join or renewal got, and a new TLS
// connection for every call, so that each call shows the certificate it
// holds then.
type wireNode struct {
	t    *testing.T
	url  string
	key  *ecdsa.PrivateKey
	cert *tls.Certificate
	http *http.Client
	boot string
	seq  uint64
}

func newWireNode(t *testing.T, in *controllertest.Instance) *wireNode {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pki.Pool(in.CAPEM)
	if err != nil {
		t.Fatal(err)
	}
	n := &wireNode{t: t, url: in.URL, key: key, boot: rand.Text()}
	tr := &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if n.cert == nil {
				return &tls.Certificate{}, nil
			}
			return n.cert, nil
		}}}
	t.Cleanup(tr.CloseIdleConnections)
	n.http = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	return n
}

// csr is a certificate request of the node's key.
func (n *wireNode) csr() []byte {
	n.t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "node"}}, n.key)
	if err != nil {
		n.t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// use makes the node hold certPEM.
func (n *wireNode) use(certPEM []byte) {
	n.t.Helper()
	block, _ := pem.Decode(certPEM)
	if block == nil {
		n.t.Fatalf("no PEM certificate in %q", certPEM)
	}
	n.cert = &tls.Certificate{Certificate: [][]byte{block.Bytes}, PrivateKey: n.key}
}

// call posts body to an agent API path and returns the status and the body
// of the answer.
func (n *wireNode) call(path string, body any) (int, []byte) {
	n.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		n.t.Fatal(err)
	}
	resp, err := n.http.Post(n.url+path, "application/json", bytes.NewReader(b))
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		n.t.Fatal(err)
	}
	return resp.StatusCode, rb
}

// join asks to be admitted as hostname, claiming macs; on success the node
// holds the certificate it got.
func (n *wireNode) join(token, hostname string, macs ...string) (int, []byte) {
	n.t.Helper()
	code, body := n.call(wire.JoinPath, wire.JoinRequest{Capability: wire.CapabilityVersion, Token: token,
		Hostname: hostname, MACs: macs, CSR: n.csr()})
	if code == http.StatusOK {
		var resp wire.JoinResponse
		if err := json.Unmarshal(body, &resp); err != nil {
			n.t.Fatalf("join answer: %v: %s", err, body)
		}
		n.use(resp.Certificate)
	}
	return code, body
}

// beat sends a heartbeat and returns the status and the reply.
func (n *wireNode) beat() (int, wire.HeartbeatReply, []byte) {
	n.t.Helper()
	n.seq++
	code, body := n.call(wire.HeartbeatPath, wire.Heartbeat{Capability: wire.CapabilityVersion, Seq: n.seq, Boot: n.boot})
	var reply wire.HeartbeatReply
	if code == http.StatusOK {
		if err := json.Unmarshal(body, &reply); err != nil {
			n.t.Fatalf("heartbeat reply: %v: %s", err, body)
		}
	}
	return code, reply, body
}

// wantBeat checks that the node's heartbeat is answered with status want.
func (n *wireNode) wantBeat(who string, want int) {
	n.t.Helper()
	if code, _, body := n.beat(); code != want {
		n.t.Errorf("heartbeat of %s: %d %s, want %d", who, code, body, want)
	}
}

// enrollToken makes an enroll token, bound to host unless it is "".
func enrollToken(t *testing.T, api *client.Client, host string) apitype.TokenCreated {
	t.Helper()
	tok, err := api.CreateToken(context.Background(), apitype.TokenCreate{Type: "enroll", Host: host})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// tokenUses is how many joins the token with id has admitted.
func tokenUses(t *testing.T, api *client.Client, id string) int64 {
	t.Helper()
	toks, err := api.ListTokens(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range toks {
		if tok.ID == id {
			return tok.Uses
		}
	}
	t.Fatalf("no token %s", id)
	return 0
}

// wantEvents checks that exactly one event of action was logged for host.
func wantEvent(t *testing.T, api *client.Client, action, host string) {
	t.Helper()
	evs, err := api.ListEvents(context.Background(), client.EventFilter{Action: action, EntityID: "host=" + host})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Actor == "" || evs[0].Reason == "" {
		t.Errorf("%s events of %s: %+v, want one naming who and why", action, host, evs)
	}
}

// enrolledHost adds edge-01 with a management MAC, and its real agent,
// enrolled with a token bound to it and heard.
func enrolledHost(t *testing.T, in *controllertest.Instance) (*client.Client, *wireNode) {
	t.Helper()
	api := in.Client(t, in.AdminToken)
	if _, err := api.AddHost(context.Background(), apitype.HostCreate{Hostname: "edge-01", Personality: "edgeworker",
		MgmtMAC: "52:54:00:12:34:56", MgmtIP: "192.168.204.10"}); err != nil {
		t.Fatal(err)
	}
	real := newWireNode(t, in)
	if code, body := real.join(enrollToken(t, api, "edge-01").Secret, "edge-01", "52:54:00:12:34:56"); code != http.StatusOK {
		t.Fatalf("join of the real agent: %d %s", code, body)
	}
	real.wantBeat("the real agent", http.StatusOK)
	return api, real
}

// TestEnrollCannotTakeAnIdentity joins, as an attacker would, as a host
// whose agent is enrolled: the attacker has a fleet enroll token (or one
// bound to another host) and the host's management MAC, which any reader
// sees. The join is refused, the token's use is not counted, and the real
// agent keeps its identity, with auto-add or without. Only after
// host-agent-reset (an admin's, logged) or with a token bound to the host
// does a new node take the host.
func TestEnrollCannotTakeAnIdentity(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends() {
		for _, autoAdd := range []bool{false, true} {
			t.Run(b.Name+"/"+map[bool]string{false: "no auto-add", true: "auto-add"}[autoAdd], func(t *testing.T) {
				t.Parallel()
				testEnrollCannotTakeAnIdentity(t, controllertest.Start(t, dsnFor(t, b), func(c *controller.Config) { c.AgentAutoAdd = autoAdd }))
			})
		}
	}
}

func testEnrollCannotTakeAnIdentity(t *testing.T, in *controllertest.Instance) {
	api, real := enrolledHost(t, in)
	ctx := context.Background()
	reader, err := api.CreateToken(ctx, apitype.TokenCreate{Role: apitype.RoleReader})
	if err != nil {
		t.Fatal(err)
	}
	seen, err := in.Client(t, reader.Secret).GetHost(ctx, "edge-01")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.AddHost(ctx, apitype.HostCreate{Hostname: "edge-02", Personality: "edgeworker", MgmtIP: "192.168.204.11"}); err != nil {
		t.Fatal(err)
	}
	fleet := enrollToken(t, api, "")
	for _, c := range []struct {
		name  string
		token apitype.TokenCreated
		host  string // as the attacker spells it
		want  int
	}{
		{"fleet token", fleet, "edge-01", http.StatusForbidden},
		{"fleet token, hostname in capitals", fleet, " EDGE-01 ", http.StatusForbidden},
		{"token bound to another host", enrollToken(t, api, "edge-02"), "edge-01", http.StatusForbidden},
	} {
		attacker := newWireNode(t, in)
		if code, body := attacker.join(c.token.Secret, c.host, seen.MgmtMAC); code != c.want {
			t.Errorf("%s: join as %q: %d %s, want %d", c.name, c.host, code, body, c.want)
		}
		if n := tokenUses(t, api, c.token.Token.ID); n != 0 {
			t.Errorf("%s: the refused join counted %d uses of the token, want 0", c.name, n)
		}
		real.wantBeat("the real agent after "+c.name, http.StatusOK)
	}
	if h, err := api.GetHost(ctx, "edge-01"); err != nil || h.UUID != seen.UUID {
		t.Errorf("edge-01 after the attempts: %+v, %v; want the same host", h, err)
	}

	// An operator cannot reset an agent; an admin can, and says so in the log.
	op, err := api.CreateToken(ctx, apitype.TokenCreate{Role: apitype.RoleOperator})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Client(t, op.Secret).ResetHostAgent(ctx, "edge-01"); !problem.Is(err, problem.Forbidden) {
		t.Errorf("host-agent-reset by an operator: %v, want forbidden", err)
	}
	real.wantBeat("the real agent after an operator's reset", http.StatusOK)
	ha, err := api.ResetHostAgent(ctx, "edge-01")
	if err != nil {
		t.Fatal(err)
	}
	if ha.Agent != apitype.AgentNone || ha.Host != "edge-01" || ha.HostUUID != seen.UUID {
		t.Errorf("host-agent-reset answered %+v", ha)
	}
	wantEvent(t, api, "host.agent.reset", "edge-01")
	real.wantBeat("the reset agent", http.StatusForbidden)
	fresh := newWireNode(t, in)
	if code, body := fresh.join(fleet.Secret, "edge-01", seen.MgmtMAC); code != http.StatusOK {
		t.Errorf("join with the fleet token after host-agent-reset: %d %s", code, body)
	}
	fresh.wantBeat("the agent enrolled after the reset", http.StatusOK)

	// A token bound to the host enrolls it again, and the certificate before is refused.
	again := newWireNode(t, in)
	if code, body := again.join(enrollToken(t, api, "edge-01").Secret, "edge-01", seen.MgmtMAC); code != http.StatusOK {
		t.Errorf("join with a token bound to edge-01: %d %s", code, body)
	}
	again.wantBeat("the agent enrolled with a bound token", http.StatusOK)
	fresh.wantBeat("the agent replaced by a bound token's", http.StatusForbidden)
}

// TestAutoAddAddsOnlyNewHosts: with auto-add, a fleet token adds a new host
// and enrolls it; a second node calling itself by that name is refused and
// adds nothing.
func TestAutoAddAddsOnlyNewHosts(t *testing.T) {
	t.Parallel()
	in := controllertest.Start(t, "", func(c *controller.Config) {
		c.AgentAutoAdd = true
		c.MgmtSubnet, c.MgmtControllerIPs = "127.0.0.0/8", nil
	})
	api := in.Client(t, in.AdminToken)
	fleet := enrollToken(t, api, "")
	first := newWireNode(t, in)
	if code, body := first.join(fleet.Secret, "edge-new"); code != http.StatusOK {
		t.Fatalf("auto-added join: %d %s", code, body)
	}
	if code, body := newWireNode(t, in).join(fleet.Secret, "edge-new"); code != http.StatusForbidden {
		t.Errorf("second node joining as the auto-added host: %d %s, want 403", code, body)
	}
	first.wantBeat("the auto-added host's agent", http.StatusOK)
	hosts, err := api.ListHosts(context.Background(), client.HostFilter{})
	if err != nil || len(hosts) != 1 {
		t.Errorf("hosts after two joins as edge-new: %+v, %v; want one", hosts, err)
	}
}

// TestHostAgentRevoke: an admin revokes a host's agent certificate; the
// agent's next call is refused, the revocation is logged, a fleet token
// cannot enroll the host again, a new token bound to it can.
func TestHostAgentRevoke(t *testing.T) {
	t.Parallel()
	in := controllertest.Start(t, "", nil)
	api, real := enrolledHost(t, in)
	ctx := context.Background()
	if _, err := api.RevokeHostAgent(ctx, "edge-02"); !problem.Is(err, problem.NotFound) {
		t.Errorf("revoke of an unknown host: %v, want not found", err)
	}
	ha, err := api.RevokeHostAgent(ctx, "edge-01")
	if err != nil {
		t.Fatal(err)
	}
	if ha.Agent != apitype.AgentRevoked {
		t.Errorf("host-agent-revoke answered %+v", ha)
	}
	wantEvent(t, api, "host.agent.revoke", "edge-01")
	real.wantBeat("the revoked agent", http.StatusForbidden)
	if code, body := real.call(wire.RenewPath, wire.RenewRequest{Capability: wire.CapabilityVersion, CSR: real.csr()}); code != http.StatusForbidden {
		t.Errorf("renewal of the revoked certificate: %d %s, want 403", code, body)
	}
	fleet := enrollToken(t, api, "")
	if code, body := newWireNode(t, in).join(fleet.Secret, "edge-01", "52:54:00:12:34:56"); code != http.StatusForbidden {
		t.Errorf("join of the revoked host with a fleet token: %d %s, want 403", code, body)
	}
	if code, body := real.join(enrollToken(t, api, "edge-01").Secret, "edge-01", "52:54:00:12:34:56"); code != http.StatusOK {
		t.Fatalf("join with a new token bound to the host: %d %s", code, body)
	}
	real.wantBeat("the agent enrolled again", http.StatusOK)
}

// TestEnrollRace: nodes racing to enroll a host that has no agent yet, each
// with a fleet token of its own, on both databases: one wins, the others
// are refused, and the winner keeps the host.
func TestEnrollRace(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			in := controllertest.Start(t, dsnFor(t, b), nil)
			api := in.Client(t, in.AdminToken)
			if _, err := api.AddHost(context.Background(), apitype.HostCreate{Hostname: "edge-01", Personality: "edgeworker", MgmtIP: "192.168.204.10"}); err != nil {
				t.Fatal(err)
			}
			const racers = 8
			nodes := make([]*wireNode, racers)
			tokens := make([]string, racers) // one fleet token each, so that no token's use orders them
			for i := range nodes {
				nodes[i] = newWireNode(t, in)
				tokens[i] = enrollToken(t, api, "").Secret
			}
			codes := make([]int, racers)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i, n := range nodes {
				wg.Go(func() {
					<-start
					codes[i], _ = n.join(tokens[i], "edge-01")
				})
			}
			close(start)
			wg.Wait()
			var winners []*wireNode
			for i, code := range codes {
				if code == http.StatusOK {
					winners = append(winners, nodes[i])
				} else if code != http.StatusForbidden && code != http.StatusConflict {
					t.Errorf("racer %d: %d, want 200, 403 or 409", i, code)
				}
			}
			if len(winners) != 1 {
				t.Fatalf("%d of %d racers enrolled edge-01 (%v), want 1", len(winners), racers, codes)
			}
			winners[0].wantBeat("the winner", http.StatusOK)
		})
	}
}
