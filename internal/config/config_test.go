package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
)

func TestLayers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(path, []byte("listen: ':7000'\ndata-dir: /from/file\nnames: [a, b]\nmode: dynamic\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	listen := fs.String("listen", ":6385", "")
	dataDir := fs.String("data-dir", "./data", "")
	mode := fs.String("mode", "static", "")
	names := fs.StringSlice("names", nil, "")
	db := fs.String("db", "", "")
	if err := fs.Parse([]string{"--mode", "static"}); err != nil {
		t.Fatal(err)
	}
	file, err := ReadFile(path, true)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HB_DATA_DIR": "/from/env", "HB_MODE": "ignored-flag-wins"}
	if err := Apply(fs, file, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	got := []any{*listen, *dataDir, *mode, *names, *db}
	want := []any{":7000", "/from/env", "static", []string{"a", "b"}, ""}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("layered settings (-want +got):\n%s", diff)
	}
}

func TestApplyErrors(t *testing.T) {
	t.Parallel()
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fs.Int("port", 1, "")
	if err := Apply(fs, map[string]any{"prot": 2}, func(string) string { return "" }); err == nil {
		t.Error("a misspelt file setting was accepted")
	}
	if err := Apply(fs, nil, func(k string) string { return map[string]string{"HB_PORT": "x"}[k] }); err == nil {
		t.Error("a bad HB_PORT was accepted")
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "none.yaml"), true); err == nil {
		t.Error("a missing required file was accepted")
	}
	if m, err := ReadFile(filepath.Join(t.TempDir(), "none.yaml"), false); err != nil || m != nil {
		t.Errorf("missing optional file: %v, %v", m, err)
	}
	if EnvName("mgmt-controller-ips") != "HB_MGMT_CONTROLLER_IPS" {
		t.Error(EnvName("mgmt-controller-ips"))
	}
}
