// Package pki keeps the controller's certificate authority and its HTTPS
// serving certificate in the data directory: made on first start, reused
// afterwards, the serving certificate renewed when it nears expiry or its
// names change. The CA is what hbctl and agents trust (pinned by CAHash).
package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"hummingbird.io/hummingbird/internal/wire"
)

// File names inside the data directory.
const (
	CACertFile  = "ca.crt"
	CAKeyFile   = "ca.key"
	TLSCertFile = "tls.crt"
	TLSKeyFile  = "tls.key"
)

const (
	caValidity      = 10 * 365 * 24 * time.Hour
	servingValidity = 365 * 24 * time.Hour
	renewBefore     = 30 * 24 * time.Hour
)

// CA is the controller's certificate authority.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	PEM  []byte
}

// EnsureCA loads the CA from dir or makes one. created says whether it was
// made now.
func EnsureCA(dir string, now time.Time) (ca *CA, created bool, err error) {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	certPEM, err := os.ReadFile(certPath)
	if err == nil {
		ca, err := loadCA(certPEM, keyPath)
		if err != nil {
			return nil, false, fmt.Errorf("load CA from %s: %w (move the broken files away to make a new CA)", dir, err)
		}
		return ca, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("read %s: %w", certPath, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("generate CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Hummingbird controller CA", Organization: []string{"Hummingbird"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, false, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, _ := x509.ParseCertificate(der)
	if err := writeKey(keyPath, key); err != nil {
		return nil, false, err
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := writeFile(certPath, pemBytes, 0o644); err != nil {
		return nil, false, err
	}
	return &CA{Cert: cert, Key: key, PEM: pemBytes}, true, nil
}

func loadCA(certPEM []byte, keyPath string) (*CA, error) {
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, err
	}
	key, err := readKey(keyPath)
	if err != nil {
		return nil, err
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("%s does not belong to the CA certificate", keyPath)
	}
	return &CA{Cert: cert, Key: key, PEM: certPEM}, nil
}

// CAHash is the pin of a CA: "sha256:" and the hex SHA-256 of its DER
// SubjectPublicKeyInfo, the form kubeadm uses for
// --discovery-token-ca-cert-hash.
func CAHash(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// EnsureServing loads the serving certificate from dir, or makes one signed
// by ca for names (DNS names and IP addresses) when it is missing, expires
// within 30 days, or lacks one of names.
func EnsureServing(dir string, ca *CA, names []string, now time.Time) (tls.Certificate, error) {
	certPath, keyPath := filepath.Join(dir, TLSCertFile), filepath.Join(dir, TLSKeyFile)
	if pair, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil {
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		if err == nil && now.Add(renewBefore).Before(leaf.NotAfter) && covers(leaf, names) &&
			leaf.CheckSignatureFrom(ca.Cert) == nil {
			pair.Leaf = leaf
			return pair, nil
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate serving key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "hb-controller", Organization: []string{"Hummingbird"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(servingValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if n != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("create serving certificate: %w", err)
	}
	if err := writeKey(keyPath, key); err != nil {
		return tls.Certificate{}, err
	}
	if err := writeFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return tls.LoadX509KeyPair(certPath, keyPath)
}

func covers(leaf *x509.Certificate, names []string) bool {
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
				return false
			}
		} else if n != "" && !slices.Contains(leaf.DNSNames, n) {
			return false
		}
	}
	return true
}

// DefaultNames are the names a serving certificate always carries: this
// machine's hostname, localhost and the loopback addresses.
func DefaultNames() []string {
	names := []string{"localhost", "127.0.0.1", "::1"}
	if h, err := os.Hostname(); err == nil && h != "" {
		names = append(names, h)
	}
	return names
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return n
}

func parseCert(pemBytes []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate found")
	}
	return x509.ParseCertificate(block.Bytes)
}

func readKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM key found", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", path)
	}
	return s, nil
}

func writeKey(path string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("marshal key: %w", err)
	}
	return writeFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

// writeFile replaces path atomically: a crash leaves the old file or the
// new one, never half of one.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// WriteSecretFile writes data readable by the owner only, atomically.
func WriteSecretFile(path string, data []byte) error { return writeFile(path, data, 0o600) }

func publicKeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	ea, ok := a.(equaler)
	return ok && ea.Equal(b)
}

// Pool returns a certificate pool holding the PEM certificates in b.
func Pool(b []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(bytes.TrimSpace(b)) {
		return nil, errors.New("no PEM certificate found")
	}
	return pool, nil
}

// AgentCertValidity is how long an agent's client certificate is valid;
// agents renew when a third of it is left.
const AgentCertValidity = 90 * 24 * time.Hour

// SignAgent checks a PEM certificate request and signs a client
// certificate for the agent of the host hostUUID: the uuid is its common
// name, the certificate is for client authentication only. prev is the
// serial (hex) of the host's current agent certificate ("": none), and
// renewal whether its holder asks (else it is a join): the new one is of
// the next generation (wire.NextCertGeneration), so that the other
// members of the host's apps accept it before they learn its serial, and
// refuse prev once they do. It returns the PEM certificate and its serial
// (hex).
func SignAgent(ca *CA, csrPEM []byte, hostUUID, prev string, renewal bool, now time.Time) ([]byte, string, error) {
	block, _ := pem.Decode(csrPEM)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, "", errors.New("the certificate request is not a PEM CERTIFICATE REQUEST")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, "", fmt.Errorf("certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, "", fmt.Errorf("certificate request signature: %w", err)
	}
	switch k := csr.PublicKey.(type) {
	case *ecdsa.PublicKey, ed25519.PublicKey:
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, "", errors.New("an RSA key must have at least 2048 bits")
		}
	default:
		return nil, "", fmt.Errorf("key type %T is not accepted: use ECDSA, Ed25519 or RSA", k)
	}
	gen := wire.NextCertGeneration(prev, renewal)
	if gen > wire.MaxCertGeneration {
		return nil, "", fmt.Errorf("host %s has joined as often as its certificates can count: delete and add it again", hostUUID)
	}
	sn := wire.CertSerial(gen, serial())
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: hostUUID, Organization: []string{"Hummingbird agents"}},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.Add(AgentCertValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, csr.PublicKey, ca.Key)
	if err != nil {
		return nil, "", fmt.Errorf("sign agent certificate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), sn.Text(16), nil
}
