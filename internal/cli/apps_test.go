package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"hummingbird.io/hummingbird/internal/apitype"
)

// TestApps adds, shows, lists and deletes an app, with its flags on the command line and
// in HB_ variables.
func TestApps(t *testing.T) {
	t.Parallel()
	h := newHbctl(t)
	h.ok("group-add", "press")
	h.ok("host-add", "-n", "edge-01", "-p", "edgeworker", "-i", "192.168.204.10", "--group", "press")
	h.ok("host-add", "-n", "edge-02", "-p", "edgeworker", "-i", "192.168.204.11", "--group", "press")
	h.ok("host-add", "-n", "edge-03", "-p", "edgeworker", "-i", "192.168.204.12")

	if code, _, errs := h.run("", "app-add", "plc-bridge", "--group", "press"); code != 2 || !strings.Contains(errs, "--image") {
		t.Errorf("app-add without --image: %d %q", code, errs)
	}
	if code, _, errs := h.run("", "app-add", "--group", "press", "--image", "plc:1"); code != 2 || !strings.Contains(errs, "NAME") {
		t.Errorf("app-add without a name: %d %q", code, errs)
	}
	if code, _, errs := h.run("", "app-add", "hmi", "--group", "press", "--image", "hmi:1", "--members", "edge-01,edge-03"); code != 1 ||
		!strings.Contains(errs, "host edge-03 is in no group") {
		t.Errorf("app-add with a member outside the group: %d %q", code, errs)
	}
	if code, _, errs := h.run("", "app-add", "hmi", "--group", "press", "--image", "hmi:1", "--vip", "10.20.0.255/24"); code != 1 ||
		!strings.Contains(errs, "broadcast address") {
		t.Errorf("app-add with a broadcast vip: %d %q", code, errs)
	}

	out := h.ok("app-add", "plc-bridge", "--group", "press", "--image", "registry.example/plc-bridge:1.4", "--port", "502",
		"--vip", "10.20.0.50/24", "--members", "edge-02,edge-01")
	for _, want := range []string{"| name | plc-bridge ", "| vip | 10.20.0.50/24 ", "| members | edge-02 (offline), edge-01 (offline) ", "| active | "} {
		if !strings.Contains(squeeze(out), want) {
			t.Errorf("app-add table lacks %q:\n%s", want, out)
		}
	}

	// Flags from HB_ variables; without --members, every edgeworker of the group.
	h.env["HB_GROUP"], h.env["HB_IMAGE"] = "press", "historian:2"
	if got := h.ok("app-add", "historian", "-c", "members", "-c", "port", "-c", "vip", "-f", "value"); got != "edge-01 (offline), edge-02 (offline)\n\n\n" {
		t.Errorf("app-add from HB_GROUP and HB_IMAGE: %q", got)
	}
	delete(h.env, "HB_GROUP")
	delete(h.env, "HB_IMAGE")

	if got := h.ok("app-list", "-c", "name", "-c", "group", "-f", "value"); got != "historian press\nplc-bridge press\n" {
		t.Errorf("app-list: %q", got)
	}
	var ap apitype.App
	if err := json.Unmarshal([]byte(h.ok("app-show", "plc-bridge", "-f", "json")), &ap); err != nil ||
		ap.Port != 502 || len(ap.Members) != 2 || ap.Members[0].Hostname != "edge-02" || ap.Members[0].Position != 1 || ap.Active != "" || ap.Epoch != 0 {
		t.Errorf("app-show: %+v (%v)", ap, err)
	}
	if code, _, errs := h.run("", "app-show", "nope"); code != 1 || !strings.Contains(errs, `no app "nope"`) {
		t.Errorf("app-show of an unknown app: %d %q", code, errs)
	}

	// The group and the members stay while the apps do.
	if code, _, errs := h.run("", "group-delete", "press", "--yes"); code != 1 || !strings.Contains(errs, "group press has apps: historian, plc-bridge") {
		t.Errorf("group-delete with apps: %d %q", code, errs)
	}
	if code, _, errs := h.run("", "host-delete", "edge-01", "--yes"); code != 1 || !strings.Contains(errs, "member of app(s) historian, plc-bridge") {
		t.Errorf("host-delete of a member: %d %q", code, errs)
	}

	if code, _, errs := h.run("", "app-delete", "plc-bridge"); code != 1 || !strings.Contains(errs, "--yes") {
		t.Errorf("app-delete without a terminal: %d %q", code, errs)
	}
	if _, _, errs := h.run("y\n", "app-delete", "plc-bridge"); !strings.Contains(errs, "Deleted app plc-bridge.") {
		t.Errorf("app-delete: %q", errs)
	}
	h.ok("app-delete", "historian", "--yes")
	if got := h.ok("app-list", "-f", "json"); strings.TrimSpace(got) != "[]" {
		t.Errorf("app-list after the deletes: %q", got)
	}
	if got := h.ok("event-list", "-c", "action", "-c", "entity", "-f", "value", "--limit", "4"); !strings.HasPrefix(got, "app.delete app=historian\napp.delete app=plc-bridge\n") {
		t.Errorf("event-list: %q", got)
	}
}
