package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"hummingbird.io/hummingbird/internal/api"
	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/auth"
	"hummingbird.io/hummingbird/internal/controller"
	"hummingbird.io/hummingbird/internal/controller/controllertest"
	"hummingbird.io/hummingbird/internal/fm"
	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/provision"
	"hummingbird.io/hummingbird/internal/roster"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
	"hummingbird.io/hummingbird/internal/wire"
)

// specPath is the API contract, relative to this package.
var specPath = filepath.Join("..", "..", "api", "openapi.yaml")

// specRoleExtension names the role an operation needs in the document.
const specRoleExtension = "x-hummingbird-role"

// specLoad reads and validates the contract.
func specLoad(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile(specPath)
	if err != nil {
		t.Fatalf("load %s: %v", specPath, err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("%s is not a valid OpenAPI document: %v", specPath, err)
	}
	return doc
}

// specRoutesOnly builds a server for its route table; it cannot serve.
func specRoutesOnly(t *testing.T) *api.Server {
	t.Helper()
	return api.New(api.Deps{Log: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry()})
}

func TestSpecIsValid(t *testing.T) {
	t.Parallel()
	doc := specLoad(t)
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi = %q, want 3.0.3", doc.OpenAPI)
	}
	if doc.Info.Version != api.APIVersion {
		t.Errorf("info.version = %q, want the API version %q", doc.Info.Version, api.APIVersion)
	}
	if s := doc.Components.SecuritySchemes["bearer"]; s == nil || s.Value.Type != "http" || s.Value.Scheme != "bearer" {
		t.Errorf("components.securitySchemes.bearer must be an http bearer scheme")
	}
}

// TestSpecRoutesMatchServer holds the route table and the document together:
// a route the server gains without documenting it, or an operation the
// document gains that nothing serves, fails here.
func TestSpecRoutesMatchServer(t *testing.T) {
	t.Parallel()
	doc := specLoad(t)
	type op struct{ Method, Path, Role string }
	var served []op
	for _, r := range specRoutesOnly(t).Routes() {
		served = append(served, op{r.Method, r.Pattern, r.Role})
	}
	var documented []op
	for path, item := range doc.Paths.Map() {
		for method, o := range item.Operations() {
			role, _ := o.Extensions[specRoleExtension].(string)
			documented = append(documented, op{method, path, role})
			public := o.Security != nil && len(*o.Security) == 0
			if public != (role == "") {
				t.Errorf("%s %s: an operation without %s must have security: [] and the others must not", method, path, specRoleExtension)
			}
			if role != "" && !strings.Contains(strings.Join(strings.Fields(o.Description), " "), "Role needed `"+role+"`") {
				t.Errorf("%s %s: the description must say \"Role needed `%s`\"", method, path, role)
			}
		}
	}
	sortOps := func(ops []op) {
		sort.Slice(ops, func(i, j int) bool {
			if ops[i].Path != ops[j].Path {
				return ops[i].Path < ops[j].Path
			}
			return ops[i].Method < ops[j].Method
		})
	}
	sortOps(served)
	sortOps(documented)
	if diff := cmp.Diff(served, documented); diff != "" {
		t.Errorf("routes served (-) and operations in %s (+) differ:\n%s", specPath, diff)
	}
}

// TestSpecShapesMatchAPITypes compares each schema with the Go type that
// produces or consumes it: the same JSON fields, required exactly when the
// field is not omitempty, and compatible types.
func TestSpecShapesMatchAPITypes(t *testing.T) {
	t.Parallel()
	doc := specLoad(t)
	for name, v := range map[string]any{
		"Host": apitype.Host{}, "HostCreate": apitype.HostCreate{}, "HostUpdate": apitype.HostUpdate{},
		"HostList": apitype.HostList{}, "Token": apitype.Token{}, "TokenCreate": apitype.TokenCreate{},
		"TokenCreated": apitype.TokenCreated{}, "TokenList": apitype.TokenList{}, "Event": apitype.Event{},
		"EventList": apitype.EventList{}, "Version": apitype.Version{}, "Error": apitype.Error{},
		"ErrorBody": apitype.ErrorBody{}, "App": apitype.App{}, "AppCreate": apitype.AppCreate{}, "AppList": apitype.AppList{},
		"Controller": apitype.Controller{}, "ControllerList": apitype.ControllerList{},
	} {
		ref := doc.Components.Schemas[name]
		if ref == nil {
			t.Errorf("components.schemas has no %s", name)
			continue
		}
		specCheckShape(t, name, ref.Value, reflect.TypeOf(v))
	}
}

type specField struct {
	name      string
	typ       reflect.Type
	omitempty bool
}

func specFields(t reflect.Type) []specField {
	var out []specField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous {
			out = append(out, specFields(f.Type)...)
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, specField{name, f.Type, slices.Contains(strings.Split(opts, ","), "omitempty")})
	}
	return out
}

func specCheckShape(t *testing.T, where string, s *openapi3.Schema, typ reflect.Type) {
	t.Helper()
	if s.AdditionalProperties.Has == nil || *s.AdditionalProperties.Has {
		t.Errorf("%s: set additionalProperties: false, as the API neither sends nor takes other fields", where)
	}
	fields := specFields(typ)
	var goNames, specNames, goRequired []string
	for _, f := range fields {
		goNames = append(goNames, f.name)
		if !f.omitempty {
			goRequired = append(goRequired, f.name)
		}
		if p := s.Properties[f.name]; p != nil {
			specCheckType(t, where+"."+f.name, p.Value, f.typ)
		}
	}
	for n := range s.Properties {
		specNames = append(specNames, n)
	}
	specRequired := append([]string(nil), s.Required...)
	for _, l := range [][]string{goNames, specNames, goRequired, specRequired} {
		sort.Strings(l)
	}
	if diff := cmp.Diff(goNames, specNames); diff != "" {
		t.Errorf("%s: fields of %s (-) and properties in the spec (+) differ:\n%s", where, typ, diff)
	}
	if diff := cmp.Diff(goRequired, specRequired); diff != "" {
		t.Errorf("%s: fields of %s without omitempty (-) and required in the spec (+) differ:\n%s", where, typ, diff)
	}
}

func specCheckType(t *testing.T, where string, s *openapi3.Schema, typ reflect.Type) {
	t.Helper()
	nullable := false
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
		nullable = true
	}
	if s.Nullable && !nullable {
		t.Errorf("%s: nullable in the spec, but %s cannot be null", where, typ)
	}
	want := ""
	switch {
	case typ == reflect.TypeOf(time.Time{}):
		want = "string"
		if s.Format != "date-time" {
			t.Errorf("%s: a time needs format: date-time", where)
		}
	case typ.Kind() == reflect.String:
		want = "string"
	case typ.Kind() == reflect.Bool:
		want = "boolean"
	case typ.Kind() == reflect.Int64, typ.Kind() == reflect.Int:
		want = "integer"
	case typ.Kind() == reflect.Map:
		want = "object"
		if s.AdditionalProperties.Schema == nil || !s.AdditionalProperties.Schema.Value.Type.Is("string") {
			t.Errorf("%s: a map of strings needs additionalProperties of type string", where)
		}
	case typ.Kind() == reflect.Slice:
		want = "array"
		if s.Items != nil && typ.Elem().Kind() == reflect.Struct {
			specCheckShape(t, where+"[]", s.Items.Value, typ.Elem())
		} else if s.Items != nil {
			specCheckType(t, where+"[]", s.Items.Value, typ.Elem())
		}
	case typ.Kind() == reflect.Struct:
		want = "object"
		specCheckShape(t, where, s, typ)
	}
	if !s.Type.Is(want) {
		t.Errorf("%s: type %v in the spec, want %s for %s", where, s.Type.Slice(), want, typ)
	}
}

