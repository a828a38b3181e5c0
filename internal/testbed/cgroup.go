package testbed

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cgroupParent is the cgroup, in every hierarchy, under which each bed keeps its processes.
const cgroupParent = "hummingbird"

// cgroupMounts returns the mount points of the machine's cgroup hierarchies: one per cgroup v1
// hierarchy and the cgroup v2 one, if mounted.
func cgroupMounts() ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	var mounts []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		// Fields: id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+1 >= len(fields) || len(fields) < 5 {
			continue
		}
		if fs := fields[sep+1]; fs == "cgroup" || fs == "cgroup2" {
			mounts = append(mounts, fields[4])
		}
	}
	sort.Strings(mounts)
	return mounts, nil
}

// cgroupDirs returns the directory of the cgroup rel (such as "hummingbird/bed1/control") in
// every hierarchy.
func cgroupDirs(rel string) ([]string, error) {
	mounts, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	dirs := make([]string, 0, len(mounts))
	for _, m := range mounts {
		dirs = append(dirs, filepath.Join(m, rel))
	}
	return dirs, nil
}

// makeCgroup makes the cgroup rel in every hierarchy and returns its directories.
func makeCgroup(rel string) ([]string, error) {
	dirs, err := cgroupDirs(rel)
	if err != nil {
		return nil, err
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("making cgroup %s: %w", d, err)
		}
		// A new cpuset cgroup has no CPUs or memory nodes until given its parent's.
		if fileExists(filepath.Join(d, "cpuset.cpus")) {
			if err := inheritCpuset(d); err != nil {
				return nil, err
			}
		}
	}
	return dirs, nil
}

// inheritCpuset copies cpuset.cpus and cpuset.mems from each ancestor down to dir where empty.
func inheritCpuset(dir string) error {
	var chain []string
	for d := dir; fileExists(filepath.Join(d, "cpuset.cpus")); d = filepath.Dir(d) {
		chain = append([]string{d}, chain...)
	}
	for i := 1; i < len(chain); i++ {
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			cur, err := os.ReadFile(filepath.Join(chain[i], f))
			if err != nil {
				return fmt.Errorf("reading %s: %w", f, err)
			}
			if len(bytes.TrimSpace(cur)) > 0 {
				continue
			}
			parent, err := os.ReadFile(filepath.Join(chain[i-1], f))
			if err != nil {
				return fmt.Errorf("reading %s: %w", f, err)
			}
			if len(bytes.TrimSpace(parent)) == 0 {
				continue
			}
			if err := os.WriteFile(filepath.Join(chain[i], f), parent, 0o644); err != nil {
				return fmt.Errorf("writing %s in %s: %w", f, chain[i], err)
			}
		}
	}
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// cgroupProcs returns the processes in the cgroup rel and all its descendants, in every
// hierarchy.
func cgroupProcs(rel string) ([]int, error) {
	dirs, err := cgroupDirs(rel)
	if err != nil {
		return nil, err
	}
	seen := map[int]bool{}
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if !e.IsDir() {
				return nil
			}
			data, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			for _, f := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(f); err == nil {
					seen[pid] = true
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("listing the processes of %s: %w", d, err)
		}
	}
	pids := make([]int, 0, len(seen))
	for pid := range seen {
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	return pids, nil
}

// killCgroup kills every process in the cgroup rel and its descendants until none is left, then
// removes the cgroups, deepest first.
func killCgroup(ctx context.Context, rel string) error {
	for {
		pids, err := cgroupProcs(rel)
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			// The process may be gone already; what is left is read again above.
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("killing the processes of cgroup %s (%d left): %w", rel, len(pids), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	dirs, err := cgroupDirs(rel)
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range dirs {
		if err := removeCgroupTree(ctx, d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeCgroupTree removes the cgroup directory d and its descendants. A cgroup whose last
// process just died may stay busy for a moment, so removal is retried.
func removeCgroupTree(ctx context.Context, d string) error {
	var tree []string
	err := filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if e.IsDir() {
			tree = append(tree, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("listing cgroup %s: %w", d, err)
	}
	for i := len(tree) - 1; i >= 0; i-- {
		for {
			err := syscall.Rmdir(tree[i])
			if err == nil || errors.Is(err, fs.ErrNotExist) {
				break
			}
			if !errors.Is(err, syscall.EBUSY) {
				return fmt.Errorf("removing cgroup %s: %w", tree[i], err)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("removing cgroup %s: %w", tree[i], err)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

// removeEmptyCgroup removes the cgroup rel in every hierarchy where it has no children left.
func removeEmptyCgroup(rel string) {
	dirs, err := cgroupDirs(rel)
	if err != nil {
		return
	}
	for _, d := range dirs {
		// Another bed may still use it; then it is not empty and stays.
		_ = syscall.Rmdir(d)
	}
}
