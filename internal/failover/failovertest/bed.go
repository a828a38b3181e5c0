// Package failovertest is the network-namespace bed of redundant apps:
// members on one bridge, each serving a tiny HTTP app that answers with
// its name, a client that probes the VIP on a new connection every 10 ms
// and keeps every answer, and hb-agent processes running a group with
// certificates of a throwaway CA and no reachable controller. The failover
// tests and the VIP benchmark (keepalived and Hummingbird) share it.
package failovertest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"hummingbird.io/hummingbird/internal/mgmtnet/dhcp/dhcptest"
	"hummingbird.io/hummingbird/internal/pki"
	"hummingbird.io/hummingbird/internal/wire"
)

// The bed's addresses: members get 10.201.0.1, .2, ... in the order
// given, the client .100, the VIP .10, all on one /24.
const (
	Client = "10.201.0.100"
	VIP    = "10.201.0.10"
	Net    = "10.201.0.0/24"
)

const (
	probeEvery   = 10 * time.Millisecond  // a new probe every 10 ms ...
	probeTimeout = 200 * time.Millisecond // ... each given 200 ms: a lost SYN costs 1 s, a busy CPU less
)

// Bed is network namespaces: a bridge (br0) with a port for each member
// and the client, whose far ends are eth0 in their namespace.
type Bed struct {
	Members []string          // names, in order
	NS      map[string]string // member name -> namespace
	Addr    map[string]string // member name -> address
	Probes  *Prober
	// Locked names the members whose hosts the desired state of the next
	// StartGroup says are locked.
	Locked  map[string]bool
	br, cli string

	mu   sync.Mutex
	apps map[string]*http.Server
}

// New makes the bed with members named names (one-letter names make the
// shortest namespace names). Each member serves its app on port 80 until
// StopApp.
func New(tb testing.TB, names ...string) *Bed {
	tb.Helper()
	dhcptest.Require(tb, "iptables")
	d := &Bed{
		Members: names, NS: map[string]string{}, Addr: map[string]string{}, apps: map[string]*http.Server{},
		br: dhcptest.Netns(tb, "hbfbr"), cli: dhcptest.Netns(tb, "hbfc"),
	}
	dhcptest.IP(tb, "-n", d.br, "link", "add", "br0", "type", "bridge")
	dhcptest.IP(tb, "-n", d.br, "link", "set", "br0", "up")
	ports := []struct{ port, ns, addr string }{{"port-c", d.cli, Client}}
	for i, n := range names {
		d.NS[n] = dhcptest.Netns(tb, "hbf"+strings.ToLower(n))
		d.Addr[n] = fmt.Sprintf("10.201.0.%d", i+1)
		ports = append(ports, struct{ port, ns, addr string }{"port-" + strings.ToLower(n), d.NS[n], d.Addr[n]})
	}
	for _, p := range ports {
		dhcptest.Veth(tb, d.br, p.port, p.ns, "eth0", "")
		dhcptest.IP(tb, "-n", d.br, "link", "set", p.port, "master", "br0")
		dhcptest.IP(tb, "-n", p.ns, "addr", "add", p.addr+"/24", "dev", "eth0")
		dhcptest.IP(tb, "-n", p.ns, "link", "set", "lo", "up")
	}
	for _, n := range names {
		d.StartApp(tb, n)
	}
	tb.Cleanup(func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		for _, s := range d.apps {
			s.Close()
		}
	})
	d.Probes = startProber(tb, d.cli)
	return d
}

// StartApp serves member m's app: HTTP on port 80 of every address,
// answering with m's name.
func (d *Bed) StartApp(tb testing.TB, m string) {
	tb.Helper()
	var l net.Listener
	if err := dhcptest.In(d.NS[m], func() (err error) {
		l, err = net.Listen("tcp4", ":80")
		return err
	}); err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, m)
	})}
	go srv.Serve(l)
	d.mu.Lock()
	d.apps[m] = srv
	d.mu.Unlock()
}

// StopApp stops member m's app (a crash, as its health check sees it).
func (d *Bed) StopApp(m string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s := d.apps[m]; s != nil {
		s.Close()
		delete(d.apps, m)
	}
}

