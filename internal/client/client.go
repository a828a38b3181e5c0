// Package client is the typed Go client of Hummingbird's REST API, used by
// hbctl and by tests. Errors from the controller come back as *Error, which
// carries the API's code, message and field and answers problem.KindOf.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/wire"
)

// Client talks to a controller: the first of its list that answers. Every controller that
// shares a database serves the whole API; the client stays with the one that answered last
// and moves on when it cannot be reached.
type Client struct {
	bases []*url.URL
	cur   atomic.Int32 // the index in bases of the controller that answered last
	token string
	http  *http.Client
	agent string
}

// Options configures a Client.
type Options struct {
	// URL is https://controller:6385, or several controllers' URLs separated by commas.
	URL   string
	Token string         // bearer token, hb_…
	Roots *x509.CertPool // CAs to trust; nil means the system's
	// UserAgent names the caller; Timeout bounds each request (default 30s).
	UserAgent string
	Timeout   time.Duration
}

// New returns a Client.
func New(o Options) (*Client, error) {
	var bases []*url.URL
	for _, raw := range strings.Split(o.URL, ",") {
		raw = strings.TrimSpace(raw)
		u, err := url.Parse(strings.TrimRight(raw, "/"))
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("controller URL %q: write it like https://controller:6385 (several separated by commas)", raw)
		}
		if u.Scheme != "https" {
			return nil, fmt.Errorf("controller URL %q: the API is served over HTTPS only", raw)
		}
		bases = append(bases, u)
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	if o.UserAgent == "" {
		o.UserAgent = "hummingbird-client"
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: o.Roots, MinVersion: tls.VersionTLS12}
	return &Client{bases: bases, token: o.Token, http: &http.Client{Transport: tr, Timeout: o.Timeout}, agent: o.UserAgent}, nil
}

// Error is an error answer of the API.
type Error struct {
	Status  int
	Code    string
	Message string
	Field   string
}

func (e *Error) Error() string { return e.Message }

// Kind maps the API's code back to a problem kind.
func (e *Error) Kind() problem.Kind { return problem.KindForCode(e.Code) }

// Unwrap lets problem.KindOf and errors.As see the kind.
func (e *Error) Unwrap() error {
	return &problem.Error{Kind: e.Kind(), Field: e.Field, Message: e.Message}
}

func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var payload []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		payload = b
	}
	// From the controller that answered last, each in turn: a read goes to the next one
	// after any failure to get an answer, a change only when the request was never sent (the
	// connection could not be made), so that it is not made twice.
	first := int(c.cur.Load())
	var failed []string
	for i := range c.bases {
		n := (first + i) % len(c.bases)
		base := c.bases[n]
		u := *base
		u.Path += path
		u.RawQuery = query.Encode()
		var body io.Reader
		if payload != nil {
			body = bytes.NewReader(payload)
		}
		req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
		if err != nil {
			return fmt.Errorf("build request: %w", err)
		}
		if in != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Accept", "application/json")
		req.Header.Set("User-Agent", c.agent)
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			var uerr x509.UnknownAuthorityError
			if errors.As(err, &uerr) {
				return fmt.Errorf("%s %s: the controller's certificate is not trusted: give its CA with HB_CACERT (data/ca.crt on the controller): %w", method, u.Redacted(), err)
			}
			failed = append(failed, fmt.Sprintf("%s: %v", base.Redacted(), err))
			if ctx.Err() == nil && (method == http.MethodGet || notSent(err)) && i+1 < len(c.bases) {
				continue
			}
			if len(c.bases) == 1 {
				return problem.Wrap(problem.Unavailable, err, "cannot reach the controller at %s", base.Redacted())
			}
			return problem.Wrap(problem.Unavailable, errors.New(strings.Join(failed, "; ")), "cannot reach any of the controllers")
		}
		c.cur.Store(int32(n))
		return c.answer(resp, method, path, out)
	}
	return problem.Wrap(problem.Unavailable, errors.New(strings.Join(failed, "; ")), "cannot reach any of the controllers")
}

