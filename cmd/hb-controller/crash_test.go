package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/client"
	"hummingbird.io/hummingbird/internal/pki"
	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// TestKillDuringAdds kills hb-controller with SIGKILL in the middle of a
// stream of concurrent adds, starts it again on the same database, and
// checks that every add that was acknowledged with a 2xx is there.
func TestKillDuringAdds(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "hb-controller")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build hb-controller: %v\n%s", err, out)
	}
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			dsn := ""
			if b.Name != "sqlite" {
				dsn = b.DSN(t)
			}
			testKill(t, bin, dsn)
		})
	}
}

type proc struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{} // closed when cmd has exited
}

// wait returns once the controller has exited.
func (p *proc) wait() { <-p.done }

// freeAddr returns an address of 127.0.0.1 whose port was free a moment
// ago. Another process can take it before hb-controller binds it: start
// copes with that.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// errExited says the controller exited before it served: its port was
// most likely taken between freeAddr and its bind.
var errExited = errors.New("hb-controller exited before it served")

// start runs hb-controller on a free port and returns once it serves.
// When the controller exits before that (its port was taken in the
// meantime), it is started again on another port.
func start(t *testing.T, bin, dataDir, dsn string) *proc {
	t.Helper()
	const attempts = 5
	for i := 1; ; i++ {
		p, err := tryStart(t, bin, dataDir, dsn, freeAddr(t))
		if err == nil {
			return p
		}
		if !errors.Is(err, errExited) || i == attempts {
			t.Fatalf("start hb-controller (attempt %d of %d): %v", i, attempts, err)
		}
		t.Logf("start hb-controller on %s (attempt %d of %d): %v; trying another port", p.addr, i, attempts, err)
	}
}

// tryStart runs hb-controller on addr and waits until it serves there:
// until a TLS handshake on addr verifies against the data directory's
// CA, so that another process's listener on the port is not taken for
// the controller.
func tryStart(t *testing.T, bin, dataDir, dsn, addr string) (*proc, error) {
	t.Helper()
	p := &proc{addr: addr, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "--data-dir", dataDir, "--listen", p.addr, "--log-level", "warn",
		"--mgmt-subnet", "10.0.0.0/8", "--mgmt-controller-ips", "10.0.0.1")
	p.cmd.Env = append(os.Environ(), "HB_DB="+dsn)
	p.cmd.Stderr = os.Stderr
	if err := p.cmd.Start(); err != nil {
		return p, fmt.Errorf("run %s: %w", bin, err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.cmd.Process.Kill(); p.wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := handshake(dataDir, p.addr)
		if err == nil {
			return p, nil
		}
		select {
		case <-p.done:
			return p, fmt.Errorf("%w on %s (%v); its log is above", errExited, p.addr, p.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			return p, fmt.Errorf("hb-controller did not serve on %s within 30s: %w", p.addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// handshake makes a TLS connection to addr that verifies against the CA
// in dataDir.
func handshake(dataDir, addr string) error {
	caPEM, err := os.ReadFile(filepath.Join(dataDir, "ca.crt"))
	if err != nil {
		return err
	}
	pool, err := pki.Pool(caPEM)
	if err != nil {
		return err
	}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: time.Second}, Config: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}

func apiClient(t *testing.T, dataDir, addr string) *client.Client {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(dataDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := os.ReadFile(filepath.Join(dataDir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pki.Pool(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Options{URL: "https://" + addr, Token: strings.TrimSpace(string(tok)), Roots: pool, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testKill(t *testing.T, bin, dsn string) {
	dataDir := t.TempDir()
	p := start(t, bin, dataDir, dsn)
	c := apiClient(t, dataDir, p.addr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	const workers, killAfter = 8, 150
	var (
		mu      sync.Mutex
		acked   []string
		refused error // an answer other than "the controller is gone"
		wg      sync.WaitGroup
		running = workers
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				n := (w+1)*100000 + i
				name := fmt.Sprintf("edge-%d", n)
				_, err := c.AddHost(ctx, apitype.HostCreate{
					Hostname: name, Personality: "edgeworker",
					MgmtIP: fmt.Sprintf("10.%d.%d.%d", n>>16&255, n>>8&255, n&255),
				})
				if err != nil {
					mu.Lock()
					running--
					if !problem.Is(err, problem.Unavailable) && refused == nil {
						refused = err
					}
					mu.Unlock()
					return // not acknowledged: the controller died under us, or refused
				}
				mu.Lock()
				acked = append(acked, name)
				mu.Unlock()
			}
		}()
	}
	for deadline := time.Now().Add(2 * time.Minute); ; {
		mu.Lock()
		n, r, err := len(acked), running, refused
		mu.Unlock()
		if err != nil {
			t.Fatalf("an add was refused before the kill: %v", err)
		}
		if n >= killAfter {
			break
		}
		if r == 0 || time.Now().After(deadline) {
			t.Fatalf("only %d adds acknowledged before the kill (%d workers left)", n, r)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.wait()
	cancel()
	wg.Wait()

	p2 := start(t, bin, dataDir, dsn)
	c2 := apiClient(t, dataDir, p2.addr)
	hosts, err := c2.ListHosts(context.Background(), client.HostFilter{})
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for _, h := range hosts {
		stored[h.Hostname] = true
	}
	for _, name := range acked {
		if !stored[name] {
			t.Errorf("add of %s was acknowledged but is gone after SIGKILL", name)
		}
	}
	t.Logf("%d adds acknowledged before SIGKILL, %d hosts stored after restart", len(acked), len(hosts))
	// The restarted controller takes writes again.
	if _, err := c2.AddHost(context.Background(), apitype.HostCreate{Hostname: "after-restart", Personality: "edgeworker", MgmtIP: "10.255.255.254"}); err != nil {
		t.Errorf("add after restart: %v", err)
	}
}
