package controllertest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"hummingbird.io/hummingbird/internal/controller"
	"hummingbird.io/hummingbird/internal/pki"
)

// ShareCA gives a controller the CA of in, as an operator copies ca.crt and ca.key into the
// data directory of another controller of the same database: pass it to Start.
func ShareCA(t testing.TB, in *Instance) func(*controller.Config) {
	return func(c *controller.Config) {
		for _, name := range []string{pki.CACertFile, pki.CAKeyFile} {
			b, err := os.ReadFile(filepath.Join(in.DataDir, name))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(c.DataDir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// SilentCluster writes a kubeconfig naming an API server that accepts connections and never
// answers (a provisioning job against it runs until it is stopped), and returns its path.
func SilentCluster(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	path := filepath.Join(t.TempDir(), "kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://%s", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`, ln.Addr())
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
