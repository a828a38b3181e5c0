package testbed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Host is an edge host of the bed: a Debian system booted with systemd-nspawn in a network
// namespace of its own, plugged into the bed's bridge, with sshd and containerd running. Its
// root is an overlay on the cached Debian root, so hosts never share a writable file.
type Host struct {
	// Name is the host's hostname and, once joined, its Node name.
	Name string
	// IP is the host's address on the bed's bridge.
	IP net.IP
	// MAC is the hardware address of the host's eth0.
	MAC net.HardwareAddr
	// Dir holds the host's writable layer, its merged root and its console log.
	Dir string
	// NetNS is the name of the host's network namespace (see `ip netns`).
	NetNS string

	sshKey string
}

// HostOptions describes a host to add to a bed.
type HostOptions struct {
	// Name is the hostname; edge-<i> when empty.
	Name string
	// Kubelet puts the bed's kubelet, kubeadm and kubectl into the host, with a kubelet unit that
	// starts once `kubeadm join` has configured it, as the Kubernetes packages would.
	Kubelet bool
}

// containerdConfig is the hosts' containerd configuration. These machines lack
// CAP_SYS_RESOURCE, so containerd must not raise a sandbox's oom_score_adj.
const containerdConfig = `version = 2

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "/etc/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    SystemdCgroup = false
`

// cniConfig gives the host's pods a bridge and addresses from a subnet of their own.
const cniConfig = `{
  "cniVersion": "1.0.0",
  "name": "bed",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.%d.0/24"}]]}
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`

// kubeletUnit runs the kubelet the way the Kubernetes packages' unit and kubeadm's drop-in do:
// until `kubeadm join` has written its configuration, it keeps failing and restarting.
const kubeletUnit = `[Unit]
Description=kubelet of the Hummingbird test bed
After=containerd.service
Wants=containerd.service

[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
EnvironmentFile=-/etc/default/kubelet
ExecStart=/usr/local/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
Restart=always
RestartSec=2
StartLimitInterval=0

[Install]
WantedBy=multi-user.target
`

// nodeSetup readies the host for a kubelet before containerd and the kubelet start; the unit
// nodeSetupUnit runs it at every boot.
//
// Cgroups: systemd-nspawn runs the host in a cgroup namespace rooted at its own cgroup
// (hostCgroup) and mounts the cgroup v1 controllers read-only. Remounting them read-write keeps
// the namespace's view, so whatever the host makes stays below its own cgroup; the kubelet's
// cgroup root (podsCgroup) must exist in every hierarchy before it starts.
//
// Kernel tunables: the kubelet sets vm.overcommit_memory, kernel.panic and a few more, and fails
// when it cannot. They belong to the one kernel every host and the machine share, and /proc/sys
// is read-only in the host, so the host is shown the values the kubelet wants, each from a file
// bound over its /proc/sys entry, and the machine's kernel is left alone.
const nodeSetup = `#!/bin/sh
set -eu
for d in /sys/fs/cgroup/*/; do
	mount -o remount,bind,rw "$d"
	mkdir -p "$d/pods"
done
mkdir -p /run/bed-sysctl
for kv in vm/overcommit_memory=1 vm/panic_on_oom=0 kernel/panic=10 kernel/panic_on_oops=1 \
	kernel/keys/root_maxkeys=1000000 kernel/keys/root_maxbytes=25000000; do
	key=${kv%=*} value=${kv#*=}
	[ "$(cat "/proc/sys/$key")" = "$value" ] && continue
	echo "$value" >"/run/bed-sysctl/${key##*/}"
	mount --bind "/run/bed-sysctl/${key##*/}" "/proc/sys/$key"
done
`

const nodeSetupUnit = `[Unit]
Description=Ready the test bed host for a kubelet
DefaultDependencies=no
Before=containerd.service kubelet.service
After=local-fs.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/bed-node-setup

[Install]
WantedBy=multi-user.target
`

