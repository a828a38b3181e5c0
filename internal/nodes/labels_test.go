package nodes

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/store"
)

func TestLabels(t *testing.T) {
	t.Parallel()
	got := Labels(store.Host{Personality: "edgeworker", Group: "press", Labels: map[string]string{"site": "hall-2", "line": "7"}},
		map[string]string{"line": "3", "zone": "north"})
	want := map[string]string{"site": "hall-2", "line": "7", "zone": "north", "node-role.kubernetes.io/edgeworker": "",
		"hummingbird.io/personality": "edgeworker", "hummingbird.io/group": "press"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if l := Labels(store.Host{Personality: "worker"}, nil); l[LabelGroup] != "" || len(l) != 2 {
		t.Errorf("a host without group or labels: %v", l)
	}
}
