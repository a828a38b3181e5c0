// Package playbooks holds Hummingbird's Ansible playbooks, built into hb-controller so that the
// binary alone can provision edgeworkers: edgeworker.yml and its roles join a host to the
// cluster (see README.md in this directory).
package playbooks

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Files are the playbook, its roles, its callback plugin and ansible.cfg.
//
//go:embed ansible.cfg edgeworker.yml callback_plugins/*.py roles
var Files embed.FS

// Main is the playbook that provisions an edgeworker.
const Main = "edgeworker.yml"

// WriteTo writes the playbooks into dir, which must exist.
func WriteTo(dir string) error {
	return fs.WalkDir(Files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		data, err := Files.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(target, data, 0o600); err != nil {
			return fmt.Errorf("writing the playbooks: %w", err)
		}
		return nil
	})
}