// notSent says whether err is a failure to connect, before any of the request was sent.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// answer reads the controller's answer to method path into out, or its error.
func (c *Client) answer(resp *http.Response, method, path string, out any) error {
	defer resp.Body.Close()
	data, err := readBody(resp, 64<<20)
	if err != nil {
		return problem.Wrap(problem.Unavailable, err, "reading the answer of %s %s", method, path)
	}
	if resp.StatusCode >= 300 {
		var e apitype.Error
		if json.Unmarshal(data, &e) != nil || e.Error.Code == "" {
			return &Error{Status: resp.StatusCode, Code: codeForStatus(resp.StatusCode),
				Message: fmt.Sprintf("%s %s: %s", method, path, resp.Status)}
		}
		return &Error{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message, Field: e.Error.Field}
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if raw, ok := out.(*[]byte); ok {
		*raw = data
		return nil
	}
	if err := decode(data, out); err != nil {
		return fmt.Errorf("decode the answer of %s %s: %w", method, path, err)
	}
	return nil
}

// decode is json.Unmarshal into out, a zero value, but for hosts and pages
// of hosts, the largest answers, which apitype's decoders read in one pass
// to the same result.
func decode(data []byte, out any) error {
	switch v := out.(type) {
	case *apitype.HostList:
		return apitype.DecodeHostList(data, v)
	case *apitype.Host:
		return apitype.DecodeHost(data, v)
	}
	return json.Unmarshal(data, out)
}

// readBody reads up to limit bytes of resp's body, in one buffer of the
// declared length when there is one (a page of 1,000 hosts is 600 KB,
// which io.ReadAll reaches by copying it several times).
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	n := resp.ContentLength
	if n < 0 || n > limit {
		return io.ReadAll(io.LimitReader(resp.Body, limit))
	}
	// net/http holds the body to its declared length.
	buf := make([]byte, n)
	_, err := io.ReadFull(resp.Body, buf)
	return buf, err
}

func codeForStatus(status int) string {
	switch {
	case status == http.StatusServiceUnavailable, status == http.StatusBadGateway, status == http.StatusGatewayTimeout:
		return problem.Unavailable.Code()
	case status == http.StatusNotFound:
		return problem.NotFound.Code()
	case status == http.StatusUnauthorized:
		return problem.Unauthenticated.Code()
	case status == http.StatusForbidden:
		return problem.Forbidden.Code()
	}
	return problem.Internal.Code()
}

// HostFilter selects hosts in ListHosts. Labels are "key" or "key=value".
type HostFilter struct {
	Personality, Availability, Administrative, Operational, InvProvision, Group string
	Labels                                                                      []string
	// PageSize is the number of hosts fetched per request (0: the server's default).
	PageSize int
}

func (f HostFilter) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{
		"personality": f.Personality, "availability": f.Availability,
		"administrative": f.Administrative, "operational": f.Operational,
		"invprovision": f.InvProvision, "group": f.Group,
	} {
		if v != "" {
			q.Set(k, v)
		}
	}
	for _, l := range f.Labels {
		q.Add("label", l)
	}
	if f.PageSize > 0 {
		q.Set("limit", fmt.Sprint(f.PageSize))
	}
	return q
}

// ListHosts returns every host f selects, following pages.
func (c *Client) ListHosts(ctx context.Context, f HostFilter) ([]apitype.Host, error) {
	q := f.query()
	var all []apitype.Host
	for {
		var page apitype.HostList
		if err := c.do(ctx, "GET", "/v1/hosts", q, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Hosts...)
		if page.Next == "" {
			return all, nil
		}
		q.Set("marker", page.Next)
	}
}

func hostPath(ref string) string { return "/v1/hosts/" + url.PathEscape(ref) }

// AddHost adds a host.
func (c *Client) AddHost(ctx context.Context, h apitype.HostCreate) (apitype.Host, error) {
	var out apitype.Host
	return out, c.do(ctx, "POST", "/v1/hosts", nil, h, &out)
}

// GetHost returns a host by id, uuid or hostname.
func (c *Client) GetHost(ctx context.Context, ref string) (apitype.Host, error) {
	var out apitype.Host
	return out, c.do(ctx, "GET", hostPath(ref), nil, nil, &out)
}

// UpdateHost applies a merge patch, given as field names to values.
func (c *Client) UpdateHost(ctx context.Context, ref string, patch map[string]any) (apitype.Host, error) {
	var out apitype.Host
	return out, c.do(ctx, "PATCH", hostPath(ref), nil, patch, &out)
}

// DeleteHost deletes a host.
func (c *Client) DeleteHost(ctx context.Context, ref string) error {
	return c.do(ctx, "DELETE", hostPath(ref), nil, nil, nil)
}

