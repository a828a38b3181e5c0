package client

import (
	"context"
	"net/url"

	"hummingbird.io/hummingbird/internal/apitype"
)

func groupPath(name string) string { return "/v1/groups/" + url.PathEscape(name) }

// GroupLabels returns a group's labels.
func (c *Client) GroupLabels(ctx context.Context, name string) (map[string]string, error) {
	var out apitype.GroupLabels
	return out.Labels, c.do(ctx, "GET", groupPath(name)+"/labels", nil, nil, &out)
}

// AssignGroupLabels sets labels on a group, keeping its others.
func (c *Client) AssignGroupLabels(ctx context.Context, name string, labels map[string]string) (map[string]string, error) {
	var out apitype.GroupLabels
	return out.Labels, c.do(ctx, "POST", groupPath(name)+"/labels", nil, apitype.GroupLabels{Labels: labels}, &out)
}

// RemoveGroupLabels removes labels from a group by key, all or none.
func (c *Client) RemoveGroupLabels(ctx context.Context, name string, keys []string) (map[string]string, error) {
	var out apitype.GroupLabels
	return out.Labels, c.do(ctx, "DELETE", groupPath(name)+"/labels", url.Values{"key": keys}, nil, &out)
}
