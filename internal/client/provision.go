package client

import (
	"context"
	"net/url"
	"strconv"

	"hummingbird.io/hummingbird/internal/apitype"
)

// ProvisionHost starts a provisioning job for a host.
func (c *Client) ProvisionHost(ctx context.Context, ref string, req apitype.ProvisionRequest) (apitype.ProvisionJob, error) {
	var out apitype.ProvisionJob
	return out, c.do(ctx, "POST", hostPath(ref)+"/provision", nil, req, &out)
}

// ProvisionJob returns a host's latest provisioning job.
func (c *Client) ProvisionJob(ctx context.Context, ref string) (apitype.ProvisionJob, error) {
	var out apitype.ProvisionJob
	return out, c.do(ctx, "GET", hostPath(ref)+"/provision", nil, nil, &out)
}

// CancelProvision cancels a host's queued or running provisioning job.
func (c *Client) CancelProvision(ctx context.Context, ref string) (apitype.ProvisionJob, error) {
	var out apitype.ProvisionJob
	return out, c.do(ctx, "DELETE", hostPath(ref)+"/provision", nil, nil, &out)
}

// ProvisionLog returns the log of a host's latest job after chunk after.
func (c *Client) ProvisionLog(ctx context.Context, ref string, after int64) (apitype.ProvisionLog, error) {
	var out apitype.ProvisionLog
	q := url.Values{}
	if after > 0 {
		q.Set("after", strconv.FormatInt(after, 10))
	}
	return out, c.do(ctx, "GET", hostPath(ref)+"/provision/log", q, nil, &out)
}
