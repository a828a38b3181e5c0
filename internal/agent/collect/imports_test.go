package collect

import (
	"os/exec"
	"strings"
	"testing"
)

// The agent must stay small: this package may depend on the standard
// library and the agent's own packages only (internal/wire and
// internal/agent/...), never on a third-party module.
func TestImports(t *testing.T) {
	t.Parallel()
	const module = "hummingbird.io/hummingbird/"
	cmd := exec.CommandContext(t.Context(), "go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list -deps: %v: %s", err, stderr)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatal("go list -deps listed nothing, not even this package")
	}
	for _, dep := range deps {
		rest, ours := strings.CutPrefix(dep, module)
		if ours && (rest == "internal/wire" || strings.HasPrefix(rest, "internal/agent/")) {
			continue
		}
		t.Errorf("depends on %s: only the standard library, internal/wire and internal/agent/... are allowed", dep)
	}
}
