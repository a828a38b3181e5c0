package testbed

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// maxBeds bounds the bed index, which names the bed's links, subnet and ports.
const maxBeds = 99

// Options describes a bed to bring up.
type Options struct {
	// Dir is the directory under which beds live; [DefaultDir] when empty.
	Dir string
	// Cache is where test/bed/prepare put the binaries, root and images; [DefaultCache] when
	// its Dir is empty.
	Cache Cache
	// Hosts is the number of edge hosts to boot, named edge-1, edge-2, ...
	Hosts int
	// Kubelet puts a kubelet into every host (see [HostOptions]).
	Kubelet bool
	// Owner is the process that owns the bed: once it is gone, [Reap] takes the bed down. Zero
	// means nobody: the bed stays until [Down].
	Owner int
}

// Bed is a running test bed. Its directory is the whole truth about it: [Down] needs nothing else.
type Bed struct {
	// Dir is the bed's directory, <Options.Dir>/bed<Index>.
	Dir string
	// Index is the bed's number, unique among running beds.
	Index int
	// ControlPlane is the bed's Kubernetes control plane.
	ControlPlane *ControlPlane
	// Hosts are the bed's edge hosts, in the order they were added.
	Hosts []*Host

	cache Cache
}

// DefaultDir returns $HB_BED_DIR, or /var/tmp/hummingbird-bed.
func DefaultDir() string {
	if d := os.Getenv("HB_BED_DIR"); d != "" {
		return d
	}
	return "/var/tmp/hummingbird-bed"
}

// Up brings a bed up: a control plane on the bed's bridge and opts.Hosts edge hosts. If it fails
// it takes down what it made.
func Up(ctx context.Context, opts Options) (_ *Bed, err error) {
	if opts.Dir == "" {
		opts.Dir = DefaultDir()
	}
	if opts.Cache.Dir == "" {
		c, err := DefaultCache()
		if err != nil {
			return nil, err
		}
		opts.Cache = c
	}
	if err := opts.Cache.Check(); err != nil {
		return nil, err
	}
	b, err := claim(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			if derr := Down(context.WithoutCancel(ctx), b.Dir); derr != nil {
				err = errors.Join(err, derr)
			}
		}
	}()
	if _, err := run(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hummingbird-bed", "-f", b.sshKey()); err != nil {
		return nil, fmt.Errorf("making the bed's ssh key: %w", err)
	}
	cp, err := startControlPlane(ctx, b.cache, filepath.Join(b.Dir, "control"), b.Index)
	if err != nil {
		return nil, err
	}
	b.ControlPlane = cp
	for range opts.Hosts {
		if _, err := b.AddHost(ctx, HostOptions{Kubelet: opts.Kubelet}); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// claim takes the first free bed index: its directory and then its bridge.
func claim(ctx context.Context, opts Options) (*Bed, error) {
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("making the bed directory: %w", err)
	}
	for i := 1; i <= maxBeds; i++ {
		dir := filepath.Join(opts.Dir, fmt.Sprintf("bed%d", i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			if errors.Is(err, fs.ErrExist) {
				continue
			}
			return nil, fmt.Errorf("claiming a bed: %w", err)
		}
		if fileExists(filepath.Join("/sys/class/net", bridgeName(i))) {
			// A bed of another bed directory holds this index.
			os.Remove(dir)
			continue
		}
		b := &Bed{Dir: dir, Index: i, cache: opts.Cache}
		if err := os.WriteFile(filepath.Join(dir, "owner"), []byte(strconv.Itoa(opts.Owner)+"\n"), 0o644); err != nil {
			return nil, errors.Join(fmt.Errorf("claiming a bed: %w", err), Down(ctx, dir))
		}
		if err := makeBridge(ctx, i); err != nil {
			return nil, errors.Join(err, Down(ctx, dir))
		}
		return b, nil
	}
	return nil, fmt.Errorf("no free bed index among %d", maxBeds)
}

func (b *Bed) sshKey() string { return filepath.Join(b.Dir, "id_ed25519") }

// SSHKey returns the path of the private key that logs in to the bed's hosts as root.
func (b *Bed) SSHKey() string { return b.sshKey() }

// AddHost boots one more edge host and waits until its sshd and containerd run.
func (b *Bed) AddHost(ctx context.Context, opts HostOptions) (*Host, error) {
	h, err := startHost(ctx, b, len(b.Hosts)+1, opts)
	if err != nil {
		return nil, err
	}
	b.Hosts = append(b.Hosts, h)
	if err := b.writeSummary(); err != nil {
		return nil, err
	}
	return h, nil
}

// summary is bed.json: what a person needs to reach the bed.
type summary struct {
	Index      int           `json:"index"`
	Endpoint   string        `json:"endpoint"`
	Kubeconfig string        `json:"kubeconfig"`
	SSHKey     string        `json:"sshKey"`
	Hosts      []hostSummary `json:"hosts"`
}

type hostSummary struct {
	Name  string `json:"name"`
	IP    string `json:"ip"`
	MAC   string `json:"mac"`
	NetNS string `json:"netns"`
}

func (b *Bed) writeSummary() error {
	s := summary{Index: b.Index, SSHKey: b.sshKey()}
	if b.ControlPlane != nil {
		s.Endpoint = b.ControlPlane.Endpoint
		s.Kubeconfig = b.ControlPlane.Kubeconfig
	}
	for _, h := range b.Hosts {
		s.Hosts = append(s.Hosts, hostSummary{Name: h.Name, IP: h.IP.String(), MAC: h.MAC.String(), NetNS: h.NetNS})
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the bed summary: %w", err)
	}
	if err := os.WriteFile(filepath.Join(b.Dir, "bed.json"), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing the bed summary: %w", err)
	}
	return nil
}

// Down takes the bed down.
func (b *Bed) Down(ctx context.Context) error { return Down(ctx, b.Dir) }

// Down takes down the bed in dir from what the directory and its index name: it kills every
// process in the bed's cgroups, unmounts everything under dir, deletes the bed's network
// namespaces and links, removes its cgroups and at last dir. It can be run again after a failure.
func Down(ctx context.Context, dir string) error {
	index, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(dir), "bed"))
	if err != nil || index < 1 || index > maxBeds {
		return fmt.Errorf("%s is not a bed directory", dir)
	}
	var errs []error
	if err := killCgroup(ctx, fmt.Sprintf("%s/bed%d", cgroupParent, index)); err != nil {
		errs = append(errs, err)
	}
	if err := unmountUnder(dir); err != nil {
		errs = append(errs, err)
	}
	if err := removeNetwork(ctx, index); err != nil {
		errs = append(errs, err)
	}
	removeEmptyCgroup(cgroupParent)
	if len(errs) == 0 {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("removing the bed directory: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("taking down bed %d: %w", index, err)
	}
	return nil
}

