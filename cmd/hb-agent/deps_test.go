package main

import (
	"strings"
	"testing"

	"hummingbird.io/hummingbird/internal/deplist"
)

// TestDependencies keeps hb-agent small: the packages it links beyond the
// standard library must be exactly those in deps.txt (see package deplist),
// and only the standard library, Hummingbird's own packages and the raft
// library with its dependencies.
func TestDependencies(t *testing.T) {
	t.Parallel()
	deplist.Check(t, "keep the agent small", func(p string) string {
		if !strings.HasPrefix(p, "hummingbird.io/hummingbird/") && !raftDeps[p] {
			return "the agent may use only the standard library, Hummingbird's own packages and the raft library with its dependencies"
		}
		return ""
	})
}

// raftDeps are the third-party packages the agent may link: hashicorp/raft,
// which decides the active member of redundant apps (package failover),
// and what raft itself imports. Anything else is refused even when
// deps.txt lists it.
var raftDeps = map[string]bool{
	"github.com/hashicorp/raft":                 true,
	"github.com/hashicorp/go-hclog":             true,
	"github.com/hashicorp/go-immutable-radix":   true,
	"github.com/hashicorp/go-metrics":           true,
	"github.com/hashicorp/go-msgpack/v2/codec":  true,
	"github.com/hashicorp/golang-lru/simplelru": true,
	"github.com/fatih/color":                    true,
	"github.com/mattn/go-colorable":             true,
	"github.com/mattn/go-isatty":                true,
	"golang.org/x/sys/unix":                     true,
}
