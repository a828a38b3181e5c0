package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	cryptorand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/mgmtnet/dhcp/dhcptest"
	"hummingbird.io/hummingbird/internal/pki"
	"hummingbird.io/hummingbird/internal/wire"
)

// Heartbeat settings of the controller under test: an outage is degraded
// after 1.5 s and failed after 3 s.
//
// Over the lossy link the controller runs with longer thresholds (16 s and
// 24 s): with 20% loss each way and 200 ms of round trip, TCP resends a
// lost segment after about 0.4 s and doubles the wait each time the resend
// is lost too, so four losses in a row (0.16% of segments) hold one
// heartbeat back by 6 s, five (0.03%) by 12 s. At 1.5 s a sound host over
// such a link flaps several times a minute; the default of 90 s (3 × 30 s)
// lets TCP ride it out, and 16 s does the same within this test's window.
const (
	netInterval          = 500 * time.Millisecond
	netDegradeAfter      = 3
	netFailAfter         = 6
	netLossyDegradeAfter = 32
	netLossyFailAfter    = 48
	// netCtlIP is the controller's address on the site bridge.
	netCtlIP  = "10.230.0.1"
	netCtlURL = "https://" + netCtlIP + ":6385"
)

// netAgent is one edge node: a namespace with its own address, a state
// directory and the running hb-agent.
type netAgent struct {
	host  string
	ns    string
	ip    string
	state string
	proc  *dhcptest.Proc
}

// netBed is the test bed: the controller on a bridge with an L2 site of two
// agents, and a router to a routed site of one agent.
type netBed struct {
	tb       testing.TB       // the whole test: agents started later live as long
	dir      string           // binaries and state
	data     string           // the controller's data directory
	ctl      string           // namespace of the controller and the bridge
	router   string           // namespace of the router
	ctlProcs []*dhcptest.Proc // every hb-controller started, the running one last
	agents   map[string]*netAgent
	// routed is the link between the router ("site") and the routed
	// agent ("eth0").
	routed *routedLink
}

