package store_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// TestNodes: group labels replace as a whole and go with their group; a host's Node state
// reads back with the host and is forgotten with a zero state or with the host.
func TestNodes(t *testing.T) {
	t.Parallel()
	for _, be := range storetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			st := storetest.Open(t, be.DSN(t))
			ctx := t.Context()
			t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
			write := func(fn func(tx store.Tx) error) {
				t.Helper()
				if err := st.Write(ctx, fn); err != nil {
					t.Fatal(err)
				}
			}
			write(func(tx store.Tx) error {
				for _, g := range []string{"press", "paint"} {
					if err := tx.InsertGroup(&store.Group{Name: g, CreatedAt: t0, UpdatedAt: t0}); err != nil {
						return err
					}
				}
				h := store.Host{ID: 1, UUID: "00000000-0000-4000-8000-000000000001", Hostname: "edge-1", Personality: "edgeworker",
					Administrative: "locked", Operational: "disabled", Availability: "offline", InvProvision: "unprovisioned",
					Group: "press", CreatedAt: t0, UpdatedAt: t0}
				if err := tx.InsertHost(&h); err != nil {
					return err
				}
				if err := tx.SetGroupLabels("press", map[string]string{"line": "3", "zone": "north"}); err != nil {
					return err
				}
				if err := tx.SetGroupLabels("press", map[string]string{"line": "4"}); err != nil {
					return err
				}
				if err := tx.SetGroupLabels("paint", map[string]string{"booth": "a"}); err != nil {
					return err
				}
				return tx.SetHostNode(store.HostNode{HostID: 1, State: "NotReady", KubeletVersion: "v1.37.2",
					Reason: "kubelet stopped posting node status", UpdatedAt: t0})
			})
			var all map[string]map[string]string
			var press, none map[string]string
			var h store.Host
			read := func() {
				t.Helper()
				if err := st.Read(ctx, func(tx store.Tx) error {
					var err error
					if all, err = tx.AllGroupLabels(); err != nil {
						return err
					}
					if press, err = tx.GroupLabels("press"); err != nil {
						return err
					}
					if none, err = tx.GroupLabels("nope"); err != nil {
						return err
					}
					h, err = tx.HostByHostname("edge-1")
					return err
				}); err != nil {
					t.Fatal(err)
				}
			}
			read()
			if diff := cmp.Diff(map[string]map[string]string{"press": {"line": "4"}, "paint": {"booth": "a"}}, all); diff != "" {
				t.Errorf("all group labels (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(map[string]string{"line": "4"}, press); diff != "" || len(none) != 0 || none == nil {
				t.Errorf("press labels %v (diff %s), unknown group %v", press, diff, none)
			}
			if h.NodeState != "NotReady" || h.KubeletVersion != "v1.37.2" || h.NodeReason != "kubelet stopped posting node status" {
				t.Errorf("host node state %q %q %q", h.NodeState, h.KubeletVersion, h.NodeReason)
			}
			write(func(tx store.Tx) error {
				if err := tx.SetHostNode(store.HostNode{HostID: 1, State: "Ready", KubeletVersion: "v1.37.2", UpdatedAt: t0.Add(time.Minute)}); err != nil {
					return err
				}
				return tx.DeleteGroup("paint")
			})
			read()
			if h.NodeState != "Ready" || h.NodeReason != "" || all["paint"] != nil {
				t.Errorf("after Ready and deleting paint: node %q %q, groups %v", h.NodeState, h.NodeReason, all)
			}
			write(func(tx store.Tx) error { return tx.SetHostNode(store.HostNode{HostID: 1}) })
			read()
			if h.NodeState != "" || h.KubeletVersion != "" {
				t.Errorf("forgotten node: %q %q", h.NodeState, h.KubeletVersion)
			}
			write(func(tx store.Tx) error {
				if err := tx.SetHostNode(store.HostNode{HostID: 1, State: "Ready", UpdatedAt: t0}); err != nil {
					return err
				}
				return tx.DeleteHost(1)
			})
			if err := st.Write(ctx, func(tx store.Tx) error {
				return tx.SetHostNode(store.HostNode{HostID: 1, State: "Bogus", UpdatedAt: t0})
			}); err == nil {
				t.Error("a node state that is neither Ready nor NotReady was stored")
			}
		})
	}
}
