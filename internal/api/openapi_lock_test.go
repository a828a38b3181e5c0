package api_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/api"
	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/hostlock"
	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/store"
)

// TestSpecLockShapes holds the lock schemas to their Go types, and the states to the code's.
func TestSpecLockShapes(t *testing.T) {
	t.Parallel()
	doc := specLoad(t)
	for name, v := range map[string]any{"LockRequest": apitype.LockRequest{}, "LockOperation": apitype.LockOperation{}} {
		ref := doc.Components.Schemas[name]
		if ref == nil {
			t.Fatalf("components.schemas has no %s", name)
		}
		specCheckShape(t, name, ref.Value, reflect.TypeOf(v))
	}
	var states []string
	for _, v := range doc.Components.Schemas["LockOperation"].Value.Properties["state"].Value.Enum {
		states = append(states, v.(string))
	}
	if diff := cmp.Diff([]string{hostlock.StateDraining, hostlock.StateLocked, hostlock.StateFailed, hostlock.StateCancelled}, states); diff != "" {
		t.Errorf("LockOperation.state: enum in the spec (+) differs from the code's (-):\n%s", diff)
	}
}

// specLockCases locks and unlocks hosts on a controller that manages no cluster: a lock
// locks the record at once. The drains are tested on the test bed (test/e2e).
func specLockCases(t *testing.T, sh *specHarness) {
	t.Helper()
	srv := sh.specServerStart(t)
	ctx, c, h, admin, operator, reader := context.Background(), srv.c, srv.h, srv.admin, srv.operator, srv.reader
	big := `{"timeout":"` + strings.Repeat("x", api.MaxBodyBytes) + `"}`
	refused := func(tc specCase, want string) { t.Helper(); sh.specRefused(t, h, tc, want) }
	for _, body := range []string{
		`{"hostname":"edge-l1","personality":"edgeworker","mgmt_ip":"192.168.204.60"}`,
		`{"hostname":"edge-l2","personality":"edgeworker","mgmt_ip":"192.168.204.61"}`,
		`{"hostname":"controller-0","personality":"controller","mgmt_ip":"192.168.204.62"}`,
		`{"hostname":"controller-1","personality":"controller","mgmt_ip":"192.168.204.63"}`,
	} {
		sh.do(t, h, specCase{name: "add host to lock", method: "POST", path: "/v1/hosts", token: admin, body: body, want: 201})
	}

	// A new host is locked.
	refused(specCase{name: "lock a new host", method: "POST", path: "/v1/hosts/edge-l1/lock", token: operator, want: 409}, "locked already")
	refused(specCase{name: "lock show never locked", method: "GET", path: "/v1/hosts/edge-l1/lock", token: reader, want: 404}, "hbctl host-lock edge-l1")
	body := sh.do(t, h, specCase{name: "unlock", method: "POST", path: "/v1/hosts/edge-l1/unlock", token: operator, want: 200})
	var host apitype.Host
	if err := json.Unmarshal(body, &host); err != nil || host.Administrative != "unlocked" || host.Operational != "enabled" {
		t.Errorf("unlocked host: %s (%v); want unlocked and enabled", body, err)
	}
	refused(specCase{name: "unlock again", method: "POST", path: "/v1/hosts/edge-l1/unlock", token: operator, want: 409}, "not locked")
	sh.do(t, h, specCase{name: "unlock unknown host", method: "POST", path: "/v1/hosts/nope/unlock", token: operator, want: 404})
	sh.do(t, h, specCase{name: "unlock by reader", method: "POST", path: "/v1/hosts/edge-l2/unlock", token: reader, want: 403})
	sh.do(t, h, specCase{name: "unlock without token", method: "POST", path: "/v1/hosts/edge-l2/unlock", want: 401, offSpec: true})
	sh.do(t, h, specCase{name: "unlock unknown query", method: "POST", path: "/v1/hosts/edge-l2/unlock?force=1", token: operator, want: 400, offSpec: true})

	refused(specCase{name: "lock short timeout", method: "POST", path: "/v1/hosts/edge-l1/lock", token: operator, body: `{"timeout":"5s"}`, want: 400}, "10s to 1h")
	sh.do(t, h, specCase{name: "lock long timeout", method: "POST", path: "/v1/hosts/edge-l1/lock", token: operator, body: `{"timeout":"2h"}`, want: 400})
	sh.do(t, h, specCase{name: "lock bad timeout", method: "POST", path: "/v1/hosts/edge-l1/lock", token: operator, body: `{"timeout":"soon"}`, want: 400})
	sh.do(t, h, specCase{name: "lock bad force", method: "POST", path: "/v1/hosts/edge-l1/lock", token: operator, body: `{"force":"yes"}`, want: 400, offSpec: true})
	sh.do(t, h, specCase{name: "lock unknown field", method: "POST", path: "/v1/hosts/edge-l1/lock", token: operator, body: `{"drain":false}`, want: 400, offSpec: true})
	sh.do(t, h, specCase{name: "lock too large", method: "POST", path: "/v1/hosts/edge-l1/lock", token: operator, body: big, want: 413, offSpec: true})
	sh.do(t, h, specCase{name: "lock unknown host", method: "POST", path: "/v1/hosts/nope/lock", token: operator, want: 404})
	sh.do(t, h, specCase{name: "lock by reader", method: "POST", path: "/v1/hosts/edge-l1/lock", token: reader, want: 403})
	sh.do(t, h, specCase{name: "lock without token", method: "POST", path: "/v1/hosts/edge-l1/lock", want: 401, offSpec: true})
	sh.do(t, h, specCase{name: "lock unknown query", method: "POST", path: "/v1/hosts/edge-l1/lock?force=1", token: operator, want: 400, offSpec: true})
	body = sh.do(t, h, specCase{name: "lock", method: "POST", path: "/v1/hosts/edge-l1/lock", token: operator, body: `{"force":true,"timeout":"90s"}`, want: 202})
	var op apitype.LockOperation
	if err := json.Unmarshal(body, &op); err != nil || op.State != "locked" || op.FinishedAt == nil || op.Timeout != "1m30s" || !op.Force ||
		!strings.Contains(op.Message, "no Kubernetes cluster") {
		t.Errorf("a lock without a cluster: %s (%v); want locked at once, saying there is no cluster", body, err)
	}
	body = sh.do(t, h, specCase{name: "lock show", method: "GET", path: "/v1/hosts/edge-l1/lock", token: reader, want: 200})
	if err := json.Unmarshal(body, &op); err != nil || op.State != "locked" || op.Host != "edge-l1" {
		t.Errorf("lock show: %s (%v)", body, err)
	}
	body = sh.do(t, h, specCase{name: "host show after lock", method: "GET", path: "/v1/hosts/edge-l1", token: reader, want: 200})
	if err := json.Unmarshal(body, &host); err != nil || host.Administrative != "locked" || host.Operational != "disabled" {
		t.Errorf("locked host: %s (%v); want locked and disabled", body, err)
	}
	sh.do(t, h, specCase{name: "lock show unknown host", method: "GET", path: "/v1/hosts/nope/lock", token: reader, want: 404})
	sh.do(t, h, specCase{name: "lock show without token", method: "GET", path: "/v1/hosts/edge-l1/lock", want: 401, offSpec: true})
	sh.do(t, h, specCase{name: "lock show unknown query", method: "GET", path: "/v1/hosts/edge-l1/lock?x=1", token: reader, want: 400, offSpec: true})
	refused(specCase{name: "lock a locked host", method: "POST", path: "/v1/hosts/edge-l1/lock", token: operator, want: 409}, "host-unlock edge-l1")
	sh.do(t, h, specCase{name: "unlock a locked host", method: "POST", path: "/v1/hosts/edge-l1/unlock", token: operator, want: 200})

	// A host being provisioned is refused.
	if err := c.Store.Write(ctx, func(tx store.Tx) error {
		h, err := tx.HostByHostname("edge-l2")
		if err != nil {
			return err
		}
		h.Administrative, h.InvProvision = inventory.AdminUnlocked, inventory.ProvProvisioning
		return tx.UpdateHost(&h)
	}); err != nil {
		t.Fatal(err)
	}
	refused(specCase{name: "lock while provisioning", method: "POST", path: "/v1/hosts/edge-l2/lock", token: operator, want: 409}, "being provisioned")

	// The last unlocked controller stays unlocked.
	sh.do(t, h, specCase{name: "unlock controller-0", method: "POST", path: "/v1/hosts/controller-0/unlock", token: operator, want: 200})
	refused(specCase{name: "lock the only unlocked controller", method: "POST", path: "/v1/hosts/controller-0/lock", token: operator, want: 409}, "only unlocked controller")
	sh.do(t, h, specCase{name: "unlock controller-1", method: "POST", path: "/v1/hosts/controller-1/unlock", token: operator, want: 200})
	sh.do(t, h, specCase{name: "lock one of two controllers", method: "POST", path: "/v1/hosts/controller-0/lock", token: operator, want: 202})
	refused(specCase{name: "lock the other controller", method: "POST", path: "/v1/hosts/controller-1/lock", token: operator, want: 409}, "only unlocked controller")

	// A lock that waits for an app to move (its members never carry the switchover out) is
	// cancelled; with no lock running, there is nothing to cancel.
	refused(specCase{name: "lock cancel with none running", method: "POST", path: "/v1/hosts/edge-l1/lock/cancel", token: operator, want: 409}, "no lock of host edge-l1 is running")
	sh.do(t, h, specCase{name: "lock cancel unknown host", method: "POST", path: "/v1/hosts/nope/lock/cancel", token: operator, want: 404})
	sh.do(t, h, specCase{name: "lock cancel by reader", method: "POST", path: "/v1/hosts/edge-l1/lock/cancel", token: reader, want: 403})
	sh.do(t, h, specCase{name: "lock cancel without token", method: "POST", path: "/v1/hosts/edge-l1/lock/cancel", want: 401, offSpec: true})
	sh.do(t, h, specCase{name: "lock cancel unknown query", method: "POST", path: "/v1/hosts/edge-l1/lock/cancel?x=1", token: operator, want: 400, offSpec: true})
	sh.do(t, h, specCase{name: "add a group for an app", method: "POST", path: "/v1/groups", token: admin, body: `{"name":"lockers"}`, want: 201})
	for _, body := range []string{
		`{"hostname":"edge-l3","personality":"edgeworker","mgmt_ip":"192.168.204.64","group":"lockers"}`,
		`{"hostname":"edge-l4","personality":"edgeworker","mgmt_ip":"192.168.204.65","group":"lockers"}`,
	} {
		sh.do(t, h, specCase{name: "add an app member", method: "POST", path: "/v1/hosts", token: admin, body: body, want: 201})
	}
	sh.do(t, h, specCase{name: "unlock an app member", method: "POST", path: "/v1/hosts/edge-l3/unlock", token: operator, want: 200})
	sh.do(t, h, specCase{name: "add an app to move", method: "POST", path: "/v1/apps", token: operator, body: `{"name":"mover","group":"lockers","image":"mover:1"}`, want: 201})
	if err := c.Store.Write(ctx, func(tx store.Tx) error {
		a, err := tx.AppByName("mover")
		if err != nil {
			return err
		}
		for _, m := range a.Members {
			if err := tx.SetHostState(m.HostID, inventory.AvailAvailable, inventory.OperEnabled, a.CreatedAt); err != nil {
				return err
			}
			st := store.AppMemberStatus{HostID: m.HostID, Role: "standby", Healthy: true, ReportedAt: a.CreatedAt}
			if m.Hostname == "edge-l3" {
				st.Role = "active"
				if _, err := tx.SetAppActive(a.ID, m.HostID, 1); err != nil {
					return err
				}
			}
			if err := tx.SetAppMemberStatus(a.ID, st); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	body = sh.do(t, h, specCase{name: "lock the app's active member", method: "POST", path: "/v1/hosts/edge-l3/lock", token: operator, body: `{"timeout":"10m"}`, want: 202})
	if err := json.Unmarshal(body, &op); err != nil || op.State != "draining" || !strings.Contains(op.Message, "moving app mover") {
		t.Errorf("lock of the app's active member: %s (%v); want it draining, moving the app", body, err)
	}
	body = sh.do(t, h, specCase{name: "lock cancel", method: "POST", path: "/v1/hosts/edge-l3/lock/cancel", token: operator, want: 200})
	if err := json.Unmarshal(body, &op); err != nil || op.State != "cancelled" || op.FinishedAt == nil || !strings.Contains(op.Message, "cancelled by token:") {
		t.Errorf("lock cancel: %s (%v); want it cancelled, naming who", body, err)
	}

	// Each change has its event.
	body = sh.do(t, h, specCase{name: "lock events", method: "GET", path: "/v1/events?entity_id=host%3Dedge-l1", token: reader, want: 200})
	var events apitype.EventList
	if err := json.Unmarshal(body, &events); err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range events.Events {
		actions = append(actions, e.Action)
	}
	if diff := cmp.Diff([]string{"alarm.clear", "host.unlock", "alarm.set", "host.lock", "host.unlock", "host.add"}, actions); diff != "" {
		t.Errorf("events of edge-l1 (-want +got):\n%s", diff)
	}
}
