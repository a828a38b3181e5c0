// Package bundle reads and makes the offline bundle: the Kubernetes parts of one version that
// hb-controller sends to edgeworkers which cannot reach a package repository.
//
// A bundle directory holds one subdirectory per Kubernetes version:
//
//	<dir>/v1.37.2/bin/kubelet, bin/kubeadm, bin/kubectl
//	<dir>/v1.37.2/cni/cni-plugins.tgz   the CNI plugins, at the top of the archive
//	<dir>/v1.37.2/images/*.tar          image archives as `docker save` or `ctr export` write them
//
// The provisioning playbook copies the binaries and plugins to the node and imports the images
// into its containerd before the kubelet needs them.
package bundle

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Binaries are the programs a bundle must hold in bin/.
var binaries = []string{"kubelet", "kubeadm", "kubectl"}

// CNIArchive is the CNI plugin archive's path inside a version's directory.
const CNIArchive = "cni/cni-plugins.tgz"

// Bundle is one version's part of a bundle directory.
type Bundle struct {
	// Dir is the version's directory, <bundle dir>/<Version>.
	Dir     string
	Version string
	// Images are the bundle's image archives, by file name.
	Images []Image
}

// Image is an image archive of the bundle and the reference it imports as.
type Image struct {
	File string `json:"file"`
	Ref  string `json:"ref"`
}

var versionRE = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+$`)

// An image archive's file name and the reference it carries reach the
// playbook's variables and the node's command lines, so both keep to the
// characters such names need: no spaces, quotes, braces or '%', nothing a
// shell or a template would read as code.
var (
	imageFileRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,250}\.tar$`)
	imageRefRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,511}$`)
)

// check refuses an image whose file name or reference has a character
// outside those names need.
func (i Image) check() error {
	if !imageFileRE.MatchString(i.File) {
		return fmt.Errorf("image archive %q: a file name may have only letters, digits, '.', '_', '+' and '-', and ends in .tar; rename it", i.File)
	}
	if !imageRefRE.MatchString(i.Ref) {
		return fmt.Errorf("image archive %s names image %q, which is not an image reference "+
			"(letters, digits, '.', '_', '/', ':', '@', '+' and '-'); make the archive again", i.File, i.Ref)
	}
	return nil
}

// Open reads the bundle for version under dir and checks that it is whole.
func Open(dir, version string) (*Bundle, error) {
	if !versionRE.MatchString(version) {
		return nil, fmt.Errorf("bundle version %q: want vX.Y.Z", version)
	}
	b := &Bundle{Dir: filepath.Join(dir, version), Version: version}
	if _, err := os.Stat(b.Dir); err != nil {
		return nil, fmt.Errorf("no offline bundle for Kubernetes %s in %s: %w (make one with `hb-controller bundle`)", version, dir, err)
	}
	var errs []error
	for _, name := range binaries {
		if err := checkExecutable(filepath.Join(b.Dir, "bin", name)); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := os.Stat(filepath.Join(b.Dir, CNIArchive)); err != nil {
		errs = append(errs, fmt.Errorf("bundle %s: %w", version, err))
	}
	files, err := filepath.Glob(filepath.Join(b.Dir, "images", "*.tar"))
	if err != nil {
		errs = append(errs, err)
	}
	for _, f := range files {
		ref, err := ImageRef(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		img := Image{File: filepath.Base(f), Ref: ref}
		if err := img.check(); err != nil {
			errs = append(errs, err)
			continue
		}
		b.Images = append(b.Images, img)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("the offline bundle for %s in %s is not whole: %w", version, dir, err)
	}
	return b, nil
}

func checkExecutable(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}

// ImageRef reads the reference an image archive carries: the first RepoTags entry of a
// `docker save` manifest.json, or the image.name annotation of an OCI index.json.
func ImageRef(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("reading image archive: %w", err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("reading image archive %s: %w", path, err)
		}
		switch strings.TrimPrefix(hdr.Name, "./") {
		case "manifest.json":
			var m []struct{ RepoTags []string }
			if err := json.NewDecoder(io.LimitReader(tr, 1<<20)).Decode(&m); err != nil {
				return "", fmt.Errorf("image archive %s: manifest.json: %w", path, err)
			}
			if len(m) > 0 && len(m[0].RepoTags) > 0 {
				return m[0].RepoTags[0], nil
			}
		case "index.json":
			var idx struct {
				Manifests []struct {
					Annotations map[string]string `json:"annotations"`
				} `json:"manifests"`
			}
			if err := json.NewDecoder(io.LimitReader(tr, 1<<20)).Decode(&idx); err != nil {
				return "", fmt.Errorf("image archive %s: index.json: %w", path, err)
			}
			for _, m := range idx.Manifests {
				if ref := m.Annotations["io.containerd.image.name"]; ref != "" {
					return ref, nil
				}
			}
		}
	}
	return "", fmt.Errorf("image archive %s names no image (no RepoTags in manifest.json)", path)
}

// Sources are the files a bundle is made of.
type Sources struct {
	// Bin holds kubelet, kubeadm and kubectl.
	Bin string
	// CNI holds the CNI plugin programs.
	CNI string
	// Images are image archives.
	Images []string
}

// Make writes the bundle for version under dir from src, replacing one that is there.
func Make(dir, version string, src Sources) (*Bundle, error) {
	if !versionRE.MatchString(version) {
		return nil, fmt.Errorf("bundle version %q: want vX.Y.Z", version)
	}
	final := filepath.Join(dir, version)
	tmp := final + ".new"
	if err := os.RemoveAll(tmp); err != nil {
		return nil, fmt.Errorf("making the bundle: %w", err)
	}
	for _, d := range []string{"bin", "cni", "images"} {
		if err := os.MkdirAll(filepath.Join(tmp, d), 0o755); err != nil {
			return nil, fmt.Errorf("making the bundle: %w", err)
		}
	}
	for _, name := range binaries {
		if err := copyFile(filepath.Join(src.Bin, name), filepath.Join(tmp, "bin", name), 0o755); err != nil {
			return nil, err
		}
	}
	for _, img := range src.Images {
		if _, err := ImageRef(img); err != nil {
			return nil, err
		}
		if err := copyFile(img, filepath.Join(tmp, "images", filepath.Base(img)), 0o644); err != nil {
			return nil, err
		}
	}
	if err := writeCNIArchive(src.CNI, filepath.Join(tmp, CNIArchive)); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(final); err != nil {
		return nil, fmt.Errorf("replacing the bundle: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return nil, fmt.Errorf("replacing the bundle: %w", err)
	}
	return Open(dir, version)
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("making the bundle: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("making the bundle: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("making the bundle: copying %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("making the bundle: %w", err)
	}
	return nil
}

// writeCNIArchive packs the regular files of dir, sorted and with fixed times, so the same
// plugins make the same archive and a node that has them is left alone.
func writeCNIArchive(dir, dst string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("making the bundle: CNI plugins: %w", err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	f, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("making the bundle: %w", err)
	}
	defer f.Close()
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	n := 0
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if err := addFile(tw, filepath.Join(dir, e.Name()), e.Name()); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("making the bundle: no CNI plugins in %s", dir)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("making the bundle: %w", err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("making the bundle: %w", err)
	}
	return f.Close()
}

func addFile(tw *tar.Writer, path, name string) error {
	in, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("making the bundle: %w", err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return fmt.Errorf("making the bundle: %w", err)
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: st.Size(), Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return fmt.Errorf("making the bundle: %w", err)
	}
	if _, err := io.Copy(tw, in); err != nil {
		return fmt.Errorf("making the bundle: %s: %w", path, err)
	}
	return nil
}
