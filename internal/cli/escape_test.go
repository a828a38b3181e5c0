package cli_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"unicode"

	"gopkg.in/yaml.v3"

	"hummingbird.io/hummingbird/internal/controller/controllertest"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/wire"
)

// TestTerminalEscapes: strings with terminal escape sequences, C1 controls,
// DEL, a bidirectional override and invalid UTF-8 (an inventory stored
// before the controller stripped them) reach no terminal as they are in any
// format, and json and yaml still carry the value itself.
func TestTerminalEscapes(t *testing.T) {
	t.Parallel()
	in := controllertest.Start(t, "", nil)
	h := newHbctlFor(t, in)
	h.ok("host-add", "-n", "edge-01", "-p", "edgeworker", "-i", "192.168.204.10")
	const model = "Atom\x1b]0;owned\x07\x1b[2J\u009b6n\u202eE\x7f"
	inv, err := json.Marshal(wire.Inventory{CPUs: []wire.CPU{{Model: model, Cores: 1, Threads: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Controller.Store.Write(context.Background(), func(tx store.Tx) error {
		return tx.SetHostInventory(1, string(inv), "sha256:00")
	}); err != nil {
		t.Fatal(err)
	}
	raw := func(s string) bool {
		return strings.IndexFunc(s, func(r rune) bool {
			return r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r))
		}) >= 0
	}
	for _, f := range []string{"table", "value", "json", "yaml"} {
		out := h.ok("host-cpu-list", "edge-01", "-f", f)
		if raw(out) {
			t.Errorf("host-cpu-list -f %s printed a control character: %q", f, out)
		}
		switch f {
		case "value":
			if want := `Atom\x1b]0;owned\x07\x1b[2J\u009b6n\u202eE\x7f`; !strings.Contains(out, want) {
				t.Errorf("host-cpu-list -f value: %q, want the model escaped as %q", out, want)
			}
		case "json":
			var got []wire.CPU
			if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 1 || got[0].Model != model {
				t.Errorf("host-cpu-list -f json does not carry the model: %v %q", err, out)
			}
		case "yaml":
			var got []wire.CPU
			if err := yaml.Unmarshal([]byte(out), &got); err != nil || len(got) != 1 || got[0].Model != model {
				t.Errorf("host-cpu-list -f yaml does not carry the model: %v %q", err, out)
			}
		}
	}
	show := h.ok("host-show", "edge-01")
	if raw(show) {
		t.Errorf("host-show printed a control character: %q", show)
	}
}