// TestAgentsOnRealNetworks runs the real hb-controller and three real
// hb-agents in their own network namespaces: two on the controller's L2
// segment and one in a routed subnet behind a router namespace. Agents are
// killed, stopped, cut off and put behind a lossy, slow link; the hosts go
// degraded then failed with their alarms, and come back available with the
// alarms cleared. A lossy link does not make a host flap. Replayed and
// malformed heartbeats, foreign and missing certificates, and the
// certificate of a deleted host are refused.
func TestAgentsOnRealNetworks(t *testing.T) {
	dhcptest.Require(t, "tc", "sysctl")
	t.Parallel()
	var tag [2]byte
	cryptorand.Read(tag[:])
	prefix := "hbnw" + hex.EncodeToString(tag[:])
	// Registered first, so it runs after every namespace's own cleanup.
	t.Cleanup(func() {
		out, err := exec.Command("ip", "netns", "list").Output()
		if err != nil {
			t.Errorf("ip netns list: %v", err)
			return
		}
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, prefix) {
				t.Errorf("namespace left behind: %s", l)
			}
		}
	})
	bed := startBed(t, prefix)
	// What one heartbeat outage and its heal leave in a host's events.
	outage := []string{
		"host.state degraded", "alarm.set 200.005 major",
		"host.state failed", "alarm.set 200.005 critical", "alarm.set 200.004 critical",
		"host.state available", "alarm.clear 200.004", "alarm.clear 200.005",
	}

	t.Run("all available", func(t *testing.T) {
		r := bed.agents["edge-r1"]
		if out := dhcptest.Exec(t, r.ns, "ip", "route", "get", netCtlIP); !strings.Contains(out, "via 10.231.0.1 ") {
			t.Errorf("edge-r1 does not reach the controller through the router: %s", out)
		}
		for _, a := range bed.sorted() {
			bed.waitAvailability(t, a.host, "available", 30*time.Second)
			if diff := cmp.Diff([]string{"host.state available"}, bed.stateEvents(t, a.host, 0)); diff != "" {
				t.Errorf("%s events since it joined (-want +got):\n%s", a.host, diff)
			}
		}
	})

	t.Run("SIGKILL and restart", func(t *testing.T) {
		a := bed.agents["edge-l2a"]
		mark := bed.lastEvent(t, a.host)
		a.proc.Stop() // SIGKILL: ip netns exec runs hb-agent in its own process
		bed.waitOutage(t, a.host)
		bed.runAgent(a)
		bed.waitAvailability(t, a.host, "available", 20*time.Second)
		if diff := cmp.Diff(outage, bed.stateEvents(t, a.host, mark)); diff != "" {
			t.Errorf("%s events (-want +got):\n%s", a.host, diff)
		}
	})

	t.Run("SIGSTOP and SIGCONT", func(t *testing.T) {
		a := bed.agents["edge-l2b"]
		mark := bed.lastEvent(t, a.host)
		bed.signal(t, a, syscall.SIGSTOP)
		defer bed.signal(t, a, syscall.SIGCONT)
		bed.waitOutage(t, a.host)
		bed.signal(t, a, syscall.SIGCONT)
		bed.waitAvailability(t, a.host, "available", 20*time.Second)
		if diff := cmp.Diff(outage, bed.stateEvents(t, a.host, mark)); diff != "" {
			t.Errorf("%s events (-want +got):\n%s", a.host, diff)
		}
	})

	t.Run("routed link cut at the router", func(t *testing.T) {
		a := bed.agents["edge-r1"]
		mark := bed.lastEvent(t, a.host)
		dhcptest.IP(t, "-n", bed.router, "link", "set", "site", "down")
		defer exec.Command("ip", "-n", bed.router, "link", "set", "site", "up").Run()
		bed.waitOutage(t, a.host)
		dhcptest.IP(t, "-n", bed.router, "link", "set", "site", "up")
		bed.waitAvailability(t, a.host, "available", 40*time.Second)
		if diff := cmp.Diff(outage, bed.stateEvents(t, a.host, mark)); diff != "" {
			t.Errorf("%s events (-want +got):\n%s", a.host, diff)
		}
	})

	t.Run("controller restart", func(t *testing.T) {
		marks := map[string]int64{}
		for _, a := range bed.sorted() {
			bed.waitAvailability(t, a.host, "available", 20*time.Second)
			marks[a.host] = bed.lastEvent(t, a.host)
		}
		bed.ctlProcs[len(bed.ctlProcs)-1].Stop()
		bed.startController(netLossyDegradeAfter, netLossyFailAfter)
		time.Sleep(4 * netInterval)
		for _, a := range bed.sorted() {
			if got := bed.stateEvents(t, a.host, marks[a.host]); len(got) != 0 {
				t.Errorf("%s changed state over a controller restart: %q", a.host, got)
			}
			if h := bed.host(t, a.host); h.Availability != "available" {
				t.Errorf("%s is %s after a controller restart, want available", a.host, h.Availability)
			}
		}
	})

	t.Run("lossy slow routed link", func(t *testing.T) {
		a := bed.agents["edge-r1"]
		bed.waitAvailability(t, a.host, "available", 20*time.Second)
		mark := bed.lastEvent(t, a.host)
		// Only edge-r1 sends heartbeats during the window, so that the
		// controller's request log counts its heartbeats alone.
		for _, o := range []*netAgent{bed.agents["edge-l2a"], bed.agents["edge-l2b"]} {
			bed.signal(t, o, syscall.SIGSTOP)
			defer bed.signal(t, o, syscall.SIGCONT)
		}
		ctl := bed.ctlProcs[len(bed.ctlProcs)-1]
		const heard = "route=" + wire.HeartbeatPath + " code=200"
		time.Sleep(netInterval) // heartbeats already under way land first
		before := strings.Count(ctl.Output(), heard)
		bed.routed.impair(t, 0.2, 100*time.Millisecond)
		defer bed.routed.impair(t, 0, 0)
		const window = 12 * netInterval
		time.Sleep(window)
		beats := strings.Count(ctl.Output(), heard) - before
		bed.routed.impair(t, 0, 0)
		// About 8 at 500 ms plus the round trip; fewer than 4 means the
		// link carried next to nothing and the test proves nothing.
		if beats < 4 {
			t.Errorf("%d heartbeats of %s over the lossy link in %v, want at least 4", beats, a.host, window)
		}
		t.Logf("heartbeats over the lossy link: %d in %v", beats, window)
		if got := bed.stateEvents(t, a.host, mark); len(got) != 0 {
			t.Errorf("%s flapped over a lossy link: %q", a.host, got)
		}
		if h := bed.host(t, a.host); h.Availability != "available" {
			t.Errorf("%s is %s over a lossy link, want available", a.host, h.Availability)
		}
		time.Sleep(2 * netInterval)
		if got := bed.stateEvents(t, a.host, mark); len(got) != 0 {
			t.Errorf("%s changed state when the loss ended: %q", a.host, got)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		a := bed.agents["edge-l2b"]
		own := bed.agentCert(t, a)
		send := func(cert *tls.Certificate, body string) (int, error) {
			t.Helper()
			return bed.heartbeat(t, a.ns, cert, body)
		}
		hb := func(boot string, seq uint64) string {
			b, _ := json.Marshal(wire.Heartbeat{Capability: wire.CapabilityVersion, Boot: boot, Seq: seq})
			return string(b)
		}

		// Stop the agent so that none of its own heartbeats comes between
		// the original and the replay; let an in-flight one land first.
		bed.signal(t, a, syscall.SIGSTOP)
		time.Sleep(netInterval / 2)
		boot := hex.EncodeToString(tag[:]) + "replay"
		steps := []struct {
			name string
			body string
			want int
		}{
			{"first heartbeat of a run", hb(boot, 1), http.StatusOK},
			{"the same heartbeat again", hb(boot, 1), http.StatusConflict},
			{"an older one", hb(boot, 0), http.StatusConflict},
			{"the next one", hb(boot, 2), http.StatusOK},
			{"no boot id", hb("", 3), http.StatusBadRequest},
			{"not JSON", "seq=4", http.StatusBadRequest},
		}
		for _, s := range steps {
			if code, err := send(own, s.body); err != nil || code != s.want {
				t.Errorf("%s: status %d (%v), want %d", s.name, code, err, s.want)
			}
		}
		bed.signal(t, a, syscall.SIGCONT)

		if code, err := send(nil, hb(boot, 10)); err != nil || code != http.StatusUnauthorized {
			t.Errorf("no client certificate: status %d (%v), want 401", code, err)
		}
		foreign := foreignCert(t, bed.host(t, a.host).UUID)
		if code, err := send(foreign, hb(boot, 11)); err == nil && code != http.StatusUnauthorized {
			t.Errorf("a certificate of another CA: status %d, want a refused handshake or 401", code)
		} else if err != nil && !strings.Contains(err.Error(), "tls") {
			t.Errorf("a certificate of another CA: %v, want a refused handshake", err)
		}
		bed.waitAvailability(t, a.host, "available", 20*time.Second)

		// Deleting the host revokes its agent's certificate; the agent
		// keeps running and retrying.
		if out, err := bed.hbctl("host-delete", a.host, "--yes"); err != nil {
			t.Fatalf("host-delete: %v\n%s", err, out)
		}
		if code, err := send(own, hb(boot, 12)); err != nil || code != http.StatusForbidden {
			t.Errorf("the certificate of a deleted host: status %d (%v), want 403", code, err)
		}
		time.Sleep(2 * netInterval)
		if pids := nsPIDs(t, a.ns); len(pids) != 1 {
			t.Errorf("hb-agent of a deleted host: processes %v in its namespace, want it still running\n%s", pids, a.proc.Output())
		}
	})
}