// TestSpecEnums checks that every enumeration in the document is the one the
// code applies.
func TestSpecEnums(t *testing.T) {
	t.Parallel()
	doc := specLoad(t)
	schema := func(name string) *openapi3.Schema { return doc.Components.Schemas[name].Value }
	enum := func(s *openapi3.Schema) []string {
		var out []string
		for _, v := range s.Enum {
			if v, ok := v.(string); ok {
				out = append(out, v)
			}
		}
		return out
	}
	check := func(where string, got, want []string) {
		t.Helper()
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: enum in the spec (+) differs from the code's (-):\n%s", where, diff)
		}
	}
	for field, name := range map[string]string{
		"personality": "Personality", "administrative": "Administrative", "operational": "Operational",
		"availability": "Availability", "invprovision": "InvProvision",
	} {
		check("schemas."+name, enum(schema(name)), inventory.Enums[field])
		check("Host."+field, enum(schema("Host").Properties[field].Value), inventory.Enums[field])
		for _, p := range doc.Paths.Value("/v1/hosts").Get.Parameters {
			if p.Value.Name == field {
				check("GET /v1/hosts ?"+field, enum(p.Value.Schema.Value), inventory.Enums[field])
			}
		}
	}
	check("HostUpdate.personality", enum(schema("HostUpdate").Properties["personality"].Value), inventory.Personalities)
	bmTypes := append([]string{""}, inventory.BMTypes...)
	for _, s := range []string{"Host", "HostCreate", "HostUpdate"} {
		check(s+".bm_type", enum(schema(s).Properties["bm_type"].Value), bmTypes)
	}
	check("schemas.Role", enum(schema("Role")), auth.Roles)
	codes := []string{"method_not_allowed"}
	for k := problem.Internal; k <= problem.Unavailable; k++ {
		codes = append(codes, k.Code())
	}
	got := enum(schema("ErrorBody").Properties["code"].Value)
	sort.Strings(codes)
	sort.Strings(got)
	check("ErrorBody.code", got, codes)
}

// specHarness sends requests to a server and checks each exchange against
// the contract, recording which documented responses were seen.
type specHarness struct {
	doc    *openapi3.T
	router routers.Router

	mu   sync.Mutex
	seen map[string]bool
}

func specNewHarness(t *testing.T) *specHarness {
	t.Helper()
	doc := specLoad(t)
	doc.Servers = nil // match paths whatever the address
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("router: %v", err)
	}
	return &specHarness{doc: doc, router: router, seen: map[string]bool{}}
}

// specKey names one documented response.
func specKey(method, path, status string) string { return method + " " + path + " " + status }

// specCase is one request and the status it must get.
type specCase struct {
	name   string
	method string
	path   string
	token  string            // bearer token, if any
	header map[string]string // extra request headers
	body   string
	want   int
	// offSpec marks a request that breaks the contract on purpose (a bad
	// value, no token): only the response is checked against the spec.
	offSpec bool
}

func specRequest(c specCase) *http.Request {
	r := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
	if c.body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		r.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range c.header {
		r.Header.Set(k, v)
	}
	return r
}

// do runs c against h, checks its status, validates the exchange and
// returns the response body.
func (sh *specHarness) do(t *testing.T, h http.Handler, c specCase) []byte {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, specRequest(c))
	res := rec.Result()
	body := rec.Body.Bytes()
	if res.StatusCode != c.want {
		t.Fatalf("%s: %s %s: status %d, want %d; body: %s", c.name, c.method, c.path, res.StatusCode, c.want, body)
	}
	req := specRequest(c)
	route, params, err := sh.router.FindRoute(req)
	if err != nil {
		sh.checkUnrouted(t, c, err, res, body)
		return body
	}
	in := &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: specBearerPresent},
	}
	if !c.offSpec {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			t.Errorf("%s: %s %s: the request breaks the spec (mark it offSpec if it should): %v", c.name, c.method, c.path, err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: res.StatusCode, Header: res.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("%s: %s %s: the %d response breaks the spec: %v\nbody: %s", c.name, c.method, c.path, res.StatusCode, err, body)
	}
	if res.StatusCode >= 400 && strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		specCheckErrorBody(t, c, body)
	}
	sh.mu.Lock()
	sh.seen[specKey(route.Method, route.Path, fmt.Sprint(res.StatusCode))] = true
	sh.mu.Unlock()
	return body
}

// specBearerPresent accepts a request that carries a bearer token, which is
// all the document can say; the server decides whether the token is good.
func specBearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if !strings.HasPrefix(in.RequestValidationInput.Request.Header.Get("Authorization"), "Bearer ") {
		return errors.New("no bearer token")
	}
	return nil
}

// checkUnrouted validates an answer to a path or method the document does
// not have against the NoSuchPath or MethodNotAllowed response.
func (sh *specHarness) checkUnrouted(t *testing.T, c specCase, rerr error, res *http.Response, body []byte) {
	t.Helper()
	var name string
	switch res.StatusCode {
	case http.StatusNotFound:
		name = "NoSuchPath"
	case http.StatusMethodNotAllowed:
		name = "MethodNotAllowed"
	default:
		t.Fatalf("%s: %s %s is not in the spec (%v), yet the server answered %d", c.name, c.method, c.path, rerr, res.StatusCode)
	}
	resp := sh.doc.Components.Responses[name].Value
	for h, ref := range resp.Headers {
		if ref.Value.Required && res.Header.Get(h) == "" {
			t.Errorf("%s: the %s response lacks its %s header", c.name, name, h)
		}
	}
	mt := resp.Content.Get(res.Header.Get("Content-Type"))
	if mt == nil {
		t.Fatalf("%s: the %s response has Content-Type %q, which the spec does not list", c.name, name, res.Header.Get("Content-Type"))
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%s: the body is not JSON: %v: %s", c.name, err, body)
	}
	if err := mt.Schema.Value.VisitJSON(v, openapi3.VisitAsResponse(), openapi3.MultiErrors()); err != nil {
		t.Errorf("%s: the %s response breaks the spec: %v\nbody: %s", c.name, name, err, body)
	}
	specCheckErrorBody(t, c, body)
	sh.mu.Lock()
	sh.seen["components.responses."+name] = true
	sh.mu.Unlock()
}

// specCheckErrorBody checks an error decodes into apitype.Error with a
// message a person can read.
func specCheckErrorBody(t *testing.T, c specCase, body []byte) {
	t.Helper()
	var e apitype.Error
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Errorf("%s: the error body is not {\"error\":{code,message}}: %v: %s", c.name, err, body)
	}
}

