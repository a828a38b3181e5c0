// Package api is the controller's REST API: routing, authentication and
// authorization, strict request decoding, and the one wrapper that turns a
// handler's (value, error) into a status code and JSON. Errors always have
// the shape {"error":{"code","message","field"}}; internals never leak.
// The contract is api/openapi.yaml, and a test holds the two together.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/appstate"
	"hummingbird.io/hummingbird/internal/auth"
	"hummingbird.io/hummingbird/internal/hostlock"
	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/kube"
	"hummingbird.io/hummingbird/internal/mtce"
	"hummingbird.io/hummingbird/internal/pki"
	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/provision"
	"hummingbird.io/hummingbird/internal/store"
)

// APIVersion is the version of the REST API this server speaks.
const APIVersion = "v1"

// MaxBodyBytes bounds every request body.
const MaxBodyBytes = 1 << 20

// Deps is what the API needs from the rest of the controller.
type Deps struct {
	Inventory *inventory.Service
	Tokens    *auth.Tokens
	// Ready reports whether the controller can serve (the database answers).
	Ready    func(context.Context) error
	Version  string
	Log      *slog.Logger
	Registry *prometheus.Registry
	// Agents serves the agent API when set.
	Agents *AgentDeps
	// Cluster is the Kubernetes cluster the controller manages; nil when
	// it runs without one.
	Cluster *kube.Cluster
	// Provision runs provisioning jobs; nil refuses them.
	Provision *provision.Runner
	// Locks locks and unlocks hosts; nil refuses it.
	Locks *hostlock.Locker
	// Apps is the view of redundant apps the agent API serves; it is told of
	// every change to apps (and to hosts, which its members are). Nil: the
	// agent API has no desired state.
	Apps *appstate.Tracker
}

// AgentDeps is what the agent API needs.
type AgentDeps struct {
	Store   store.Store
	CA      *pki.CA
	Monitor *mtce.Monitor
	// AutoAdd adds a joining node that is not in the inventory as an
	// edgeworker, instead of refusing it.
	AutoAdd bool
	// RenewBefore is how long before its certificate expires an agent is
	// asked to renew it (0: a third of its validity).
	RenewBefore time.Duration
}