// startBed builds the binaries, makes the namespaces and links, starts the
// controller and joins and starts the three agents.
func startBed(t *testing.T, prefix string) *netBed {
	t.Helper()
	dir := t.TempDir()
	for _, cmd := range []string{"hb-agent", "hb-controller", "hbctl"} {
		if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, cmd), "../"+cmd).CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", cmd, err, out)
		}
	}
	b := &netBed{tb: t, dir: dir, data: filepath.Join(dir, "data"), agents: map[string]*netAgent{}}

	// The controller's namespace holds the site bridge.
	b.ctl = dhcptest.Netns(t, prefix+"c")
	dhcptest.IP(t, "-n", b.ctl, "link", "add", "br0", "type", "bridge")
	dhcptest.IP(t, "-n", b.ctl, "link", "set", "br0", "up")
	dhcptest.IP(t, "-n", b.ctl, "addr", "add", netCtlIP+"/24", "dev", "br0")
	dhcptest.IP(t, "-n", b.ctl, "route", "add", "10.231.0.0/24", "via", "10.230.0.254")

	// The router: one leg on the bridge, one to the routed site.
	b.router = dhcptest.Netns(t, prefix+"r")
	dhcptest.Veth(t, b.ctl, "pr", b.router, "uplink", "")
	dhcptest.IP(t, "-n", b.ctl, "link", "set", "pr", "master", "br0")
	dhcptest.IP(t, "-n", b.router, "addr", "add", "10.230.0.254/24", "dev", "uplink")
	dhcptest.Exec(t, b.router, "sysctl", "-qw", "net.ipv4.ip_forward=1")

	for i, a := range []*netAgent{
		{host: "edge-l2a", ip: "10.230.0.11"},
		{host: "edge-l2b", ip: "10.230.0.12"},
		{host: "edge-r1", ip: "10.231.0.11"},
	} {
		a.ns = dhcptest.Netns(t, prefix+"a")
		a.state = filepath.Join(dir, a.host)
		if strings.HasPrefix(a.ip, "10.230.") {
			port := fmt.Sprintf("p%d", i)
			dhcptest.Veth(t, b.ctl, port, a.ns, "eth0", "")
			dhcptest.IP(t, "-n", b.ctl, "link", "set", port, "master", "br0")
			dhcptest.IP(t, "-n", a.ns, "addr", "add", a.ip+"/24", "dev", "eth0")
		} else {
			b.routed = newRoutedLink(t, b.router, "site", a.ns, "eth0")
			dhcptest.IP(t, "-n", b.router, "addr", "add", "10.231.0.1/24", "dev", "site")
			dhcptest.IP(t, "-n", a.ns, "addr", "add", a.ip+"/24", "dev", "eth0")
			dhcptest.IP(t, "-n", a.ns, "route", "add", "default", "via", "10.231.0.1")
		}
		b.agents[a.host] = a
	}

	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range b.ctlProcs {
				t.Logf("hb-controller output:\n%s", p.Output())
			}
			for _, a := range b.sorted() {
				if a.proc != nil {
					t.Logf("hb-agent output of %s:\n%s", a.host, a.proc.Output())
				}
			}
		}
	})
	b.startController(netDegradeAfter, netFailAfter)
	caHash := pki.CAHash(b.caCert(t))
	if out := b.ctlProcs[0].Output(); !strings.Contains(out, "ca_hash="+caHash) {
		t.Errorf("the controller did not log its CA pin %s at first start:\n%s", caHash, out)
	}

	b.mustHbctl(t, "addrpool-add", "site-r", "--network", "10.231.0.0/24", "--mode", "static", "--gateway", "10.231.0.1")
	for _, a := range b.sorted() {
		args := []string{"host-add", "-n", a.host, "-p", "edgeworker", "-i", a.ip}
		if strings.HasPrefix(a.ip, "10.231.") {
			args = append(args, "--pool", "site-r")
		}
		b.mustHbctl(t, args...)
		var tok apitype.TokenCreated
		if err := json.Unmarshal([]byte(b.mustHbctl(t, "token-create", "--type", "enroll", "--uses", "1", "--host", a.host, "-f", "json")), &tok); err != nil || tok.Secret == "" {
			t.Fatalf("enroll token for %s: %v", a.host, err)
		}
		out, err := exec.Command("ip", "netns", "exec", a.ns, filepath.Join(dir, "hb-agent"), "join",
			"--controller", netCtlURL, "--token", tok.Secret, "--ca-hash", caHash,
			"--hostname", a.host, "--state-dir", a.state).CombinedOutput()
		if err != nil {
			t.Fatalf("join %s from %s: %v\n%s", a.host, a.ip, err, out)
		}
		b.runAgent(a)
	}
	return b
}

