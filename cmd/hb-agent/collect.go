package main

import (
	"context"
	"errors"
	"path/filepath"

	"hummingbird.io/hummingbird/internal/agent"
	"hummingbird.io/hummingbird/internal/agent/collect"
	"hummingbird.io/hummingbird/internal/wire"
)

// collector reads this node's hardware inventory. A partial inventory (a
// collector failed) is still sent; the failures go to the agent's log.
func collector(hostRoot string, log func(msg string, args ...any)) agent.Collector {
	var src collect.Sources
	if hostRoot != "" {
		src = collect.Sources{Proc: filepath.Join(hostRoot, "proc"), Sys: filepath.Join(hostRoot, "sys"), Etc: filepath.Join(hostRoot, "etc")}
	}
	return func(ctx context.Context) (wire.Inventory, string, error) {
		inv, err := collect.Collect(ctx, src)
		if err != nil {
			var ce *collect.Error
			if !errors.As(err, &ce) {
				return inv, "", err
			}
			log("inventory is partial", "err", err)
		}
		return inv, collect.Hash(inv), nil
	}
}
