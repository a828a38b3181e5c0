package collect

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"hummingbird.io/hummingbird/internal/wire"
)

// fakeRun answers commands from a table keyed by "name args..."; a
// command not in it is absent from PATH.
type fakeRun map[string]struct {
	out string
	err error
}

func (f fakeRun) run(_ context.Context, name string, args ...string) ([]byte, error) {
	r, ok := f[strings.Join(append([]string{name}, args...), " ")]
	if !ok {
		return nil, &exec.Error{Name: name, Err: exec.ErrNotFound}
	}
	return []byte(r.out), r.err
}

// fixture returns the Sources of the tree testdata/name.
func fixture(t *testing.T, name string, run fakeRun, addrs map[string][]string) Sources {
	t.Helper()
	root := filepath.Join("testdata", name)
	return Sources{
		Proc:  filepath.Join(root, "proc"),
		Sys:   filepath.Join(root, "sys"),
		Etc:   filepath.Join(root, "etc"),
		Run:   run.run,
		Addrs: func() (map[string][]string, error) { return addrs, nil },
	}
}

// failed returns the names of the collectors err reports, in order.
func failed(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var names []string
	var walk func(error)
	walk = func(err error) {
		var ce *Error
		if errors.As(err, &ce) && ce == err {
			names = append(names, ce.Collector)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		t.Errorf("error not from a collector: %v", err)
	}
	walk(err)
	return names
}

const (
	gib = 1 << 30
	mib = 1 << 20
)

func TestLinuxFixtures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		run    fakeRun
		addrs  map[string][]string
		want   wire.Inventory
		failed []string
	}{
		{
			name: "server",
			run: fakeRun{
				"containerd --version": {out: "containerd github.com/containerd/containerd v1.7.20 8fc6bcff51318944179630522a095cc9dbf9f353\n"},
				"kubelet --version":    {out: "Kubernetes v1.31.2\n"},
			},
			addrs: map[string][]string{
				"br-mgmt": {"10.10.0.5/24", "fe80::c11:22ff:fe33:4455/64"},
				"lo":      {"127.0.0.1/8", "::1/128"},
			},
			want: wire.Inventory{
				CPUs: []wire.CPU{
					{Socket: 0, Model: "Intel(R) Xeon(R) Silver 4210R CPU @ 2.40GHz", Cores: 2, Threads: 4, MHz: 3200},
					{Socket: 1, Model: "Intel(R) Xeon(R) Silver 4210R CPU @ 2.40GHz", Cores: 2, Threads: 4, MHz: 3200},
				},
				Memory: wire.Memory{TotalBytes: 263782400 * 1024, AvailableBytes: 250000000 * 1024, HugePages2MiB: 1024},
				Disks: []wire.Disk{
					{Name: "sda", SizeBytes: 937703088 * 512, Type: "ssd", Serial: "S45PNA0M812345", Model: "SAMSUNG MZ7LH480", InUse: true},
					{Name: "sdb", SizeBytes: 7814037168 * 512, Type: "hdd", Rotational: true, Serial: "naa.5000c500a1b2c3d4", Model: "ST4000NM0035-1V4", InUse: true},
					{Name: "sdc", SizeBytes: 7814037168 * 512, Type: "hdd", Rotational: true, Serial: "naa.5000c500a1b2c3d5", Model: "ST4000NM0035-1V4", InUse: true},
					{Name: "sdd", SizeBytes: 7814037168 * 512, Type: "hdd", Rotational: true, Serial: "ZC1ABCDE", Model: "ST4000NM0035-1V4", InUse: true}, // mounted by the host
				},
				Interfaces: []wire.Interface{
					{Name: "br-mgmt", MAC: "0e:11:22:33:44:55", State: "up", MTU: 1500, Virtual: true,
						Addresses: []string{"10.10.0.5/24", "fe80::c11:22ff:fe33:4455/64"}},
					{Name: "eno1", MAC: "b4:96:91:0a:0b:0c", State: "up", SpeedMbps: 10000, MTU: 1500},
					{Name: "eno2", MAC: "b4:96:91:0a:0b:0d", State: "down", MTU: 1500},
					{Name: "lo", MAC: "00:00:00:00:00:00", State: "unknown", MTU: 65536, Virtual: true,
						Addresses: []string{"127.0.0.1/8", "::1/128"}},
				},
				OS:         wire.OS{ID: "rocky", VersionID: "9.4", PrettyName: "Rocky Linux 9.4 (Blue Onyx)", IDLike: "rhel centos fedora"},
				Kernel:     "5.14.0-427.13.1.el9_4.x86_64",
				Containerd: "v1.7.20",
				Kubelet:    "v1.31.2",
			},
		},
		{
			name: "nuc",
			run: fakeRun{
				"containerd --version": {out: "containerd containerd.io 1.6.28 ae07eda36dd25f8a1b98dfbf587313b99c0190bb\n"},
			},
			addrs: map[string][]string{"enp86s0": {"192.168.1.23/24"}},
			want: wire.Inventory{
				CPUs: []wire.CPU{
					{Socket: 0, Model: "11th Gen Intel(R) Core(TM) i7-1165G7 @ 2.80GHz", Cores: 4, Threads: 8, MHz: 4700},
				},
				Memory: wire.Memory{TotalBytes: 32600000 * 1024, AvailableBytes: 30100000 * 1024},
				Disks: []wire.Disk{
					{Name: "nvme0n1", SizeBytes: 976773168 * 512, Type: "nvme", Serial: "S64DNX0R123456A", Model: "Samsung SSD 980 500GB", InUse: true},
					{Name: "sda", SizeBytes: 60062500 * 512, Type: "ssd", Model: "Ultra Fit"},
				},
				Interfaces: []wire.Interface{
					{Name: "docker0", MAC: "02:42:ac:11:00:01", State: "down", MTU: 1500, Virtual: true},
					{Name: "enp86s0", MAC: "48:21:0b:5a:6c:7d", State: "up", SpeedMbps: 2500, MTU: 1500, Addresses: []string{"192.168.1.23/24"}},
					{Name: "lo", MAC: "00:00:00:00:00:00", State: "unknown", MTU: 65536, Virtual: true},
					{Name: "veth1a2b3c", MAC: "9a:bc:de:f0:12:34", State: "up", SpeedMbps: 10000, MTU: 1500, Virtual: true},
					{Name: "wlo1", MAC: "7c:21:4a:11:22:33", State: "dormant", MTU: 1500},
				},
				OS:         wire.OS{ID: "ubuntu", VersionID: "22.04", PrettyName: "Ubuntu 22.04.4 LTS", IDLike: "debian"},
				Kernel:     "6.8.0-45-generic",
				Containerd: "1.6.28",
			},
		},
		{
			name: "vm",
			run: fakeRun{
				"containerd --version": {err: errors.New("exit status 1")},
				"kubelet --version":    {out: "Kubernetes v1.30.4\n"},
			},
			want: wire.Inventory{
				CPUs: []wire.CPU{
					{Socket: 0, Model: "QEMU Virtual CPU version 2.5+", Cores: 2, Threads: 2, MHz: 2295},
				},
				Memory: wire.Memory{TotalBytes: 4005012 * 1024, AvailableBytes: 3500000 * 1024, HugePages2MiB: 16},
				Disks: []wire.Disk{
					{Name: "sda", SizeBytes: 1 * gib, Type: "virtual", Rotational: true, Serial: "drive-scsi0-0-0-0", Model: "QEMU HARDDISK"},
					{Name: "vda", SizeBytes: 20 * gib, Type: "virtual", Rotational: true, Serial: "vol-0a1b2c3d", InUse: true},
					{Name: "vdb", SizeBytes: 50 * gib, Type: "virtual", Rotational: true, InUse: true},   // mounted whole
					{Name: "vdc", SizeBytes: 2048 * mib, Type: "virtual", Rotational: true, InUse: true}, // swap
					{Name: "vdd", SizeBytes: 10 * gib, Type: "virtual", Rotational: true},
				},
				Interfaces: []wire.Interface{
					{Name: "cni0", MAC: "c2:11:22:33:44:55", State: "up", MTU: 1450, Virtual: true},
					{Name: "eth0", MAC: "52:54:00:12:34:56", State: "up", MTU: 1500},
					{Name: "lo", MAC: "00:00:00:00:00:00", State: "unknown", MTU: 65536, Virtual: true},
				},
				OS:      wire.OS{ID: "debian", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)"},
				Kernel:  "6.1.0-28-amd64",
				Kubelet: "v1.30.4",
			},
			failed: []string{NameContainerd},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Run(t.Context(), Linux(fixture(t, tt.name, tt.run, tt.addrs))...)
			if diff := cmp.Diff(tt.failed, failed(t, err)); diff != "" {
				t.Errorf("failed collectors (-want +got):\n%s\nerror: %v", diff, err)
			}
			if got.CollectedAt.IsZero() {
				t.Error("CollectedAt is zero")
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(wire.Inventory{}, "CollectedAt"), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("inventory (-want +got):\n%s", diff)
			}
		})
	}
}

