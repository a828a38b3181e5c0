package client

import (
	"context"

	"hummingbird.io/hummingbird/internal/apitype"
)

// LockHost starts locking a host: its Node, when it has one, is drained in the background.
func (c *Client) LockHost(ctx context.Context, ref string, req apitype.LockRequest) (apitype.LockOperation, error) {
	var out apitype.LockOperation
	return out, c.do(ctx, "POST", hostPath(ref)+"/lock", nil, req, &out)
}

// LockOperation returns a host's latest lock.
func (c *Client) LockOperation(ctx context.Context, ref string) (apitype.LockOperation, error) {
	var out apitype.LockOperation
	return out, c.do(ctx, "GET", hostPath(ref)+"/lock", nil, nil, &out)
}

// UnlockHost puts a locked host back in service.
func (c *Client) UnlockHost(ctx context.Context, ref string) (apitype.Host, error) {
	var out apitype.Host
	return out, c.do(ctx, "POST", hostPath(ref)+"/unlock", nil, nil, &out)
}

// CancelLock stops a running lock of a host; the host stays unlocked.
func (c *Client) CancelLock(ctx context.Context, ref string) (apitype.LockOperation, error) {
	var out apitype.LockOperation
	return out, c.do(ctx, "POST", hostPath(ref)+"/lock/cancel", nil, nil, &out)
}
