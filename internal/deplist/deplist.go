// Package deplist holds a command's dependencies to a list, for the tests
// that keep hb-agent small and hbctl a client of the API: the packages the
// command in the test's directory links beyond the standard library must be
// exactly those in its deps.txt. A change to the list is a decision, made by
// editing deps.txt in the same commit:
//
//	go list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' ./cmd/NAME | sort > cmd/NAME/deps.txt
package deplist

import (
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Check compares the packages the command in the current directory links
// with deps.txt there, and fails t for each package refuse names a reason
// for (refuse returns "" for a package the command may link), whether or
// not deps.txt lists it; why says what the list keeps the command to.
func Check(t *testing.T, why string, refuse func(pkg string) string) {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	want, err := os.ReadFile("deps.txt")
	if err != nil {
		t.Fatal(err)
	}
	got := lines(string(out))
	if diff := cmp.Diff(lines(string(want)), got); diff != "" {
		t.Errorf("the dependencies changed (-deps.txt +now); %s, or update deps.txt on purpose:\n%s", why, diff)
	}
	for _, p := range got {
		if reason := refuse(p); reason != "" {
			t.Errorf("links %s: %s", p, reason)
		}
	}
}

// lines is the sorted non-empty lines of s.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}