// A collector that fails does not stop the others, and each failure names
// its collector and the file it could not read.
func TestCollectorFailuresAreIsolated(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "absent")
	src := Sources{
		Proc:  missing,
		Sys:   missing,
		Etc:   missing,
		Run:   fakeRun{"kubelet --version": {out: "Kubernetes v1.31.2"}}.run,
		Addrs: func() (map[string][]string, error) { return nil, nil },
	}
	inv, err := Run(t.Context(), Linux(src)...)
	want := []string{NameCPU, NameMemory, NameDisks, NameInterfaces, NameOS, NameKernel}
	if diff := cmp.Diff(want, failed(t, err)); diff != "" {
		t.Errorf("failed collectors (-want +got):\n%s", diff)
	}
	if inv.Kubelet != "v1.31.2" {
		t.Errorf("Kubelet = %q after other collectors failed, want v1.31.2", inv.Kubelet)
	}
	for _, part := range []string{"collect cpu: ", filepath.Join(missing, "cpuinfo"), "collect kernel: "} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not say %q", err, part)
		}
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	calls := 0
	c := Func("probe", func(context.Context, *wire.Inventory) error { calls++; return nil })
	_, err := Run(ctx, c, c)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled", err)
	}
	if calls != 0 {
		t.Errorf("collector ran %d times after cancel", calls)
	}
	if diff := cmp.Diff([]string{"probe", "probe"}, failed(t, err)); diff != "" {
		t.Errorf("failed collectors (-want +got):\n%s", diff)
	}
}

