package bundle

import (
	"archive/tar"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeBundle makes a bundle of version v1.37.2 in a new directory with
// the binaries, the CNI archive and one image archive per name, each
// carrying the reference given for it in a docker-save manifest.
func writeBundle(t *testing.T, images map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	v := filepath.Join(dir, "v1.37.2")
	for _, d := range []string{"bin", "cni", "images"} {
		if err := os.MkdirAll(filepath.Join(v, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range binaries {
		if err := os.WriteFile(filepath.Join(v, "bin", b), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(v, CNIArchive), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, ref := range images {
		f, err := os.Create(filepath.Join(v, "images", name))
		if err != nil {
			t.Fatal(err)
		}
		manifest := `[{"RepoTags":["` + strings.ReplaceAll(ref, `"`, `\"`) + `"]}]`
		tw := tar.NewWriter(f)
		if err := tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o644, Size: int64(len(manifest))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(manifest)); err != nil {
			t.Fatal(err)
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	return dir
}

// TestOpenRefusesTamperedImages: a bundle whose image archive names, or
// the references inside them, carry template or shell syntax is refused
// whole, naming the archive, so that nothing of it reaches a playbook.
func TestOpenRefusesTamperedImages(t *testing.T) {
	t.Parallel()
	good := map[string]string{"pause.tar": "registry.k8s.io/pause:3.10", "coredns_v1.11+1.tar": "registry.k8s.io/coredns/coredns:v1.11.1@sha256:" + strings.Repeat("a", 64)}
	b, err := Open(writeBundle(t, good), "v1.37.2")
	if err != nil {
		t.Fatalf("a good bundle: %v", err)
	}
	if len(b.Images) != 2 {
		t.Errorf("a good bundle's images: %+v", b.Images)
	}
	for _, c := range []struct{ name, file, ref, want string }{
		{"jinja in the reference", "pause.tar", "registry.k8s.io/pause:{{ lookup('pipe', 'id') }}", "pause.tar names image"},
		{"jinja in the file name", "{{lookup('pipe','id')}}.tar", "registry.k8s.io/pause:3.10", "a file name may have only"},
		{"a space in the reference", "pause.tar", "registry.k8s.io/pause:3.10 --force", "not an image reference"},
		{"a quote in the file name", "pa'use.tar", "registry.k8s.io/pause:3.10", "a file name may have only"},
		{"a percent in the reference", "pause.tar", "registry.k8s.io/pause:{%raw%}", "not an image reference"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := Open(writeBundle(t, map[string]string{c.file: c.ref}), "v1.37.2")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Open = %v; want an error saying %q", err, c.want)
			}
		})
	}
}
