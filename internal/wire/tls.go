package wire

import "crypto/tls"

// CipherSuites are the TLS 1.2 cipher suites every Hummingbird listener
// offers: ECDHE key exchange with an AEAD cipher only (AES-GCM,
// ChaCha20-Poly1305), none of the CBC suites Go still offers by default.
// TLS 1.3's suites are all AEAD and not configurable.
func CipherSuites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}
