package appstate_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/appstate"
	"hummingbird.io/hummingbird/internal/fm"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
	"hummingbird.io/hummingbird/internal/wire"
)

// confirmShown is what the controller shows of an app after a step.
type confirmShown struct {
	Active     string
	Epoch      int64
	Last       string            // "epoch reason from→to", "" for none
	Members    map[string]string // hostname → role, "unknown since HH:MM:SS" when unknown
	Switches   int               // app.switchover events
	Redundancy bool              // 400.002 raised
}

// TestConfirmedAppState feeds a real store, through the Tracker, with the
// heartbeats of an app's voters (members edge-1, edge-2, edge-3 and the
// witness edge-4: a majority is three): what the controller shows is what
// a majority of them confirm. One lying member claiming the active role in
// epoch 2^62 changes nothing; a partitioned old active that still reports
// itself active is shown unknown since the group confirmed its successor,
// never active; a switchover with a reason there is not is not stored.
func TestConfirmedAppState(t *testing.T) {
	t.Parallel()
	for _, be := range storetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			st := storetest.Open(t, be.DSN(t))
			ctx := t.Context()
			t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
			now := t0
			hosts := map[string]store.Host{}
			if err := st.Write(ctx, func(tx store.Tx) error {
				if err := tx.InsertGroup(&store.Group{Name: "press", CreatedAt: t0, UpdatedAt: t0}); err != nil {
					return err
				}
				for i := 1; i <= 4; i++ {
					h := store.Host{ID: int64(i), UUID: fmt.Sprintf("00000000-0000-4000-8000-00000000000%d", i),
						Hostname: fmt.Sprintf("edge-%d", i), Personality: "edgeworker", Administrative: "unlocked",
						Operational: "enabled", Availability: "available", InvProvision: "provisioned", Group: "press",
						MgmtIP: fmt.Sprintf("192.168.204.%d", 10+i), CreatedAt: t0, UpdatedAt: t0}
					if err := tx.InsertHost(&h); err != nil {
						return err
					}
					hosts[h.Hostname] = h
				}
				id, err := tx.NextID("apps")
				if err != nil {
					return err
				}
				return tx.InsertApp(&store.App{ID: id, UUID: "00000000-0000-4000-8000-0000000000a1", Name: "plc", Group: "press",
					Image: "plc:1", Port: 502, CreatedAt: t0, UpdatedAt: t0,
					Members: []store.AppMember{{HostID: 1, Position: 1}, {HostID: 2, Position: 2}, {HostID: 3, Position: 3}},
					Witness: &store.AppMember{HostID: 4}})
			}); err != nil {
				t.Fatal(err)
			}
			tr := appstate.New(st, appstate.Config{Clock: func() time.Time { return now }})
			if err := tr.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			uuid := func(name string) string { return hosts[name].UUID }
			first := &wire.AppSwitch{Epoch: 1, To: uuid("edge-1"), At: t0, Reason: wire.SwitchFirst}
			failure := &wire.AppSwitch{Epoch: 2, From: uuid("edge-1"), To: uuid("edge-2"), At: t0.Add(time.Minute),
				DurationMillis: 180, Reason: wire.SwitchFailure}
			status := func(role, active string, epoch uint64, last *wire.AppSwitch) wire.AppStatus {
				return wire.AppStatus{Name: "plc", Role: role, Active: uuid(active), Epoch: epoch, Healthy: role != wire.RoleWitness, Last: last}
			}
			type beat struct {
				host   string
				status wire.AppStatus
			}
			steps := []struct {
				name  string
				beats []beat
				want  confirmShown
			}{{
				name: "the first election, confirmed by all",
				beats: []beat{
					{"edge-1", status(wire.RoleActive, "edge-1", 1, first)},
					{"edge-2", status(wire.RoleStandby, "edge-1", 1, first)},
					{"edge-3", status(wire.RoleStandby, "edge-1", 1, first)},
					{"edge-4", status(wire.RoleWitness, "edge-1", 1, first)},
				},
				want: confirmShown{Active: "edge-1", Epoch: 1, Last: "1 first →edge-1", Switches: 1,
					Members: map[string]string{"edge-1": "active", "edge-2": "standby", "edge-3": "standby"}},
			}, {
				name: "edge-3 alone claims the active role in epoch 2^62",
				beats: []beat{{"edge-3", status(wire.RoleActive, "edge-3", 1<<62, &wire.AppSwitch{Epoch: 1 << 62,
					From: uuid("edge-1"), To: uuid("edge-3"), At: t0.Add(time.Hour), DurationMillis: 1, Reason: wire.SwitchPlanned})}},
				want: confirmShown{Active: "edge-1", Epoch: 1, Last: "1 first →edge-1", Switches: 1,
					Members: map[string]string{"edge-1": "active", "edge-2": "standby", "edge-3": "unknown since 08:01:00"}},
			}, {
				name: "edge-1 is cut off: edge-2 and the witness, two of four, report epoch 2",
				beats: []beat{
					{"edge-2", status(wire.RoleActive, "edge-2", 2, failure)},
					{"edge-4", status(wire.RoleWitness, "edge-2", 2, failure)},
				},
				want: confirmShown{Active: "edge-1", Epoch: 1, Last: "1 first →edge-1", Switches: 1,
					Members:    map[string]string{"edge-1": "active", "edge-2": "unknown since 08:02:00", "edge-3": "unknown since 08:01:00"},
					Redundancy: true},
			}, {
				name: "edge-3 confirms epoch 2 too: edge-1, still reporting itself active, is unknown",
				beats: []beat{
					{"edge-3", status(wire.RoleStandby, "edge-2", 2, failure)},
					{"edge-1", status(wire.RoleActive, "edge-1", 1, first)},
				},
				want: confirmShown{Active: "edge-2", Epoch: 2, Last: "2 failure edge-1→edge-2", Switches: 2,
					Members: map[string]string{"edge-1": "unknown since 08:03:00", "edge-2": "active", "edge-3": "standby"}},
			}, {
				name: "edge-1 keeps claiming epoch 1 for the whole partition",
				beats: []beat{
					{"edge-1", status(wire.RoleActive, "edge-1", 1, first)},
					{"edge-2", status(wire.RoleActive, "edge-2", 2, failure)},
				},
				want: confirmShown{Active: "edge-2", Epoch: 2, Last: "2 failure edge-1→edge-2", Switches: 2,
					Members: map[string]string{"edge-1": "unknown since 08:03:00", "edge-2": "active", "edge-3": "standby"}},
			}, {
				name:  "edge-1 rejoins its group",
				beats: []beat{{"edge-1", status(wire.RoleStandby, "edge-2", 2, failure)}},
				want: confirmShown{Active: "edge-2", Epoch: 2, Last: "2 failure edge-1→edge-2", Switches: 2,
					Members: map[string]string{"edge-1": "standby", "edge-2": "active", "edge-3": "standby"}},
			}, {
				name: "a switchover with a reason there is not is ignored, the epoch it names is not",
				beats: []beat{
					{"edge-1", status(wire.RoleStandby, "edge-3", 3, &wire.AppSwitch{Epoch: 3, From: uuid("edge-2"), To: uuid("edge-3"), Reason: "takeover"})},
					{"edge-2", status(wire.RoleStandby, "edge-3", 3, &wire.AppSwitch{Epoch: 3, From: uuid("edge-2"), To: uuid("edge-3"), Reason: "takeover"})},
					{"edge-3", status(wire.RoleActive, "edge-3", 3, &wire.AppSwitch{Epoch: 3, From: uuid("edge-2"), To: uuid("edge-3"), Reason: "takeover"})},
				},
				want: confirmShown{Active: "edge-3", Epoch: 3, Last: "2 failure edge-1→edge-2", Switches: 2,
					Members: map[string]string{"edge-1": "standby", "edge-2": "standby", "edge-3": "active"}},
			}, {
				name: "epochs that grew under loss count once a majority confirms them",
				beats: []beat{
					{"edge-2", status(wire.RoleActive, "edge-2", 1061, &wire.AppSwitch{Epoch: 1061, From: uuid("edge-3"), To: uuid("edge-2"), Reason: wire.SwitchFailure})},
					{"edge-4", status(wire.RoleWitness, "edge-2", 1061, &wire.AppSwitch{Epoch: 1061, From: uuid("edge-3"), To: uuid("edge-2"), Reason: wire.SwitchFailure})},
					{"edge-1", status(wire.RoleStandby, "edge-2", 1061, &wire.AppSwitch{Epoch: 1061, From: uuid("edge-3"), To: uuid("edge-2"), Reason: wire.SwitchFailure})},
				},
				want: confirmShown{Active: "edge-2", Epoch: 1061, Last: "1061 failure edge-3→edge-2", Switches: 3,
					Members: map[string]string{"edge-1": "standby", "edge-2": "active", "edge-3": "unknown since 08:07:00"}},
			}}
			for i, step := range steps {
				now = t0.Add(time.Duration(i) * time.Minute)
				for _, b := range step.beats {
					tr.Heartbeat(ctx, hosts[b.host], wire.Heartbeat{Capability: wire.CapabilityVersion, Apps: []wire.AppStatus{b.status}})
				}
				if diff := cmp.Diff(step.want, confirmRead(t, st)); diff != "" {
					t.Errorf("step %d, %s: shown (-want +got):\n%s", i, step.name, diff)
				}
			}
		})
	}
}

