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
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/client"
	"hummingbird.io/hummingbird/internal/controller"
	"hummingbird.io/hummingbird/internal/controller/controllertest"
	"hummingbird.io/hummingbird/internal/pki"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
	"hummingbird.io/hummingbird/internal/wire"
)

// testAgent calls the agent API of a controller as one host's agent, over mutual TLS with a
// certificate the controller's CA signed for the host, as hb-agent join leaves it.
type testAgent struct {
	t      *testing.T
	name   string
	uuid   string
	serial string // of the certificate it presents
	cert   atomic.Pointer[tls.Certificate]
	url    string
	http   *http.Client
	seq    uint64
}

func newTestAgent(t *testing.T, in *controllertest.Instance, hostname string) *testAgent {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: hostname}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	var h store.Host
	var (
		certPEM []byte
		serial  string
	)
	if err := in.Controller.Store.Write(context.Background(), func(tx store.Tx) error {
		var err error
		if h, err = tx.HostByHostname(hostname); err != nil {
			return err
		}
		if certPEM, serial, err = pki.SignAgent(in.Controller.CA, csr, h.UUID, "", false, time.Now()); err != nil {
			return err
		}
		return tx.SetHostAgent(h.ID, serial)
	}); err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	cert := &tls.Certificate{Certificate: [][]byte{block.Bytes}, PrivateKey: key}
	pool, err := pki.Pool(in.CAPEM)
	if err != nil {
		t.Fatal(err)
	}
	a := &testAgent{t: t, name: hostname, uuid: h.UUID, serial: serial, url: in.URL}
	a.cert.Store(cert)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return a.cert.Load(), nil }}}
	t.Cleanup(tr.CloseIdleConnections)
	a.http = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	return a
}

// renew renews the agent's certificate, as hb-agent does, and presents
// the new one from its next connection.
func (a *testAgent) renew() {
	a.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		a.t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		a.t.Fatal(err)
	}
	var resp wire.RenewResponse
	a.post(wire.RenewPath, wire.RenewRequest{Capability: wire.CapabilityVersion,
		CSR: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})}, &resp)
	block, _ := pem.Decode(resp.Certificate)
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		a.t.Fatal(err)
	}
	a.serial = leaf.SerialNumber.Text(16)
	a.cert.Store(&tls.Certificate{Certificate: [][]byte{block.Bytes}, PrivateKey: key})
	a.http.Transport.(*http.Transport).CloseIdleConnections()
}

// post sends body to an agent API path and decodes the answer into out.
func (a *testAgent) post(path string, body, out any) {
	a.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		a.t.Fatal(err)
	}
	resp, err := a.http.Post(a.url+path, "application/json", bytes.NewReader(b))
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		a.t.Fatalf("%s of %s: %d %s", path, a.name, resp.StatusCode, rb)
	}
	if err := json.Unmarshal(rb, out); err != nil {
		a.t.Fatalf("%s of %s: %v: %s", path, a.name, err, rb)
	}
}

// beat sends a heartbeat of capability 2 with these app statuses.
func (a *testAgent) beat(apps ...wire.AppStatus) wire.HeartbeatReply {
	a.t.Helper()
	return a.beatAs(wire.CapabilityVersion, apps...)
}

func (a *testAgent) beatAs(capability int, apps ...wire.AppStatus) wire.HeartbeatReply {
	a.t.Helper()
	a.seq++
	var reply wire.HeartbeatReply
	a.post(wire.HeartbeatPath, wire.Heartbeat{Capability: capability, Seq: a.seq, Boot: "boot-" + a.name, Apps: apps}, &reply)
	return reply
}

func (a *testAgent) desired() wire.Desired {
	a.t.Helper()
	var d wire.Desired
	a.post(wire.DesiredPath, struct{}{}, &d)
	return d
}

// TestAgentApps drives the controller's side of redundant apps through the agent API, as the
// members' agents do, on both databases: the desired state and its version in heartbeat
// replies, the active member following the highest epoch, one event per switchover, the
// loss-of-redundancy alarm, and a planned switchover from request to done.
func TestAgentApps(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			// Certificates may be renewed at any time: the test renews a new one.
			testAgentApps(t, controllertest.Start(t, dsnFor(t, b), func(c *controller.Config) { c.AgentRenewBefore = pki.AgentCertValidity + time.Hour }))
		})
	}
}

