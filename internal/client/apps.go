package client

import (
	"context"
	"net/url"

	"hummingbird.io/hummingbird/internal/apitype"
)

func appPath(name string) string { return "/v1/apps/" + url.PathEscape(name) }

// AddApp adds an app on edgeworkers of a group.
func (c *Client) AddApp(ctx context.Context, a apitype.AppCreate) (apitype.App, error) {
	var out apitype.App
	return out, c.do(ctx, "POST", "/v1/apps", nil, a, &out)
}

// ListApps lists the apps with their members.
func (c *Client) ListApps(ctx context.Context) ([]apitype.App, error) {
	var out apitype.AppList
	return out.Apps, c.do(ctx, "GET", "/v1/apps", nil, nil, &out)
}

// GetApp returns an app by name.
func (c *Client) GetApp(ctx context.Context, name string) (apitype.App, error) {
	var out apitype.App
	return out, c.do(ctx, "GET", appPath(name), nil, nil, &out)
}

// DeleteApp deletes an app; its members stay in the inventory.
func (c *Client) DeleteApp(ctx context.Context, name string) error {
	return c.do(ctx, "DELETE", appPath(name), nil, nil, nil)
}

// SwitchoverApp asks an app's members to move its active role to the member
// to (empty: any healthy standby); the move happens when they carry it out.
func (c *Client) SwitchoverApp(ctx context.Context, name, to string) (apitype.App, error) {
	var out apitype.App
	return out, c.do(ctx, "POST", appPath(name)+"/switchover", nil, apitype.AppSwitchoverRequest{To: to}, &out)
}
