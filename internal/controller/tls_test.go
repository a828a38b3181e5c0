package controller_test

import (
	"crypto/tls"
	"net/url"
	"testing"

	"hummingbird.io/hummingbird/internal/controller/controllertest"
)

// TestTLSOffersAEADOnly: the controller's listener refuses a TLS 1.2
// client that offers only CBC suites, and takes one that offers AES-GCM or
// ChaCha20-Poly1305.
func TestTLSOffersAEADOnly(t *testing.T) {
	t.Parallel()
	in := controllertest.Start(t, "", nil)
	u, err := url.Parse(in.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		suite uint16
		ok    bool
	}{
		{"ecdhe-ecdsa-aes128-cbc-sha", tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, false},
		{"ecdhe-ecdsa-aes256-cbc-sha", tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, false},
		{"ecdhe-rsa-aes128-cbc-sha", tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, false},
		{"ecdhe-ecdsa-aes128-gcm", tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, true},
		{"ecdhe-ecdsa-chacha20", tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, true},
	} {
		conn, err := tls.Dial("tcp", u.Host, &tls.Config{
			InsecureSkipVerify: true, //nolint:gosec // only the suite is under test
			MinVersion:         tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{c.suite},
		})
		if err == nil {
			conn.Close()
		}
		if (err == nil) != c.ok {
			t.Errorf("TLS 1.2 with only %s: handshake error %v, want accepted=%v", c.name, err, c.ok)
		}
	}
}