// unmountUnder unmounts every mount at or below dir, deepest first.
func unmountUnder(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("unmounting under %s: %w", dir, err)
	}
	points, err := mountPoints()
	if err != nil {
		return err
	}
	var under []string
	for _, p := range points {
		if p == abs || strings.HasPrefix(p, abs+"/") {
			under = append(under, p)
		}
	}
	sort.Slice(under, func(i, j int) bool { return len(under[i]) > len(under[j]) })
	var errs []error
	for _, p := range under {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// mountPoints returns the mount points of this process's mount namespace.
func mountPoints() ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	var points []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 {
			points = append(points, unescapeMount(fields[4]))
		}
	}
	return points, nil
}

// unescapeMount undoes the octal escapes of the mount table (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Beds returns the directories of the beds under base.
func Beds(base string) ([]string, error) {
	entries, err := os.ReadDir(base)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("listing beds: %w", err)
	}
	var dirs []string
	for _, e := range entries {
		if _, err := strconv.Atoi(strings.TrimPrefix(e.Name(), "bed")); e.IsDir() && strings.HasPrefix(e.Name(), "bed") && err == nil {
			dirs = append(dirs, filepath.Join(base, e.Name()))
		}
	}
	return dirs, nil
}

// DownAll takes down every bed under base.
func DownAll(ctx context.Context, base string) error {
	dirs, err := Beds(base)
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range dirs {
		errs = append(errs, Down(ctx, d))
	}
	return errors.Join(errs...)
}

// Reap takes down the beds under base whose owner process is gone, such as those of a test that
// was killed before its cleanup ran.
func Reap(ctx context.Context, base string) error {
	dirs, err := Beds(base)
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range dirs {
		data, err := os.ReadFile(filepath.Join(d, "owner"))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("reading the owner of %s: %w", d, err))
			continue
		}
		owner, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		if err == nil && owner == 0 {
			continue // a bed for a person, taken down by hand
		}
		if owner > 0 && syscall.Kill(owner, 0) != syscall.ESRCH {
			continue
		}
		errs = append(errs, Down(ctx, d))
	}
	return errors.Join(errs...)
}