// Server is the REST API.
type Server struct {
	d        Deps
	log      *slog.Logger
	mux      *http.ServeMux
	routes   []Route
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// Route is one method and path pattern the server serves.
type Route struct {
	Method  string
	Pattern string // as in the OpenAPI document, e.g. /v1/hosts/{host}
	Role    string // the role required; "" for unauthenticated routes
}

// handler is what every API endpoint implements.
type handler func(r *http.Request, p auth.Principal) (any, error)

// New builds the server and its routes.
func New(d Deps) *Server {
	s := &Server{d: d, log: d.Log.With("logger", "api"), mux: http.NewServeMux()}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hb_api_requests_total", Help: "API requests by route and status code.",
	}, []string{"method", "route", "code"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "hb_api_request_duration_seconds", Help: "API request latency by route.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	}, []string{"method", "route"})
	d.Registry.MustRegister(s.requests, s.latency)

	s.plain("GET", "/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	s.plain("GET", "/readyz", s.readyz)
	s.plain("GET", "/metrics", promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{}).ServeHTTP)

	s.handle("GET", "/v1/version", apitype.RoleReader, http.StatusOK, s.version)
	s.handle("GET", "/v1/cluster", apitype.RoleReader, http.StatusOK, s.cluster)
	s.handle("GET", "/v1/controllers", apitype.RoleReader, http.StatusOK, s.listControllers)
	s.handle("DELETE", "/v1/controllers/{controller}", apitype.RoleAdmin, http.StatusNoContent, s.deleteController)
	s.handle("GET", "/v1/hosts", apitype.RoleReader, http.StatusOK, s.listHosts,
		"personality", "availability", "administrative", "operational", "invprovision", "group", "label*", "limit", "marker")
	s.handle("POST", "/v1/hosts", apitype.RoleOperator, http.StatusCreated, s.addHost)
	s.handle("GET", "/v1/hosts/{host}", apitype.RoleReader, http.StatusOK, s.getHost)
	s.handle("PATCH", "/v1/hosts/{host}", apitype.RoleOperator, http.StatusOK, s.updateHost)
	s.handle("DELETE", "/v1/hosts/{host}", apitype.RoleOperator, http.StatusNoContent, s.deleteHost)
	s.handle("POST", "/v1/hosts/{host}/provision", apitype.RoleOperator, http.StatusAccepted, s.startProvision)
	s.handle("GET", "/v1/hosts/{host}/provision", apitype.RoleReader, http.StatusOK, s.getProvision)
	s.handle("DELETE", "/v1/hosts/{host}/provision", apitype.RoleOperator, http.StatusAccepted, s.cancelProvision)
	s.handle("GET", "/v1/hosts/{host}/provision/log", apitype.RoleReader, http.StatusOK, s.provisionLog, "after", "limit")
	s.handle("POST", "/v1/hosts/{host}/upgrade", apitype.RoleOperator, http.StatusAccepted, s.upgradeHost)
	s.handle("POST", "/v1/hosts/{host}/lock", apitype.RoleOperator, http.StatusAccepted, s.lockHost)
	s.handle("GET", "/v1/hosts/{host}/lock", apitype.RoleReader, http.StatusOK, s.getLock)
	s.handle("POST", "/v1/hosts/{host}/unlock", apitype.RoleOperator, http.StatusOK, s.unlockHost)
	s.handle("POST", "/v1/hosts/{host}/lock/cancel", apitype.RoleOperator, http.StatusOK, s.cancelLock)
	s.handle("POST", "/v1/hosts/{host}/agent/reset", apitype.RoleAdmin, http.StatusOK, s.resetHostAgent)
	s.handle("POST", "/v1/hosts/{host}/agent/revoke", apitype.RoleAdmin, http.StatusOK, s.revokeHostAgent)
	s.handle("GET", "/v1/groups", apitype.RoleReader, http.StatusOK, s.listGroups)
	s.handle("POST", "/v1/groups", apitype.RoleOperator, http.StatusCreated, s.addGroup)
	s.handle("GET", "/v1/groups/{group}", apitype.RoleReader, http.StatusOK, s.getGroup)
	s.handle("DELETE", "/v1/groups/{group}", apitype.RoleOperator, http.StatusNoContent, s.deleteGroup)
	s.handle("GET", "/v1/groups/{group}/labels", apitype.RoleReader, http.StatusOK, s.getGroupLabels)
	s.handle("POST", "/v1/groups/{group}/labels", apitype.RoleOperator, http.StatusOK, s.assignGroupLabels)
	s.handle("DELETE", "/v1/groups/{group}/labels", apitype.RoleOperator, http.StatusOK, s.removeGroupLabels, "key*")
	s.handle("GET", "/v1/apps", apitype.RoleReader, http.StatusOK, s.listApps)
	s.handle("POST", "/v1/apps", apitype.RoleOperator, http.StatusCreated, s.addApp)
	s.handle("GET", "/v1/apps/{app}", apitype.RoleReader, http.StatusOK, s.getApp)
	s.handle("DELETE", "/v1/apps/{app}", apitype.RoleOperator, http.StatusNoContent, s.deleteApp)
	s.handle("POST", "/v1/apps/{app}/switchover", apitype.RoleOperator, http.StatusAccepted, s.switchoverApp)
	s.handle("GET", "/v1/addrpools", apitype.RoleReader, http.StatusOK, s.listPools)
	s.handle("POST", "/v1/addrpools", apitype.RoleAdmin, http.StatusCreated, s.addPool)
	s.handle("GET", "/v1/addrpools/{pool}", apitype.RoleReader, http.StatusOK, s.getPool)
	s.handle("DELETE", "/v1/addrpools/{pool}", apitype.RoleAdmin, http.StatusNoContent, s.deletePool)
	s.handle("GET", "/v1/tokens", apitype.RoleAdmin, http.StatusOK, s.listTokens)
	s.handle("POST", "/v1/tokens", apitype.RoleAdmin, http.StatusCreated, s.createToken)
	s.handle("DELETE", "/v1/tokens/{token}", apitype.RoleAdmin, http.StatusNoContent, s.deleteToken)
	s.handle("GET", "/v1/hosts/{host}/labels", apitype.RoleReader, http.StatusOK, s.getLabels)
	s.handle("POST", "/v1/hosts/{host}/labels", apitype.RoleOperator, http.StatusOK, s.assignLabels)
	s.handle("DELETE", "/v1/hosts/{host}/labels", apitype.RoleOperator, http.StatusOK, s.removeLabels, "key*")
	s.handle("GET", "/v1/hosts/{host}/inventory", apitype.RoleReader, http.StatusOK, s.getHostInventory)
	s.handle("GET", "/v1/alarms", apitype.RoleReader, http.StatusOK, s.listAlarms, "entity_instance_id", "severity", "limit", "marker")
	s.handle("GET", "/v1/alarms/{alarm}", apitype.RoleReader, http.StatusOK, s.getAlarm)
	s.handle("GET", "/v1/events", apitype.RoleReader, http.StatusOK, s.listEvents,
		"entity_type", "entity_id", "action", "limit", "marker")

	if d.Agents != nil {
		s.registerAgent()
	}

	// Anything else: a JSON 404, or a JSON 405 naming the methods a known
	// path takes.
	byPath := map[string][]string{}
	for _, rt := range s.routes {
		byPath[rt.Pattern] = append(byPath[rt.Pattern], rt.Method)
	}
	for path, methods := range byPath {
		allow := strings.Join(methods, ", ")
		s.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, apitype.ErrorBody{
				Code: problem.MethodNotAllowed.Code(), Message: r.Method + " is not allowed here; use " + allow,
			})
		})
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, apitype.ErrorBody{
			Code: problem.NotFound.Code(), Message: "no such API path: " + r.URL.Path + " (see api/openapi.yaml)",
		})
	})
	return s
}

