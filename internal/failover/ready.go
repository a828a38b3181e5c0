package failover

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"time"

	"hummingbird.io/hummingbird/internal/wire"
)

// ServeReady answers the readiness probe of the apps' pods
// (wire.ReadyPath) over HTTPS on addr, a loopback address, until ctx
// ends: 200 on the active member, 503 on the others. The kubelet probes
// it, so the pods of the standbys are not ready and a Service sends
// traffic to the active member's pod alone, whether the controller is
// reachable or not.
func (m *Manager) ServeReady(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+wire.LocalAppPath+"{app}/ready", func(w http.ResponseWriter, r *http.Request) {
		mb := m.member(r.PathValue("app"))
		if mb == nil {
			writeLocal(w, http.StatusNotFound, map[string]string{"error": "this node runs no app " + r.PathValue("app")})
			return
		}
		l, _ := mb.local()
		code := http.StatusServiceUnavailable
		if l.Active {
			code = http.StatusOK
		}
		writeLocal(w, code, l)
	})
	srv := &http.Server{
		Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		TLSConfig: &tls.Config{
			MinVersion:     tls.VersionTLS12,
			CipherSuites:   wire.CipherSuites(),
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return m.certs() },
		},
	}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	err = srv.ServeTLS(ln, "", "")
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
