package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/mgmtnet/dhcp/dhcptest"
)

// TestDHCPFromInventory runs the real hb-controller with --dhcp-interface in
// one network namespace and dhclient in another: a host added with hbctl
// gets exactly its allocated address; an unknown MAC gets nothing and shows
// up as a discovered event; after the controller is killed and started
// again, the client's INIT-REBOOT request for its address is acknowledged,
// and the lease stored before the kill is still there (no second "leased"
// event for the same unexpired lease).
func TestDHCPFromInventory(t *testing.T) {
	dhcptest.Require(t, "dhclient")
	t.Parallel()
	dir := t.TempDir()
	for _, cmd := range []string{"hb-controller", "hbctl"} {
		if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, cmd), "../"+cmd).CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", cmd, err, out)
		}
	}
	const mac, stranger = "02:00:00:05:00:01", "02:00:00:05:00:02"
	srv := dhcptest.Netns(t, "hbs")
	cli := dhcptest.Netns(t, "hbc")
	other := dhcptest.Netns(t, "hbc")
	dhcptest.IP(t, "-n", srv, "link", "add", "br0", "type", "bridge")
	dhcptest.IP(t, "-n", srv, "link", "set", "br0", "up")
	dhcptest.IP(t, "-n", srv, "addr", "add", "10.210.0.1/24", "dev", "br0")
	for i, c := range []struct{ ns, mac string }{{cli, mac}, {other, stranger}} {
		port := fmt.Sprintf("p%d", i)
		dhcptest.Veth(t, srv, port, c.ns, "eth0", c.mac)
		dhcptest.IP(t, "-n", srv, "link", "set", port, "master", "br0")
	}

	data := filepath.Join(dir, "data")
	start := func() *dhcptest.Proc {
		t.Helper()
		p := dhcptest.Start(t, srv, filepath.Join(dir, "hb-controller"), "--data-dir", data,
			"--listen", "127.0.0.1:6385", "--mgmt-mode", "dynamic", "--mgmt-subnet", "10.210.0.0/24",
			"--mgmt-controller-ips", "10.210.0.1", "--dhcp-interface", "br0")
		deadline := time.Now().Add(30 * time.Second)
		for {
			if _, err := hbctl(srv, dir, data, "version"); err == nil && fileExists(filepath.Join(data, "admin.token")) {
				if _, err := hbctl(srv, dir, data, "host-list"); err == nil {
					return p
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("hb-controller did not come up:\n%s", p.Output())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	ctl := start()
	out, err := hbctl(srv, dir, data, "host-add", "-n", "edge-01", "-p", "edgeworker", "-m", mac, "-f", "json")
	if err != nil {
		t.Fatalf("host-add: %v\n%s", err, out)
	}
	var h apitype.Host
	if err := json.Unmarshal([]byte(out), &h); err != nil || h.MgmtIP != "10.210.0.2" {
		t.Fatalf("host-add gave %q (%v): %s", h.MgmtIP, err, out)
	}

	leases := filepath.Join(dir, "dhclient.leases")
	got := runDHClient(t, cli, dir, leases, 10)
	if got["new_ip_address"] != "10.210.0.2" || got["new_host_name"] != "edge-01" || got["new_subnet_mask"] != "255.255.255.0" {
		t.Errorf("dhclient got %v, want 10.210.0.2/24 named edge-01", got)
	}
	if got := runDHClient(t, other, dir, filepath.Join(dir, "other.leases"), 3); got["new_ip_address"] != "" {
		t.Errorf("unknown MAC got an address: %v", got)
	}

	// Kill the controller and start it again on the same data directory.
	ctl.Stop() // SIGKILL: ip netns exec runs the controller in its own process
	start()
	if got := runDHClient(t, cli, dir, leases, 10); got["new_ip_address"] != "10.210.0.2" || got["reason"] != "REBOOT" {
		t.Errorf("after the restart dhclient got %v, want REBOOT with 10.210.0.2", got)
	}

	out, err = hbctl(srv, dir, data, "event-list", "--entity-type", "host", "-c", "action", "-c", "entity", "-f", "value")
	if err != nil {
		t.Fatalf("event-list: %v\n%s", err, out)
	}
	if n := strings.Count(out, "host.leased host=edge-01"); n != 1 {
		t.Errorf("%d leased events for edge-01, want 1 (the stored lease was renewed):\n%s", n, out)
	}
	if !strings.Contains(out, "host.discovered mac="+stranger) {
		t.Errorf("no discovered event for %s:\n%s", stranger, out)
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// hbctl runs hbctl inside namespace ns against the controller there.
func hbctl(ns, dir, data string, args ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, filepath.Join(dir, "hbctl")}, args...)...)
	cmd.Env = append(os.Environ(), "HB_URL=https://127.0.0.1:6385", "HB_CACERT="+filepath.Join(data, "ca.crt"),
		"HB_TOKEN_FILE="+filepath.Join(data, "admin.token"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// runDHClient runs dhclient once in ns with leases as its lease file and
// returns the environment its script saw for the bound lease (empty when it
// got none within timeout seconds).
func runDHClient(t *testing.T, ns, dir, leases string, timeout int) map[string]string {
	t.Helper()
	run, err := os.MkdirTemp(dir, "dhclient")
	if err != nil {
		t.Fatal(err)
	}
	record := filepath.Join(run, "lease")
	script := filepath.Join(run, "script")
	if err := os.WriteFile(script, []byte(fmt.Sprintf(`#!/bin/sh
case "$reason" in
BOUND|REBOOT|RENEW) env | sort > %[1]s.tmp && mv %[1]s.tmp %[1]s ;;
esac
exit 0
`, record)), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(run, "dhclient.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("timeout %d;\nretry 1;\ninitial-interval 1;\n"+
		"request subnet-mask, routers, domain-name-servers, host-name, ntp-servers;\n", timeout)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := dhcptest.Start(t, ns, "dhclient", "-4", "-d", "-1", "-v", "-cf", conf, "-sf", script,
		"-lf", leases, "-pf", filepath.Join(run, "pid"), "eth0")
	// dhclient -d stays to renew once bound, and exits when no lease came:
	// wait for whichever happens first.
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(timeout+20)*time.Second)
	defer cancel()
	exited := make(chan struct{})
	go func() { p.Wait(ctx); close(exited) }()
	for !fileExists(record) {
		select {
		case <-exited:
		case <-time.After(50 * time.Millisecond):
			continue
		}
		break
	}
	b, err := os.ReadFile(record)
	if err != nil {
		p.Stop()
		return map[string]string{}
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = strings.Trim(v, "'")
		}
	}
	// dhclient runs the script before it writes the lease to its lease file: stopping it at once
	// could lose the lease, and the next run would start from DISCOVER instead of INIT-REBOOT.
	if ip := env["new_ip_address"]; ip != "" {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if data, err := os.ReadFile(leases); err == nil && strings.Contains(string(data), "fixed-address "+ip+";") {
				break
			}
		}
	}
	p.Stop()
	return env
}
