package testbed

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// The images the bed's hosts hold. No registry is reachable, so they are built from Go programs
// in this repository and imported into each host's containerd.
const (
	// PauseImage is the pod sandbox image; the hosts' containerd is configured to use it.
	PauseImage = "registry.k8s.io/pause:3.10"
	// HelloImage serves "hello from Hummingbird" over HTTP on port 8080.
	HelloImage = "hummingbird.io/bed/hello:v1"
)

// Image is a container image made of one static Go program.
type Image struct {
	// Name is the image reference, such as [PauseImage].
	Name string
	// Program is the program's package, relative to the repository root.
	Program string
}

// Images returns the images the bed builds.
func Images() []Image {
	return []Image{
		{Name: PauseImage, Program: "./test/bed/images/pause"},
		{Name: HelloImage, Program: "./test/bed/images/hello"},
	}
}

// ImageFile returns the file name of an image's archive in [Cache.Images].
func ImageFile(name string) string {
	return strings.NewReplacer("/", "_", ":", "_").Replace(name) + ".tar"
}

// BuildImages builds every image of [Images] from the repository at root and writes their
// archives into dir.
func BuildImages(ctx context.Context, root, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("making the image directory: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, ".build")
	if err != nil {
		return fmt.Errorf("making a build directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	for _, img := range Images() {
		bin := filepath.Join(tmp, path.Base(img.Program))
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, img.Program)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building %s: %w: %s", img.Program, err, out)
		}
		program, err := os.ReadFile(bin)
		if err != nil {
			return fmt.Errorf("reading %s: %w", img.Program, err)
		}
		var buf bytes.Buffer
		if err := WriteImageArchive(&buf, img.Name, path.Base(img.Program), program); err != nil {
			return err
		}
		out := filepath.Join(dir, ImageFile(img.Name))
		if err := os.WriteFile(out+".tmp", buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", out, err)
		}
		if err := os.Rename(out+".tmp", out); err != nil {
			return fmt.Errorf("writing %s: %w", out, err)
		}
	}
	return nil
}

// imageEpoch returns the time stamped on every image, so that the same program makes the same
// image.
func imageEpoch() time.Time { return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC) }

// WriteImageArchive writes an image archive in the layout `docker save` makes, which
// `ctr images import` reads: a manifest.json, the image config and one layer holding the program
// as /<entry>, which is also the image's entrypoint.
func WriteImageArchive(w io.Writer, name, entry string, program []byte) error {
	var layer bytes.Buffer
	lt := tar.NewWriter(&layer)
	if err := lt.WriteHeader(&tar.Header{
		Name: entry, Mode: 0o755, Size: int64(len(program)), Typeflag: tar.TypeReg,
		ModTime: imageEpoch(), Format: tar.FormatPAX,
	}); err != nil {
		return fmt.Errorf("writing the layer of %s: %w", name, err)
	}
	if _, err := lt.Write(program); err != nil {
		return fmt.Errorf("writing the layer of %s: %w", name, err)
	}
	if err := lt.Close(); err != nil {
		return fmt.Errorf("writing the layer of %s: %w", name, err)
	}
	layerSum := sha256.Sum256(layer.Bytes())
	layerID := hex.EncodeToString(layerSum[:])

	config, err := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"created":      imageEpoch(),
		"config": map[string]any{
			"Entrypoint": []string{"/" + entry},
			"Env":        []string{"PATH=/"},
		},
		"rootfs": map[string]any{
			"type":     "layers",
			"diff_ids": []string{"sha256:" + layerID},
		},
		"history": []map[string]any{{"created": imageEpoch(), "created_by": "hummingbird test bed"}},
	})
	if err != nil {
		return fmt.Errorf("encoding the config of %s: %w", name, err)
	}
	configSum := sha256.Sum256(config)
	configFile := hex.EncodeToString(configSum[:]) + ".json"
	layerFile := layerID + "/layer.tar"

	manifest, err := json.Marshal([]map[string]any{{
		"Config":   configFile,
		"RepoTags": []string{name},
		"Layers":   []string{layerFile},
	}})
	if err != nil {
		return fmt.Errorf("encoding the manifest of %s: %w", name, err)
	}

	tw := tar.NewWriter(w)
	for _, f := range []struct {
		name string
		data []byte
	}{
		{configFile, config},
		{layerFile, layer.Bytes()},
		{"manifest.json", manifest},
	} {
		if dir := path.Dir(f.name); dir != "." {
			if err := tw.WriteHeader(&tar.Header{Name: dir + "/", Mode: 0o755, Typeflag: tar.TypeDir, ModTime: imageEpoch()}); err != nil {
				return fmt.Errorf("writing the archive of %s: %w", name, err)
			}
		}
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg, ModTime: imageEpoch()}); err != nil {
			return fmt.Errorf("writing the archive of %s: %w", name, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return fmt.Errorf("writing the archive of %s: %w", name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("writing the archive of %s: %w", name, err)
	}
	return nil
}
