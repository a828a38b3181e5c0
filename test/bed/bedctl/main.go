// Command bedctl brings Hummingbird's test bed up for a person to poke at and takes it down.
//
//	bedctl up [-hosts N] [-kubelet=false]   bring a bed up and print how to reach it
//	bedctl down [DIR...]                    take down the given beds, or every bed
//	bedctl images -out DIR                  build the bed's container image archives
//	bedctl bundle -out DIR                  make the offline bundle of the bed's Kubernetes
//	bedctl vars                             print the playbook settings the bed's hosts need
//
// test/bed/up and test/bed/down call it; test/bed/prepare must have run once.
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
	"syscall"
	"time"

	"hummingbird.io/hummingbird/internal/testbed"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bedctl up|down|images [flags]")
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
		fmt.Printf("# %s %s %s: ssh -i %s root@%s\n", h.Name, h.IP, h.MAC, b.SSHKey(), h.IP)
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
