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
// wire.LocalAppPath) on unix sockets until ctx ends: at path, for every
// app of this node, read only; and for each app at AppSocket(path, name),
// its own state and its switchover. A pod is given the socket of its own
// app by a hostPath mount of that app's directory, so that it can move
// its own app and no other. Sockets are made 0660 in directories only
// root can change.
func (m *Manager) ServeLocal(ctx context.Context, path string) error {
	ln, err := listenLocal(path)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: m.localMux(path, ""), ReadHeaderTimeout: 5 * time.Second}
	apps := map[string]*http.Server{} // the per-app sockets' servers, by app
	go func() {
		defer srv.Close()
		defer func() {
			for _, s := range apps {
				s.Close()
			}
		}()
		for {
			changed := m.Changed()
			m.serveAppSockets(path, apps)
			select {
			case <-ctx.Done():
				return
			case <-changed:
			}
		}
	}()
	err = srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// AppSocket is the socket of app's own local endpoint, beside the node's
// socket at path: DIR/apps/APP/agent.sock.
func AppSocket(path, app string) string {
	return filepath.Join(filepath.Dir(path), "apps", app, filepath.Base(path))
}

// serveAppSockets opens a socket for every app this node runs that has
// none in apps, and closes those of apps it no longer runs.
func (m *Manager) serveAppSockets(path string, apps map[string]*http.Server) {
	m.mu.Lock()
	names := make(map[string]bool, len(m.members))
	for name := range m.members {
		names[name] = true
	}
	m.mu.Unlock()
	for name, s := range apps {
		if !names[name] {
			s.Close()
			delete(apps, name)
			os.RemoveAll(filepath.Dir(AppSocket(path, name)))
		}
	}
	for name := range names {
		if apps[name] != nil {
			continue
		}
		p := AppSocket(path, name)
		ln, err := listenLocal(p)
		if err != nil {
			m.log.Warn("app socket not served", "app", name, "socket", p, "err", err)
			continue
		}
		s := &http.Server{Handler: m.localMux(path, name), ReadHeaderTimeout: 5 * time.Second}
		apps[name] = s
		go s.Serve(ln)
	}
}

// listenLocal listens on the unix socket path, made 0660, in a directory
// made 0755.
func listenLocal(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// localMux is the local endpoint of every app (only "": read only, on the
// node's socket at path) or of app only (its state and its switchover).
func (m *Manager) localMux(path, only string) *http.ServeMux {
	lookup := func(w http.ResponseWriter, name string) *member {
		var mb *member
		if only == "" || name == only {
			mb = m.member(name)
		}
		if mb == nil {
			writeLocal(w, http.StatusNotFound, map[string]string{"error": "this node runs no app " + name + " (or not on this socket)"})
		}
		return mb
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+wire.LocalAppsPath, func(w http.ResponseWriter, _ *http.Request) {
		m.mu.Lock()
		ms := make([]*member, 0, len(m.members))
		for name, mb := range m.members {
			if only == "" || name == only {
				ms = append(ms, mb)
			}
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
		mb := lookup(w, r.PathValue("app"))
		if mb == nil {
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
		if only == "" {
			writeLocal(w, http.StatusForbidden, map[string]string{"error": "this socket only reads apps' state; " +
				"an app switches over on its own socket, " + AppSocket(path, r.PathValue("app"))})
			return
		}
		mb := lookup(w, r.PathValue("app"))
		if mb == nil {
			return
		}
		m.localSwitchover(w, r, mb)
	})
	return mux
}

// localSwitchover hands mb's active role over, as its app asked.
func (m *Manager) localSwitchover(w http.ResponseWriter, r *http.Request, mb *member) {
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