// kubeletDropIn holds what is particular to the bed's hosts: the kubelet's cgroup root (see
// nodeSetup) and the cgroup v1 machines.
const kubeletDropIn = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupRoot: %s
failCgroupV1: false
failSwapOn: false
`

// hostCgroup is the cgroup of a host's systemd and everything it runs. The host sees it as its
// root cgroup.
func hostCgroup(index int, name string) string {
	return fmt.Sprintf("%s/bed%d/%s", cgroupParent, index, name)
}

// podsCgroup is the kubelet's cgroup root, as the host sees it (see nodeSetup).
const podsCgroup = "/pods"

// startHost makes and boots host number i of bed index.
func startHost(ctx context.Context, b *Bed, i int, opts HostOptions) (*Host, error) {
	name := opts.Name
	if name == "" {
		name = fmt.Sprintf("edge-%d", i)
	}
	if !validHostname(name) {
		return nil, fmt.Errorf("host name %q: want 1 to 40 of a-z, 0-9 and -, not starting with -", name)
	}
	h := &Host{
		Name:   name,
		IP:     hostIP(b.Index, i),
		MAC:    hostMAC(b.Index, i),
		Dir:    filepath.Join(b.Dir, "hosts", name),
		NetNS:  netnsPrefix(b.Index) + name,
		sshKey: b.sshKey(),
	}
	root := filepath.Join(h.Dir, "root")
	for _, d := range []string{"upper", "work", "root", "containerd"} {
		if err := os.MkdirAll(filepath.Join(h.Dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("making host %s: %w", name, err)
		}
	}
	opt := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", b.cache.Rootfs(),
		filepath.Join(h.Dir, "upper"), filepath.Join(h.Dir, "work"))
	if err := syscall.Mount("overlay", root, "overlay", 0, opt); err != nil {
		return nil, fmt.Errorf("mounting the root of host %s: %w", name, err)
	}
	if err := h.writeFiles(ctx, b, i, root, opts); err != nil {
		return nil, err
	}
	link := fmt.Sprintf("%sh%d", linkPrefix(b.Index), i)
	if err := plugHost(ctx, b.Index, h.NetNS, link, h.MAC, h.IP); err != nil {
		return nil, err
	}
	args := []string{
		"--quiet", "--boot", "--directory", root,
		"--machine", fmt.Sprintf("hb%d-%s", b.Index, name), "--hostname", name,
		"--network-namespace-path", "/run/netns/" + h.NetNS,
		"--register=no", "--keep-unit", "--console=read-only",
		"--resolv-conf=off", "--timezone=off", "--link-journal=no",
		// What a kubelet needs inside: the kernel log, session keyrings, bpf and writable cgroups
		// (nodeSetup).
		"--capability=all", "--bind=/dev/kmsg",
		"--system-call-filter=@keyring bpf",
		"--bind=" + filepath.Join(h.Dir, "containerd") + ":/var/lib/containerd",
		"--bind-ro=" + b.cache.Images() + ":/var/lib/hummingbird/images",
	}
	if opts.Kubelet {
		for _, bin := range []string{"kubelet", "kubeadm", "kubectl"} {
			args = append(args, "--bind-ro="+b.cache.Bin(bin)+":/usr/local/bin/"+bin)
		}
	}
	d, err := startDaemon(hostCgroup(b.Index, name), filepath.Join(h.Dir, "console.log"), nil,
		"systemd-nspawn", args...)
	if err != nil {
		return nil, err
	}
	boot, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := d.waitFor(boot, "sshd on "+name, func(ctx context.Context) error {
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := h.SSH(tctx, "systemctl is-active ssh containerd bed-node-setup")
		return err
	}); err != nil {
		return nil, err
	}
	return h, nil
}

// validHostname tells whether name can name a host, its network namespace and its machine.
func validHostname(name string) bool {
	if name == "" || len(name) > 40 || name[0] == '-' {
		return false
	}
	for _, c := range name {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// writeFiles gives the host its identity and configuration, in its writable layer.
func (h *Host) writeFiles(ctx context.Context, b *Bed, i int, root string, opts HostOptions) error {
	pub, err := os.ReadFile(b.sshKey() + ".pub")
	if err != nil {
		return fmt.Errorf("reading the bed's ssh key: %w", err)
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return fmt.Errorf("making a machine id: %w", err)
	}
	files := map[string]string{
		"etc/hostname":                              h.Name + "\n",
		"etc/hosts":                                 fmt.Sprintf("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n", h.IP, h.Name),
		"etc/machine-id":                            hex.EncodeToString(id) + "\n",
		"etc/resolv.conf":                           "# The test bed has no name server.\n",
		"root/.ssh/authorized_keys":                 string(pub),
		"etc/containerd/config.toml":                fmt.Sprintf(containerdConfig, PauseImage),
		"etc/cni/net.d/10-bed.conflist":             fmt.Sprintf(cniConfig, i),
		"etc/systemd/system/bed-node-setup.service": nodeSetupUnit,
		"usr/local/sbin/bed-node-setup":             nodeSetup,
	}
	if opts.Kubelet {
		files["etc/systemd/system/kubelet.service"] = kubeletUnit
		files["etc/default/kubelet"] = fmt.Sprintf("KUBELET_EXTRA_ARGS=--node-ip=%s --config-dir=/etc/kubernetes/kubelet.conf.d\n", h.IP)
		files["etc/kubernetes/kubelet.conf.d/50-bed.conf"] = fmt.Sprintf(kubeletDropIn, podsCgroup)
		files["etc/kubernetes/manifests/.keep"] = ""
		for _, bin := range []string{"kubelet", "kubeadm", "kubectl"} {
			files["usr/local/bin/"+bin] = "" // mount point for the bed's binary
		}
	}
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return fmt.Errorf("writing %s on host %s: %w", p, h.Name, err)
		}
		mode := os.FileMode(0o644)
		if strings.HasPrefix(p, "root/") || strings.HasPrefix(p, "usr/local/") {
			mode = 0o700
		}
		if err := os.WriteFile(full, []byte(content), mode); err != nil {
			return fmt.Errorf("writing %s on host %s: %w", p, h.Name, err)
		}
	}
	if err := os.Chmod(filepath.Join(root, "root", ".ssh"), 0o700); err != nil {
		return fmt.Errorf("writing the ssh keys of host %s: %w", h.Name, err)
	}
	units := []string{"bed-node-setup.service"}
	if opts.Kubelet {
		units = append(units, "kubelet.service")
	}
	wants := filepath.Join(root, "etc/systemd/system/multi-user.target.wants")
	if err := os.MkdirAll(wants, 0o755); err != nil {
		return fmt.Errorf("enabling units on host %s: %w", h.Name, err)
	}
	for _, u := range units {
		if err := os.Symlink("/etc/systemd/system/"+u, filepath.Join(wants, u)); err != nil {
			return fmt.Errorf("enabling %s on host %s: %w", u, h.Name, err)
		}
	}
	// Host keys of its own, not the cached root's.
	if _, err := run(ctx, "ssh-keygen", "-A", "-f", root); err != nil {
		return fmt.Errorf("making the ssh host keys of %s: %w", h.Name, err)
	}
	return nil
}

// SSH runs a shell command on the host as root over ssh and returns its standard output.
func (h *Host) SSH(ctx context.Context, command string) ([]byte, error) {
	return run(ctx, "ssh", h.SSHArgs(command)...)
}

// SSHArgs returns the arguments of ssh that run command on the host as root.
func (h *Host) SSHArgs(command string) []string {
	return []string{"-i", h.sshKey, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5",
		"root@" + h.IP.String(), command}
}

// ImportImages imports the bed's images into the host's containerd, where the kubelet finds them.
func (h *Host) ImportImages(ctx context.Context) error {
	_, err := h.SSH(ctx, "for f in /var/lib/hummingbird/images/*.tar; do ctr -n k8s.io images import \"$f\" || exit 1; done")
	if err != nil {
		return fmt.Errorf("importing images on %s: %w", h.Name, err)
	}
	return nil
}