// startController starts hb-controller in its namespace with the
// heartbeat thresholds given, and waits until hbctl reaches it.
func (b *netBed) startController(degradeAfter, failAfter int) {
	t := b.tb
	t.Helper()
	p := dhcptest.Start(t, b.ctl, filepath.Join(b.dir, "hb-controller"), "--data-dir", b.data, "--log-level", "debug",
		"--listen", netCtlIP+":6385", "--mgmt-subnet", "10.230.0.0/24", "--mgmt-controller-ips", netCtlIP,
		"--heartbeat-interval", netInterval.String(),
		"--heartbeat-degrade-after", strconv.Itoa(degradeAfter), "--heartbeat-fail-after", strconv.Itoa(failAfter))
	b.ctlProcs = append(b.ctlProcs, p)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(b.data, "admin.token")); err == nil {
			if _, err := b.hbctl("host-list"); err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("hb-controller did not come up:\n%s", p.Output())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sorted is the agents by hostname.
func (b *netBed) sorted() []*netAgent {
	var out []*netAgent
	for _, a := range b.agents {
		out = append(out, a)
	}
	slices.SortFunc(out, func(x, y *netAgent) int { return strings.Compare(x.host, y.host) })
	return out
}

// runAgent starts hb-agent run in the agent's namespace, for the rest of
// the test.
func (b *netBed) runAgent(a *netAgent) {
	b.tb.Helper()
	a.proc = dhcptest.Start(b.tb, a.ns, filepath.Join(b.dir, "hb-agent"), "run", "--state-dir", a.state)
}

// signal sends sig to the processes of the agent's namespace: its hb-agent.
func (b *netBed) signal(t *testing.T, a *netAgent, sig syscall.Signal) {
	t.Helper()
	pids := nsPIDs(t, a.ns)
	if len(pids) == 0 {
		t.Fatalf("no hb-agent runs in %s", a.ns)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, sig); err != nil {
			t.Fatalf("signal %v to %d: %v", sig, pid, err)
		}
	}
}

