package api

import (
	"net/http"

	"hummingbird.io/hummingbird/internal/auth"
)

// resetHostAgent clears a host's agent, so that any enroll token may
// enroll it again (host-agent-reset). The request has no body.
func (s *Server) resetHostAgent(r *http.Request, p auth.Principal) (any, error) {
	return s.d.Inventory.ResetAgent(r.Context(), p.Actor(), r.PathValue("host"))
}

// revokeHostAgent revokes a host's agent certificate at once
// (host-agent-revoke). The request has no body.
func (s *Server) revokeHostAgent(r *http.Request, p auth.Principal) (any, error) {
	return s.d.Inventory.RevokeAgent(r.Context(), p.Actor(), r.PathValue("host"))
}
