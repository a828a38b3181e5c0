package wire_test

import (
	"encoding/json"
	"go/build"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/wire"
)

func TestDetection(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ hb, probes, wantHB, wantProbes int }{
		{0, 0, wire.DefaultHeartbeatMillis, wire.DefaultProbes},
		{300, 0, 300, wire.DefaultProbes},
		{0, 3, wire.DefaultHeartbeatMillis, 3},
		{1000, 10, 1000, 10},
	} {
		hb, probes := wire.Detection(tc.hb, tc.probes)
		if hb != tc.wantHB || probes != tc.wantProbes {
			t.Errorf("Detection(%d, %d) = %d, %d; want %d, %d", tc.hb, tc.probes, hb, probes, tc.wantHB, tc.wantProbes)
		}
	}
	// The defaults are within the limits, and so is the fastest detection
	// the limits allow: every app the controller accepts can be run.
	hb, probes := wire.Detection(0, 0)
	if hb < wire.MinHeartbeatMillis || hb > wire.MaxHeartbeatMillis || probes < wire.MinProbes || probes > wire.MaxProbes ||
		hb < probes*wire.MinProbeMillis {
		t.Errorf("the default detection %d ms / %d probes is outside the limits", hb, probes)
	}
	if wire.MinProbes*wire.MinProbeMillis > wire.MinHeartbeatMillis {
		t.Errorf("the shortest heartbeat time (%d ms) cannot hold the fewest probes (%d every %d ms)",
			wire.MinHeartbeatMillis, wire.MinProbes, wire.MinProbeMillis)
	}
}

func TestReadyPath(t *testing.T) {
	t.Parallel()
	if got, want := wire.ReadyPath("plc-bridge"), "/v1/apps/plc-bridge/ready"; got != want {
		t.Errorf("ReadyPath = %q, want %q", got, want)
	}
	if !strings.HasPrefix(wire.ReadyPath("x"), wire.LocalAppPath) {
		t.Errorf("ReadyPath is not under LocalAppPath %s", wire.LocalAppPath)
	}
}

