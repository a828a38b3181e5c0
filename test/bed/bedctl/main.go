// Command bedctl brings Hummingbird's test bed up for a person to poke at and takes it down.
//
//	bedctl up [-hosts N] [-kubelet=false] [-env FILE]
//	                                        bring a bed up and print how to reach it
//	                                        (FILE: the same as shell variables, see below)
//	bedctl down [DIR...]                    take down the given beds, or every bed
//	bedctl images -out DIR                  build the bed's container image archives
//	bedctl bundle -out DIR                  make the offline bundle of the bed's Kubernetes
//	bedctl vars                             print the playbook settings the bed's hosts need
//
// test/bed/up and test/bed/down call it; test/bed/prepare must have run once.
//
// The file up -env writes sets, for `. FILE` in a shell (test/bed/README.md uses them):
//
//	BED_DIR       the bed's directory (test/bed/down BED_DIR takes it down)
//	BED_NET       its management subnet, 10.251.N.0/24
//	BED_GW        the bridge's address on it, 10.251.N.1: where a controller listens
//	BED_VIP       an address on it no host has, 10.251.N.200: for an app's VIP
//	KUBECONFIG    the bed's cluster-admin kubeconfig
//	BED_SSH_KEY   the key every host's root accepts
//	BED_HOST_i, BED_IP_i, BED_MAC_i, BED_SSH_i
//	              host i's name, address, MAC and an ssh command that logs in as root
//	              without asking anything (i from 1)
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"hummingbird.io/hummingbird/internal/testbed"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bedctl up|down|images|bundle|vars [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "up":
		err = up(ctx, os.Args[2:])
	case "down":
		err = down(ctx, os.Args[2:])
	case "images":
		err = images(ctx, os.Args[2:])
	case "bundle":
		err = makeBundle(os.Args[2:])
	case "vars":
		err = json.NewEncoder(os.Stdout).Encode(testbed.ProvisionVars())
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		slog.Error("bedctl failed", "err", err)
		os.Exit(1)
	}
}

func up(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("up", flag.ExitOnError)
	hosts := fs.Int("hosts", 1, "number of edge hosts")
	kubelet := fs.Bool("kubelet", true, "put a kubelet, kubeadm and kubectl into every host")
	envFile := fs.String("env", "", "also write the bed's addresses, kubeconfig and ssh lines to this file as shell variables")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long")
	fs.Parse(args)
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	start := time.Now()
	b, err := testbed.Up(ctx, testbed.Options{Hosts: *hosts, Kubelet: *kubelet})
	if err != nil {
		return err
	}
	slog.Info("bed up", "dir", b.Dir, "took", time.Since(start).Round(time.Second))
	cp := b.ControlPlane
	fmt.Printf("export KUBECONFIG=%s\n", cp.Kubeconfig)
	fmt.Printf("export PATH=%s:$PATH\n", filepath.Dir(cp.KubectlPath()))
	for _, h := range b.Hosts {
		fmt.Printf("# %s %s %s: %s\n", h.Name, h.IP, h.MAC, sshLine(h))
	}
	if *envFile != "" {
		// test/bed/up runs this from the repository's root: a relative
		// path is the caller's.
		if dir := os.Getenv("HB_BED_CALLER_DIR"); dir != "" && !filepath.IsAbs(*envFile) {
			*envFile = filepath.Join(dir, *envFile)
		}
		if err := writeEnv(*envFile, b); err != nil {
			return err
		}
		fmt.Printf("# the same as shell variables: . %s\n", *envFile)
	}
	if *kubelet && len(b.Hosts) > 0 {
		join, err := cp.JoinCommand(ctx, b.Hosts[0].Name)
		if err != nil {
			return err
		}
		quoted, _ := json.Marshal(join)
		fmt.Printf("# join %s: ssh ... %s\n", b.Hosts[0].Name, quoted)
	}
	fmt.Printf("# take it down: test/bed/down %s\n", b.Dir)
	return nil
}

func down(ctx context.Context, args []string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if len(args) == 0 {
		return testbed.DownAll(ctx, testbed.DefaultDir())
	}
	for _, d := range args {
		if err := testbed.Down(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

func images(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("images", flag.ExitOnError)
	out := fs.String("out", "", "directory for the image archives")
	fs.Parse(args)
	if *out == "" {
		return fmt.Errorf("images: -out is required")
	}
	return testbed.BuildImages(ctx, ".", *out)
}

func makeBundle(args []string) error {
	fs := flag.NewFlagSet("bundle", flag.ExitOnError)
	out := fs.String("out", "", "bundle directory")
	fs.Parse(args)
	if *out == "" {
		return fmt.Errorf("bundle: -out is required")
	}
	c, err := testbed.DefaultCache()
	if err != nil {
		return err
	}
	b, err := c.MakeBundle(*out)
	if err != nil {
		return err
	}
	fmt.Println(b.Dir)
	return nil
}

// sshLine is an ssh command that logs in to h as root without asking
// anything: the bed's key, and no host key check (a bed's host keys are
// new with every bed).
func sshLine(h *testbed.Host) string {
	args := h.SSHArgs("")
	return "ssh " + strings.Join(args[:len(args)-1], " ")
}

// writeEnv writes the bed's shell variables (see the package comment).
func writeEnv(path string, b *testbed.Bed) error {
	gw := fmt.Sprintf("10.251.%d.1", b.Index)
	var sb strings.Builder
	set := func(k, v string) { fmt.Fprintf(&sb, "export %s=%s\n", k, shellQuote(v)) }
	set("BED_DIR", b.Dir)
	set("BED_NET", fmt.Sprintf("10.251.%d.0/24", b.Index))
	set("BED_GW", gw)
	set("BED_VIP", fmt.Sprintf("10.251.%d.200", b.Index))
	set("KUBECONFIG", b.ControlPlane.Kubeconfig)
	set("BED_SSH_KEY", b.SSHKey())
	for i, h := range b.Hosts {
		n := strconv.Itoa(i + 1)
		set("BED_HOST_"+n, h.Name)
		set("BED_IP_"+n, h.IP.String())
		set("BED_MAC_"+n, h.MAC.String())
		set("BED_SSH_"+n, sshLine(h))
	}
	return os.WriteFile(path, []byte(sb.String()), 0o644)
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