// Without sysfs topology (old kernels, some containers) the sockets and
// cores come from cpuinfo, and the clock from cpuinfo too.
func TestCPUsFromCPUInfoOnly(t *testing.T) {
	t.Parallel()
	src := Sources{Proc: "testdata/server/proc", Sys: t.TempDir()}
	var inv wire.Inventory
	if err := src.withDefaults().collectCPUs(t.Context(), &inv); err != nil {
		t.Fatal(err)
	}
	const model = "Intel(R) Xeon(R) Silver 4210R CPU @ 2.40GHz"
	want := []wire.CPU{
		{Socket: 0, Model: model, Cores: 2, Threads: 4, MHz: 1000},
		{Socket: 1, Model: model, Cores: 2, Threads: 4, MHz: 3200},
	}
	if diff := cmp.Diff(want, inv.CPUs); diff != "" {
		t.Errorf("CPUs (-want +got):\n%s", diff)
	}
}

func TestParseCPUInfoArm(t *testing.T) {
	t.Parallel()
	// A Raspberry Pi 4: no model name per CPU, a machine model at the end.
	const info = `processor	: 0
BogoMIPS	: 108.00
CPU implementer	: 0x41
CPU part	: 0xd08

processor	: 1
BogoMIPS	: 108.00
CPU implementer	: 0x41
CPU part	: 0xd08

Revision	: c03114
Serial		: 10000000abcdef01
Model		: Raspberry Pi 4 Model B Rev 1.4
`
	cpus, machine := parseCPUInfo([]byte(info))
	if len(cpus) != 2 {
		t.Errorf("%d CPUs, want 2", len(cpus))
	}
	if machine != "Raspberry Pi 4 Model B Rev 1.4" {
		t.Errorf("machine = %q", machine)
	}
}