// checkCoverage fails for every documented response no case produced.
func (sh *specHarness) checkCoverage(t *testing.T) {
	t.Helper()
	var missing []string
	for path, item := range sh.doc.Paths.Map() {
		for method, o := range item.Operations() {
			for status := range o.Responses.Map() {
				if k := specKey(method, path, status); !sh.seen[k] {
					missing = append(missing, k)
				}
			}
		}
	}
	for _, name := range []string{"NoSuchPath", "MethodNotAllowed"} {
		if !sh.seen["components.responses."+name] {
			missing = append(missing, "components.responses."+name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("documented responses no test produced (make one, or drop it from the spec):\n  %s", strings.Join(missing, "\n  "))
	}
}

// specFaultStore is a real store that can be told to fail.
type specFaultStore struct {
	store.Store
	mu  sync.Mutex
	err error
}

func (s *specFaultStore) set(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

func (s *specFaultStore) fault() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *specFaultStore) Read(ctx context.Context, fn func(store.Tx) error) error {
	if err := s.fault(); err != nil {
		return err
	}
	return s.Store.Read(ctx, fn)
}

func (s *specFaultStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	if err := s.fault(); err != nil {
		return err
	}
	return s.Store.Write(ctx, fn)
}

func (s *specFaultStore) Ping(ctx context.Context) error {
	if err := s.fault(); err != nil {
		return err
	}
	return s.Store.Ping(ctx)
}

// Errors the fault store returns: a busy database, and a fault.
var (
	specErrBusy  = problem.Wrap(problem.Unavailable, errors.New("database is locked"), "the database is busy; try again")
	specErrFault = errors.New("disk I/O error")
)

// specBodies are valid bodies for the operations that take one.
var specBodies = map[string]string{
	"POST /v1/hosts":                 `{"hostname":"edge-09","personality":"edgeworker","mgmt_ip":"192.168.204.90"}`,
	"PATCH /v1/hosts/{host}":         `{"location":"line-9"}`,
	"POST /v1/tokens":                `{"role":"reader"}`,
	"POST /v1/addrpools":             `{"name":"site-z","network":"10.99.0.0/24","mode":"dynamic"}`,
	"POST /v1/hosts/{host}/labels":   `{"labels":{"zone":"north"}}`,
	"POST /v1/groups":                `{"name":"plant-q"}`,
	"POST /v1/groups/{group}/labels": `{"labels":{"line":"3"}}`,
	"POST /v1/apps":                  `{"name":"plc-q","group":"plant-q","image":"plc-q:1"}`,
}

// specQueries are valid query strings for the operations that need one.
var specQueries = map[string]string{
	"DELETE /v1/hosts/{host}/labels":   "?key=zone",
	"DELETE /v1/groups/{group}/labels": "?key=line",
}

// specTokenID is the id part of a bearer token.
func specTokenID(t *testing.T, bearer string) string {
	t.Helper()
	id, _, ok := strings.Cut(strings.TrimPrefix(bearer, "hb_"), ".")
	if !ok {
		t.Fatalf("token %q is not hb_<id>.<secret>", bearer)
	}
	return id
}

// specCreateToken makes a token through the API and returns its secret.
func (sh *specHarness) specCreateToken(t *testing.T, h http.Handler, admin, body string) string {
	t.Helper()
	b := sh.do(t, h, specCase{name: "create token", method: "POST", path: "/v1/tokens", token: admin, body: body, want: 201})
	var c apitype.TokenCreated
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.Secret
}

// TestSpecResponses runs real requests, good and bad, through real servers
// and checks every answer against the contract; then it checks that every
// response the contract documents was produced.
func TestSpecResponses(t *testing.T) {
	t.Parallel()
	sh := specNewHarness(t)
	t.Run("servers", func(t *testing.T) {
		t.Run("controller", func(t *testing.T) { t.Parallel(); specControllerCases(t, sh) })
		t.Run("faults", func(t *testing.T) { t.Parallel(); specFaultCases(t, sh) })
		t.Run("token id collision", func(t *testing.T) { t.Parallel(); specCollisionCases(t, sh) })
		t.Run("locks", func(t *testing.T) { t.Parallel(); specLockCases(t, sh) })
		t.Run("host agents", func(t *testing.T) { t.Parallel(); specHostAgentCases(t, sh) })
		t.Run("apps", func(t *testing.T) { t.Parallel(); specAppCases(t, sh) })
	})
	if !t.Failed() {
		sh.checkCoverage(t)
	}
}

// specControllerCases drives a controller built as hb-controller builds it,
// on a fresh data directory, through every operation.
func specControllerCases(t *testing.T, sh *specHarness) {
	t.Helper()
	ctx := context.Background()
	cfg := controller.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	c, err := controller.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("controller: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	h := c.API().Handler()
	admin := c.AdminToken
	run := func(cases ...specCase) {
		t.Helper()
		for _, tc := range cases {
			sh.do(t, h, tc)
		}
	}

	operator := sh.specCreateToken(t, h, admin, `{"role":"operator","description":"line crew"}`)
	reader := sh.specCreateToken(t, h, admin, `{"role":"reader","ttl":"24h"}`)
	expired := sh.specCreateToken(t, h, admin, `{"role":"reader","ttl":"1ns"}`)
	big := `{"description":"` + strings.Repeat("x", api.MaxBodyBytes) + `"}`
	// Two other controllers: ctl-up renews its row, ctl-gone stopped and
	// the leader counts it lost (as its roster watch does after three
	// periods).
	now := time.Now().UTC().Truncate(time.Microsecond)
	if err := c.Store.Write(ctx, func(tx store.Tx) error {
		for _, name := range []string{"ctl-up", "ctl-gone"} {
			if err := tx.PutController(store.Controller{Name: name, RunID: name + "-1", Address: name + ":6385", Version: "v1",
				StartedAt: now, Seen: 1, SeenAt: now}); err != nil {
				return err
			}
		}
		return fm.Raise(tx, store.Alarm{UUID: uuid.NewString(), AlarmID: fm.AlarmControllerLost, EntityType: "controller",
			EntityInstance: roster.Entity("ctl-gone"), Severity: fm.Major, Reason: "ctl-gone stopped renewing its row"}, uuid.NewString(), now)
	}); err != nil {
		t.Fatal(err)
	}

	run(
		specCase{name: "healthz", method: "GET", path: "/healthz", want: 200},
		specCase{name: "readyz", method: "GET", path: "/readyz", want: 200},
		specCase{name: "metrics", method: "GET", path: "/metrics", want: 200},
		specCase{name: "metrics openmetrics", method: "GET", path: "/metrics", want: 200,
			header: map[string]string{"Accept": "application/openmetrics-text;version=1.0.0"}},
		specCase{name: "version", method: "GET", path: "/v1/version", token: reader, want: 200},
		specCase{name: "controller list", method: "GET", path: "/v1/controllers", token: reader, want: 200},
		specCase{name: "controller list unknown query", method: "GET", path: "/v1/controllers?all=1", token: reader, want: 400},
		specCase{name: "controller list without token", method: "GET", path: "/v1/controllers", want: 401, offSpec: true},
		specCase{name: "controller delete up", method: "DELETE", path: "/v1/controllers/ctl-up", token: admin, want: 409},
		specCase{name: "controller delete unknown", method: "DELETE", path: "/v1/controllers/ctl-none", token: admin, want: 404},
		specCase{name: "controller delete by operator", method: "DELETE", path: "/v1/controllers/ctl-gone", token: operator, want: 403},
		specCase{name: "controller delete expired token", method: "DELETE", path: "/v1/controllers/ctl-gone", token: expired, want: 401},
		specCase{name: "controller delete unknown query", method: "DELETE", path: "/v1/controllers/ctl-gone?force=1", token: admin, want: 400},
		specCase{name: "controller delete", method: "DELETE", path: "/v1/controllers/ctl-gone", token: admin, want: 204},
		specCase{name: "controller delete again", method: "DELETE", path: "/v1/controllers/ctl-gone", token: admin, want: 404},
		specCase{name: "version without token", method: "GET", path: "/v1/version", want: 401, offSpec: true},
		specCase{name: "expired token", method: "GET", path: "/v1/version", token: expired, want: 401},
		specCase{name: "malformed token", method: "GET", path: "/v1/version", token: "secret", want: 401},
		specCase{name: "unknown token", method: "GET", path: "/v1/version", token: "hb_aaaaaaaa.bbbbbbbb", want: 401},
		specCase{name: "version unknown query", method: "GET", path: "/v1/version?x=1", token: reader, want: 400, offSpec: true},
		specCase{name: "token list unknown query", method: "GET", path: "/v1/tokens?all=1", token: admin, want: 400, offSpec: true},
		specCase{name: "token delete unknown query", method: "DELETE", path: "/v1/tokens/nope?force=1", token: admin, want: 400, offSpec: true},
		specCase{name: "show unknown query", method: "GET", path: "/v1/hosts/1?x=1", token: reader, want: 400, offSpec: true},
		specCase{name: "delete unknown query", method: "DELETE", path: "/v1/hosts/1?force=1", token: admin, want: 400, offSpec: true},
		specCase{name: "upgrade unknown query", method: "POST", path: "/v1/hosts/1/upgrade?x=1", token: admin, want: 400, offSpec: true},

		// Tokens.
		specCase{name: "token list", method: "GET", path: "/v1/tokens", token: admin, want: 200},
		specCase{name: "token list by operator", method: "GET", path: "/v1/tokens", token: operator, want: 403},
		specCase{name: "token list without token", method: "GET", path: "/v1/tokens", want: 401, offSpec: true},
		specCase{name: "token create bad role", method: "POST", path: "/v1/tokens", token: admin, body: `{"role":"root"}`, want: 400, offSpec: true},
		specCase{name: "token create enroll", method: "POST", path: "/v1/tokens", token: admin, want: 201,
			body: `{"type":"enroll","uses":3,"host":"edge-01","ttl":"1h"}`},
		specCase{name: "token create enroll with a role", method: "POST", path: "/v1/tokens", token: admin, want: 400,
			body: `{"type":"enroll","role":"admin"}`},
		specCase{name: "token create bad ttl", method: "POST", path: "/v1/tokens", token: admin, body: `{"role":"reader","ttl":"forever"}`, want: 400},
		specCase{name: "token create unknown field", method: "POST", path: "/v1/tokens", token: admin, body: `{"role":"reader","scope":"all"}`, want: 400, offSpec: true},
		specCase{name: "token create by operator", method: "POST", path: "/v1/tokens", token: operator, body: `{"role":"admin"}`, want: 403},
		specCase{name: "token create without token", method: "POST", path: "/v1/tokens", body: `{"role":"admin"}`, want: 401, offSpec: true},
		specCase{name: "token create too large", method: "POST", path: "/v1/tokens", token: admin, body: big, want: 413, offSpec: true},

		// Address pools.
		specCase{name: "pool add", method: "POST", path: "/v1/addrpools", token: admin, want: 201,
			body: `{"name":"site-a","network":"10.20.0.0/24","mode":"dynamic","ranges":["10.20.0.100-10.20.0.199"],"gateway":"10.20.0.1","dns":["10.20.0.1"],"ntp":["10.20.0.1"]}`},
		specCase{name: "pool add unused", method: "POST", path: "/v1/addrpools", token: admin, want: 201,
			body: `{"name":"site-b","network":"10.21.0.0/24","mode":"static"}`},
		specCase{name: "pool add overlapping", method: "POST", path: "/v1/addrpools", token: admin, want: 409,
			body: `{"name":"site-c","network":"10.20.0.0/16","mode":"static"}`},
		specCase{name: "pool add bad network", method: "POST", path: "/v1/addrpools", token: admin, want: 400,
			body: `{"name":"site-c","network":"10.20.0.1/24","mode":"static"}`},
		specCase{name: "pool add by operator", method: "POST", path: "/v1/addrpools", token: operator, want: 403,
			body: `{"name":"site-c","network":"10.22.0.0/24","mode":"static"}`},
		specCase{name: "pool add without token", method: "POST", path: "/v1/addrpools", want: 401, offSpec: true,
			body: `{"name":"site-c","network":"10.22.0.0/24","mode":"static"}`},
		specCase{name: "pool add too large", method: "POST", path: "/v1/addrpools", token: admin, body: big, want: 413, offSpec: true},
		specCase{name: "pool list", method: "GET", path: "/v1/addrpools", token: reader, want: 200},
		specCase{name: "pool list unknown query", method: "GET", path: "/v1/addrpools?x=1", token: reader, want: 400, offSpec: true},
		specCase{name: "pool list without token", method: "GET", path: "/v1/addrpools", want: 401, offSpec: true},
		specCase{name: "pool show", method: "GET", path: "/v1/addrpools/management", token: reader, want: 200},
		specCase{name: "pool show unknown", method: "GET", path: "/v1/addrpools/nowhere", token: reader, want: 404},
		specCase{name: "pool show unknown query", method: "GET", path: "/v1/addrpools/site-a?x=1", token: reader, want: 400, offSpec: true},
		specCase{name: "pool show without token", method: "GET", path: "/v1/addrpools/site-a", want: 401, offSpec: true},
		specCase{name: "pool host add", method: "POST", path: "/v1/hosts", token: operator, want: 201,
			body: `{"hostname":"edge-a1","personality":"edgeworker","mgmt_mac":"52:54:00:00:0a:01","pool":"site-a"}`},
		specCase{name: "pool delete in use", method: "DELETE", path: "/v1/addrpools/site-a", token: admin, want: 409},
		specCase{name: "pool delete management", method: "DELETE", path: "/v1/addrpools/management", token: admin, want: 422},
		specCase{name: "pool delete by operator", method: "DELETE", path: "/v1/addrpools/site-b", token: operator, want: 403},
		specCase{name: "pool delete without token", method: "DELETE", path: "/v1/addrpools/site-b", want: 401, offSpec: true},
		specCase{name: "pool delete unknown query", method: "DELETE", path: "/v1/addrpools/site-b?x=1", token: admin, want: 400, offSpec: true},
		specCase{name: "pool delete", method: "DELETE", path: "/v1/addrpools/site-b", token: admin, want: 204},
		specCase{name: "pool delete again", method: "DELETE", path: "/v1/addrpools/site-b", token: admin, want: 404},

		// Hosts: add.
		// Groups.
		specCase{name: "group add", method: "POST", path: "/v1/groups", token: operator, want: 201, body: `{"name":"plant-a","description":"plant A"}`},
		specCase{name: "group add again", method: "POST", path: "/v1/groups", token: operator, want: 409, body: `{"name":"plant-a"}`},
		specCase{name: "group add bad name", method: "POST", path: "/v1/groups", token: operator, want: 400, body: `{"name":"Plant A"}`},
		specCase{name: "group add by reader", method: "POST", path: "/v1/groups", token: reader, want: 403, body: `{"name":"plant-b"}`},
		specCase{name: "group add without token", method: "POST", path: "/v1/groups", want: 401, offSpec: true, body: `{"name":"plant-b"}`},
		specCase{name: "group add too large", method: "POST", path: "/v1/groups", token: operator, body: big, want: 413, offSpec: true},
		specCase{name: "group add to delete", method: "POST", path: "/v1/groups", token: operator, want: 201, body: `{"name":"plant-z"}`},
		specCase{name: "group list", method: "GET", path: "/v1/groups", token: reader, want: 200},
		specCase{name: "group list unknown query", method: "GET", path: "/v1/groups?x=1", token: reader, want: 400, offSpec: true},
		specCase{name: "group list without token", method: "GET", path: "/v1/groups", want: 401, offSpec: true},
		specCase{name: "group show unknown", method: "GET", path: "/v1/groups/nope", token: reader, want: 404},
		specCase{name: "group show unknown query", method: "GET", path: "/v1/groups/plant-a?x=1", token: reader, want: 400, offSpec: true},
		specCase{name: "group show without token", method: "GET", path: "/v1/groups/plant-a", want: 401, offSpec: true},
		specCase{name: "group delete by reader", method: "DELETE", path: "/v1/groups/plant-z", token: reader, want: 403},
		specCase{name: "group delete without token", method: "DELETE", path: "/v1/groups/plant-z", want: 401, offSpec: true},
		specCase{name: "group delete unknown query", method: "DELETE", path: "/v1/groups/plant-z?x=1", token: operator, want: 400, offSpec: true},
		specCase{name: "group delete", method: "DELETE", path: "/v1/groups/plant-z", token: operator, want: 204},
		specCase{name: "group delete again", method: "DELETE", path: "/v1/groups/plant-z", token: operator, want: 404},

		specCase{name: "add edgeworker", method: "POST", path: "/v1/hosts", token: operator, want: 201,
			body: `{"hostname":"edge-01","personality":"edgeworker","mgmt_mac":"52-54-00-12-34-56","mgmt_ip":"192.168.204.10","location":"line-3","group":"plant-a","labels":{"zone":"north","gpu":"no"}}`},
		specCase{name: "add second edgeworker", method: "POST", path: "/v1/hosts", token: admin, want: 201,
			body: `{"hostname":"edge-02","personality":"edgeworker","mgmt_ip":"192.168.204.11","labels":{"zone":"south"}}`},
		specCase{name: "add worker with BMC", method: "POST", path: "/v1/hosts", token: operator, want: 201,
			body: `{"hostname":"worker-01","personality":"worker","mgmt_ip":"192.168.204.20","bm_type":"redfish","bm_ip":"10.0.0.20","bm_username":"root"}`},
		specCase{name: "add bad hostname", method: "POST", path: "/v1/hosts", token: operator, want: 400, offSpec: true,
			body: `{"hostname":"Edge_01","personality":"edgeworker","mgmt_ip":"192.168.204.12"}`},
		specCase{name: "add edgeworker with BMC", method: "POST", path: "/v1/hosts", token: operator, want: 400,
			body: `{"hostname":"edge-03","personality":"edgeworker","mgmt_ip":"192.168.204.13","bm_type":"ipmi"}`},
		specCase{name: "add without address", method: "POST", path: "/v1/hosts", token: operator, want: 400,
			body: `{"hostname":"edge-03","personality":"edgeworker"}`},
		specCase{name: "add malformed JSON", method: "POST", path: "/v1/hosts", token: operator, want: 400, offSpec: true,
			body: `{"hostname":`},
		specCase{name: "add wrong type", method: "POST", path: "/v1/hosts", token: operator, want: 400, offSpec: true,
			body: `{"hostname":"edge-03","personality":"edgeworker","labels":["a"]}`},
		specCase{name: "add not JSON", method: "POST", path: "/v1/hosts", token: operator, want: 400, offSpec: true,
			body: `hostname=edge-03`, header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}},
		specCase{name: "add empty body", method: "POST", path: "/v1/hosts", token: operator, want: 400, offSpec: true},
		specCase{name: "add duplicate hostname", method: "POST", path: "/v1/hosts", token: operator, want: 409,
			body: `{"hostname":"edge-01","personality":"edgeworker","mgmt_ip":"192.168.204.14"}`},
		specCase{name: "add duplicate MAC", method: "POST", path: "/v1/hosts", token: operator, want: 409,
			body: `{"hostname":"edge-03","personality":"edgeworker","mgmt_mac":"52:54:00:12:34:56","mgmt_ip":"192.168.204.14"}`},
		specCase{name: "add by reader", method: "POST", path: "/v1/hosts", token: reader, want: 403,
			body: `{"hostname":"edge-03","personality":"edgeworker","mgmt_ip":"192.168.204.14"}`},
		specCase{name: "add without token", method: "POST", path: "/v1/hosts", want: 401, offSpec: true,
			body: `{"hostname":"edge-03","personality":"edgeworker","mgmt_ip":"192.168.204.14"}`},
		specCase{name: "add too large", method: "POST", path: "/v1/hosts", token: operator, body: big, want: 413, offSpec: true},

		// Hosts: list.
		specCase{name: "list", method: "GET", path: "/v1/hosts", token: reader, want: 200},
		specCase{name: "list page", method: "GET", path: "/v1/hosts?limit=1", token: reader, want: 200},
		specCase{name: "list next page", method: "GET", path: "/v1/hosts?limit=1&marker=1", token: reader, want: 200},
		specCase{name: "list filtered", method: "GET", token: reader, want: 200,
			path: "/v1/hosts?personality=edgeworker&availability=offline&administrative=locked&operational=disabled&invprovision=unprovisioned&group=plant-a&label=zone=north&label=gpu"},
		specCase{name: "list bad limit", method: "GET", path: "/v1/hosts?limit=0", token: reader, want: 400, offSpec: true},
		specCase{name: "list bad marker", method: "GET", path: "/v1/hosts?marker=edge-01", token: reader, want: 400, offSpec: true},
		specCase{name: "list bad label", method: "GET", path: "/v1/hosts?label==north", token: reader, want: 400, offSpec: true},
		specCase{name: "list bad personality", method: "GET", path: "/v1/hosts?personality=router", token: reader, want: 400, offSpec: true},
		specCase{name: "list unknown parameter", method: "GET", path: "/v1/hosts?name=edge-01", token: reader, want: 400},
		specCase{name: "list without token", method: "GET", path: "/v1/hosts", want: 401, offSpec: true},

		// Hosts: show.
		specCase{name: "show by hostname", method: "GET", path: "/v1/hosts/edge-01", token: reader, want: 200},
		specCase{name: "show by id", method: "GET", path: "/v1/hosts/1", token: reader, want: 200},
		specCase{name: "show unknown", method: "GET", path: "/v1/hosts/edge-99", token: reader, want: 404},
		specCase{name: "show without token", method: "GET", path: "/v1/hosts/edge-01", want: 401, offSpec: true},

		// Hosts: update.
		specCase{name: "update location and labels", method: "PATCH", path: "/v1/hosts/edge-01", token: operator, want: 200,
			body: `{"location":"line-4","labels":{"zone":"north"}}`},
		specCase{name: "update with nulls", method: "PATCH", path: "/v1/hosts/edge-01", token: operator, want: 200,
			body: `{"location":null,"labels":null,"personality":null,"bm_type":null}`},
		specCase{name: "group show", method: "GET", path: "/v1/groups/plant-a", token: reader, want: 200},
		specCase{name: "group delete with members", method: "DELETE", path: "/v1/groups/plant-a", token: operator, want: 409},
		specCase{name: "update clears group", method: "PATCH", path: "/v1/hosts/1", token: operator, want: 200,
			body: `{"group":""}`},
		specCase{name: "update to worker with BMC", method: "PATCH", path: "/v1/hosts/edge-01", token: operator, want: 200,
			body: `{"personality":"worker","bm_type":"ipmi","bm_ip":"10.0.0.10"}`},
		specCase{name: "update to edgeworker keeping BMC", method: "PATCH", path: "/v1/hosts/edge-01", token: operator, want: 400,
			body: `{"personality":"edgeworker"}`},
		specCase{name: "update bad MAC", method: "PATCH", path: "/v1/hosts/edge-01", token: operator, want: 400,
			body: `{"mgmt_mac":"52:54:00"}`},
		specCase{name: "update SSH login", method: "PATCH", path: "/v1/hosts/edge-02", token: operator, want: 200,
			body: `{"ssh_user":"hummingbird","ssh_key":"site-a"}`},
		specCase{name: "update clears SSH login", method: "PATCH", path: "/v1/hosts/edge-02", token: operator, want: 200,
			body: `{"ssh_user":"","ssh_key":""}`},
		specCase{name: "update SSH key path", method: "PATCH", path: "/v1/hosts/edge-02", token: operator, want: 400, offSpec: true,
			body: `{"ssh_key":"../id_rsa"}`},
		specCase{name: "update unknown field", method: "PATCH", path: "/v1/hosts/edge-01", token: operator, want: 400, offSpec: true,
			body: `{"administrative":"unlocked"}`},
		specCase{name: "update duplicate address", method: "PATCH", path: "/v1/hosts/edge-01", token: operator, want: 409,
			body: `{"mgmt_ip":"192.168.204.11"}`},
		specCase{name: "update unknown host", method: "PATCH", path: "/v1/hosts/edge-99", token: operator, want: 404,
			body: `{"location":"x"}`},
		specCase{name: "update by reader", method: "PATCH", path: "/v1/hosts/edge-01", token: reader, want: 403,
			body: `{"location":"x"}`},
		specCase{name: "update without token", method: "PATCH", path: "/v1/hosts/edge-01", want: 401, offSpec: true,
			body: `{"location":"x"}`},
		specCase{name: "update too large", method: "PATCH", path: "/v1/hosts/edge-01", token: operator, body: big, want: 413, offSpec: true},

		// Hosts: upgrade.
		specCase{name: "upgrade edgeworker", method: "POST", path: "/v1/hosts/edge-02/upgrade", token: operator, want: 422},
		specCase{name: "upgrade worker", method: "POST", path: "/v1/hosts/worker-01/upgrade", token: operator, want: 422},
		specCase{name: "upgrade unknown", method: "POST", path: "/v1/hosts/edge-99/upgrade", token: operator, want: 404},
		specCase{name: "upgrade by reader", method: "POST", path: "/v1/hosts/edge-02/upgrade", token: reader, want: 403},
		specCase{name: "upgrade without token", method: "POST", path: "/v1/hosts/edge-02/upgrade", want: 401, offSpec: true},
	)

	// A host being provisioned keeps its personality and cannot be deleted.
	// No API operation starts provisioning yet, so set the state in the store.
	if err := c.Store.Write(ctx, func(tx store.Tx) error {
		h, err := tx.HostByHostname("edge-02")
		if err != nil {
			return err
		}
		h.InvProvision = inventory.ProvProvisioning
		return tx.UpdateHost(&h)
	}); err != nil {
		t.Fatal(err)
	}
	run(
		specCase{name: "update personality while provisioning", method: "PATCH", path: "/v1/hosts/edge-02", token: operator, want: 409,
			body: `{"personality":"worker"}`},
		specCase{name: "delete while provisioning", method: "DELETE", path: "/v1/hosts/edge-02", token: operator, want: 409},
		specCase{name: "delete", method: "DELETE", path: "/v1/hosts/worker-01", token: operator, want: 204},
		specCase{name: "delete again", method: "DELETE", path: "/v1/hosts/worker-01", token: operator, want: 404},
		specCase{name: "delete by reader", method: "DELETE", path: "/v1/hosts/edge-01", token: reader, want: 403},
		specCase{name: "delete without token", method: "DELETE", path: "/v1/hosts/edge-01", want: 401, offSpec: true},

		// Events.
		specCase{name: "events", method: "GET", path: "/v1/events", token: reader, want: 200},
		specCase{name: "events page", method: "GET", path: "/v1/events?limit=2", token: reader, want: 200},
		specCase{name: "events next page", method: "GET", path: "/v1/events?limit=2&marker=5", token: reader, want: 200},
		specCase{name: "events filtered", method: "GET", path: "/v1/events?entity_type=host&entity_id=host%3Dedge-01&action=host.update", token: reader, want: 200},
		specCase{name: "events bad limit", method: "GET", path: "/v1/events?limit=1001", token: reader, want: 400, offSpec: true},
		specCase{name: "events bad marker", method: "GET", path: "/v1/events?marker=0", token: reader, want: 400, offSpec: true},
		specCase{name: "events unknown parameter", method: "GET", path: "/v1/events?severity=critical", token: reader, want: 400},
		specCase{name: "events without token", method: "GET", path: "/v1/events", want: 401, offSpec: true},

		// Token deletion, the last admin token last.
		specCase{name: "token delete by operator", method: "DELETE", path: "/v1/tokens/" + specTokenID(t, reader), token: operator, want: 403},
		specCase{name: "token delete without token", method: "DELETE", path: "/v1/tokens/" + specTokenID(t, reader), want: 401, offSpec: true},
		specCase{name: "token delete", method: "DELETE", path: "/v1/tokens/" + specTokenID(t, reader), token: admin, want: 204},
		specCase{name: "token delete again", method: "DELETE", path: "/v1/tokens/" + specTokenID(t, reader), token: admin, want: 404},
		specCase{name: "token delete last admin", method: "DELETE", path: "/v1/tokens/" + specTokenID(t, admin), token: admin, want: 409},
		specCase{name: "deleted token", method: "GET", path: "/v1/version", token: reader, want: 401},

		// Paths and methods the API does not have.
		specCase{name: "no such path", method: "GET", path: "/v1/nodes", want: 404, offSpec: true},
		specCase{name: "no such method", method: "PUT", path: "/v1/hosts", token: admin, want: 405, offSpec: true},
		specCase{name: "no such method on a host", method: "POST", path: "/v1/hosts/edge-01", want: 405, offSpec: true},
		specCase{name: "no such method on health", method: "POST", path: "/healthz", want: 405, offSpec: true},
	)

	// Alarms and the hardware inventory, written through the store as the
	// heartbeat monitor and an agent write them.
	run(specCase{name: "add host for alarms", method: "POST", path: "/v1/hosts", token: admin, want: 201,
		body: `{"hostname":"edge-fm","personality":"edgeworker","mgmt_ip":"192.168.204.90"}`})
	// The cluster: none configured here; an unreachable one below.
	run(
		specCase{name: "cluster", method: "GET", path: "/v1/cluster", token: admin, want: 200},
		specCase{name: "cluster without token", method: "GET", path: "/v1/cluster", want: 401, offSpec: true},
		specCase{name: "cluster unknown query", method: "GET", path: "/v1/cluster?x=1", token: admin, want: 400, offSpec: true},
	)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	gone := cfg
	gone.DataDir, gone.Kubeconfig = t.TempDir(), kubeconfig
	gone.Provision.BundleDir = t.TempDir()
	c2, err := controller.New(ctx, gone, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("controller with an unreachable cluster: %v", err)
	}
	t.Cleanup(func() { c2.Close() })
	sh.do(t, c2.API().Handler(), specCase{name: "cluster that does not answer", method: "GET", path: "/v1/cluster", token: c2.AdminToken, want: 503})

	// Provisioning. This controller manages no cluster; the one above with an unreachable
	// cluster queues jobs that fail at once, and one whose cluster never answers keeps a job
	// running while a second waits, queued, to be cancelled.
	provReader := sh.specCreateToken(t, h, admin, `{"role":"reader"}`)
	run(
		specCase{name: "add worker to provision", method: "POST", path: "/v1/hosts", token: admin, want: 201,
			body: `{"hostname":"worker-p","personality":"worker","mgmt_ip":"192.168.204.95"}`},
		specCase{name: "provision worker", method: "POST", path: "/v1/hosts/worker-p/provision", token: operator, want: 422},
		specCase{name: "provision without key", method: "POST", path: "/v1/hosts/edge-fm/provision", token: operator, want: 409},
		specCase{name: "provision unknown host", method: "POST", path: "/v1/hosts/nope/provision", token: operator, want: 404},
		specCase{name: "provision by reader", method: "POST", path: "/v1/hosts/edge-fm/provision", token: provReader, want: 403},
		specCase{name: "provision bad body", method: "POST", path: "/v1/hosts/edge-fm/provision", token: operator, body: `{"reinstall":"yes"}`, want: 400, offSpec: true},
		specCase{name: "provision without token", method: "POST", path: "/v1/hosts/edge-fm/provision", want: 401, offSpec: true},
		specCase{name: "provision never run", method: "GET", path: "/v1/hosts/edge-fm/provision", token: provReader, want: 404},
		specCase{name: "provision show by nobody", method: "GET", path: "/v1/hosts/edge-fm/provision", want: 401, offSpec: true},
		specCase{name: "provision show unknown query", method: "GET", path: "/v1/hosts/edge-fm/provision?x=1", token: provReader, want: 400, offSpec: true},
		specCase{name: "provision log never run", method: "GET", path: "/v1/hosts/edge-fm/provision/log", token: provReader, want: 404},
		specCase{name: "provision log without token", method: "GET", path: "/v1/hosts/edge-fm/provision/log", want: 401, offSpec: true},
		specCase{name: "provision cancel never run", method: "DELETE", path: "/v1/hosts/edge-fm/provision", token: operator, want: 404},
		specCase{name: "provision cancel unknown query", method: "DELETE", path: "/v1/hosts/edge-fm/provision?force=1", token: operator, want: 400, offSpec: true},
		specCase{name: "provision cancel by reader", method: "DELETE", path: "/v1/hosts/edge-fm/provision", token: provReader, want: 403},
		specCase{name: "provision cancel without token", method: "DELETE", path: "/v1/hosts/edge-fm/provision", want: 401, offSpec: true},
	)
	if err := os.MkdirAll(filepath.Join(gone.DataDir, "ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(gone.DataDir, "ssh", "default"), []byte("a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h2, tok2 := c2.API().Handler(), c2.AdminToken
	// The leader runs jobs; these controllers are not served, so their runners run here.
	runLeader := func(r *provision.Runner) (stop func()) {
		ctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { r.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		return func() { cancel(); <-done }
	}
	// jobEnded waits for a host's latest job to end, and returns it.
	jobEnded := func(r *provision.Runner, host string) store.ProvisionJob {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			j, err := r.Job(ctx, host)
			if err != nil {
				t.Fatal(err)
			}
			if j.State != provision.StateQueued && j.State != provision.StateRunning {
				return j
			}
			if time.Now().After(deadline) {
				t.Fatalf("the provisioning job of %s did not end: %+v", host, j)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	runLeader(c2.Provision)
	sh.do(t, h2, specCase{name: "add host to provision", method: "POST", path: "/v1/hosts", token: tok2, want: 201,
		body: `{"hostname":"edge-p","personality":"edgeworker","mgmt_ip":"192.168.204.91"}`})
	sh.do(t, h2, specCase{name: "provision", method: "POST", path: "/v1/hosts/edge-p/provision", token: tok2, want: 202, body: `{"reinstall":true}`})
	jobEnded(c2.Provision, "edge-p")
	body := sh.do(t, h2, specCase{name: "provision show", method: "GET", path: "/v1/hosts/edge-p/provision", token: tok2, want: 200})
	var job apitype.ProvisionJob
	if err := json.Unmarshal(body, &job); err != nil || job.State != "failed" || job.Message == "" || !job.Reinstall {
		t.Errorf("a job against a cluster that refuses connections: %s (%v); want failed with a message", body, err)
	}
	sh.do(t, h2, specCase{name: "provision log", method: "GET", path: "/v1/hosts/edge-p/provision/log?after=0&limit=10", token: tok2, want: 200})
	sh.do(t, h2, specCase{name: "provision log bad after", method: "GET", path: "/v1/hosts/edge-p/provision/log?after=x", token: tok2, want: 400, offSpec: true})
	sh.do(t, h2, specCase{name: "provision cancel ended", method: "DELETE", path: "/v1/hosts/edge-p/provision", token: tok2, want: 409})

	// A cluster but no offline bundle: refused before a job is made.
	nobundle := gone
	nobundle.DataDir, nobundle.Provision.BundleDir = t.TempDir(), ""
	c4, err := controller.New(ctx, nobundle, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("controller without a bundle: %v", err)
	}
	t.Cleanup(func() { c4.Close() })
	if err := os.MkdirAll(filepath.Join(nobundle.DataDir, "ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(nobundle.DataDir, "ssh", "default"), []byte("a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sh.do(t, c4.API().Handler(), specCase{name: "add host without a bundle", method: "POST", path: "/v1/hosts", token: c4.AdminToken, want: 201,
		body: `{"hostname":"edge-b","personality":"edgeworker","mgmt_ip":"192.168.204.96"}`})
	body = sh.do(t, c4.API().Handler(), specCase{name: "provision without a bundle", method: "POST", path: "/v1/hosts/edge-b/provision", token: c4.AdminToken, want: 422})
	if !strings.Contains(string(body), "--bundle-dir") {
		t.Errorf("the refusal does not say what to give: %s", body)
	}

	mute := controllertest.SilentCluster(t)
	silent := cfg
	silent.DataDir, silent.Kubeconfig = t.TempDir(), mute
	silent.Provision.BundleDir = t.TempDir()
	silent.Provision.Parallel = 1
	silent.Provision.Ansible = "true"
	c3, err := controller.New(ctx, silent, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("controller with a silent cluster: %v", err)
	}
	stopRunner := runLeader(c3.Provision)
	t.Cleanup(func() { c3.Close() })
	if err := os.MkdirAll(filepath.Join(silent.DataDir, "ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(silent.DataDir, "ssh", "default"), []byte("a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h3, tok3 := c3.API().Handler(), c3.AdminToken
	for i, name := range []string{"edge-s1", "edge-s2"} {
		sh.do(t, h3, specCase{name: "add host " + name, method: "POST", path: "/v1/hosts", token: tok3, want: 201,
			body: fmt.Sprintf(`{"hostname":%q,"personality":"edgeworker","mgmt_ip":"192.168.204.%d"}`, name, 92+i)})
		sh.do(t, h3, specCase{name: "provision " + name, method: "POST", path: "/v1/hosts/" + name + "/provision", token: tok3, want: 202})
	}
	sh.do(t, h3, specCase{name: "provision twice", method: "POST", path: "/v1/hosts/edge-s1/provision", token: tok3, want: 409})
	sh.do(t, h3, specCase{name: "provision cancel", method: "DELETE", path: "/v1/hosts/edge-s2/provision", token: tok3, want: 202})
	body = sh.do(t, h3, specCase{name: "provision show cancelled", method: "GET", path: "/v1/hosts/edge-s2/provision", token: tok3, want: 200})
	job = apitype.ProvisionJob{}
	if err := json.Unmarshal(body, &job); err != nil || job.State != "cancelled" || job.StartedAt != nil {
		t.Errorf("the queued job after cancel: %s (%v); want cancelled before it started", body, err)
	}
	// The running job (its cluster never answers) is stopped by the runner that runs it.
	sh.do(t, h3, specCase{name: "provision cancel running", method: "DELETE", path: "/v1/hosts/edge-s1/provision", token: tok3, want: 202})
	if j := jobEnded(c3.Provision, "edge-s1"); j.State != provision.StateCancelled || !strings.HasPrefix(j.Message, "cancelled by ") || j.CancelBy == "" {
		t.Errorf("the running job after cancel: %+v; want cancelled, saying by whom", j)
	}
	stopRunner()

	// Labels.
	labelReader := sh.specCreateToken(t, h, admin, `{"role":"reader"}`)
	run(
		specCase{name: "labels", method: "GET", path: "/v1/hosts/edge-fm/labels", token: admin, want: 200},
		specCase{name: "labels unknown host", method: "GET", path: "/v1/hosts/nope/labels", token: admin, want: 404},
		specCase{name: "labels unknown query", method: "GET", path: "/v1/hosts/edge-fm/labels?x=1", token: admin, want: 400, offSpec: true},
		specCase{name: "labels without token", method: "GET", path: "/v1/hosts/edge-fm/labels", want: 401, offSpec: true},
		specCase{name: "label assign", method: "POST", path: "/v1/hosts/edge-fm/labels", token: operator, want: 200, body: `{"labels":{"zone":"north","tier":"a"}}`},
		specCase{name: "label assign bad key", method: "POST", path: "/v1/hosts/edge-fm/labels", token: operator, want: 400, body: `{"labels":{"bad key":"x"}}`},
		specCase{name: "label assign kubernetes.io key", method: "POST", path: "/v1/hosts/edge-fm/labels", token: operator, want: 400, body: `{"labels":{"node-role.kubernetes.io/control-plane":""}}`},
		specCase{name: "label assign unknown host", method: "POST", path: "/v1/hosts/nope/labels", token: operator, want: 404, body: `{"labels":{"zone":"north"}}`},
		specCase{name: "label assign by reader", method: "POST", path: "/v1/hosts/edge-fm/labels", token: labelReader, want: 403, body: `{"labels":{"zone":"north"}}`},
		specCase{name: "label remove by reader", method: "DELETE", path: "/v1/hosts/edge-fm/labels?key=zone", token: labelReader, want: 403},
		specCase{name: "label assign with a bad token", method: "POST", path: "/v1/hosts/edge-fm/labels", token: admin + "x", want: 401, body: `{"labels":{"zone":"north"}}`, offSpec: true},
		specCase{name: "label assign too large", method: "POST", path: "/v1/hosts/edge-fm/labels", token: operator, body: big, want: 413, offSpec: true},
		specCase{name: "label remove", method: "DELETE", path: "/v1/hosts/edge-fm/labels?key=tier", token: operator, want: 200},
		specCase{name: "label remove missing", method: "DELETE", path: "/v1/hosts/edge-fm/labels?key=tier", token: operator, want: 404},
		specCase{name: "label remove unknown query", method: "DELETE", path: "/v1/hosts/edge-fm/labels?k=tier", token: operator, want: 400, offSpec: true},
		specCase{name: "label remove without token", method: "DELETE", path: "/v1/hosts/edge-fm/labels?key=zone", want: 401, offSpec: true},
	)
	// Group labels.
	run(
		specCase{name: "group labels", method: "GET", path: "/v1/groups/plant-a/labels", token: labelReader, want: 200},
		specCase{name: "group labels unknown group", method: "GET", path: "/v1/groups/nope/labels", token: labelReader, want: 404},
		specCase{name: "group labels unknown query", method: "GET", path: "/v1/groups/plant-a/labels?x=1", token: labelReader, want: 400, offSpec: true},
		specCase{name: "group labels without token", method: "GET", path: "/v1/groups/plant-a/labels", want: 401, offSpec: true},
		specCase{name: "group label assign", method: "POST", path: "/v1/groups/plant-a/labels", token: operator, want: 200, body: `{"labels":{"line":"3","hall":"2"}}`},
		specCase{name: "group label assign reserved prefix", method: "POST", path: "/v1/groups/plant-a/labels", token: operator, want: 400, body: `{"labels":{"hummingbird.io/group":"x"}}`},
		specCase{name: "group label assign k8s.io key", method: "POST", path: "/v1/groups/plant-a/labels", token: operator, want: 400, body: `{"labels":{"node-restriction.kubernetes.io/hummingbird-host":"x"}}`},
		specCase{name: "group label assign none", method: "POST", path: "/v1/groups/plant-a/labels", token: operator, want: 400, body: `{"labels":{}}`},
		specCase{name: "group label assign unknown group", method: "POST", path: "/v1/groups/nope/labels", token: operator, want: 404, body: `{"labels":{"line":"3"}}`},
		specCase{name: "group label assign by reader", method: "POST", path: "/v1/groups/plant-a/labels", token: labelReader, want: 403, body: `{"labels":{"line":"3"}}`},
		specCase{name: "group label assign with a bad token", method: "POST", path: "/v1/groups/plant-a/labels", token: admin + "x", want: 401, body: `{"labels":{"line":"3"}}`, offSpec: true},
		specCase{name: "group label assign too large", method: "POST", path: "/v1/groups/plant-a/labels", token: operator, body: big, want: 413, offSpec: true},
		specCase{name: "group label remove", method: "DELETE", path: "/v1/groups/plant-a/labels?key=hall", token: operator, want: 200},
		specCase{name: "group label remove missing", method: "DELETE", path: "/v1/groups/plant-a/labels?key=hall", token: operator, want: 404},
		specCase{name: "group label remove unknown group", method: "DELETE", path: "/v1/groups/nope/labels?key=line", token: operator, want: 404},
		specCase{name: "group label remove by reader", method: "DELETE", path: "/v1/groups/plant-a/labels?key=line", token: labelReader, want: 403},
		specCase{name: "group label remove unknown query", method: "DELETE", path: "/v1/groups/plant-a/labels?k=line", token: operator, want: 400, offSpec: true},
		specCase{name: "group label remove without token", method: "DELETE", path: "/v1/groups/plant-a/labels?key=line", want: 401, offSpec: true},
	)
	body = sh.do(t, h, specCase{name: "group show with labels", method: "GET", path: "/v1/groups/plant-a", token: labelReader, want: 200})
	var shown apitype.Group
	if err := json.Unmarshal(body, &shown); err != nil || !cmp.Equal(shown.Labels, map[string]string{"line": "3"}) {
		t.Errorf("group show after the label calls: %s (%v); want labels line=3", body, err)
	}
	run(
		specCase{name: "inventory before the agent reports", method: "GET", path: "/v1/hosts/edge-fm/inventory", token: admin, want: 404},
		specCase{name: "alarm list empty", method: "GET", path: "/v1/alarms", token: admin, want: 200},
	)
	const alarmUUID = "0d9a1b52-1111-4c3e-9a55-000000000001"
	err = c.Store.Write(ctx, func(tx store.Tx) error {
		h, err := tx.HostByHostname("edge-fm")
		if err != nil {
			return err
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		if _, err := tx.RaiseAlarm(&store.Alarm{UUID: alarmUUID, AlarmID: "200.005", EntityType: "host",
			EntityInstance: "host=edge-fm", Severity: "major", Reason: "edge-fm: management heartbeat loss (degraded)",
			AlarmType: "communication", ProbableCause: "loss of signal", ProposedRepairAction: "Check the node.",
			RaisedAt: now, UpdatedAt: now}); err != nil {
			return err
		}
		if _, err := tx.RaiseAlarm(&store.Alarm{UUID: "0d9a1b52-1111-4c3e-9a55-000000000002", AlarmID: "200.006",
			EntityType: "host", EntityInstance: "host=edge-fm.process=kubelet", Severity: "major",
			Reason: "edge-fm: the kubelet is not ready", AlarmType: "operational", ProbableCause: "application subsystem failure",
			ProposedRepairAction: "Check the kubelet.", RaisedAt: now, UpdatedAt: now}); err != nil {
			return err
		}
		inv, err := json.Marshal(wire.Inventory{CollectedAt: now, Kernel: "6.1.0",
			CPUs: []wire.CPU{{Socket: 0, Model: "Atom", Cores: 4, Threads: 4}}, Memory: wire.Memory{TotalBytes: 8 << 30},
			OS: wire.OS{ID: "debian", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)"}})
		if err != nil {
			return err
		}
		return tx.SetHostInventory(h.ID, string(inv), "sha256:00")
	})
	if err != nil {
		t.Fatal(err)
	}
	run(
		specCase{name: "alarm list", method: "GET", path: "/v1/alarms?entity_instance_id=host%3Dedge-fm&severity=major", token: admin, want: 200},
		specCase{name: "alarm list bad severity", method: "GET", path: "/v1/alarms?severity=urgent", token: admin, want: 400, offSpec: true},
		specCase{name: "alarm list first page", method: "GET", path: "/v1/alarms?limit=1", token: admin, want: 200},
		specCase{name: "alarm list last page", method: "GET", path: "/v1/alarms?severity=major&limit=1&marker=1", token: admin, want: 200},
		specCase{name: "alarm list bad limit", method: "GET", path: "/v1/alarms?limit=1001", token: admin, want: 400, offSpec: true},
		specCase{name: "alarm list bad marker", method: "GET", path: "/v1/alarms?marker=first", token: admin, want: 400, offSpec: true},
		specCase{name: "alarm list without token", method: "GET", path: "/v1/alarms", want: 401, offSpec: true},
		specCase{name: "alarm show", method: "GET", path: "/v1/alarms/" + alarmUUID, token: admin, want: 200},
		specCase{name: "alarm show unknown", method: "GET", path: "/v1/alarms/nope", token: admin, want: 404},
		specCase{name: "alarm show unknown query", method: "GET", path: "/v1/alarms/nope?x=1", token: admin, want: 400, offSpec: true},
		specCase{name: "alarm show without token", method: "GET", path: "/v1/alarms/nope", want: 401, offSpec: true},
		specCase{name: "inventory", method: "GET", path: "/v1/hosts/edge-fm/inventory", token: admin, want: 200},
		specCase{name: "inventory unknown host", method: "GET", path: "/v1/hosts/nope/inventory", token: admin, want: 404},
		specCase{name: "inventory unknown query", method: "GET", path: "/v1/hosts/edge-fm/inventory?x=1", token: admin, want: 400, offSpec: true},
		specCase{name: "inventory without token", method: "GET", path: "/v1/hosts/edge-fm/inventory", want: 401, offSpec: true},
	)
}

// specFaultCases runs every operation against a database that is busy, then
// broken, and checks the 503 and 500 answers.
func specFaultCases(t *testing.T, sh *specHarness) {
	t.Helper()
	ctx := context.Background()
	st := &specFaultStore{Store: storetest.Open(t, storetest.SQLiteDSN(t))}
	tokens := auth.New(st, auth.Options{})
	admin, err := tokens.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv := api.New(api.Deps{
		Inventory: specInventory(t, st, inventory.Options{}),
		Tokens:    tokens, Ready: st.Ping, Version: "test",
		Log: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(),
	})
	h := srv.Handler()
	for _, fault := range []struct {
		err    error
		status int
	}{{specErrBusy, 503}, {specErrFault, 500}} {
		st.set(fault.err)
		for _, r := range srv.Routes() {
			if r.Role == "" {
				continue
			}
			path := strings.NewReplacer("{host}", "edge-01", "{token}", "abcdefgh").Replace(r.Pattern) + specQueries[r.Method+" "+r.Pattern]
			sh.do(t, h, specCase{
				name: fmt.Sprintf("%s %s on %v", r.Method, r.Pattern, fault.err), method: r.Method, path: path,
				token: admin, body: specBodies[r.Method+" "+r.Pattern], want: fault.status,
			})
		}
	}
	st.set(specErrBusy)
	sh.do(t, h, specCase{name: "readyz on a busy database", method: "GET", path: "/readyz", want: 503})
}

// specCollisionCases makes two tokens from the same random bytes: the second
// id clashes with the first in the database.
func specCollisionCases(t *testing.T, sh *specHarness) {
	t.Helper()
	st := storetest.Open(t, storetest.SQLiteDSN(t))
	tokens := auth.New(st, auth.Options{Rand: specZeros{}})
	admin, err := tokens.Bootstrap(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	srv := api.New(api.Deps{
		Inventory: specInventory(t, st, inventory.Options{}),
		Tokens:    tokens, Ready: st.Ping, Version: "test",
		Log: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(),
	})
	sh.do(t, srv.Handler(), specCase{name: "token id clash", method: "POST", path: "/v1/tokens", token: admin, body: `{"role":"reader"}`, want: 409})
}

// specZeros is a random source that is not random at all.
type specZeros struct{}

func (specZeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

var _ io.Reader = specZeros{}

// specInventory is an inventory on st with the controller's default
// management pool.
func specInventory(t *testing.T, st store.Store, o inventory.Options) *inventory.Service {
	t.Helper()
	inv := inventory.New(st, o)
	d := controller.Defaults()
	if _, _, err := inv.EnsureManagementPool(context.Background(), d.MgmtMode, d.MgmtSubnet, d.MgmtControllerIPs); err != nil {
		t.Fatal(err)
	}
	return inv
}