// HostLabels returns a host's labels.
func (c *Client) HostLabels(ctx context.Context, ref string) (map[string]string, error) {
	var out apitype.HostLabels
	return out.Labels, c.do(ctx, "GET", hostPath(ref)+"/labels", nil, nil, &out)
}

// AssignLabels sets labels on a host, keeping its others.
func (c *Client) AssignLabels(ctx context.Context, ref string, labels map[string]string) (map[string]string, error) {
	var out apitype.HostLabels
	return out.Labels, c.do(ctx, "POST", hostPath(ref)+"/labels", nil, apitype.HostLabels{Labels: labels}, &out)
}

// RemoveLabels removes labels by key, all or none.
func (c *Client) RemoveLabels(ctx context.Context, ref string, keys []string) (map[string]string, error) {
	var out apitype.HostLabels
	return out.Labels, c.do(ctx, "DELETE", hostPath(ref)+"/labels", url.Values{"key": keys}, nil, &out)
}

// UpgradeHost asks for a software upgrade of a host.
func (c *Client) UpgradeHost(ctx context.Context, ref string) error {
	return c.do(ctx, "POST", hostPath(ref)+"/upgrade", nil, nil, nil)
}

// AddGroup adds a group of hosts.
func (c *Client) AddGroup(ctx context.Context, g apitype.GroupCreate) (apitype.Group, error) {
	var out apitype.Group
	return out, c.do(ctx, "POST", "/v1/groups", nil, g, &out)
}

// ListGroups lists the groups with their members.
func (c *Client) ListGroups(ctx context.Context) ([]apitype.Group, error) {
	var out apitype.GroupList
	return out.Groups, c.do(ctx, "GET", "/v1/groups", nil, nil, &out)
}

// GetGroup returns a group by name.
func (c *Client) GetGroup(ctx context.Context, name string) (apitype.Group, error) {
	var out apitype.Group
	return out, c.do(ctx, "GET", "/v1/groups/"+url.PathEscape(name), nil, nil, &out)
}

// DeleteGroup deletes a group without members.
func (c *Client) DeleteGroup(ctx context.Context, name string) error {
	return c.do(ctx, "DELETE", "/v1/groups/"+url.PathEscape(name), nil, nil, nil)
}

// AddPool adds an address pool.
func (c *Client) AddPool(ctx context.Context, p apitype.PoolCreate) (apitype.Pool, error) {
	var out apitype.Pool
	return out, c.do(ctx, "POST", "/v1/addrpools", nil, p, &out)
}

// ListPools lists the address pools.
func (c *Client) ListPools(ctx context.Context) ([]apitype.Pool, error) {
	var out apitype.PoolList
	return out.Pools, c.do(ctx, "GET", "/v1/addrpools", nil, nil, &out)
}

// GetPool returns a pool by name.
func (c *Client) GetPool(ctx context.Context, name string) (apitype.Pool, error) {
	var out apitype.Pool
	return out, c.do(ctx, "GET", "/v1/addrpools/"+url.PathEscape(name), nil, nil, &out)
}

// DeletePool deletes a pool.
func (c *Client) DeletePool(ctx context.Context, name string) error {
	return c.do(ctx, "DELETE", "/v1/addrpools/"+url.PathEscape(name), nil, nil, nil)
}

// AlarmFilter selects alarms in AlarmPage and ListAlarmsFiltered.
type AlarmFilter struct {
	Entity   string // like host=edge-01; "" for any
	Severity string // "" for any
	// Limit is the number of alarms a page holds (0: the server's
	// default); Marker continues after the page whose Next it is.
	Limit  int
	Marker string
}

func (f AlarmFilter) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"entity_instance_id": f.Entity, "severity": f.Severity, "marker": f.Marker} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Limit > 0 {
		q.Set("limit", fmt.Sprint(f.Limit))
	}
	return q
}

// AlarmPage returns one page of the active alarms, in the order they were
// raised; its Next is the Marker of the next page ("" on the last).
func (c *Client) AlarmPage(ctx context.Context, f AlarmFilter) (apitype.AlarmList, error) {
	var out apitype.AlarmList
	return out, c.do(ctx, "GET", "/v1/alarms", f.query(), nil, &out)
}

