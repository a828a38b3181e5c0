package main

import (
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestDependencies keeps hb-agent small: the packages it links beyond the
// standard library must be exactly those in deps.txt. A change to the list
// is a decision, made by editing deps.txt in the same commit:
//
//	go list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' ./cmd/hb-agent | sort > cmd/hb-agent/deps.txt
func TestDependencies(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	want, err := os.ReadFile("deps.txt")
	if err != nil {
		t.Fatal(err)
	}
	lines := func(s string) []string {
		var out []string
		for _, l := range strings.Split(s, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				out = append(out, l)
			}
		}
		sort.Strings(out)
		return out
	}
	got := lines(string(out))
	if diff := cmp.Diff(lines(string(want)), got); diff != "" {
		t.Errorf("hb-agent's dependencies changed (-deps.txt +now); keep the agent small, or update deps.txt on purpose:\n%s", diff)
	}
	for _, p := range got {
		if !strings.HasPrefix(p, "hummingbird.io/hummingbird/") && !raftDeps[p] {
			t.Errorf("hb-agent links %s: the agent may use only the standard library, Hummingbird's own packages and the raft library with its dependencies", p)
		}
	}
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
