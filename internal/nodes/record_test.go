package nodes

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/kube"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

// TestRecord: the Node's state is stored with the host when it changes, and alarm 200.006
// stands exactly while the Node is NotReady and the host still heartbeats: it is available and
// its agent heartbeated after the Node was seen NotReady.
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
			now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
			beats := lastBeats{}
			r := New(st, nil, Config{Now: func() time.Time { return now }, Heartbeats: beats})
			notReady := kube.Node{Name: "edge-1", State: kube.NodeState{Exists: true, KubeletVersion: "v1.37.2", Reason: "Kubelet stopped posting node status.", Owner: added.UUID}}
			ready := kube.Node{Name: "edge-1", State: kube.NodeState{Exists: true, Ready: true, KubeletVersion: "v1.37.2", Reason: "kubelet is posting ready status", Owner: added.UUID}}
			// Nodes of its name that are not the host's: none of their state is taken as the host's.
			foreign := notReady
			foreign.State.Owner = ""
			otherHost := notReady
			otherHost.State.Owner = "00000000-0000-4000-8000-0000000000ff"
			// beat: the agent heartbeats after the step's pass, before the next one.
			steps := []struct {
				name         string
				availability string
				node         kube.Node
				exists       bool
				state        string
				alarm        bool
				beat         bool
			}{
				{"offline host, no node", inventory.AvailOffline, kube.Node{}, false, "", false, true},
				{"ready", inventory.AvailAvailable, ready, true, "Ready", false, false},
				// Cut off: its heartbeats stop and its Node goes NotReady, before the
				// heartbeat monitor notices (the host is still available).
				{"not ready, no heartbeat since", inventory.AvailAvailable, notReady, true, "NotReady", false, false},
				{"still none", inventory.AvailAvailable, notReady, true, "NotReady", false, false},
				{"heartbeats missed", inventory.AvailDegraded, notReady, true, "NotReady", false, true},
				// The agent heartbeats again: the kubelet is down, not the host.
				{"not ready, host heartbeats", inventory.AvailAvailable, notReady, true, "NotReady", true, false},
				{"again: nothing new", inventory.AvailAvailable, notReady, true, "NotReady", true, false},
				{"heartbeats stop: the heartbeat alarms stand for it", inventory.AvailDegraded, notReady, true, "NotReady", false, false},
				{"failed host", inventory.AvailFailed, notReady, true, "NotReady", false, true},
				{"back", inventory.AvailAvailable, notReady, true, "NotReady", true, false},
				{"ready again", inventory.AvailAvailable, ready, true, "Ready", false, true},
				// Seen NotReady anew: a heartbeat from before does not count.
				{"not ready again", inventory.AvailAvailable, notReady, true, "NotReady", false, false},
				{"ready again", inventory.AvailAvailable, ready, true, "Ready", false, true},
				{"not ready, not the host's", inventory.AvailAvailable, foreign, true, "Conflict", false, true},
				{"ready again", inventory.AvailAvailable, ready, true, "Ready", false, true},
				{"not ready, another host's", inventory.AvailAvailable, otherHost, true, "Conflict", false, true},
				{"node deleted", inventory.AvailAvailable, kube.Node{}, false, "", false, true},
			}
			for _, s := range steps {
				now = now.Add(time.Second)
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
				if len(alarms) == 1 && (strings.Contains(alarms[0].Reason, "degraded") || !strings.Contains(alarms[0].Reason, "available")) {
					t.Errorf("%s: alarm text %q, want it to say the host is available", s.name, alarms[0].Reason)
				}
				if s.beat {
					now = now.Add(time.Second)
					beats[h.ID] = now
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
			if want := []string{"alarm.clear", "alarm.set", "alarm.clear", "alarm.set"}; !slices.Equal(actions, want) {
				t.Errorf("kubelet alarm events, newest first: %v; want %v", actions, want)
			}
		})
	}
}

// lastBeats is when each host's agent last heartbeated, by host id.
type lastBeats map[int64]time.Time

func (b lastBeats) LastHeartbeat(id int64) (time.Time, bool) {
	t, ok := b[id]
	return t, ok
}
