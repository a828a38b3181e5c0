package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/controller/controllertest"
	"hummingbird.io/hummingbird/internal/pki"
)

// TestJoinTokenFile runs the real hb-agent join against a real controller
// with the enroll token in a file, on standard input, and in a file named
// by HB_TOKEN_FILE, never on the command line; an empty file and a token
// given twice are refused before anything is sent.
func TestJoinTokenFile(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "hb-agent")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build hb-agent: %v\n%s", err, out)
	}
	ctx := context.Background()
	in := controllertest.Start(t, "", nil)
	api := in.Client(t, in.AdminToken)
	hash := pki.CAHash(in.Controller.CA.Cert)
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, []byte("\n  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for i, c := range []struct {
		name    string
		args    func(file string) []string // after join's common flags
		env     func(file string) []string
		stdin   bool
		wantErr string // "" for a join
	}{
		{name: "file", args: func(f string) []string { return []string{"--token-file", f} }},
		{name: "stdin", args: func(string) []string { return []string{"--token-file", "-"} }, stdin: true},
		{name: "HB_TOKEN_FILE", env: func(f string) []string { return []string{"HB_TOKEN_FILE=" + f} }},
		{name: "empty file", args: func(string) []string { return []string{"--token-file", empty} }, wantErr: "holds no token"},
		{name: "token twice", args: func(f string) []string { return []string{"--token-file", f, "--token", "hb_x.y"} }, wantErr: "not both"},
	} {
		t.Run(c.name, func(t *testing.T) {
			host := fmt.Sprintf("edge-%02d", i+1)
			if _, err := api.AddHost(ctx, apitype.HostCreate{Hostname: host, Personality: "edgeworker", MgmtIP: fmt.Sprintf("192.168.204.%d", 10+i)}); err != nil {
				t.Fatal(err)
			}
			tok, err := api.CreateToken(ctx, apitype.TokenCreate{Type: "enroll", Uses: 1, Host: host})
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "token")
			if err := os.WriteFile(file, []byte(tok.Secret+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			args := []string{"join", "--controller", in.URL, "--ca-hash", hash, "--hostname", host, "--state-dir", t.TempDir()}
			if c.args != nil {
				args = append(args, c.args(file)...)
			}
			cmd := exec.Command(bin, args...)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
			if c.env != nil {
				cmd.Env = append(cmd.Env, c.env(file)...)
			}
			if c.stdin {
				cmd.Stdin = strings.NewReader(tok.Secret + "\n")
			}
			out, err := cmd.CombinedOutput()
			if strings.Contains(strings.Join(cmd.Args, " "), tok.Secret) {
				t.Errorf("the token is on the command line: %q", cmd.Args)
			}
			if c.wantErr != "" {
				if err == nil || !strings.Contains(string(out), c.wantErr) {
					t.Errorf("join: %v: %s; want a refusal saying %q", err, out, c.wantErr)
				}
				return
			}
			if err != nil || !strings.Contains(string(out), "joined as host "+host) {
				t.Errorf("join: %v: %s", err, out)
			}
		})
	}
}