// confirmRead reads what the controller shows of app plc.
func confirmRead(t *testing.T, st store.Store) confirmShown {
	t.Helper()
	var out confirmShown
	if err := st.Read(t.Context(), func(tx store.Tx) error {
		a, err := tx.AppByName("plc")
		if err != nil {
			return err
		}
		out.Active, out.Epoch = a.ActiveHostname, a.Epoch
		if l := a.LastSwitch; l.Epoch != 0 {
			out.Last = fmt.Sprintf("%d %s %s→%s", l.Epoch, l.Reason, l.FromHostname, l.ToHostname)
		}
		out.Members = map[string]string{}
		for _, m := range a.Members {
			out.Members[m.Hostname] = m.Role
			if m.Role == "unknown" {
				out.Members[m.Hostname] += " since " + m.ReportedAt.Format(time.TimeOnly)
			}
		}
		evs, err := tx.EventsAfter(0, []string{"app.switchover"}, 100)
		if err != nil {
			return err
		}
		out.Switches = len(evs)
		alarms, err := tx.ListAlarms(store.AlarmFilter{EntityInstance: "app=plc"})
		if err != nil {
			return err
		}
		for _, al := range alarms {
			out.Redundancy = out.Redundancy || al.AlarmID == fm.AlarmAppRedundancy
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}