// HoldsVIP reports whether member m has the VIP on its eth0.
func (d *Bed) HoldsVIP(tb testing.TB, m string) bool {
	tb.Helper()
	var has bool
	if err := dhcptest.In(d.NS[m], func() error {
		ifc, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		addrs, err := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.String() == VIP {
				has = true
			}
		}
		return err
	}); err != nil {
		tb.Fatal(err)
	}
	return has
}

// Holders lists the members that have the VIP.
func (d *Bed) Holders(tb testing.TB) []string {
	var out []string
	for _, m := range d.Members {
		if d.HoldsVIP(tb, m) {
			out = append(out, m)
		}
	}
	return out
}

// SetLink sets member m's eth0 up or down and returns the time just before
// the change.
func (d *Bed) SetLink(tb testing.TB, m string, up bool) time.Time {
	tb.Helper()
	var at time.Time
	if err := dhcptest.In(d.NS[m], func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		ifr, err := unix.NewIfreq("eth0")
		if err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
			return err
		}
		flags := ifr.Uint16()
		if up {
			flags |= unix.IFF_UP
		} else {
			flags &^= unix.IFF_UP
		}
		ifr.SetUint16(flags)
		at = time.Now()
		return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
	}); err != nil {
		tb.Fatalf("set %s's eth0 up=%v: %v", m, up, err)
	}
	return at
}

// Block drops all traffic between members a and b, both ways, with
// iptables in both namespaces (on = false lets it through again). It
// returns the time just before.
func (d *Bed) Block(tb testing.TB, a, b string, on bool) time.Time {
	tb.Helper()
	op := "-A"
	if !on {
		op = "-D"
	}
	at := time.Now()
	for _, p := range [][2]string{{a, b}, {b, a}} {
		dhcptest.Exec(tb, d.NS[p[0]], "iptables", op, "INPUT", "-s", d.Addr[p[1]], "-j", "DROP")
		dhcptest.Exec(tb, d.NS[p[0]], "iptables", op, "OUTPUT", "-d", d.Addr[p[1]], "-j", "DROP")
	}
	return at
}

// Loss drops pct percent of the packets member m receives, at random
// (iptables' statistic match: the kernel here has no netem); pct 0 ends
// it. With Loss on every member, each packet between members is lost with
// probability pct, once, at its receiver.
func (d *Bed) Loss(tb testing.TB, m string, pct int) {
	tb.Helper()
	dhcptest.Exec(tb, d.NS[m], "iptables", "-F", "INPUT")
	if pct > 0 {
		dhcptest.Exec(tb, d.NS[m], "iptables", "-A", "INPUT", "-i", "eth0", "-m", "statistic", "--mode", "random",
			"--probability", fmt.Sprintf("%.2f", float64(pct)/100), "-j", "DROP")
	}
}

// MemberLoss makes member m's link drop pct percent of the packets it
// receives from the other members (0: none), and none of the client's:
// the members' own traffic suffers the loss, and the client's probes
// still say who answers at the VIP.
func (d *Bed) MemberLoss(tb testing.TB, m string, pct int) {
	tb.Helper()
	dhcptest.Exec(tb, d.NS[m], "iptables", "-F", "INPUT")
	if pct > 0 {
		dhcptest.Exec(tb, d.NS[m], "iptables", "-A", "INPUT", "-i", "eth0", "!", "-s", Client, "-m", "statistic", "--mode", "random",
			"--probability", fmt.Sprintf("%.2f", float64(pct)/100), "-j", "DROP")
	}
}

// Received returns how many IP packets per second member m receives on
// its link from member from, counted over window by a rule that only
// counts (and is removed after).
func (d *Bed) Received(tb testing.TB, m, from string, window time.Duration) float64 {
	tb.Helper()
	return d.count(tb, m, window, "INPUT", "-i", "eth0", "-s", d.Addr[from])
}

// Counters returns how many packets member m has received and sent on
// its link, every kind counted (its interface's own counters): probes,
// their answers, TCP acknowledgements, ARP.
func (d *Bed) Counters(tb testing.TB, m string) (rx, tx uint64) {
	tb.Helper()
	f := strings.Fields(dhcptest.Exec(tb, d.NS[m], "cat", "/sys/class/net/eth0/statistics/rx_packets", "/sys/class/net/eth0/statistics/tx_packets"))
	if len(f) != 2 {
		tb.Fatalf("in %s: eth0's packet counters: %q", d.NS[m], f)
	}
	rx, err1 := strconv.ParseUint(f[0], 10, 64)
	tx, err2 := strconv.ParseUint(f[1], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		tb.Fatalf("in %s: eth0's packet counters: %v", d.NS[m], err)
	}
	return rx, tx
}