func testAgentApps(t *testing.T, in *controllertest.Instance) {
	ctx := context.Background()
	c := in.Client(t, in.AdminToken)
	if _, err := c.AddGroup(ctx, apitype.GroupCreate{Name: "press"}); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"edge-01", "edge-02", "edge-03", "edge-04"} {
		group := "press"
		if name == "edge-03" {
			group = "" // the witness is in no group
		}
		if _, err := c.AddHost(ctx, apitype.HostCreate{Hostname: name, Personality: "edgeworker",
			MgmtIP: fmt.Sprintf("192.168.204.%d", 10+i), Group: group}); err != nil {
			t.Fatal(err)
		}
		if name == "edge-01" || name == "edge-02" { // the members are in service
			if _, err := c.UnlockHost(ctx, name); err != nil {
				t.Fatal(err)
			}
		}
	}
	e1, e2, e3, e4 := newTestAgent(t, in, "edge-01"), newTestAgent(t, in, "edge-02"), newTestAgent(t, in, "edge-03"), newTestAgent(t, in, "edge-04")

	// No apps: version 0, nothing to run.
	if r := e1.beat(); r.DesiredVersion != 0 || r.IntervalMillis != 30000 {
		t.Errorf("heartbeat before any app: %+v; want version 0 every 30 s", r)
	}
	if d := e1.desired(); d.Version != 0 || len(d.Apps) != 0 {
		t.Errorf("desired state before any app: %+v", d)
	}

	if _, err := c.AddApp(ctx, apitype.AppCreate{Name: "plc", Group: "press", Image: "plc:1", Port: 502, VIP: "10.20.0.50/24",
		Members: []string{"edge-01", "edge-02"}, Witness: "edge-03"}); err != nil {
		t.Fatal(err)
	}
	v1 := e1.beat().DesiredVersion
	if v1 == 0 {
		t.Fatal("the version of a member stays 0 after app-add")
	}
	if v := e3.beat().DesiredVersion; v != v1 {
		t.Errorf("the witness's version is %d, the member's %d; want the same desired state", v, v1)
	}
	if v := e4.beat().DesiredVersion; v != 0 {
		t.Errorf("a host in no app has version %d, want 0", v)
	}
	if v := e1.beatAs(1).DesiredVersion; v != 0 {
		t.Errorf("an agent of capability 1 got version %d, want 0", v)
	}
	want := wire.Desired{Version: v1, Apps: []wire.App{{Name: "plc", Port: 502, VIP: "10.20.0.50/24",
		Health: wire.Health{Kind: "tcp"}, Members: []wire.AppMember{
			{HostUUID: e1.uuid, Hostname: "edge-01", Address: "192.168.204.10:6386", CertSerial: e1.serial},
			{HostUUID: e2.uuid, Hostname: "edge-02", Address: "192.168.204.11:6386", CertSerial: e2.serial},
			{HostUUID: e3.uuid, Hostname: "edge-03", Address: "192.168.204.12:6386", Witness: true, CertSerial: e3.serial},
		}}}}
	for _, a := range []*testAgent{e1, e3} {
		if diff := cmp.Diff(want, a.desired()); diff != "" {
			t.Errorf("desired state of %s (-want +got):\n%s", a.name, diff)
		}
	}

	// edge-02 renews its certificate: the members' desired state names the new one at once
	// (a new version), of the next generation, so that members still holding the old
	// desired state accept it too.
	old := e2.serial
	e2.renew()
	oldSerial, _ := new(big.Int).SetString(old, 16)
	newSerial, _ := new(big.Int).SetString(e2.serial, 16)
	if g0, g1 := wire.CertGeneration(oldSerial), wire.CertGeneration(newSerial); g0 == 0 || g1 != g0+1 ||
		wire.CertEnrollment(oldSerial) != wire.CertEnrollment(newSerial) {
		t.Errorf("certificate generations of edge-02: %d, then %d after the renewal; want the next, of the same join", g0, g1)
	}
	if !wire.AcceptCert(old, newSerial) || wire.AcceptCert(e2.serial, oldSerial) {
		t.Errorf("a member naming %s accepts the renewed %s = %v, one naming the renewed accepts the old = %v; want true, false",
			old, e2.serial, wire.AcceptCert(old, newSerial), wire.AcceptCert(e2.serial, oldSerial))
	}
	v1r := e1.beat().DesiredVersion
	if v1r == v1 {
		t.Errorf("edge-01's desired version did not change with edge-02's renewal")
	}
	want.Version, want.Apps[0].Members[1].CertSerial = v1r, e2.serial
	if diff := cmp.Diff(want, e3.desired()); diff != "" {
		t.Errorf("desired state after edge-02's renewal (-want +got):\n%s", diff)
	}
	v1 = v1r

	// Another app of edge-01 and edge-02 changes their version, not the witness's.
	if _, err := c.AddApp(ctx, apitype.AppCreate{Name: "hmi", Group: "press", Image: "hmi:1", Members: []string{"edge-02", "edge-01"}}); err != nil {
		t.Fatal(err)
	}
	v2 := e1.beat().DesiredVersion
	if v2 == v1 || v2 == 0 {
		t.Errorf("edge-01's version after a second app: %d (was %d); want another", v2, v1)
	}
	if v := e3.beat().DesiredVersion; v != v1 {
		t.Errorf("the witness's version changed with an app it is not in: %d, want %d", v, v1)
	}
	if d := e2.desired(); d.Version != v2 || len(d.Apps) != 2 || d.Apps[0].Name != "hmi" || d.Apps[1].Name != "plc" {
		t.Errorf("edge-02's desired state: version %d, apps %+v; want %d, hmi and plc", d.Version, d.Apps, v2)
	}

	show := func() apitype.App {
		t.Helper()
		a, err := c.GetApp(ctx, "plc")
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	switches := func() []string {
		t.Helper()
		evs, err := c.ListEvents(ctx, client.EventFilter{Action: "app.switchover", Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range evs {
			out = append(out, e.Reason)
		}
		return out
	}
	alarmed := func() bool {
		t.Helper()
		alarms, err := c.ListAlarms(ctx, "app=plc", "")
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range alarms {
			if a.AlarmID == "400.002" && a.Severity == "major" {
				return true
			}
		}
		return false
	}
	t0 := time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)
	first := &wire.AppSwitch{Epoch: 1, To: e1.uuid, At: t0, Reason: "first"}
	active1 := wire.AppStatus{Name: "plc", Role: wire.RoleActive, Active: e1.uuid, Epoch: 1, Healthy: true, Peers: 2, Last: first}
	standby2 := wire.AppStatus{Name: "plc", Role: wire.RoleStandby, Active: e1.uuid, Epoch: 1, Healthy: true, Last: first}
	witness := wire.AppStatus{Name: "plc", Role: wire.RoleWitness, Active: e1.uuid, Epoch: 1, Last: first}
	for range 3 { // one event, however many heartbeats report the switchover
		e1.beat(active1)
		e2.beat(standby2)
		e3.beat(witness)
	}
	a := show()
	if a.Active != "edge-01" || a.Epoch != 1 || !cmp.Equal(a.Standbys, []string{"edge-02"}) || a.Members[0].Role != "active" ||
		!a.Members[0].Healthy || a.Members[1].Role != "standby" {
		t.Errorf("after the first election: %+v; want edge-01 active in epoch 1, edge-02 standing by", a)
	}
	if diff := cmp.Diff(&apitype.AppSwitchover{Epoch: 1, At: t0, To: "edge-01", Reason: "first"}, a.LastSwitchover); diff != "" {
		t.Errorf("last switchover (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"app plc switched from no active member to edge-01 in 0 ms (epoch 1, reason first)"}, switches()); diff != "" {
		t.Errorf("switchover events (-want +got):\n%s", diff)
	}
	if alarmed() {
		t.Error("400.002 raised while edge-02 stands by")
	}

	// edge-01 fails; edge-02 takes over in epoch 2: no standby is left. edge-02's report
	// alone changes nothing; with the witness's, a majority of the group confirms it.
	failover := &wire.AppSwitch{Epoch: 2, From: e1.uuid, To: e2.uuid, At: t0.Add(time.Minute), DurationMillis: 312, Reason: "failure"}
	active2 := wire.AppStatus{Name: "plc", Role: wire.RoleActive, Active: e2.uuid, Epoch: 2, Healthy: true, Last: failover}
	witness2 := wire.AppStatus{Name: "plc", Role: wire.RoleWitness, Active: e2.uuid, Epoch: 2, Last: failover}
	e2.beat(active2)
	e2.beat(active2)
	if a := show(); a.Active != "edge-01" || a.Epoch != 1 || a.LastSwitchover.Epoch != 1 {
		t.Errorf("after edge-02 alone reports epoch 2: active %q epoch %d, last switchover %+v; want edge-01 in epoch 1 still",
			a.Active, a.Epoch, a.LastSwitchover)
	}
	e3.beat(witness2)
	if a := show(); a.Active != "edge-02" || a.Epoch != 2 || len(a.Standbys) != 0 || a.LastSwitchover == nil || a.LastSwitchover.DurationMillis != 312 {
		t.Errorf("after the failover: %+v; want edge-02 active in epoch 2, no standby, a switchover of 312 ms", a)
	}
	if !alarmed() {
		t.Error("400.002 not raised with no standby left")
	}

	// edge-01 comes back with its stale view of epoch 1: the active does not go back, and
	// edge-01 is no standby until it reports the epoch the group confirms; then, as a
	// healthy standby, it clears the alarm.
	stale := active1
	stale.Role = wire.RoleStandby
	e1.beat(stale)
	if a := show(); a.Active != "edge-02" || a.Epoch != 2 || len(a.Standbys) != 0 || a.Members[0].Role != apitype.RoleUnknown {
		t.Errorf("after a stale report: active %q epoch %d standbys %v, edge-01 %q; want edge-02, 2, none, unknown",
			a.Active, a.Epoch, a.Standbys, a.Members[0].Role)
	}
	standby1 := wire.AppStatus{Name: "plc", Role: wire.RoleStandby, Active: e2.uuid, Epoch: 2, Healthy: true, Last: failover}
	e1.beat(standby1)
	if a := show(); a.Active != "edge-02" || a.Epoch != 2 || !cmp.Equal(a.Standbys, []string{"edge-01"}) {
		t.Errorf("after edge-01 caught up: active %q epoch %d standbys %v; want edge-02, 2, [edge-01]", a.Active, a.Epoch, a.Standbys)
	}
	if alarmed() {
		t.Error("400.002 still raised with edge-01 standing by")
	}
	if got := switches(); len(got) != 2 || !strings.Contains(got[0], "app plc switched from edge-01 to edge-02 in 312 ms (epoch 2, reason failure)") {
		t.Errorf("switchover events: %q; want the failover after the first election", got)
	}

	// A member whose host goes offline is no standby: the periodic rebuild raises the alarm.
	setAvailability := func(name, availability string) {
		t.Helper()
		if err := in.Controller.Store.Write(ctx, func(tx store.Tx) error {
			h, err := tx.HostByHostname(name)
			if err != nil {
				return err
			}
			return tx.SetHostState(h.ID, availability, "enabled", time.Now())
		}); err != nil {
			t.Fatal(err)
		}
		if err := in.Controller.Apps.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	setAvailability("edge-01", "degraded")
	if !alarmed() {
		t.Error("400.002 not raised while the standby's host is degraded")
	}
	setAvailability("edge-01", "available")
	if alarmed() {
		t.Error("400.002 still raised after the standby's host is back")
	}

	// A planned switchover back to edge-01: the members learn it from their desired state and
	// beat every second until one reports it done.
	before := e1.beat(standby1).DesiredVersion
	a, err := c.SwitchoverApp(ctx, "plc", "edge-01")
	if err != nil {
		t.Fatal(err)
	}
	if p := a.PendingSwitchover; p == nil || p.Seq != 1 || p.To != "edge-01" {
		t.Errorf("switchover request: pending %+v; want number 1 to edge-01", p)
	}
	r := e1.beat(standby1)
	if r.IntervalMillis != 1000 || r.DesiredVersion == before {
		t.Errorf("a member's heartbeat with a switchover pending: %+v; want a new version and 1 s", r)
	}
	if r := e4.beat(); r.IntervalMillis != 30000 {
		t.Errorf("a host in no app beats every %d ms while a switchover is pending elsewhere, want 30000", r.IntervalMillis)
	}
	var sw *wire.Switchover
	for _, app := range e1.desired().Apps {
		if app.Name == "plc" {
			sw = app.Switchover
		}
	}
	if diff := cmp.Diff(&wire.Switchover{Seq: 1, To: e1.uuid}, sw); diff != "" {
		t.Errorf("the switchover in the desired state (-want +got):\n%s", diff)
	}
	planned := &wire.AppSwitch{Epoch: 3, From: e2.uuid, To: e1.uuid, At: t0.Add(2 * time.Minute), DurationMillis: 40, Reason: "planned"}
	active3 := wire.AppStatus{Name: "plc", Role: wire.RoleActive, Active: e1.uuid, Epoch: 3, Healthy: true, SwitchoverSeq: 1, Last: planned}
	e1.beat(active3)
	e2.beat(wire.AppStatus{Name: "plc", Role: wire.RoleStandby, Active: e1.uuid, Epoch: 3, Healthy: true, SwitchoverSeq: 1, Last: planned})
	r = e1.beat(active3)
	if r.IntervalMillis != 30000 || r.DesiredVersion != before {
		t.Errorf("heartbeat reply after the switchover: %+v; want 30 s and version %d again", r, before)
	}
	if a := show(); a.Active != "edge-01" || a.Epoch != 3 || a.PendingSwitchover != nil || a.LastSwitchover.Reason != "planned" {
		t.Errorf("after the planned switchover: %+v; want edge-01 active in epoch 3, nothing pending", a)
	}

	// Deleting the apps empties the desired states and clears the alarm.
	// A role the API does not know is shown as down.
	e2.beat(wire.AppStatus{Name: "plc", Role: "candidate", Active: e1.uuid, Epoch: 3})
	if a := show(); a.Members[1].Role != wire.RoleDown {
		t.Errorf("edge-02 reported role candidate, shown as %q; want down", a.Members[1].Role)
	}
	if !alarmed() {
		t.Error("400.002 not raised with edge-02 down")
	}
	for _, name := range []string{"hmi", "plc"} {
		if err := c.DeleteApp(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if v := e1.beat().DesiredVersion; v != 0 {
		t.Errorf("version after the apps are deleted: %d, want 0", v)
	}
	if alarmed() {
		t.Error("400.002 still raised after the app is deleted")
	}
}