// nsPIDs is the processes in namespace ns.
func nsPIDs(t *testing.T, ns string) []int {
	t.Helper()
	out, err := exec.Command("ip", "netns", "pids", ns).Output()
	if err != nil {
		t.Fatalf("ip netns pids %s: %v", ns, err)
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// hbctl runs hbctl inside the controller's namespace.
func (b *netBed) hbctl(args ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", b.ctl, filepath.Join(b.dir, "hbctl")}, args...)...)
	cmd.Env = append(os.Environ(), "HB_URL="+netCtlURL, "HB_CACERT="+filepath.Join(b.data, "ca.crt"),
		"HB_TOKEN_FILE="+filepath.Join(b.data, "admin.token"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (b *netBed) mustHbctl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := b.hbctl(args...)
	if err != nil {
		t.Fatalf("hbctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (b *netBed) host(t *testing.T, name string) apitype.Host {
	t.Helper()
	var h apitype.Host
	if err := json.Unmarshal([]byte(b.mustHbctl(t, "host-show", name, "-f", "json")), &h); err != nil {
		t.Fatalf("host-show %s: %v", name, err)
	}
	return h
}

// waitAvailability waits until host has availability want.
func (b *netBed) waitAvailability(t *testing.T, host, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		h := b.host(t, host)
		if h.Availability == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is still %s after %v, want %s", host, h.Availability, timeout, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitOutage waits until host is degraded, then failed and disabled.
func (b *netBed) waitOutage(t *testing.T, host string) {
	t.Helper()
	b.waitAvailability(t, host, "degraded", 20*time.Second)
	b.waitAvailability(t, host, "failed", 20*time.Second)
	if h := b.host(t, host); h.Operational != "disabled" {
		t.Errorf("failed host %s is %s, want disabled", host, h.Operational)
	}
}

// events is the host's events, oldest first.
func (b *netBed) events(t *testing.T, host string) []apitype.Event {
	t.Helper()
	var evs []apitype.Event
	if err := json.Unmarshal([]byte(b.mustHbctl(t, "event-list", "--host", host, "-f", "json")), &evs); err != nil {
		t.Fatalf("event-list --host %s: %v", host, err)
	}
	slices.SortFunc(evs, func(x, y apitype.Event) int { return int(x.ID - y.ID) })
	return evs
}

// lastEvent is the id of the host's newest event.
func (b *netBed) lastEvent(t *testing.T, host string) int64 {
	t.Helper()
	evs := b.events(t, host)
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].ID
}

// stateEvents summarizes the host's availability and alarm events after
// event id since, oldest first: "host.state failed", "alarm.set 200.005
// major", "alarm.clear 200.005".
func (b *netBed) stateEvents(t *testing.T, host string, since int64) []string {
	t.Helper()
	out := []string{}
	for _, e := range b.events(t, host) {
		if e.ID <= since {
			continue
		}
		switch e.Action {
		case "host.state":
			_, to, _ := strings.Cut(e.Reason, "→ ")
			to, _, _ = strings.Cut(to, ":")
			out = append(out, e.Action+" "+to)
		case "alarm.set":
			severity := e.Reason[strings.LastIndex(e.Reason, "(")+1 : len(e.Reason)-1]
			out = append(out, e.Action+" "+e.Code+" "+severity)
		case "alarm.clear":
			out = append(out, e.Action+" "+e.Code)
		}
	}
	return out
}

func (b *netBed) caCert(t *testing.T) *x509.Certificate {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(b.data, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(raw)
	if blk == nil {
		t.Fatalf("no PEM in %s", filepath.Join(b.data, "ca.crt"))
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// agentCert is the client certificate hb-agent join stored for a.
func (b *netBed) agentCert(t *testing.T, a *netAgent) *tls.Certificate {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(filepath.Join(a.state, "agent.crt"), filepath.Join(a.state, "agent.key"))
	if err != nil {
		t.Fatal(err)
	}
	return &pair
}

// heartbeat posts body to the heartbeat path from inside namespace ns,
// presenting cert (none when nil), and returns the status.
func (b *netBed) heartbeat(t *testing.T, ns string, cert *tls.Certificate, body string) (int, error) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(b.caCert(t))
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if cert != nil {
		// Present cert whatever CAs the controller asks for: Go would
		// otherwise leave out one from a CA the controller does not name.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   cfg,
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var conn net.Conn
			err := dhcptest.In(ns, func() error {
				var err error
				conn, err = (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
				return err
			})
			return conn, err
		},
	}}
	defer c.CloseIdleConnections()
	resp, err := c.Post(netCtlURL+wire.HeartbeatPath, "application/json", bytes.NewBufferString(body))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return resp.StatusCode, nil
}

// foreignCert is an agent client certificate for host uuid, signed by a CA
// the controller never saw.
func foreignCert(t *testing.T, uuid string) *tls.Certificate {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), cryptorand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Hummingbird CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(cryptorand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), cryptorand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(cryptorand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: uuid},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// routedLink is the routed site's link. Where the kernel has netem
// (CONFIG_NET_SCH_NETEM) it is a veth pair impaired with tc netem;
// elsewhere it is a pair of TAP devices whose frames this test carries
// across, dropping and delaying them as netem would. Either way both ends
// are kernel interfaces that ip link set down cuts.
type routedLink struct {
	ns    [2]string // namespaces of the two ends
	dev   [2]string // their interfaces
	netem bool

	mu    sync.Mutex
	loss  float64       // dropped share of frames, each direction
	delay time.Duration // added to each direction
}

func newRoutedLink(t *testing.T, ns1, if1, ns2, if2 string) *routedLink {
	t.Helper()
	l := &routedLink{ns: [2]string{ns1, ns2}, dev: [2]string{if1, if2}}
	probe := exec.Command("ip", "netns", "exec", ns1, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms")
	if probe.Run() == nil {
		dhcptest.Exec(t, ns1, "tc", "qdisc", "del", "dev", "lo", "root")
		l.netem = true
		dhcptest.Veth(t, ns1, if1, ns2, if2, "")
		return l
	}
	t.Log("this kernel has no netem: the routed link is a TAP pair carried by the test")
	taps := [2]*os.File{openTap(t, ns1, if1), openTap(t, ns2, if2)}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); l.carry(taps[0], taps[1]) }()
	go func() { defer wg.Done(); l.carry(taps[1], taps[0]) }()
	t.Cleanup(func() {
		taps[0].Close()
		taps[1].Close()
		wg.Wait()
	})
	dhcptest.IP(t, "-n", ns1, "link", "set", if1, "up")
	dhcptest.IP(t, "-n", ns2, "link", "set", if2, "up")
	return l
}

// impair sets the loss and delay of both directions; zero removes them.
func (l *routedLink) impair(t *testing.T, loss float64, delay time.Duration) {
	t.Helper()
	l.mu.Lock()
	was := l.loss != 0 || l.delay != 0
	l.loss, l.delay = loss, delay
	l.mu.Unlock()
	if !l.netem {
		return
	}
	for i := range l.ns {
		if was {
			dhcptest.Exec(t, l.ns[i], "tc", "qdisc", "del", "dev", l.dev[i], "root")
		}
		if loss != 0 || delay != 0 {
			dhcptest.Exec(t, l.ns[i], "tc", "qdisc", "add", "dev", l.dev[i], "root", "netem",
				"loss", strconv.FormatFloat(loss*100, 'f', -1, 64)+"%", "delay", delay.String())
		}
	}
}

// carry copies frames from one TAP to the other until either is closed,
// dropping and delaying them as set by impair. Frames keep their order.
func (l *routedLink) carry(from, to *os.File) {
	type frame struct {
		due time.Time
		b   []byte
	}
	q := make(chan frame, 4096)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for f := range q {
			time.Sleep(time.Until(f.due))
			to.Write(f.b) // fails while the far end is down: the frame is lost
		}
	}()
	buf := make([]byte, 65536)
	for {
		n, err := from.Read(buf)
		if err != nil {
			break
		}
		l.mu.Lock()
		loss, delay := l.loss, l.delay
		l.mu.Unlock()
		if loss > 0 && rand.Float64() < loss {
			continue
		}
		q <- frame{time.Now().Add(delay), slices.Clone(buf[:n])}
	}
	close(q)
	<-done
}

// openTap makes TAP interface name in namespace ns; it goes when the
// returned file is closed.
func openTap(t *testing.T, ns, name string) *os.File {
	t.Helper()
	var f *os.File
	err := dhcptest.In(ns, func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return err
		}
		ifr, err := unix.NewIfreq(name)
		if err == nil {
			ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
			err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
		}
		if err != nil {
			unix.Close(fd)
			return err
		}
		f = os.NewFile(uintptr(fd), name) // non-blocking: Close ends a Read
		return nil
	})
	if err != nil {
		t.Fatalf("TAP %s in %s: %v", name, ns, err)
	}
	return f
}
