package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/testbed"
)

// TestTeardownAfterInterrupt brings a bed up in a test binary of its own, interrupts that binary
// and checks that nothing of the bed is left: on SIGTERM the binary takes its beds down itself;
// on SIGKILL it cannot, and the next test binary (here, this one through testbed.Reap) does.
func TestTeardownAfterInterrupt(t *testing.T) {
	requireBed(t)
	for _, tc := range []struct {
		name   string
		signal syscall.Signal
		join   bool
	}{
		{"SIGTERM", syscall.SIGTERM, false},
		{"SIGKILL with a running pod", syscall.SIGKILL, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkNothingLeft(t)
			ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestBedOwner$", "-test.v")
			cmd.Env = append(os.Environ(), "HB_E2E_OWNER=1", fmt.Sprintf("HB_E2E_OWNER_JOIN=%t", tc.join))
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var dir string
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				t.Log(sc.Text())
				if d, ok := strings.CutPrefix(sc.Text(), "bed up: "); ok {
					dir = d
					break
				}
			}
			if dir == "" {
				cmd.Wait()
				t.Fatal("the bed's owner ended before its bed was up")
			}
			if err := cmd.Process.Signal(tc.signal); err != nil {
				t.Fatal(err)
			}
			for sc.Scan() {
				t.Log(sc.Text())
			}
			cmd.Wait()
			if tc.signal == syscall.SIGKILL {
				if _, err := os.Stat(dir); err != nil {
					t.Fatalf("the killed owner's bed should still be there: %v", err)
				}
				if err := testbed.Reap(ctx, testbed.DefaultDir()); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := os.Stat(dir); err == nil {
				t.Errorf("bed %s is still there", dir)
			}
		})
	}
}

// TestBedOwner is TestTeardownAfterInterrupt's bed owner: it brings a bed up and waits to be
// interrupted.
func TestBedOwner(t *testing.T) {
	if os.Getenv("HB_E2E_OWNER") != "1" {
		t.Skip("runs only inside TestTeardownAfterInterrupt")
	}
	requireBed(t)
	ctx := t.Context()
	b := testbed.Start(t, ctx, testbed.Options{Hosts: 1, Kubelet: true})
	if os.Getenv("HB_E2E_OWNER_JOIN") == "true" {
		joinAndRun(t, ctx, b, b.Hosts[0])
	}
	fmt.Printf("bed up: %s\n", b.Dir)
	<-ctx.Done()
}
