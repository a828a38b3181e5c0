package collect

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"hummingbird.io/hummingbird/internal/wire"
)

// procCPU is what /proc/cpuinfo says of one logical CPU.
type procCPU struct {
	model  string
	mhz    float64
	physID string // "physical id", x86 only
	coreID string // "core id", x86 only
}

// parseCPUInfo parses /proc/cpuinfo into its logical CPUs by number and
// the machine-wide model some architectures give instead of a per-CPU one
// (arm: "Hardware", "Model").
func parseCPUInfo(b []byte) (cpus map[int]procCPU, machine string) {
	cpus = make(map[int]procCPU)
	cur, curModelKey := -1, ""
	var c procCPU
	flush := func() {
		if cur >= 0 {
			cpus[cur] = c
		}
		cur, curModelKey, c = -1, "", procCPU{}
	}
	// Preference of the keys naming a CPU model, best first.
	rank := map[string]int{"model name": 4, "cpu model": 3, "uarch": 2, "Processor": 1}
	lines(b, func(line string) {
		if strings.TrimSpace(line) == "" {
			flush()
			return
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "processor":
			if n, err := strconv.Atoi(v); err == nil {
				if cur >= 0 {
					flush()
				}
				cur = n
			}
		case "cpu MHz":
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				c.mhz = f
			}
		case "physical id":
			c.physID = v
		case "core id":
			c.coreID = v
		case "Hardware", "Model":
			if machine == "" || k == "Model" {
				machine = v
			}
		}
		if r, isModel := rank[k]; isModel && v != "" && (curModelKey == "" || r > rank[curModelKey]) {
			c.model, curModelKey = v, k
		}
	})
	flush()
	return cpus, machine
}

// logicalCPU is one online logical CPU and where it sits.
type logicalCPU struct {
	n      int
	socket int
	core   string // identifies the physical core within its socket
}

// sysCPUs reads the topology of the online logical CPUs from
// sys/devices/system/cpu; none when sysfs has no topology.
func (s Sources) sysCPUs() ([]logicalCPU, error) {
	dir := filepath.Join(s.Sys, "devices/system/cpu")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []logicalCPU
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "cpu") {
			continue
		}
		n, err := strconv.Atoi(name[3:])
		if err != nil {
			continue // cpufreq, cpuidle, ...
		}
		cpuDir := filepath.Join(dir, name)
		if readOptional(filepath.Join(cpuDir, "online")) == "0" {
			continue
		}
		topo := filepath.Join(cpuDir, "topology")
		pkg, err := readInt(filepath.Join(topo, "physical_package_id"))
		if os.IsNotExist(err) {
			continue // no topology for this CPU
		}
		if err != nil {
			return nil, err
		}
		if pkg < 0 {
			pkg = 0 // some arm machines say -1
		}
		// Logical CPUs of the same core share their sibling list; that
		// holds on multi-die packages where core_id repeats.
		core := readOptional(filepath.Join(topo, "core_cpus_list"))
		if core == "" {
			core = readOptional(filepath.Join(topo, "thread_siblings_list"))
		}
		if core == "" {
			core = readOptional(filepath.Join(topo, "die_id")) + "/" + readOptional(filepath.Join(topo, "core_id"))
		}
		out = append(out, logicalCPU{n: n, socket: int(pkg), core: core})
	}
	slices.SortFunc(out, func(a, b logicalCPU) int { return a.n - b.n })
	return out, nil
}

func (s Sources) collectCPUs(_ context.Context, inv *wire.Inventory) error {
	infoPath := filepath.Join(s.Proc, "cpuinfo")
	b, err := os.ReadFile(infoPath)
	if err != nil {
		return err
	}
	info, machine := parseCPUInfo(b)

	logical, sysErr := s.sysCPUs()
	if len(logical) == 0 {
		// No sysfs topology (old kernels, some containers): use what
		// cpuinfo says, one socket when it says nothing.
		for n, c := range info {
			sock, _ := strconv.Atoi(c.physID)
			core := c.coreID
			if core == "" {
				core = strconv.Itoa(n)
			}
			logical = append(logical, logicalCPU{n: n, socket: sock, core: core})
		}
		slices.SortFunc(logical, func(a, b logicalCPU) int { return a.n - b.n })
	}
	if len(logical) == 0 {
		if sysErr != nil {
			return fmt.Errorf("no CPUs in %s: %w", infoPath, sysErr)
		}
		return fmt.Errorf("no CPUs in %s", infoPath)
	}

	type socket struct {
		first   int
		cores   map[string]bool
		threads int
	}
	sockets := make(map[int]*socket)
	for _, l := range logical {
		sk := sockets[l.socket]
		if sk == nil {
			sk = &socket{first: l.n, cores: make(map[string]bool)}
			sockets[l.socket] = sk
		}
		sk.cores[l.core] = true
		sk.threads++
	}
	cpus := make([]wire.CPU, 0, len(sockets))
	for id, sk := range sockets {
		c := wire.CPU{Socket: id, Cores: len(sk.cores), Threads: sk.threads}
		c.Model = info[sk.first].model
		if c.Model == "" {
			c.Model = machine
		}
		// The highest frequency is stable; cpuinfo's follows the load
		// where cpufreq scales it, so it serves only without cpufreq.
		freq := filepath.Join(s.Sys, "devices/system/cpu", "cpu"+strconv.Itoa(sk.first), "cpufreq/cpuinfo_max_freq")
		if khz, err := readInt(freq); err == nil && khz > 0 {
			c.MHz = int(khz / 1000)
		} else if mhz := info[sk.first].mhz; mhz > 0 {
			c.MHz = int(math.Round(mhz))
		}
		cpus = append(cpus, c)
	}
	slices.SortFunc(cpus, func(a, b wire.CPU) int { return a.Socket - b.Socket })
	inv.CPUs = cpus
	return nil
}