func TestVersions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		parse func(string) string
		line  string
		want  string
	}{
		{containerdVersion, "containerd github.com/containerd/containerd/v2 v2.0.0 207ad711eabd375a01713109a8a197d197ff6542", "v2.0.0"},
		{containerdVersion, "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3", "1.6.20~ds1"},
		{containerdVersion, "something else", "something else"},
		{kubeletVersion, "Kubernetes v1.31.2", "v1.31.2"},
		{kubeletVersion, "v1.31.2", "v1.31.2"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			t.Parallel()
			if got := tt.parse(tt.line); got != tt.want {
				t.Errorf("version of %q = %q, want %q", tt.line, got, tt.want)
			}
		})
	}
}

func TestVersionCommand(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		run     func(ctx context.Context, name string, args ...string) ([]byte, error)
		want    string
		wantErr string
	}{
		{name: "absent", run: fakeRun{}.run},
		{name: "present", run: fakeRun{"kubelet --version": {out: "Kubernetes v1.29.0\n"}}.run, want: "v1.29.0"},
		{name: "fails", run: fakeRun{"kubelet --version": {err: errors.New("exit status 2")}}.run, wantErr: "kubelet --version: exit status 2"},
		{name: "silent", run: fakeRun{"kubelet --version": {}}.run, wantErr: "kubelet --version: empty output"},
		{
			name: "hangs",
			run: func(ctx context.Context, _ string, _ ...string) ([]byte, error) {
				<-ctx.Done()
				return nil, ctx.Err()
			},
			wantErr: "kubelet --version: context deadline exceeded",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := Sources{Run: tt.run, CommandTimeout: 50 * time.Millisecond}.withDefaults()
			var inv wire.Inventory
			err := src.collectKubelet(t.Context(), &inv)
			if got := fmt.Sprint(err); (tt.wantErr == "" && err != nil) || (tt.wantErr != "" && got != tt.wantErr) {
				t.Errorf("error = %v, want %q", err, tt.wantErr)
			}
			if inv.Kubelet != tt.want {
				t.Errorf("Kubelet = %q, want %q", inv.Kubelet, tt.want)
			}
		})
	}
}

func TestParseOSRelease(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want map[string]string
	}{
		{"plain", "ID=debian\nVERSION_ID=12\n", map[string]string{"ID": "debian", "VERSION_ID": "12"}},
		{"double quotes", `PRETTY_NAME="Rocky Linux 9.4 (Blue Onyx)"`, map[string]string{"PRETTY_NAME": "Rocky Linux 9.4 (Blue Onyx)"}},
		{"single quotes", `NAME='Alpine Linux'`, map[string]string{"NAME": "Alpine Linux"}},
		{"escapes", `NAME="say \"hi\" \\ \$HOME"`, map[string]string{"NAME": `say "hi" \ $HOME`}},
		{"comments and blanks", "# a comment\n\n  ID=arch  \nnot a pair\n", map[string]string{"ID": "arch"}},
		{"equals in value", `HOME_URL="https://example.org/?a=b"`, map[string]string{"HOME_URL": "https://example.org/?a=b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, parseOSRelease([]byte(tt.in))); diff != "" {
				t.Errorf("parse (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSkipDisk(t *testing.T) {
	t.Parallel()
	for name, skip := range map[string]bool{
		"sda": false, "nvme0n1": false, "vda": false, "xvda": false, "mmcblk0": false, "nbd0": false,
		"loop0": true, "ram0": true, "zram0": true, "dm-0": true, "md127": true, "sr0": true, "fd0": true,
		"mmcblk0boot0": true,
	} {
		if got := skipDisk(name); got != skip {
			t.Errorf("skipDisk(%q) = %v, want %v", name, got, skip)
		}
	}
}
