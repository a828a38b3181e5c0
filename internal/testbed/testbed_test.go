package testbed

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestKubernetesVersionMatchesBuildModule(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "test", "bed", "k8s", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "require k8s.io/kubernetes " + KubernetesVersion + "\n"; !strings.Contains(string(data), want) {
		t.Errorf("test/bed/k8s/go.mod does not hold %q", strings.TrimSpace(want))
	}
}

func TestWriteImageArchive(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteImageArchive(&buf, "example.org/app:v1", "app", []byte("program")); err != nil {
		t.Fatal(err)
	}
	archive := bytes.Clone(buf.Bytes())
	files := map[string][]byte{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = data
	}
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil {
		t.Fatal(err)
	}
	if len(manifest) != 1 || len(manifest[0].Layers) != 1 {
		t.Fatalf("manifest = %+v, want one image with one layer", manifest)
	}
	if diff := cmp.Diff([]string{"example.org/app:v1"}, manifest[0].RepoTags); diff != "" {
		t.Errorf("RepoTags (-want +got):\n%s", diff)
	}
	var config struct {
		Config struct{ Entrypoint []string }
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(files[manifest[0].Config], &config); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"/app"}, config.Config.Entrypoint); diff != "" {
		t.Errorf("Entrypoint (-want +got):\n%s", diff)
	}
	layer := tar.NewReader(bytes.NewReader(files[manifest[0].Layers[0]]))
	h, err := layer.Next()
	if err != nil {
		t.Fatal(err)
	}
	if h.Name != "app" || h.Mode&0o111 == 0 {
		t.Errorf("layer holds %s mode %o, want an executable app", h.Name, h.Mode)
	}
	if want := "sha256:" + strings.TrimSuffix(manifest[0].Layers[0], "/layer.tar"); len(config.RootFS.DiffIDs) != 1 || config.RootFS.DiffIDs[0] != want {
		t.Errorf("diff_ids = %v, want [%s]", config.RootFS.DiffIDs, want)
	}

	var again bytes.Buffer
	if err := WriteImageArchive(&again, "example.org/app:v1", "app", []byte("program")); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), archive) {
		t.Error("the same program made two different archives")
	}
}

func TestCAHashMatchesOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl is not installed (apt-get install openssl)")
		}
		t.Skip("no openssl")
	}
	ca, err := newAuthority("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	got, err := CAHash(ca.certPEM())
	if err != nil {
		t.Fatal(err)
	}
	pub := exec.Command("openssl", "x509", "-pubkey", "-noout")
	pub.Stdin = bytes.NewReader(ca.certPEM())
	pubPEM, err := pub.Output()
	if err != nil {
		t.Fatal(err)
	}
	der := exec.Command("openssl", "pkey", "-pubin", "-outform", "der")
	der.Stdin = bytes.NewReader(pubPEM)
	derBytes, err := der.Output()
	if err != nil {
		t.Fatal(err)
	}
	sum := exec.Command("sha256sum")
	sum.Stdin = bytes.NewReader(derBytes)
	out, err := sum.Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := "sha256:" + strings.Fields(string(out))[0]; got != want {
		t.Errorf("CAHash = %s, want %s", got, want)
	}
}

func TestIsBedLink(t *testing.T) {
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"hb1br", true}, {"hb1h1", true}, {"hb1h12", true},
		{"hb12br", false}, {"hb12h1", false}, {"eth0", false}, {"hb1", false}, {"hb1hello", false},
	} {
		if got := isBedLink(1, tc.name); got != tc.want {
			t.Errorf("isBedLink(1, %q) = %t, want %t", tc.name, got, tc.want)
		}
	}
}

func TestBedIndexOf(t *testing.T) {
	for _, tc := range []struct {
		name  string
		index int
		ok    bool
	}{
		{"hb1br", 1, true}, {"hb12h3", 12, true}, {"hb7-edge-1", 7, true},
		{"hbcb62a388a", 0, false}, {"hb0br", 0, false}, {"hb1x", 0, false}, {"eth0", 0, false},
	} {
		index, ok := bedIndexOf(tc.name)
		if index != tc.index || ok != tc.ok {
			t.Errorf("bedIndexOf(%q) = %d, %t, want %d, %t", tc.name, index, ok, tc.index, tc.ok)
		}
	}
}

func TestUnescapeMount(t *testing.T) {
	if got, want := unescapeMount(`/var/tmp/a\040b`), "/var/tmp/a b"; got != want {
		t.Errorf("unescapeMount = %q, want %q", got, want)
	}
}

func TestNewBootstrapToken(t *testing.T) {
	tok, err := newBootstrapToken()
	if err != nil {
		t.Fatal(err)
	}
	id, secret, ok := strings.Cut(tok, ".")
	if !ok || len(id) != 6 || len(secret) != 16 || strings.Trim(tok, "abcdefghijklmnopqrstuvwxyz0123456789.") != "" {
		t.Errorf("token %q is not [a-z0-9]{6}.[a-z0-9]{16}", tok)
	}
}

func TestFootprintSince(t *testing.T) {
	t.Parallel()
	before := Footprint{Processes: []string{"10 etcd"}, Links: []string{"hb1br"}, Cgroups: []string{"/sys/fs/cgroup/cpu"}}
	// Another bed went down (hb1br gone) and this one left a link.
	after := Footprint{Links: []string{"hb2br"}, Cgroups: []string{"/sys/fs/cgroup/cpu"}}
	if diff := cmp.Diff(Footprint{Links: []string{"hb2br"}}, after.Since(before)); diff != "" {
		t.Errorf("Since (-want +got):\n%s", diff)
	}
	if left := before.Since(before); !cmp.Equal(left, Footprint{}) {
		t.Errorf("a footprint since itself: %+v", left)
	}
}
