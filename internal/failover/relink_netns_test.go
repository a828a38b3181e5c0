package failover

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/mgmtnet/dhcp/dhcptest"
)

// envRelinkPeers makes TestRelink the helper that follows the links of the namespace it runs in,
// asking for these peers' addresses.
const envRelinkPeers = "HB_TEST_RELINK_PEERS"

// TestRelink: a node whose link comes back while the far end forwards nothing yet (a bridge port
// that drops its frames for 150 ms, as one enabling itself does) reaches its peer within a few tens of
// milliseconds of the port forwarding: its agent asks for the peer's address itself. Its kernel
// alone asks again only a second after its first request, which the port dropped.
func TestRelink(t *testing.T) {
	if peers := os.Getenv(envRelinkPeers); peers != "" {
		relinkHelper(peers)
		return
	}
	dhcptest.Require(t, "ebtables")
	br, a, b := dhcptest.Netns(t, "hbrlbr"), dhcptest.Netns(t, "hbrla"), dhcptest.Netns(t, "hbrlb")
	dhcptest.IP(t, "-n", br, "link", "add", "br0", "type", "bridge")
	dhcptest.IP(t, "-n", br, "link", "set", "br0", "up")
	for _, n := range []struct{ ns, port, addr string }{{a, "port-a", "10.203.0.1/24"}, {b, "port-b", "10.203.0.2/24"}} {
		dhcptest.Veth(t, br, n.port, n.ns, "eth0", "")
		dhcptest.IP(t, "-n", br, "link", "set", n.port, "master", "br0")
		dhcptest.IP(t, "-n", n.ns, "addr", "add", n.addr, "dev", "eth0")
		dhcptest.IP(t, "-n", n.ns, "link", "set", "eth0", "up")
	}
	var ln net.Listener
	if err := dhcptest.In(b, func() (err error) { ln, err = net.Listen("tcp4", "10.203.0.2:7007"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	dial := func() error {
		return dhcptest.In(a, func() error {
			c, err := net.DialTimeout("tcp4", "10.203.0.2:7007", 50*time.Millisecond)
			if err == nil {
				c.Close()
			}
			return err
		})
	}
	if err := dial(); err != nil {
		t.Fatalf("A cannot reach B before the cut: %v", err)
	}

	helper := exec.Command("ip", "netns", "exec", a, os.Args[0], "-test.run", "^TestRelink$")
	helper.Env = append(os.Environ(), envRelinkPeers+"=10.203.0.2")
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	helper.Stderr = helper.Stdout
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { helper.Process.Signal(syscall.SIGTERM); helper.Wait() }()
	sc := bufio.NewScanner(out)
	for sc.Scan() && !strings.Contains(sc.Text(), "following this node's links") {
	}
	go func() {
		for sc.Scan() {
		}
	}()

	// The bridge drops what A sends while the rule is there.
	drop := func(op string) {
		t.Helper()
		args := []string{"netns", "exec", br, "ebtables", op, "FORWARD", "-i", "port-a", "-j", "DROP"}
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	for trial := range 3 {
		// A's link goes down and comes back while the bridge still drops what A sends.
		dhcptest.IP(t, "-n", a, "link", "set", "eth0", "down")
		drop("-A")
		time.Sleep(300 * time.Millisecond)
		dhcptest.IP(t, "-n", a, "link", "set", "eth0", "up")
		if err := dial(); err == nil {
			t.Fatal("A reached B through a port that drops its frames")
		}
		time.Sleep(150 * time.Millisecond)
		drop("-D")
		forwarding := time.Now()
		for dial() != nil {
			if time.Since(forwarding) > 3*time.Second {
				t.Fatalf("trial %d: A does not reach B 3 s after its port forwards", trial)
			}
			time.Sleep(5 * time.Millisecond)
		}
		took := time.Since(forwarding)
		t.Logf("trial %d: A reached B %v after its port forwards", trial, took.Round(time.Millisecond))
		if took > 400*time.Millisecond {
			t.Errorf("trial %d: A reached B %v after its port forwards, want within 400 ms", trial, took.Round(time.Millisecond))
		}
	}
}

// relinkHelper follows the links of the namespace it runs in, for peers (comma-separated), until
// it is told to stop.
func relinkHelper(peers string) {
	var ps []netip.Addr
	for _, p := range strings.Split(peers, ",") {
		ps = append(ps, netip.MustParseAddr(p))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	m := &Manager{log: slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	m.watchLinks(ctx, func() []netip.Addr { return ps })
}
