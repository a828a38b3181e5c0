package nodes

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/kube"
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

// TestLabelsLeaveReservedKeys: labels stored before keys in Kubernetes' namespaces were
// refused never reach a Node.
func TestLabelsLeaveReservedKeys(t *testing.T) {
	t.Parallel()
	got := Labels(store.Host{Personality: "edgeworker", Labels: map[string]string{"site": "hall-2",
		"node-role.kubernetes.io/control-plane": "", "node-restriction.kubernetes.io/hummingbird-host": "x"}},
		map[string]string{"kubernetes.io/os": "windows", "line": "3"})
	want := map[string]string{"site": "hall-2", "line": "3", "node-role.kubernetes.io/edgeworker": "",
		"hummingbird.io/personality": "edgeworker"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
}

// TestAdoptable: a Node without the mark is a host's only when it registered while one of the
// host's provisioning jobs ran and carries the role the job set; a name, and labels Hummingbird
// set on a Node named like a host before it marked Nodes, are not enough.
func TestAdoptable(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	h := store.Host{ID: 7, UUID: "00000000-0000-4000-8000-000000000007", Hostname: "edge-7", Personality: "edgeworker"}
	job := store.ProvisionJob{HostID: 7, State: "succeeded", StartedAt: t0, FinishedAt: t0.Add(10 * time.Minute)}
	role := map[string]string{"node-role.kubernetes.io/edgeworker": "", "hummingbird.io/group": "press"}
	node := func(created time.Time, labels map[string]string, owner string) kube.Node {
		return kube.Node{Name: "edge-7", State: kube.NodeState{Exists: true, Created: created, Labels: labels, Owner: owner}}
	}
	failed := job
	failed.State = "failed"
	otherHost := job
	otherHost.HostID = 8
	for _, tc := range []struct {
		name string
		h    store.Host
		n    kube.Node
		jobs []store.ProvisionJob
		want bool
	}{
		{"registered during the job", h, node(t0.Add(4*time.Minute), role, ""), []store.ProvisionJob{job}, true},
		{"within the clock skew", h, node(t0.Add(-30*time.Second), role, ""), []store.ProvisionJob{job}, true},
		{"registered before the job: a Node that was there", h, node(t0.Add(-time.Hour), role, ""), []store.ProvisionJob{job}, false},
		{"registered after the job", h, node(t0.Add(time.Hour), role, ""), []store.ProvisionJob{job}, false},
		{"no role", h, node(t0.Add(4*time.Minute), map[string]string{"hummingbird.io/group": "press"}, ""), []store.ProvisionJob{job}, false},
		{"no job", h, node(t0.Add(4*time.Minute), role, ""), nil, false},
		{"a failed job", h, node(t0.Add(4*time.Minute), role, ""), []store.ProvisionJob{failed}, false},
		{"another host's job", h, node(t0.Add(4*time.Minute), role, ""), []store.ProvisionJob{otherHost}, false},
		{"marked already, for another host", h, node(t0.Add(4*time.Minute), role, "00000000-0000-4000-8000-000000000008"),
			[]store.ProvisionJob{job}, false},
		{"a worker", store.Host{ID: 7, UUID: h.UUID, Hostname: "edge-7", Personality: "worker"},
			node(t0.Add(4*time.Minute), map[string]string{"node-role.kubernetes.io/worker": ""}, ""), []store.ProvisionJob{job}, false},
	} {
		if got := Adoptable(tc.h, tc.n, tc.jobs); got != tc.want {
			t.Errorf("%s: Adoptable = %v, want %v", tc.name, got, tc.want)
		}
	}
}