// TestFormat holds the protocol to the JSON agents already speak: a field
// renamed, or one that is no longer left out when empty, breaks the agents
// in the field, so each message is compared with its form on the wire.
func TestFormat(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		msg  any
		want string
	}{
		{"join", wire.JoinRequest{Capability: 2, Token: "hb_a.b", Hostname: "edge-01", MACs: []string{"52:54:00:12:34:56"}, CSR: []byte("c")},
			`{"capability":2,"token":"hb_a.b","hostname":"edge-01","macs":["52:54:00:12:34:56"],"csr":"Yw=="}`},
		{"join with mgmt mac", wire.JoinRequest{Capability: 2, MgmtMAC: "52:54:00:12:34:56"},
			`{"capability":2,"token":"","hostname":"","macs":null,"mgmt_mac":"52:54:00:12:34:56","csr":null}`},
		{"join response", wire.JoinResponse{HostUUID: "u", Hostname: "edge-01", Certificate: []byte("c"), CA: []byte("a")},
			`{"host_uuid":"u","hostname":"edge-01","certificate":"Yw==","ca":"YQ=="}`},
		{"renew", wire.RenewRequest{Capability: 1, CSR: []byte("c")}, `{"capability":1,"csr":"Yw=="}`},
		{"renew response", wire.RenewResponse{Certificate: []byte("c")}, `{"certificate":"Yw=="}`},
		{"heartbeat of capability 1", wire.Heartbeat{Capability: 1, Seq: 7, Boot: "b", InventoryHash: "sha256:aa"},
			`{"capability":1,"seq":7,"boot":"b","inventory_hash":"sha256:aa","desired_version":0}`},
		{"heartbeat with apps", wire.Heartbeat{Capability: 2, Seq: 8, Boot: "b", DesiredVersion: 3, Apps: []wire.AppStatus{
			{Name: "plc", Role: wire.RoleActive, Active: "u1", Epoch: 2, Healthy: true, Peers: 1, SwitchoverSeq: 1,
				Last: &wire.AppSwitch{Epoch: 2, From: "u2", To: "u1", At: at, DurationMillis: 110, Reason: "failure"}},
			{Name: "hmi", Role: wire.RoleWitness}}},
			`{"capability":2,"seq":8,"boot":"b","inventory_hash":"","desired_version":3,"apps":[` +
				`{"name":"plc","role":"active","active":"u1","epoch":2,"healthy":true,"peers":1,"switchover_seq":1,` +
				`"last":{"epoch":2,"from":"u2","to":"u1","at":"2026-11-23T08:00:00Z","duration_ms":110,"reason":"failure"}},` +
				`{"name":"hmi","role":"witness","epoch":0,"healthy":false,"peers":0}]}`},
		{"heartbeat reply", wire.HeartbeatReply{IntervalMillis: 30000, DesiredVersion: 3, SendInventory: true},
			`{"interval_ms":30000,"desired_version":3,"send_inventory":true}`},
		{"heartbeat reply with renewal", wire.HeartbeatReply{IntervalMillis: 1000, RenewBy: &at},
			`{"interval_ms":1000,"desired_version":0,"send_inventory":false,"renew_by":"2026-11-23T08:00:00Z"}`},
		{"inventory", wire.InventoryReport{Capability: 1, Hash: "sha256:aa", Inventory: wire.Inventory{
			CollectedAt: at, CPUs: []wire.CPU{{Socket: 0, Model: "m", Cores: 4, Threads: 8, MHz: 2400}},
			Memory: wire.Memory{TotalBytes: 8, AvailableBytes: 4, HugePages2MiB: 2},
			Disks:  []wire.Disk{{Name: "vda", SizeBytes: 1, Type: "virtual", Serial: "s", Model: "d", InUse: true}},
			Interfaces: []wire.Interface{{Name: "eth0", MAC: "52:54:00:12:34:56", SpeedMbps: 1000, State: "up", MTU: 1500,
				Addresses: []string{"192.168.204.10/24"}}},
			OS:     wire.OS{ID: "debian", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)", IDLike: "x"},
			Kernel: "6.1.0", Containerd: "1.7", Kubelet: "v1.37.2"}},
			`{"capability":1,"hash":"sha256:aa","inventory":{"collected_at":"2026-11-23T08:00:00Z",` +
				`"cpus":[{"socket":0,"model":"m","cores":4,"threads":8,"mhz":2400}],` +
				`"memory":{"total_bytes":8,"available_bytes":4,"hugepages_2mib":2},` +
				`"disks":[{"name":"vda","size_bytes":1,"type":"virtual","rotational":false,"serial":"s","model":"d","in_use":true}],` +
				`"interfaces":[{"name":"eth0","mac":"52:54:00:12:34:56","speed_mbps":1000,"state":"up","mtu":1500,` +
				`"addresses":["192.168.204.10/24"],"virtual":false}],` +
				`"os":{"id":"debian","version_id":"12","pretty_name":"Debian GNU/Linux 12 (bookworm)","id_like":"x"},` +
				`"kernel":"6.1.0","containerd":"1.7","kubelet":"v1.37.2"}}`},
		{"desired", wire.Desired{Version: 3, Apps: []wire.App{{Name: "plc", Port: 502, VIP: "10.20.0.50/24",
			Members: []wire.AppMember{{HostUUID: "u1", Hostname: "edge-01", Address: "192.168.204.10:6386"},
				{HostUUID: "u3", Hostname: "edge-03", Address: "192.168.204.12:6386", Witness: true}},
			HeartbeatMillis: 300, Probes: 3, LeanProbes: true,
			Health:     wire.Health{Kind: "http", Path: "/healthz", IntervalMillis: 100, Failures: 2},
			Switchover: &wire.Switchover{Seq: 1, To: "u1"}}}},
			`{"version":3,"apps":[{"name":"plc","port":502,"vip":"10.20.0.50/24","members":[` +
				`{"host_uuid":"u1","hostname":"edge-01","address":"192.168.204.10:6386"},` +
				`{"host_uuid":"u3","hostname":"edge-03","address":"192.168.204.12:6386","witness":true}],` +
				`"heartbeat_ms":300,"probes":3,"lean_probes":true,` +
				`"health":{"kind":"http","path":"/healthz","interval_ms":100,"failures":2},"switchover":{"seq":1,"to":"u1"}}]}`},
		{"desired, defaults", wire.Desired{Version: 1, Apps: []wire.App{{Name: "hmi"}}},
			`{"version":1,"apps":[{"name":"hmi","members":null,"health":{}}]}`},
		{"local app", wire.LocalApp{Name: "plc", Role: wire.RoleActive, Active: true, Epoch: 2, ActiveMember: "edge-01", ValidMillis: 80},
			`{"name":"plc","role":"active","active":true,"epoch":2,"active_member":"edge-01","valid_ms":80}`},
		{"local app, standby", wire.LocalApp{Name: "plc", Role: wire.RoleStandby},
			`{"name":"plc","role":"standby","active":false,"epoch":0}`},
		{"local switchover", wire.LocalSwitchover{To: "edge-02"}, `{"to":"edge-02"}`},
	} {
		got, err := json.Marshal(tc.msg)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if diff := cmp.Diff(tc.want, string(got)); diff != "" {
			t.Errorf("%s on the wire (-want +got):\n%s", tc.name, diff)
		}
	}
}

// TestOlderAgent: a heartbeat of an agent of capability 1 (no apps, no
// desired version) and an error answer read as they always have.
func TestOlderAgent(t *testing.T) {
	t.Parallel()
	var hb wire.Heartbeat
	if err := json.Unmarshal([]byte(`{"capability":1,"seq":3,"boot":"b","inventory_hash":"sha256:aa"}`), &hb); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wire.Heartbeat{Capability: 1, Seq: 3, Boot: "b", InventoryHash: "sha256:aa"}, hb); diff != "" {
		t.Errorf("capability 1 heartbeat (-want +got):\n%s", diff)
	}
	var e wire.Error
	if err := json.Unmarshal([]byte(`{"error":{"code":"unauthenticated","message":"m"}}`), &e); err != nil {
		t.Fatal(err)
	}
	if e.Error.Code != "unauthenticated" || e.Error.Message != "m" {
		t.Errorf("error answer read as %+v", e)
	}
}

// TestStandardLibraryOnly: the agent imports this package, and stays small.
func TestStandardLibraryOnly(t *testing.T) {
	t.Parallel()
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if first, _, _ := strings.Cut(imp, "/"); strings.Contains(first, ".") {
			t.Errorf("wire imports %s, which is not in the standard library", imp)
		}
	}
}
