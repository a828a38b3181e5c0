package bundle_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/bundle"
)

// writeTar writes a tar archive of files (name → content) to path.
func writeTar(t *testing.T, path string, files ...[2]string) {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f[0], Mode: 0o644, Size: int64(len(f[1])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// sources lays out what a bundle is made of: the three binaries, two CNI
// plugins (and a directory Make must leave out), and an image archive of
// each kind.
func sources(t *testing.T) bundle.Sources {
	t.Helper()
	dir := t.TempDir()
	src := bundle.Sources{Bin: filepath.Join(dir, "bin"), CNI: filepath.Join(dir, "cni")}
	for _, b := range []string{"kubelet", "kubeadm", "kubectl"} {
		writeFile(t, filepath.Join(src.Bin, b), "#!/bin/sh\necho "+b+"\n", 0o755)
	}
	writeFile(t, filepath.Join(src.CNI, "loopback"), "loopback plugin", 0o755)
	writeFile(t, filepath.Join(src.CNI, "bridge"), "bridge plugin", 0o700)
	if err := os.MkdirAll(filepath.Join(src.CNI, "docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	docker := filepath.Join(dir, "pause.tar")
	writeTar(t, docker, [2]string{"blobs/x", "layer"}, [2]string{"manifest.json", `[{"Config":"c.json","RepoTags":["registry.k8s.io/pause:3.10"]}]`})
	oci := filepath.Join(dir, "coredns.tar")
	writeTar(t, oci, [2]string{"./oci-layout", `{}`},
		[2]string{"./index.json", `{"manifests":[{"annotations":{"org.opencontainers.image.ref.name":"v1.11"}},` +
			`{"annotations":{"io.containerd.image.name":"registry.k8s.io/coredns/coredns:v1.11.3"}}]}`})
	src.Images = []string{docker, oci}
	return src
}

// cniFiles lists the archive's entries: name, mode and content.
func cniFiles(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var out []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h.Name+" "+fs.FileMode(h.Mode).String()+" "+string(b))
	}
}

func TestMakeAndOpen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := sources(t)
	// A bundle there already is replaced whole.
	writeFile(t, filepath.Join(dir, "v1.37.2", "images", "stale.tar"), "stale", 0o644)
	b, err := bundle.Make(dir, "v1.37.2", src)
	if err != nil {
		t.Fatal(err)
	}
	want := &bundle.Bundle{Dir: filepath.Join(dir, "v1.37.2"), Version: "v1.37.2", Images: []bundle.Image{
		{File: "coredns.tar", Ref: "registry.k8s.io/coredns/coredns:v1.11.3"},
		{File: "pause.tar", Ref: "registry.k8s.io/pause:3.10"},
	}}
	if diff := cmp.Diff(want, b); diff != "" {
		t.Errorf("made bundle (-want +got):\n%s", diff)
	}
	for _, name := range []string{"kubelet", "kubeadm", "kubectl"} {
		st, err := os.Stat(filepath.Join(b.Dir, "bin", name))
		if err != nil || st.Mode().Perm() != 0o755 {
			t.Errorf("bin/%s: %v, %v; want an executable", name, st, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "v1.37.2.new")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the work directory is left behind: %v", err)
	}
	// The CNI archive holds the plugins at its top, sorted, executable.
	archive := filepath.Join(b.Dir, bundle.CNIArchive)
	if diff := cmp.Diff([]string{"bridge -rwxr-xr-x bridge plugin", "loopback -rwxr-xr-x loopback plugin"}, cniFiles(t, archive)); diff != "" {
		t.Errorf("CNI archive (-want +got):\n%s", diff)
	}
	// The same plugins make the same archive, whenever they are packed.
	first, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(src.CNI, "bridge"), now, now); err != nil {
		t.Fatal(err)
	}
	if _, err := bundle.Make(dir, "v1.37.2", src); err != nil {
		t.Fatal(err)
	}
	second, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Error("the CNI archive differs when made again from the same plugins")
	}
	opened, err := bundle.Open(dir, "v1.37.2")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, opened); diff != "" {
		t.Errorf("opened bundle (-want +got):\n%s", diff)
	}
}

func TestMakeRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		version string
		change  func(t *testing.T, src *bundle.Sources)
	}{
		{"a version without its v", "1.37.2", func(*testing.T, *bundle.Sources) {}},
		{"a version of two numbers", "v1.37", func(*testing.T, *bundle.Sources) {}},
		{"a path as a version", "../v1.37.2", func(*testing.T, *bundle.Sources) {}},
		{"no kubeadm", "v1.37.2", func(t *testing.T, src *bundle.Sources) {
			if err := os.Remove(filepath.Join(src.Bin, "kubeadm")); err != nil {
				t.Fatal(err)
			}
		}},
		{"no CNI plugins", "v1.37.2", func(t *testing.T, src *bundle.Sources) { src.CNI = t.TempDir() }},
		{"an image archive that names no image", "v1.37.2", func(t *testing.T, src *bundle.Sources) {
			p := filepath.Join(t.TempDir(), "x.tar")
			writeTar(t, p, [2]string{"manifest.json", `[{"RepoTags":[]}]`})
			src.Images = append(src.Images, p)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			src := sources(t)
			tc.change(t, &src)
			if b, err := bundle.Make(dir, tc.version, src); err == nil {
				t.Fatalf("made %+v", b)
			}
			if _, err := os.Stat(filepath.Join(dir, tc.version)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a refused bundle is in place: %v", err)
			}
		})
	}
}

func TestOpenRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		version  string
		change   func(t *testing.T, dir string)
		notExist bool // the error says a file is missing
	}{
		{"a bad version", "v1", func(*testing.T, string) {}, false},
		{"no such version", "v1.38.0", func(*testing.T, string) {}, true},
		{"a binary that is not executable", "v1.37.2", func(t *testing.T, dir string) {
			if err := os.Chmod(filepath.Join(dir, "bin", "kubelet"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"a directory for a binary", "v1.37.2", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "bin", "kubectl")
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"no CNI archive", "v1.37.2", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, bundle.CNIArchive)); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"a broken image archive", "v1.37.2", func(t *testing.T, dir string) {
			writeTar(t, filepath.Join(dir, "images", "bad.tar"), [2]string{"manifest.json", `{not json`})
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if _, err := bundle.Make(dir, "v1.37.2", sources(t)); err != nil {
				t.Fatal(err)
			}
			tc.change(t, filepath.Join(dir, "v1.37.2"))
			b, err := bundle.Open(dir, tc.version)
			if err == nil {
				t.Fatalf("opened %+v", b)
			}
			if errors.Is(err, fs.ErrNotExist) != tc.notExist {
				t.Errorf("%v: missing file %v, want %v", err, errors.Is(err, fs.ErrNotExist), tc.notExist)
			}
		})
	}
}

func TestImageRef(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for i, tc := range []struct {
		name  string
		files [][2]string
		want  string // "" when refused
	}{
		{"docker save", [][2]string{{"manifest.json", `[{"RepoTags":["a/b:1","a/b:latest"]}]`}}, "a/b:1"},
		{"docker save, ./ names", [][2]string{{"./manifest.json", `[{"RepoTags":["a/b:2"]}]`}}, "a/b:2"},
		{"OCI index", [][2]string{{"index.json", `{"manifests":[{"annotations":{"io.containerd.image.name":"a/c:3"}}]}`}}, "a/c:3"},
		{"untagged docker save, tagged index", [][2]string{{"manifest.json", `[{"RepoTags":null}]`},
			{"index.json", `{"manifests":[{"annotations":{"io.containerd.image.name":"a/d:4"}}]}`}}, "a/d:4"},
		{"no tags", [][2]string{{"manifest.json", `[]`}}, ""},
		{"an index without the name", [][2]string{{"index.json", `{"manifests":[{"annotations":{"org.opencontainers.image.ref.name":"4"}}]}`}}, ""},
		{"no manifest", [][2]string{{"layer.tar", "x"}}, ""},
		{"a broken manifest", [][2]string{{"manifest.json", `[{`}}, ""},
		{"a broken index", [][2]string{{"index.json", `nope`}}, ""},
	} {
		p := filepath.Join(dir, fmt.Sprintf("%d.tar", i))
		writeTar(t, p, tc.files...)
		got, err := bundle.ImageRef(p)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	p := filepath.Join(dir, "not.tar")
	writeFile(t, p, "this is not a tar archive, and it is long enough to have a header block of 512 bytes? "+string(make([]byte, 600)), 0o644)
	if ref, err := bundle.ImageRef(p); err == nil {
		t.Errorf("a file that is no tar archive: %q", ref)
	}
	if _, err := bundle.ImageRef(filepath.Join(dir, "absent.tar")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("an absent archive: %v, want a missing file", err)
	}
}