// Handler returns the HTTP handler of the API.
func (s *Server) Handler() http.Handler { return s.mux }

// Routes lists what the server serves, sorted by pattern and method.
func (s *Server) Routes() []Route {
	out := append([]Route(nil), s.routes...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Pattern != out[j].Pattern {
			return out[i].Pattern < out[j].Pattern
		}
		return out[i].Method < out[j].Method
	})
	return out
}

func (s *Server) plain(method, pattern string, h http.HandlerFunc) {
	s.routes = append(s.routes, Route{Method: method, Pattern: pattern})
	s.mux.Handle(method+" "+pattern, s.instrument(method, pattern, h))
}

// handle serves an API route. params are the query parameters it takes,
// each once, or repeatable when written with a trailing '*'.
func (s *Server) handle(method, pattern, role string, okStatus int, h handler, params ...string) {
	s.routes = append(s.routes, Route{Method: method, Pattern: pattern, Role: role})
	allowed := map[string]bool{} // name → repeatable
	for _, p := range params {
		name, repeat := strings.CutSuffix(p, "*")
		allowed[name] = repeat
	}
	s.mux.Handle(method+" "+pattern, s.instrument(method, pattern, func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authorize(r, role)
		if err == nil {
			err = checkQuery(r, allowed)
		}
		var v any
		if err == nil {
			v, err = h(r, p)
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if okStatus == http.StatusNoContent {
			w.WriteHeader(okStatus)
			return
		}
		writeJSON(w, okStatus, v)
	}))
}

func checkQuery(r *http.Request, allowed map[string]bool) error {
	for k, vs := range r.URL.Query() {
		repeat, ok := allowed[k]
		if !ok {
			if len(allowed) == 0 {
				return problem.Invalidf(k, "unknown query parameter %q: this path takes none", k)
			}
			names := make([]string, 0, len(allowed))
			for n := range allowed {
				names = append(names, n)
			}
			sort.Strings(names)
			return problem.Invalidf(k, "unknown query parameter %q; the parameters are: %s", k, strings.Join(names, ", "))
		}
		if len(vs) > 1 && !repeat {
			return problem.Invalidf(k, "query parameter %q is given %d times; give it once", k, len(vs))
		}
	}
	return nil
}

func (s *Server) authorize(r *http.Request, role string) (auth.Principal, error) {
	var bearer string
	if scheme, cred, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " "); ok && strings.EqualFold(scheme, "Bearer") {
		bearer = strings.TrimSpace(cred)
	}
	p, err := s.d.Tokens.Authenticate(r.Context(), bearer)
	if err != nil {
		return p, err
	}
	if !p.Allows(role) {
		return p, problem.Forbiddenf("this needs the %s role; token %s has the %s role", role, p.TokenID, p.Role)
	}
	return p, nil
}

