package pki

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCAAndServing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	ca, created, err := EnsureCA(dir, now)
	if err != nil || !created {
		t.Fatalf("first EnsureCA: created=%v err=%v", created, err)
	}
	again, created, err := EnsureCA(dir, now)
	if err != nil || created || !again.Cert.Equal(ca.Cert) {
		t.Fatalf("second EnsureCA made a new CA (created=%v, err=%v)", created, err)
	}
	for name, mode := range map[string]os.FileMode{CACertFile: 0o644, CAKeyFile: 0o600} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil || st.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v (%v)", name, st.Mode().Perm(), mode, err)
		}
	}
	// The pin is kubeadm's: sha256 of the DER SubjectPublicKeyInfo.
	sum := sha256.Sum256(ca.Cert.RawSubjectPublicKeyInfo)
	if got, want := CAHash(ca.Cert), "sha256:"+hex.EncodeToString(sum[:]); got != want {
		t.Errorf("CAHash = %s, want %s", got, want)
	}

	serving := func(names ...string) *x509.Certificate {
		t.Helper()
		c, err := EnsureServing(dir, ca, names, now)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AddCert(ca.Cert)
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: names[0], CurrentTime: now}); err != nil {
			t.Errorf("serving certificate does not verify for %s: %v", names[0], err)
		}
		return leaf
	}
	a := serving("localhost", "127.0.0.1")
	if b := serving("localhost", "127.0.0.1"); !a.Equal(b) {
		t.Error("same names: the serving certificate was remade")
	}
	c := serving("controller.example", "localhost")
	if c.Equal(a) {
		t.Error("a new name did not renew the serving certificate")
	}
	// Close to expiry it is renewed too.
	d, err := EnsureServing(dir, ca, []string{"controller.example"}, c.NotAfter.Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if leaf, err := x509.ParseCertificate(d.Certificate[0]); err != nil || leaf.Equal(c) {
		t.Errorf("a certificate one day from expiry was kept (%v)", err)
	}

	// A CA key that does not match its certificate is an error, not a new CA.
	other := t.TempDir()
	if _, _, err := EnsureCA(other, now); err != nil {
		t.Fatal(err)
	}
	key, _ := os.ReadFile(filepath.Join(other, CAKeyFile))
	if err := os.WriteFile(filepath.Join(dir, CAKeyFile), key, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := EnsureCA(dir, now); err == nil {
		t.Error("a mismatched CA key was accepted")
	}
}
