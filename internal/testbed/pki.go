package testbed

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// authority is the bed's cluster CA.
type authority struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// certSpec describes one certificate the CA issues.
type certSpec struct {
	name   string // file name without extension
	cn     string
	orgs   []string
	ips    []net.IP
	dns    []string
	server bool
}

// newAuthority makes a CA valid for a year.
func newAuthority(name string) (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("making the CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("signing the CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("reading the CA: %w", err)
	}
	return &authority{cert: cert, key: key}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

// issue signs a certificate and returns it with its key, both PEM encoded.
func (a *authority) issue(s certSpec) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("making the key of %s: %w", s.name, err)
	}
	usage := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if s.server {
		usage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: s.cn, Organization: s.orgs},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  usage,
		IPAddresses:  s.ips,
		DNSNames:     s.dns,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, key.Public(), a.key)
	if err != nil {
		return nil, nil, fmt.Errorf("signing %s: %w", s.name, err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding the key of %s: %w", s.name, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// certPEM returns the CA certificate, PEM encoded.
func (a *authority) certPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.cert.Raw})
}

// writeFiles writes ca.crt and ca.key into dir.
func (a *authority) writeFiles(dir string) error {
	key, err := encodeKey(a.key)
	if err != nil {
		return fmt.Errorf("encoding the CA key: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), a.certPEM(), 0o644); err != nil {
		return fmt.Errorf("writing the CA: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.key"), key, 0o600); err != nil {
		return fmt.Errorf("writing the CA key: %w", err)
	}
	return nil
}

// writeCert issues a certificate and writes <name>.crt and <name>.key into dir.
func (a *authority) writeCert(dir string, s certSpec) error {
	cert, key, err := a.issue(s)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, s.name+".crt"), cert, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", s.name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, s.name+".key"), key, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", s.name, err)
	}
	return nil
}

// CAHash returns the value kubeadm's --discovery-token-ca-cert-hash takes for a PEM encoded CA
// certificate: "sha256:" and the hex SHA-256 of its DER SubjectPublicKeyInfo.
func CAHash(caPEM []byte) (string, error) {
	block, _ := pem.Decode(caPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return "", fmt.Errorf("no PEM certificate in the CA")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", fmt.Errorf("reading the CA: %w", err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// kubeconfig renders a kubeconfig with one cluster, one user holding a client certificate and one
// context. kubectl and every Kubernetes component read JSON kubeconfigs as well as YAML ones.
func kubeconfig(server, cluster, user string, caPEM, certPEM, keyPEM []byte) ([]byte, error) {
	cfg := map[string]any{
		"apiVersion": "v1",
		"kind":       "Config",
		"clusters": []any{map[string]any{
			"name":    cluster,
			"cluster": map[string]any{"server": server, "certificate-authority-data": caPEM},
		}},
		"users": []any{map[string]any{
			"name": user,
			"user": map[string]any{"client-certificate-data": certPEM, "client-key-data": keyPEM},
		}},
		"contexts": []any{map[string]any{
			"name":    user + "@" + cluster,
			"context": map[string]any{"cluster": cluster, "user": user},
		}},
		"current-context": user + "@" + cluster,
	}
	out, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding a kubeconfig: %w", err)
	}
	return out, nil
}
