package collect

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"hummingbird.io/hummingbird/internal/wire"
)

func (s Sources) collectKernel(_ context.Context, inv *wire.Inventory) error {
	k, err := readString(filepath.Join(s.Proc, "sys/kernel/osrelease"))
	if err != nil {
		return err
	}
	inv.Kernel = k
	return nil
}

// version runs "name args..." with the command timeout and returns the
// first line of its output; "" without error when the program is absent.
func (s Sources) version(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.CommandTimeout)
	defer cancel()
	out, err := s.Run(ctx, name, args...)
	if errors.Is(err, exec.ErrNotFound) {
		return "", nil
	}
	cmdline := strings.Join(append([]string{name}, args...), " ")
	if err != nil {
		return "", fmt.Errorf("%s: %w", cmdline, err)
	}
	line := firstLine(string(out))
	if line == "" {
		return "", fmt.Errorf("%s: empty output", cmdline)
	}
	return line, nil
}

// containerdVersion takes the version out of "containerd --version":
// "containerd github.com/containerd/containerd/v2 v2.0.0 207ad71" or
// Debian's "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1".
func containerdVersion(line string) string {
	f := strings.Fields(line)
	if len(f) >= 3 && f[0] == "containerd" {
		return f[2]
	}
	return line
}

// kubeletVersion takes the version out of "kubelet --version":
// "Kubernetes v1.31.2".
func kubeletVersion(line string) string {
	f := strings.Fields(line)
	if len(f) >= 2 && f[0] == "Kubernetes" {
		return f[1]
	}
	return line
}

func (s Sources) collectContainerd(ctx context.Context, inv *wire.Inventory) error {
	line, err := s.version(ctx, "containerd", "--version")
	if err != nil {
		return err
	}
	inv.Containerd = containerdVersion(line)
	return nil
}

func (s Sources) collectKubelet(ctx context.Context, inv *wire.Inventory) error {
	line, err := s.version(ctx, "kubelet", "--version")
	if err != nil {
		return err
	}
	inv.Kubelet = kubeletVersion(line)
	return nil
}