// ListAlarmsFiltered returns every active alarm f selects, following
// pages of f.Limit alarms from f.Marker.
func (c *Client) ListAlarmsFiltered(ctx context.Context, f AlarmFilter) ([]apitype.Alarm, error) {
	var all []apitype.Alarm
	for {
		page, err := c.AlarmPage(ctx, f)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Alarms...)
		if page.Next == "" {
			return all, nil
		}
		f.Marker = page.Next
	}
}

// ListAlarms lists every active alarm, following pages; entity
// ("host=edge-01") and severity filter when set.
func (c *Client) ListAlarms(ctx context.Context, entity, severity string) ([]apitype.Alarm, error) {
	return c.ListAlarmsFiltered(ctx, AlarmFilter{Entity: entity, Severity: severity})
}

// GetAlarm returns an active alarm by uuid.
func (c *Client) GetAlarm(ctx context.Context, id string) (apitype.Alarm, error) {
	var out apitype.Alarm
	return out, c.do(ctx, "GET", "/v1/alarms/"+url.PathEscape(id), nil, nil, &out)
}

// HostInventory returns what a host's agent last reported.
func (c *Client) HostInventory(ctx context.Context, ref string) (apitype.HostInventory, error) {
	var out apitype.HostInventory
	return out, c.do(ctx, "GET", hostPath(ref)+"/inventory", nil, nil, &out)
}

// CreateToken makes an API token; the answer holds its secret.
func (c *Client) CreateToken(ctx context.Context, t apitype.TokenCreate) (apitype.TokenCreated, error) {
	var out apitype.TokenCreated
	return out, c.do(ctx, "POST", "/v1/tokens", nil, t, &out)
}

// ListTokens lists the API tokens.
func (c *Client) ListTokens(ctx context.Context) ([]apitype.Token, error) {
	var out apitype.TokenList
	return out.Tokens, c.do(ctx, "GET", "/v1/tokens", nil, nil, &out)
}

// DeleteToken revokes a token.
func (c *Client) DeleteToken(ctx context.Context, id string) error {
	return c.do(ctx, "DELETE", "/v1/tokens/"+url.PathEscape(id), nil, nil, nil)
}

// EventFilter selects events; Limit 0 means the server's default page.
// Marker continues with the events older than the page whose Next it is.
type EventFilter struct {
	EntityType, EntityID, Action string
	Limit                        int
	Marker                       string
}

// EventPage returns one page of events, newest first; its Next is the
// Marker of the next page ("" on the last).
func (c *Client) EventPage(ctx context.Context, f EventFilter) (apitype.EventList, error) {
	q := url.Values{}
	for k, v := range map[string]string{"entity_type": f.EntityType, "entity_id": f.EntityID, "action": f.Action, "marker": f.Marker} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Limit > 0 {
		q.Set("limit", fmt.Sprint(f.Limit))
	}
	var out apitype.EventList
	return out, c.do(ctx, "GET", "/v1/events", q, nil, &out)
}

// ListEvents returns one page of events, newest first.
func (c *Client) ListEvents(ctx context.Context, f EventFilter) ([]apitype.Event, error) {
	page, err := c.EventPage(ctx, f)
	return page.Events, err
}

// Cluster returns the Kubernetes cluster the controller manages.
func (c *Client) Cluster(ctx context.Context) (apitype.Cluster, error) {
	var out apitype.Cluster
	return out, c.do(ctx, "GET", "/v1/cluster", nil, nil, &out)
}

// CA returns the controller's own CA certificate (PEM), the one agents
// pin when they join, as the controller serves it to agents.
func (c *Client) CA(ctx context.Context) ([]byte, error) {
	var out []byte
	return out, c.do(ctx, "GET", wire.CAPath, nil, nil, &out)
}

// Version returns the controller's version.
func (c *Client) Version(ctx context.Context) (apitype.Version, error) {
	var out apitype.Version
	return out, c.do(ctx, "GET", "/v1/version", nil, nil, &out)
}

// ListControllers lists the controllers that share the controller's database.
func (c *Client) ListControllers(ctx context.Context) ([]apitype.Controller, error) {
	var out apitype.ControllerList
	return out.Controllers, c.do(ctx, "GET", "/v1/controllers", nil, nil, &out)
}

// DeleteController removes a controller the leader counts lost from the list.
func (c *Client) DeleteController(ctx context.Context, name string) error {
	return c.do(ctx, "DELETE", "/v1/controllers/"+url.PathEscape(name), nil, nil, nil)
}