// Dialled returns how many TCP connections per second member from opens
// to member m's port, counted over window as Received counts: the SYNs m
// receives.
func (d *Bed) Dialled(tb testing.TB, m, from string, port int, window time.Duration) float64 {
	tb.Helper()
	return d.count(tb, m, window, "INPUT", "-i", "eth0", "-s", d.Addr[from], "-p", "tcp", "--syn", "--dport", strconv.Itoa(port))
}

// count returns how many packets per second match rule in m's namespace
// over window, with a rule that only counts, put first and removed after.
func (d *Bed) count(tb testing.TB, m string, window time.Duration, rule ...string) float64 {
	tb.Helper()
	dhcptest.Exec(tb, d.NS[m], "iptables", append([]string{"-I"}, rule...)...)
	defer dhcptest.Exec(tb, d.NS[m], "iptables", append([]string{"-D"}, rule...)...)
	start := time.Now()
	time.Sleep(window)
	out := dhcptest.Exec(tb, d.NS[m], "iptables", "-L", rule[0], "1", "-n", "-v", "-x")
	elapsed := time.Since(start)
	f := strings.Fields(out)
	if len(f) == 0 {
		tb.Fatalf("in %s: no counting rule in %q", d.NS[m], out)
	}
	n, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		tb.Fatalf("in %s: packets of the counting rule: %v (%q)", d.NS[m], err, out)
	}
	return float64(n) / elapsed.Seconds()
}

// InClient runs fn in the client's namespace (on the bed's network, but
// no member): where a host holding some other certificate would be.
func (d *Bed) InClient(fn func() error) error { return dhcptest.In(d.cli, fn) }

// DialVIP opens a TCP connection from the client to the VIP's port 80,
// as a probe does, from local port port (0: any), and leaves it for the
// caller.
func (d *Bed) DialVIP(tb testing.TB, port int) net.Conn {
	tb.Helper()
	var c net.Conn
	if err := dhcptest.In(d.cli, func() (err error) {
		dl := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(Client), Port: port}}
		c, err = dl.Dial("tcp4", net.JoinHostPort(VIP, "80"))
		return err
	}); err != nil {
		tb.Fatal(err)
	}
	return c
}

// WaitActive waits until member m is the only one holding the VIP and
// the last 10 probes (100 ms) were all answered by m.
func (d *Bed) WaitActive(tb testing.TB, m string, timeout time.Duration, explain func() string) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if h := d.Holders(tb); slices.Equal(h, []string{m}) && d.Probes.LastAll(10, m) {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s not the only active member within %v (VIP held by %v; last probes %v)\n%s",
				m, timeout, d.Holders(tb), d.Probes.Last(10), explain())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Probe is one HTTP GET of http://VIP/ by the client.
type Probe struct {
	Sent, Done time.Time
	Member     string // who answered; empty when the probe failed
	Err        error
}

// Reset says whether the probe's connection was reset after its
// handshake: the VIP moved between the handshake (with the old member)
// and the request (which reached the new one, which knows no such
// connection). Any other failure is a gap: nobody answered.
func (p Probe) Reset() bool { return p.Member == "" && errors.Is(p.Err, unix.ECONNRESET) }

func (p Probe) String() string {
	if p.Member == "" {
		return "error"
	}
	return p.Member
}

// Prober starts a probe every 10 ms, each on a new TCP connection opened
// in the client's namespace and given 200 ms, whatever the earlier ones
// still wait for, and keeps every result.
type Prober struct {
	mu     sync.Mutex
	probes []Probe // in the order they ended
}

func startProber(tb testing.TB, ns string) *Prober {
	dialer := &net.Dialer{}
	client := &http.Client{
		Timeout: probeTimeout,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
				if ierr := dhcptest.In(ns, func() error {
					c, err = dialer.DialContext(ctx, network, addr)
					return nil
				}); ierr != nil {
					return nil, ierr
				}
				return c, err
			},
		},
	}
	p := &Prober{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(probeEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			wg.Go(func() {
				r := Probe{Sent: time.Now()}
				resp, err := client.Get("http://" + VIP + "/")
				if err == nil {
					var body []byte
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode == http.StatusOK {
						r.Member = string(body)
					} else if err == nil {
						err = fmt.Errorf("status %s", resp.Status)
					}
				}
				r.Done, r.Err = time.Now(), err
				p.mu.Lock()
				p.probes = append(p.probes, r)
				p.mu.Unlock()
			})
		}
	})
	tb.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return p
}

