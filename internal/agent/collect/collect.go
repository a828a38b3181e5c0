package collect

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"time"

	"hummingbird.io/hummingbird/internal/wire"
)

// Collector fills one part of an inventory.
type Collector interface {
	// Name names the collector in errors and logs: "cpu", "disks", ...
	Name() string
	// Collect fills the collector's part of inv. On error it leaves in
	// inv what it could learn.
	Collect(ctx context.Context, inv *wire.Inventory) error
}

// Func makes a Collector of a name and a function.
func Func(name string, fn func(ctx context.Context, inv *wire.Inventory) error) Collector {
	return funcCollector{name: name, fn: fn}
}

type funcCollector struct {
	name string
	fn   func(ctx context.Context, inv *wire.Inventory) error
}

func (c funcCollector) Name() string { return c.name }

func (c funcCollector) Collect(ctx context.Context, inv *wire.Inventory) error {
	return c.fn(ctx, inv)
}

// Error is the failure of one collector.
type Error struct {
	Collector string
	Err       error
}

func (e *Error) Error() string { return "collect " + e.Collector + ": " + e.Err.Error() }

func (e *Error) Unwrap() error { return e.Err }

// Sources says where the collectors read from. The zero value reads this
// host: /proc, /sys, /etc, commands found on PATH, and the addresses of
// the standard library's net.Interfaces.
type Sources struct {
	Proc string // procfs root, default /proc
	Sys  string // sysfs root, default /sys
	// Etc holds os-release; when it lacks one, usr/lib/os-release beside
	// it is read, as os-release(5) says.
	Etc string // default /etc
	// Run runs a command and returns its standard output. An error
	// matching exec.ErrNotFound means the program is absent, which is not
	// a failure. Default: the program from PATH.
	Run func(ctx context.Context, name string, args ...string) ([]byte, error)
	// Addrs returns the addresses, in CIDR form, of each interface by
	// name. Default: net.Interfaces.
	Addrs func() (map[string][]string, error)
	// CommandTimeout bounds each command Run runs; default 5 s.
	CommandTimeout time.Duration
}

func (s Sources) withDefaults() Sources {
	if s.Proc == "" {
		s.Proc = "/proc"
	}
	if s.Sys == "" {
		s.Sys = "/sys"
	}
	if s.Etc == "" {
		s.Etc = "/etc"
	}
	if s.Run == nil {
		s.Run = runCommand
	}
	if s.Addrs == nil {
		s.Addrs = interfaceAddrs
	}
	if s.CommandTimeout <= 0 {
		s.CommandTimeout = 5 * time.Second
	}
	return s
}

// Default returns the collectors for the operating system this agent runs
// on, reading from src; none for an operating system without any.
func Default(src Sources) []Collector {
	switch runtime.GOOS {
	case "linux":
		return Linux(src)
	default:
		return nil
	}
}

// Collect gathers the inventory of the host src describes with the
// Default collectors.
func Collect(ctx context.Context, src Sources) (wire.Inventory, error) {
	return Run(ctx, Default(src)...)
}

// Run runs the collectors in order into one inventory. A collector's
// failure is returned as an *Error naming it, joined with the others'
// (errors.Join), and does not stop the collectors after it. The
// inventory holds all that was collected, even with an error.
func Run(ctx context.Context, collectors ...Collector) (wire.Inventory, error) {
	inv := wire.Inventory{CollectedAt: time.Now().UTC()}
	var errs []error
	for _, c := range collectors {
		if err := ctx.Err(); err != nil {
			errs = append(errs, &Error{Collector: c.Name(), Err: err})
			continue
		}
		if err := c.Collect(ctx, &inv); err != nil {
			errs = append(errs, &Error{Collector: c.Name(), Err: err})
		}
	}
	return inv, errors.Join(errs...)
}

func runCommand(ctx context.Context, name string, args ...string) ([]byte, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return nil, err // wraps exec.ErrNotFound when absent
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.WaitDelay = time.Second
	out, err := cmd.Output()
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) && len(exitErr.Stderr) > 0 {
			return out, fmt.Errorf("%s: %w: %s", path, err, firstLine(string(exitErr.Stderr)))
		}
		return out, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

func interfaceAddrs() (map[string][]string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	m := make(map[string][]string, len(ifs))
	var errs []error
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			errs = append(errs, fmt.Errorf("addresses of %s: %w", ifc.Name, err))
			continue
		}
		list := make([]string, 0, len(addrs))
		for _, a := range addrs {
			list = append(list, a.String())
		}
		m[ifc.Name] = list
	}
	return m, errors.Join(errs...)
}
