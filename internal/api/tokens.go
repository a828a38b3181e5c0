package api

import (
	"net/http"
	"strconv"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/auth"
	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/store"
)

func tokenOut(t store.Token) apitype.Token {
	return apitype.Token{
		ID: t.ID, Type: t.Kind, Role: t.Role, MaxUses: t.MaxUses, Uses: t.Uses, Host: t.HostName,
		Description: t.Description, CreatedBy: t.CreatedBy, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt,
	}
}

func (s *Server) listTokens(r *http.Request, _ auth.Principal) (any, error) {
	toks, err := s.d.Tokens.List(r.Context())
	if err != nil {
		return nil, err
	}
	out := apitype.TokenList{Tokens: make([]apitype.Token, 0, len(toks))}
	for _, t := range toks {
		out.Tokens = append(out.Tokens, tokenOut(t))
	}
	return out, nil
}

func (s *Server) createToken(r *http.Request, p auth.Principal) (any, error) {
	var req apitype.TokenCreate
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	var ttl time.Duration
	if req.TTL != "" {
		var err error
		if ttl, err = time.ParseDuration(req.TTL); err != nil || ttl <= 0 {
			return nil, problem.Invalidf("ttl", "ttl %q is not a positive duration; write it like 24h or 90m", req.TTL)
		}
	}
	kind := req.Type
	if kind == "" {
		kind = auth.KindAPI
	}
	c, err := s.d.Tokens.CreateSpec(r.Context(), p.Actor(), auth.Spec{
		Kind: kind, Role: req.Role, Description: req.Description, TTL: ttl, MaxUses: req.Uses, Host: req.Host,
	})
	if err != nil {
		return nil, err
	}
	return apitype.TokenCreated{Token: tokenOut(c.Token), Secret: c.Secret}, nil
}

func (s *Server) deleteToken(r *http.Request, p auth.Principal) (any, error) {
	return nil, s.d.Tokens.Delete(r.Context(), p.Actor(), r.PathValue("token"))
}

func (s *Server) listEvents(r *http.Request, _ auth.Principal) (any, error) {
	q := r.URL.Query()
	limit, err := queryLimit(r, 100, maxPage)
	if err != nil {
		return nil, err
	}
	f := store.EventFilter{EntityType: q.Get("entity_type"), EntityID: q.Get("entity_id"), Action: q.Get("action"), Limit: limit + 1}
	if m := q.Get("marker"); m != "" {
		id, err := strconv.ParseInt(m, 10, 64)
		if err != nil || id < 1 {
			return nil, problem.Invalidf("marker", "marker %q is not one this API returned; use the next value of the previous page", m)
		}
		f.BeforeID = id
	}
	evs, err := s.d.Inventory.Events(r.Context(), f)
	if err != nil {
		return nil, err
	}
	out := apitype.EventList{Events: make([]apitype.Event, 0, len(evs))}
	if len(evs) > limit {
		evs = evs[:limit]
		out.Next = strconv.FormatInt(evs[limit-1].ID, 10)
	}
	for _, e := range evs {
		out.Events = append(out.Events, apitype.Event{
			ID: e.ID, UUID: e.UUID, Time: e.Time, Code: e.Code, EntityType: e.EntityType,
			EntityID: e.EntityID, Action: e.Action, Actor: e.Actor, Reason: e.Reason,
		})
	}
	return out, nil
}