// Since returns the probes sent at or after t, in the order they ended.
func (p *Prober) Since(t time.Time) []Probe {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := len(p.probes)
	// Probes end at most 200 ms (plus scheduling) after they are sent, in
	// about the order they end: a second back is safely before t.
	for i > 0 && p.probes[i-1].Done.After(t.Add(-time.Second)) {
		i--
	}
	var out []Probe
	for _, r := range p.probes[i:] {
		if !r.Sent.Before(t) {
			out = append(out, r)
		}
	}
	return out
}

// First waits until a probe sent at or after t is answered by member m and
// returns the one answered first.
func (p *Prober) First(t time.Time, m string, timeout time.Duration) (Probe, bool) {
	deadline := time.Now().Add(timeout)
	for {
		var best Probe
		found := false
		for _, r := range p.Since(t) {
			if r.Member == m && (!found || r.Done.Before(best.Done)) {
				best, found = r, true
			}
		}
		// Probes still in flight may end earlier than the one found: wait
		// out their timeout before deciding.
		if found && time.Since(best.Done) > 2*probeTimeout {
			return best, true
		}
		if time.Now().After(deadline) {
			return best, found
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Last returns the last n probes to end.
func (p *Prober) Last(n int) []Probe {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.probes[max(len(p.probes)-n, 0):])
}

// LastAll reports whether the last n probes to end were all answered by m.
func (p *Prober) LastAll(n int, m string) bool {
	l := p.Last(n)
	if len(l) < n {
		return false
	}
	for _, r := range l {
		if r.Member != m {
			return false
		}
	}
	return true
}

// Switches counts the changes of the member answering probes, in the
// order they were sent; unanswered probes are left out.
func Switches(probes []Probe) int {
	return max(len(Answerers(probes))-1, 0)
}

// Answerers returns, in the order probes were sent, the first probe each
// member answered after another member (or none before it) had:
// unanswered probes are left out.
func Answerers(probes []Probe) []Probe {
	ps := slices.Clone(probes)
	slices.SortFunc(ps, func(a, b Probe) int { return a.Sent.Compare(b.Sent) })
	var firsts []Probe
	cur := ""
	for _, p := range ps {
		if p.Member != "" && p.Member != cur {
			firsts = append(firsts, p)
			cur = p.Member
		}
	}
	return firsts
}

// Interleaved checks probes in the order they were sent: once a member
// answered after another, the earlier one must not answer again (two
// actives, or a flap). It returns the probes that broke that, at most
// until the first answer of an expected change back at back (zero: none).
func Interleaved(probes []Probe) []string {
	ps := slices.Clone(probes)
	slices.SortFunc(ps, func(a, b Probe) int { return a.Sent.Compare(b.Sent) })
	var bad []string
	seen := map[string]bool{}
	cur := ""
	for _, p := range ps {
		if p.Member == "" || p.Member == cur {
			continue
		}
		if seen[p.Member] {
			bad = append(bad, fmt.Sprintf("%s answered again at %s after %s", p.Member, p.Sent.Format("15:04:05.000"), cur))
		}
		if cur != "" {
			seen[cur] = true
		}
		cur = p.Member
	}
	return bad
}

// Group is hb-agent processes running one app's group on the bed.
type Group struct {
	App    wire.App
	Agents map[string]*dhcptest.Proc
	UUID   map[string]string // member name -> host uuid
	// CA signed the members' certificates; Serial is each member's
	// current one (hex): the renewal of the certificate of its join, so
	// that another certificate of a first join (Cert with prev "") is an
	// earlier, replaced one.
	CA     *pki.CA
	Serial map[string]string
	dirs   map[string]string
	bin    string
	bed    *Bed
}

// BuildAgent builds hb-agent into dir and returns its path.
func BuildAgent(dir string) (string, error) {
	bin := filepath.Join(dir, "hb-agent")
	out, err := exec.Command("go", "build", "-o", bin, "hummingbird.io/hummingbird/cmd/hb-agent").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build hb-agent: %w\n%s", err, out)
	}
	return bin, nil
}

// StartGroup writes each member's agent state (a key and certificate of a
// throwaway CA, the CA, a controller nobody answers at, and the desired
// state with app) and starts hb-agent run on every member. Members in
// witnesses vote only. The app's Members, Port and VIP are filled in.
func (d *Bed) StartGroup(tb testing.TB, bin string, app wire.App, witnesses ...string) *Group {
	tb.Helper()
	ca, _ := CA(tb)
	g := &Group{Agents: map[string]*dhcptest.Proc{}, UUID: map[string]string{}, dirs: map[string]string{}, bin: bin, bed: d,
		CA: ca, Serial: map[string]string{}}
	app.Members = nil
	if app.Port == 0 {
		app.Port = 80
	}
	if app.VIP == "" {
		app.VIP = VIP + "/24"
	}
	certs := map[string][2][]byte{}
	for i, m := range d.Members {
		g.UUID[m] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i+1)
		_, _, first := Cert(tb, ca, g.UUID[m], "", false)
		cert, key, serial := Cert(tb, ca, g.UUID[m], first, true)
		certs[m], g.Serial[m] = [2][]byte{cert, key}, serial
		app.Members = append(app.Members, wire.AppMember{
			HostUUID: g.UUID[m], Hostname: "edge-" + strings.ToLower(m),
			Address: net.JoinHostPort(d.Addr[m], strconv.Itoa(wire.FailoverPort)), Witness: slices.Contains(witnesses, m),
			CertSerial: serial, Locked: d.Locked[m],
		})
	}
	g.App = app
	for _, m := range d.Members {
		dir := filepath.Join(tb.TempDir(), m)
		g.dirs[m] = dir
		writeState(tb, ca, dir, certs[m][0], certs[m][1], app)
		g.Start(tb, m)
	}
	return g
}

