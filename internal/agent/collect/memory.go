package collect

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"hummingbird.io/hummingbird/internal/wire"
)

// parseMeminfo returns the values of /proc/meminfo in bytes (the "kB"
// ones multiplied by 1024) or as counts (HugePages_*).
func parseMeminfo(b []byte) map[string]uint64 {
	m := make(map[string]uint64)
	lines(b, func(line string) {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			return
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return
		}
		if len(f) > 1 && f[1] == "kB" {
			n *= 1024
		}
		m[strings.TrimSpace(k)] = n
	})
	return m
}

func (s Sources) collectMemory(_ context.Context, inv *wire.Inventory) error {
	path := filepath.Join(s.Proc, "meminfo")
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	m := parseMeminfo(b)
	total, ok := m["MemTotal"]
	if !ok {
		return fmt.Errorf("%s: no MemTotal", path)
	}
	avail, ok := m["MemAvailable"]
	if !ok { // kernels before 3.14
		avail = m["MemFree"] + m["Buffers"] + m["Cached"]
	}
	inv.Memory = wire.Memory{TotalBytes: total, AvailableBytes: avail}
	// The 2 MiB huge pages reserved, as a count of pages.
	if n, err := readUint(filepath.Join(s.Sys, "kernel/mm/hugepages/hugepages-2048kB/nr_hugepages")); err == nil {
		inv.Memory.HugePages2MiB = n
	} else if m["Hugepagesize"] == 2048*1024 {
		inv.Memory.HugePages2MiB = m["HugePages_Total"]
	}
	return nil
}
