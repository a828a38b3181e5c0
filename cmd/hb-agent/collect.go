package main

import (
	"context"
	"errors"

	"hummingbird.io/hummingbird/internal/agent"
	"hummingbird.io/hummingbird/internal/agent/collect"
	"hummingbird.io/hummingbird/internal/wire"
)

// collector reads this node's hardware inventory. A partial inventory (a
// collector failed) is still sent; the failures go to the agent's log.
func collector(log func(msg string, args ...any)) agent.Collector {
	return func(ctx context.Context) (wire.Inventory, string, error) {
		inv, err := collect.Collect(ctx, collect.Sources{})
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
