package testbed

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Footprint is what test beds can leave on the machine. Taken before a bed comes up and after it
// went down, the two must be equal.
type Footprint struct {
	// Processes are "pid comm" of processes in a bed's cgroups, running a bed's programs, or
	// running in another root, such as a host's.
	Processes []string
	// Links are the network links named as a bed names its links. Links of other names, which
	// other tests may make meanwhile, are not the beds' business.
	Links []string
	// NetNS are the named network namespaces named as a bed names them.
	NetNS []string
	// Mounts are the mount points of this mount namespace, but those of named network namespaces
	// (counted in NetNS) and /run/netns, which ip mounts on itself the first time a namespace is
	// made, for every namespace to come.
	Mounts []string
	// Cgroups are the top cgroups of every hierarchy and all cgroups of beds.
	Cgroups []string
	// Beds are the bed directories under the beds' base.
	Beds []string
}

// bedPrograms are the names of the programs a bed runs on the machine itself.
func bedPrograms() []string {
	return []string{"etcd", "kube-apiserver", "kube-controller", "kube-scheduler", "kubelet",
		"containerd", "containerd-shim", "systemd-nspawn", "sshd", "hello", "pause"}
}

// TakeFootprint records the machine's footprint; base is the beds' directory.
func TakeFootprint(base string) (Footprint, error) {
	var f Footprint
	var err error
	if f.Processes, err = bedProcesses(); err != nil {
		return f, err
	}
	if f.Links, err = bedNames("/sys/class/net"); err != nil {
		return f, err
	}
	if f.NetNS, err = bedNames("/run/netns"); err != nil {
		return f, err
	}
	points, err := mountPoints()
	if err != nil {
		return f, err
	}
	for _, p := range points {
		if p != "/run/netns" && !strings.HasPrefix(p, "/run/netns/") {
			f.Mounts = append(f.Mounts, p)
		}
	}
	sort.Strings(f.Mounts)
	mounts, err := cgroupMounts()
	if err != nil {
		return f, err
	}
	for _, m := range mounts {
		top, err := dirNames(m)
		if err != nil {
			return f, err
		}
		for _, t := range top {
			if fi, err := os.Stat(filepath.Join(m, t)); err == nil && fi.IsDir() {
				f.Cgroups = append(f.Cgroups, filepath.Join(m, t))
			}
		}
		parent := filepath.Join(m, cgroupParent) // listed above with the top cgroups
		err = filepath.WalkDir(parent, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if e.IsDir() && p != parent {
				f.Cgroups = append(f.Cgroups, p)
			}
			return nil
		})
		if err != nil {
			return f, fmt.Errorf("listing cgroups: %w", err)
		}
	}
	sort.Strings(f.Cgroups)
	if f.Beds, err = Beds(base); err != nil {
		return f, err
	}
	return f, nil
}

// bedNames returns the names in dir that a bed would give.
func bedNames(dir string) ([]string, error) {
	names, err := dirNames(dir)
	if err != nil {
		return nil, err
	}
	var bed []string
	for _, n := range names {
		if _, ok := bedIndexOf(n); ok {
			bed = append(bed, n)
		}
	}
	return bed, nil
}

// dirNames returns the sorted names in dir; none if dir does not exist.
func dirNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("listing %s: %w", dir, err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names, nil
}

// bedProcesses lists the live processes that belong to a bed (see [Footprint.Processes]).
func bedProcesses() ([]string, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	var procs []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		dir := filepath.Join("/proc", e.Name())
		stat, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// stat is "pid (comm) state ..."; comm may hold spaces and parentheses.
		open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
		if open < 0 || end < open || end+2 >= len(stat) {
			continue
		}
		comm, state := string(stat[open+1:end]), stat[end+2]
		if state == 'Z' {
			continue // a zombie holds nothing but its pid until its parent reaps it
		}
		if !isBedProcess(dir, comm) {
			continue
		}
		procs = append(procs, fmt.Sprintf("%d %s", pid, comm))
	}
	return procs, nil
}

func isBedProcess(dir, comm string) bool {
	for _, p := range bedPrograms() {
		if strings.HasPrefix(comm, p) {
			return true
		}
	}
	if root, err := os.Readlink(filepath.Join(dir, "root")); err == nil && root != "/" {
		return true
	}
	cg, err := os.ReadFile(filepath.Join(dir, "cgroup"))
	return err == nil && bytes.Contains(cg, []byte(":/"+cgroupParent+"/"))
}

// Since is what f has that before had not: what was left behind between
// the two footprints. What disappeared meanwhile (another bed on the
// machine going down) is not counted.
func (f Footprint) Since(before Footprint) Footprint {
	added := func(now, then []string) []string {
		had := make(map[string]bool, len(then))
		for _, s := range then {
			had[s] = true
		}
		var out []string
		for _, s := range now {
			if !had[s] {
				out = append(out, s)
			}
		}
		return out
	}
	return Footprint{
		Processes: added(f.Processes, before.Processes),
		Links:     added(f.Links, before.Links),
		NetNS:     added(f.NetNS, before.NetNS),
		Mounts:    added(f.Mounts, before.Mounts),
		Cgroups:   added(f.Cgroups, before.Cgroups),
		Beds:      added(f.Beds, before.Beds),
	}
}
