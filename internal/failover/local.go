package failover

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"hummingbird.io/hummingbird/internal/wire"
)

// ServeLocal answers the local endpoint (wire.LocalAppsPath,
// wire.LocalAppPath) on the unix socket path until ctx ends. The socket
// is made 0660 in a directory only root can change: apps reach it by a
// hostPath mount.
func (m *Manager) ServeLocal(ctx context.Context, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+wire.LocalAppsPath, func(w http.ResponseWriter, _ *http.Request) {
		m.mu.Lock()
		ms := make([]*member, 0, len(m.members))
		for _, mb := range m.members {
			ms = append(ms, mb)
		}
		m.mu.Unlock()
		out := make([]wire.LocalApp, 0, len(ms))
		for _, mb := range ms {
			l, _ := mb.local()
			out = append(out, l)
		}
		writeLocal(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET "+wire.LocalAppPath+"{app}", func(w http.ResponseWriter, r *http.Request) {
		mb := m.member(r.PathValue("app"))
		if mb == nil {
			writeLocal(w, http.StatusNotFound, map[string]string{"error": "this node runs no app " + r.PathValue("app")})
			return
		}
		if r.URL.Query().Get("watch") == "" {
			l, _ := mb.local()
			writeLocal(w, http.StatusOK, l)
			return
		}
		watch(r.Context(), w, mb)
	})
	mux.HandleFunc("POST "+wire.LocalAppPath+"{app}/switchover", func(w http.ResponseWriter, r *http.Request) {
		mb := m.member(r.PathValue("app"))
		if mb == nil {
			writeLocal(w, http.StatusNotFound, map[string]string{"error": "this node runs no app " + r.PathValue("app")})
			return
		}
		var req wire.LocalSwitchover
		if r.ContentLength != 0 {
			if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
				writeLocal(w, http.StatusBadRequest, map[string]string{"error": "the body must be {\"to\": \"HOSTNAME\"} or empty"})
				return
			}
		}
		to := ""
		if req.To != "" {
			for _, p := range mb.app.Members {
				if p.Hostname == req.To && !p.Witness {
					to = p.HostUUID
				}
			}
			if to == "" {
				writeLocal(w, http.StatusBadRequest, map[string]string{"error": req.To + " is not an app member of " + mb.app.Name})
				return
			}
		}
		if mb.role() != wire.RoleActive {
			l, _ := mb.local()
			writeLocal(w, http.StatusConflict, map[string]string{"error": "this member is not active; the active member is " + l.ActiveMember})
			return
		}
		if !mb.move(to, 20*mb.hb) {
			writeLocal(w, http.StatusConflict, map[string]string{"error": "no healthy standby took over; this member stays active"})
			return
		}
		l, _ := mb.local()
		writeLocal(w, http.StatusOK, l)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	err = srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// watch streams mb's LocalApp: now, at every change, and every lease
// renewal time while active.
func watch(ctx context.Context, w http.ResponseWriter, mb *member) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	tick := time.NewTicker(mb.renew)
	defer tick.Stop()
	for {
		l, changed := mb.local()
		if enc.Encode(l) != nil {
			return
		}
		if fl != nil {
			fl.Flush()
		}
		for quiet := true; quiet; {
			select {
			case <-ctx.Done():
				return
			case <-changed:
				quiet = false
			case <-tick.C:
				quiet = !l.Active
			}
		}
	}
}

func writeLocal(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
