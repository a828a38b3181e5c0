package main

import (
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestDependencies keeps hbctl a thin client of the API: the packages it
// links beyond the standard library must be exactly those in deps.txt, and
// none of the controller's (the store and its database drivers and
// migrations, the inventory, authentication, Kubernetes' client). A change
// to the list is a decision, made by editing deps.txt in the same commit:
//
//	go list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' ./cmd/hbctl | sort > cmd/hbctl/deps.txt
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
		t.Errorf("hbctl's dependencies changed (-deps.txt +now); keep hbctl a client of the API, or update deps.txt on purpose:\n%s", diff)
	}
	for _, p := range got {
		for _, bad := range controllerOnly {
			if strings.HasPrefix(p, bad) {
				t.Errorf("hbctl links %s, which belongs to the controller: move what hbctl needs of it to apitype", p)
			}
		}
	}
}

// controllerOnly are import path prefixes hbctl must never link, even when
// deps.txt lists them.
var controllerOnly = []string{
	"hummingbird.io/hummingbird/internal/store",
	"hummingbird.io/hummingbird/internal/inventory",
	"hummingbird.io/hummingbird/internal/auth",
	"hummingbird.io/hummingbird/internal/controller",
	"hummingbird.io/hummingbird/internal/kube",
	"modernc.org/sqlite",
	"github.com/jackc/pgx",
	"github.com/pressly/goose",
	"k8s.io/",
	"github.com/hashicorp/raft",
}
