package nodes

import (
	"context"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/kube"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// TestRecord: the Node's state is stored with the host when it changes, and alarm 200.006
// stands exactly while the Node is NotReady and the host still heartbeats.
func TestRecord(t *testing.T) {
	t.Parallel()
	for _, be := range storetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := storetest.Open(t, be.DSN(t))
			inv := inventory.New(st, inventory.Options{})
			if _, _, err := inv.EnsureManagementPool(ctx, "static", "192.168.204.0/24", []string{"192.168.204.1"}); err != nil {
				t.Fatal(err)
			}
			added, err := inv.Add(ctx, "test", apitype.HostCreate{Hostname: "edge-1", Personality: "edgeworker", MgmtIP: "192.168.204.5"})
			if err != nil {
				t.Fatal(err)
			}
			r := New(st, nil, Config{Now: func() time.Time { return time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC) }})
			notReady := kube.Node{Name: "edge-1", State: kube.NodeState{Exists: true, KubeletVersion: "v1.37.2", Reason: "Kubelet stopped posting node status.", Owner: added.UUID}}
			ready := kube.Node{Name: "edge-1", State: kube.NodeState{Exists: true, Ready: true, KubeletVersion: "v1.37.2", Reason: "kubelet is posting ready status", Owner: added.UUID}}
			// Nodes of its name that are not the host's: none of their state is taken as the host's.
			foreign := notReady
			foreign.State.Owner = ""
			otherHost := notReady
			otherHost.State.Owner = "00000000-0000-4000-8000-0000000000ff"
			steps := []struct {
				name         string
				availability string
				node         kube.Node
				exists       bool
				state        string
				alarm        bool
			}{
				{"offline host, no node", inventory.AvailOffline, kube.Node{}, false, "", false},
				{"ready", inventory.AvailOffline, ready, true, "Ready", false},
				{"not ready, host silent too", inventory.AvailOffline, notReady, true, "NotReady", false},
				{"not ready, host heartbeats", inventory.AvailAvailable, notReady, true, "NotReady", true},
				{"again: nothing new", inventory.AvailAvailable, notReady, true, "NotReady", true},
				{"degraded host", inventory.AvailDegraded, notReady, true, "NotReady", true},
				{"ready again", inventory.AvailAvailable, ready, true, "Ready", false},
				{"not ready, not the host's", inventory.AvailAvailable, foreign, true, "Conflict", false},
				{"ready again", inventory.AvailAvailable, ready, true, "Ready", false},
				{"not ready, another host's", inventory.AvailAvailable, otherHost, true, "Conflict", false},
				{"node deleted", inventory.AvailAvailable, kube.Node{}, false, "", false},
			}
			for _, s := range steps {
				var h store.Host
				var alarmed bool
				if err := st.Write(ctx, func(tx store.Tx) error {
					var err error
					if h, err = tx.HostByHostname("edge-1"); err != nil {
						return err
					}
					if err := tx.SetHostState(h.ID, s.availability, "enabled", time.Now()); err != nil {
						return err
					}
					h.Availability = s.availability
					as, err := tx.ListAlarms(store.AlarmFilter{EntityInstance: kubeletEntity(h)})
					alarmed = len(as) > 0
					return err
				}); err != nil {
					t.Fatal(err)
				}
				if err := r.record(ctx, h, s.node, s.exists, alarmed); err != nil {
					t.Fatalf("%s: %v", s.name, err)
				}
				var alarms []store.Alarm
				if err := st.Read(ctx, func(tx store.Tx) error {
					var err error
					if h, err = tx.HostByHostname("edge-1"); err != nil {
						return err
					}
					alarms, err = tx.ListAlarms(store.AlarmFilter{EntityInstance: kubeletEntity(h)})
					return err
				}); err != nil {
					t.Fatal(err)
				}
				if h.NodeState != s.state || (s.state == "NotReady" || s.state == "Conflict") != (h.NodeReason != "") ||
					(s.state == "Conflict" && h.KubeletVersion != "") {
					t.Errorf("%s: node state %q reason %q, want %q", s.name, h.NodeState, h.NodeReason, s.state)
				}
				if (len(alarms) == 1 && alarms[0].AlarmID == AlarmKubelet && alarms[0].Severity == "major") != s.alarm || len(alarms) > 1 {
					t.Errorf("%s: alarms %+v, want raised %v", s.name, alarms, s.alarm)
				}
			}
			var events []store.Event
			if err := st.Read(ctx, func(tx store.Tx) error {
				var err error
				events, err = tx.ListEvents(store.EventFilter{EntityID: "host=edge-1.process=kubelet"})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			var actions []string
			for _, e := range events {
				actions = append(actions, e.Action)
			}
			if len(actions) != 2 || actions[0] != "alarm.clear" || actions[1] != "alarm.set" {
				t.Errorf("kubelet alarm events, newest first: %v; want one set and one clear", actions)
			}
		})
	}
}