// CA makes a throwaway controller CA for tb, and a pool holding it.
func CA(tb testing.TB) (*pki.CA, *x509.CertPool) {
	tb.Helper()
	ca, _, err := pki.EnsureCA(tb.TempDir(), time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return ca, pool
}

// Cert signs a key and certificate (PEM) for the agent of host uuid, as
// the controller does at a join or (renewal) a renewal after the
// certificate of serial prev ("": the first), and returns them with the
// serial.
func Cert(tb testing.TB, ca *pki.CA, uuid, prev string, renewal bool) (certPEM, keyPEM []byte, serial string) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: uuid}}, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, serial, err := pki.SignAgent(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER}), uuid, prev, renewal, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), serial
}

// SetCert replaces member m's agent certificate and key, as a renewal
// does; the agent presents them from its next connection.
func (g *Group) SetCert(tb testing.TB, m string, certPEM, keyPEM []byte) {
	tb.Helper()
	for name, data := range map[string][]byte{"agent.key": keyPEM, "agent.crt": certPEM} {
		path := filepath.Join(g.dirs[m], name)
		if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
			tb.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			tb.Fatal(err)
		}
	}
}

// Start (re)starts member m's agent.
func (g *Group) Start(tb testing.TB, m string) {
	tb.Helper()
	g.Agents[m] = dhcptest.Start(tb, g.bed.NS[m], g.bin, "run",
		"--state-dir", g.dirs[m], "--local-socket", filepath.Join(g.dirs[m], "agent.sock"))
}

// Socket is member m's local endpoint.
func (g *Group) Socket(m string) string { return filepath.Join(g.dirs[m], "agent.sock") }

// Logs is every agent's output, for failure messages.
func (g *Group) Logs() string {
	var b strings.Builder
	for _, m := range g.bed.Members {
		if p := g.Agents[m]; p != nil {
			fmt.Fprintf(&b, "--- agent %s:\n%s\n", m, p.Output())
		}
	}
	return b.String()
}

func writeState(tb testing.TB, ca *pki.CA, dir string, cert, key []byte, app wire.App) {
	tb.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	desired, err := json.Marshal(wire.Desired{Version: 1, Apps: []wire.App{app}})
	if err != nil {
		tb.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"agent.key":    key,
		"agent.crt":    cert,
		"ca.crt":       ca.PEM,
		"controller":   []byte("https://192.0.2.1:6385\n"), // TEST-NET-1: nobody answers
		"desired.json": desired,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
}
