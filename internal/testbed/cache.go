package testbed

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// KubernetesVersion is the Kubernetes release the bed runs. test/bed/k8s/go.mod pins the same
// version; test/bed/prepare builds it.
const KubernetesVersion = "v1.37.2"

// Cache is where test/bed/prepare keeps what is built once and reused: the Kubernetes binaries,
// the edge hosts' Debian root and the container image archives.
type Cache struct {
	// Dir is ${XDG_CACHE_HOME:-$HOME/.cache}/hummingbird unless set otherwise.
	Dir string
}

// DefaultCache returns the cache test/bed/prepare fills.
func DefaultCache() (Cache, error) {
	dir := os.Getenv("XDG_CACHE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return Cache{}, fmt.Errorf("finding the cache: %w", err)
		}
		dir = filepath.Join(home, ".cache")
	}
	return Cache{Dir: filepath.Join(dir, "hummingbird")}, nil
}

// Bin returns the path of a Kubernetes binary, such as "kubelet".
func (c Cache) Bin(name string) string {
	return filepath.Join(c.Dir, "k8s-"+KubernetesVersion, name)
}

// Rootfs returns the Debian root every edge host starts from. Hosts never write to it.
func (c Cache) Rootfs() string {
	return filepath.Join(c.Dir, "rootfs-bookworm")
}

// Images returns the directory of container image archives (see [WriteImageArchive]).
func (c Cache) Images() string {
	return filepath.Join(c.Dir, "images")
}

// Check reports what test/bed/prepare has not made yet.
func (c Cache) Check() error {
	var errs []error
	for _, p := range []string{
		c.Bin("kube-apiserver"), c.Bin("kube-controller-manager"), c.Bin("kube-scheduler"), c.Bin("kubelet"),
		c.Bin("kubeadm"), c.Bin("kubectl"),
		filepath.Join(c.Rootfs(), "usr", "bin", "containerd"), filepath.Join(c.Rootfs(), "etc", "hummingbird-bed-root"),
		filepath.Join(c.Images(), ImageFile(PauseImage)), filepath.Join(c.Images(), ImageFile(HelloImage)),
	} {
		if _, err := os.Stat(p); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("the test bed cache is not ready, run test/bed/prepare: %w", err)
		}
		return fmt.Errorf("checking the test bed cache: %w", err)
	}
	return nil
}
