package dhcptest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Require skips tb unless it runs as root with the commands on PATH (ip is
// always required). When the environment variable CI is set it fails
// instead: CI must run these tests.
func Require(tb testing.TB, commands ...string) {
	tb.Helper()
	skip := func(format string, args ...any) {
		tb.Helper()
		if os.Getenv("CI") != "" {
			tb.Fatalf("CI is set and this test cannot run: "+format, args...)
		}
		tb.Skipf(format, args...)
	}
	if os.Geteuid() != 0 {
		skip("needs root for network namespaces (run as root, e.g. sudo go test)")
	}
	for _, c := range append([]string{"ip"}, commands...) {
		if _, err := exec.LookPath(c); err != nil {
			skip("needs %s on PATH: apt-get install -y iproute2 isc-dhcp-client udhcpc isc-dhcp-relay dnsmasq", c)
		}
	}
}

// Netns creates a network namespace named prefix plus a random suffix, with
// its loopback up, and deletes it at the end of tb, after killing the
// processes left in it. Interfaces inside go with it.
func Netns(tb testing.TB, prefix string) string {
	tb.Helper()
	var b [4]byte
	rand.Read(b[:])
	name := prefix + hex.EncodeToString(b[:])
	IP(tb, "netns", "add", name)
	tb.Cleanup(func() {
		out, _ := exec.Command("ip", "netns", "pids", name).Output()
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			tb.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	IP(tb, "-n", name, "link", "set", "lo", "up")
	return name
}

// IP runs the ip command with args and fails tb when it fails.
func IP(tb testing.TB, args ...string) {
	tb.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		tb.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// Veth joins namespace ns1 (interface if1) and ns2 (interface if2) with a
// veth pair and sets both ends up. mac2, when not empty, is if2's MAC.
func Veth(tb testing.TB, ns1, if1, ns2, if2, mac2 string) {
	tb.Helper()
	IP(tb, "-n", ns1, "link", "add", if1, "type", "veth", "peer", "name", if2, "netns", ns2)
	if mac2 != "" {
		IP(tb, "-n", ns2, "link", "set", if2, "address", mac2)
	}
	IP(tb, "-n", ns1, "link", "set", if1, "up")
	IP(tb, "-n", ns2, "link", "set", if2, "up")
}

// Exec runs a command in namespace ns, waits for it and returns its
// combined output; it fails tb when the command fails.
func Exec(tb testing.TB, ns string, name string, args ...string) string {
	tb.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...).CombinedOutput()
	if err != nil {
		tb.Fatalf("in %s: %s %s: %v: %s", ns, name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Proc is a command started with Start.
type Proc struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

// Start starts a command in namespace ns. It is killed at the end of tb
// if it still runs.
func Start(tb testing.TB, ns string, name string, args ...string) *Proc {
	tb.Helper()
	p := &Proc{out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("in %s: start %s: %v", ns, name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// Wait waits for the command to end, at most until ctx ends, and returns
// its exit error.
func (p *Proc) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return fmt.Errorf("waiting for %s: %w", p.cmd.Args, ctx.Err())
	}
}

// Stop kills the command and waits for it to end.
func (p *Proc) Stop() {
	p.cmd.Process.Kill()
	<-p.done
}

// Signal sends sig to the command (ip netns exec replaces itself with it).
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Pid is the command's process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Output is what the command wrote so far, stdout and stderr.
func (p *Proc) Output() string { return p.out.String() }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// In runs fn on an OS thread moved into namespace ns: sockets fn opens
// belong to ns and stay usable from any goroutine afterwards. The thread
// returns to its namespace afterwards; if it cannot, it is never given back
// to the scheduler and ends with fn's goroutine.
func In(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- fmt.Errorf("open this thread's namespace: %w", err)
			return
		}
		defer self.Close()
		f, err := os.Open("/run/netns/" + ns)
		if err != nil {
			errc <- fmt.Errorf("open namespace %s: %w", ns, err)
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("enter namespace %s: %w", ns, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("leave namespace %s: %w", ns, err)
			return // still locked: the thread ends with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// WaitFile waits until path exists and returns its content, or fails tb
// after timeout; explain adds to the failure message.
func WaitFile(tb testing.TB, path string, timeout time.Duration, explain func() string) []byte {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			return b
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s did not appear within %v: %s", path, timeout, explain())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
