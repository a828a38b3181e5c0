package client

import (
	"context"

	"hummingbird.io/hummingbird/internal/apitype"
)

// ResetHostAgent clears a host's agent: its certificate is refused, and any
// enroll token may enroll the host again.
func (c *Client) ResetHostAgent(ctx context.Context, ref string) (apitype.HostAgent, error) {
	var out apitype.HostAgent
	return out, c.do(ctx, "POST", hostPath(ref)+"/agent/reset", nil, nil, &out)
}

// RevokeHostAgent revokes a host's agent certificate at once; only a new
// enroll token bound to the host enrolls it again.
func (c *Client) RevokeHostAgent(ctx context.Context, ref string) (apitype.HostAgent, error) {
	var out apitype.HostAgent
	return out, c.do(ctx, "POST", hostPath(ref)+"/agent/revoke", nil, nil, &out)
}