// statusWriter remembers the status code for metrics.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (s *Server) instrument(method, pattern string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		r.Body = http.MaxBytesReader(sw, r.Body, MaxBodyBytes)
		h(sw, r)
		d := time.Since(start)
		s.requests.WithLabelValues(method, pattern, strconv.Itoa(sw.code)).Inc()
		s.latency.WithLabelValues(method, pattern).Observe(d.Seconds())
		s.log.Debug("request", "method", method, "route", pattern, "code", sw.code, "duration", d)
	})
}

var statusOf = map[problem.Kind]int{
	problem.Invalid:         http.StatusBadRequest,
	problem.NotFound:        http.StatusNotFound,
	problem.Conflict:        http.StatusConflict,
	problem.NotSupported:    http.StatusUnprocessableEntity,
	problem.TooLarge:        http.StatusRequestEntityTooLarge,
	problem.Unauthenticated: http.StatusUnauthorized,
	problem.Forbidden:       http.StatusForbidden,
	problem.Unavailable:     http.StatusServiceUnavailable,
}

// fail writes err: classified errors with their message, anything else as
// a 500 whose details go only to the log.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var pe *problem.Error
	if errors.As(err, &pe) && pe.Kind != problem.Internal {
		if pe.Kind == problem.Unavailable {
			w.Header().Set("Retry-After", "1")
			s.log.Warn("request unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		if pe.Kind == problem.Unauthenticated {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hummingbird"`)
		}
		writeError(w, statusOf[pe.Kind], apitype.ErrorBody{Code: pe.Kind.Code(), Message: pe.Message, Field: pe.Field})
		return
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client went away
	}
	s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, apitype.ErrorBody{
		Code: problem.Internal.Code(), Message: "internal error; the controller log has the details",
	})
}

// writeJSON answers with v as compact JSON: a page of a thousand hosts
// costs half the time indented JSON does (jq or hbctl show it indented).
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	// The encoder encodes v whole in a buffer of encoding/json's own pool
	// and writes it at once, so a failure still answers 500, the length
	// is known, and a page of 1,000 hosts (600 KB) is not copied again on
	// its way out.
	sw := &statusOnWrite{w: w, status: status}
	if a, ok := v.(jsonAppender); ok {
		// A host list writes itself: the same bytes in a fifth of the time.
		if b, err := a.AppendJSON(make([]byte, 0, a.JSONSize())); err == nil {
			sw.Write(append(b, '\n'))
			return
		}
	}
	if err := json.NewEncoder(sw).Encode(v); err != nil && !sw.wrote {
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(`{"error":{"code":"internal","message":"internal error; the controller log has the details"}}` + "\n"))
	}
}

// jsonAppender is an answer that writes its own JSON, byte for byte as
// encoding/json would (apitype.HostList and apitype.Host); an error sends
// it through encoding/json instead.
type jsonAppender interface {
	AppendJSON([]byte) ([]byte, error)
	JSONSize() int
}

// statusOnWrite sends its status, and the length of the first write as
// the body's, with the first write.
type statusOnWrite struct {
	w      http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusOnWrite) Write(b []byte) (int, error) {
	if !s.wrote {
		s.wrote = true
		s.w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		s.w.WriteHeader(s.status)
	}
	return s.w.Write(b)
}

func writeError(w http.ResponseWriter, status int, body apitype.ErrorBody) {
	writeJSON(w, status, apitype.Error{Error: body})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.d.Ready(ctx); err != nil {
		s.log.Warn("not ready", "err", err)
		http.Error(w, "not ready: the database does not answer\n", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

func (s *Server) cluster(r *http.Request, _ auth.Principal) (any, error) {
	if s.d.Cluster == nil {
		return apitype.Cluster{}, nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	info, err := s.d.Cluster.Info(ctx)
	if err != nil {
		return nil, problem.Wrap(problem.Unavailable, err, "the Kubernetes cluster does not answer: %v", err)
	}
	return apitype.Cluster{Configured: true, Server: info.Server, Version: info.Version, Nodes: info.Nodes,
		NodesReady: info.NodesReady, CAHash: info.CAHash}, nil
}

func (s *Server) version(r *http.Request, _ auth.Principal) (any, error) {
	return apitype.Version{Version: s.d.Version, APIVersion: APIVersion}, nil
}
