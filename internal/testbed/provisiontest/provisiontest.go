// Package provisiontest brings up what a provisioning test or benchmark needs: a test bed whose
// hosts have no Kubernetes yet, a controller in-process that manages the bed's cluster from the
// offline bundle and logs in to the hosts with the bed's SSH key, and the hosts in its inventory
// as edgeworkers with their management addresses.
//
// It is a package of its own, not part of testbed, because it needs the controller
// (controllertest), and testbed must stay free of it.
package provisiontest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/client"
	"hummingbird.io/hummingbird/internal/controller"
	"hummingbird.io/hummingbird/internal/controller/controllertest"
	"hummingbird.io/hummingbird/internal/provision"
	"hummingbird.io/hummingbird/internal/testbed"
)

// Bed is a bed of hosts without Kubernetes, a controller that provisions them, and its client
// with the admin token.
type Bed struct {
	Bed        *testbed.Bed
	Controller *controllertest.Instance
	Client     *client.Client

	downOnce sync.Once
	downErr  error
}

// Start brings up a bed of n hosts and a controller for it, and adds every host as an
// edgeworker of group (none when empty) with the label site=hall-2. The bed is taken down when
// tb and its subtests finish, or earlier by [Bed.Down]; the controller stops when tb finishes.
// The controller runs up to 4 jobs at once.
func Start(tb testing.TB, ctx context.Context, n int, group string) *Bed {
	tb.Helper()
	b := startBed(tb, ctx, n)
	cache, err := testbed.DefaultCache()
	if err != nil {
		tb.Fatal(err)
	}
	bundleDir := tb.TempDir()
	if _, err := cache.MakeBundle(bundleDir); err != nil {
		tb.Fatal(err)
	}
	keys := tb.TempDir()
	key, err := os.ReadFile(b.Bed.SSHKey())
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(keys, "default"), key, 0o600); err != nil {
		tb.Fatal(err)
	}
	subnet := fmt.Sprintf("10.251.%d.0/24", b.Bed.Index)
	gateway := fmt.Sprintf("10.251.%d.1", b.Bed.Index)
	b.Controller = controllertest.Start(tb, "", func(c *controller.Config) {
		c.Kubeconfig = b.Bed.ControlPlane.Kubeconfig
		c.MgmtSubnet, c.MgmtControllerIPs = subnet, []string{gateway}
		c.Provision.BundleDir = bundleDir
		c.Provision.SSHKeyDir = keys
		c.Provision.Vars = testbed.ProvisionVars()
		c.Provision.Parallel = 4
	})
	b.Client = b.Controller.Client(tb, b.Controller.AdminToken)
	if group != "" {
		if _, err := b.Client.AddGroup(ctx, apitype.GroupCreate{Name: group}); err != nil {
			tb.Fatal(err)
		}
	}
	for _, h := range b.Bed.Hosts {
		if _, err := b.Client.AddHost(ctx, apitype.HostCreate{Hostname: h.Name, Personality: "edgeworker",
			MgmtIP: h.IP.String(), MgmtMAC: h.MAC.String(), Group: group, Labels: map[string]string{"site": "hall-2"}}); err != nil {
			tb.Fatal(err)
		}
	}
	return b
}

// startBed is [testbed.Start] with a teardown that [Bed.Down] can run early: taking a bed down
// frees its index for the next bed, so it must happen once only.
func startBed(tb testing.TB, ctx context.Context, n int) *Bed {
	tb.Helper()
	start := time.Now()
	bed, err := testbed.Up(ctx, testbed.Options{Hosts: n, Owner: os.Getpid()})
	if err != nil {
		tb.Fatalf("bringing the test bed up: %v", err)
	}
	tb.Logf("test bed %d up in %v", bed.Index, time.Since(start).Round(time.Millisecond))
	b := &Bed{Bed: bed}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := b.Down(ctx); err != nil {
			tb.Errorf("taking the test bed down: %v", err)
		}
	})
	return b
}

// Down takes the bed down now rather than when the test ends (the controller keeps running
// until then). Use it, not b.Bed.Down: it runs once, however often it is called, so that it never
// takes down a later bed that got the same index.
func (b *Bed) Down(ctx context.Context) error {
	b.downOnce.Do(func() { b.downErr = b.Bed.Down(ctx) })
	return b.downErr
}

// WaitJob polls a host's job every second until it ends.
func WaitJob(tb testing.TB, ctx context.Context, c *client.Client, host string) apitype.ProvisionJob {
	tb.Helper()
	return Watch(tb, ctx, c, host, time.Second, nil)
}

// Watch polls a host's job every interval until it ends, and returns its end. It passes every
// answer, the last included, to fn when fn is not nil.
func Watch(tb testing.TB, ctx context.Context, c *client.Client, host string, interval time.Duration,
	fn func(apitype.ProvisionJob)) apitype.ProvisionJob {
	tb.Helper()
	for {
		j, err := c.ProvisionJob(ctx, host)
		if err != nil {
			tb.Fatal(err)
		}
		if fn != nil {
			fn(j)
		}
		if j.State != provision.StateQueued && j.State != provision.StateRunning {
			return j
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("job of %s did not end: %+v", host, j)
		case <-time.After(interval):
		}
	}
}

// Log returns the whole log of a host's latest job.
func Log(tb testing.TB, ctx context.Context, c *client.Client, host string) string {
	tb.Helper()
	l, err := c.ProvisionLog(ctx, host, 0)
	if err != nil {
		tb.Fatal(err)
	}
	var b strings.Builder
	for _, ch := range l.Chunks {
		b.WriteString(ch.Text)
	}
	return b.String()
}
