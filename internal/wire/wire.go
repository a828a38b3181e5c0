// Package wire defines the messages between hb-agent and the controller:
// enrollment, heartbeats and hardware inventory. It is the agent protocol,
// versioned as a whole by CapabilityVersion, which the agent sends in every
// message so that the controller knows what the agent understands. It
// imports only the standard library: the agent must stay small.
//
// Rules for changing it: add fields, never change the meaning of one;
// raise CapabilityVersion when the agent starts to understand something
// new; the controller answers an older agent in the terms it knows.
package wire

import (
	"cmp"
	"math/big"
	"time"
)

// CapabilityVersion is the version of the protocol this build speaks.
//
//	1: enrollment, heartbeats with a server-chosen interval, hardware inventory.
//	2: redundant apps: the desired state (DesiredPath) lists the apps this
//	   host is a member or witness of; heartbeats report each app's state.
//	3: the members of an app accept on their failover port only each
//	   other's current certificates (AppMember.CertSerial). Agents of
//	   capability 2 ignore the field and accept any certificate of the
//	   controller's CA that names a member.
//	4: a member whose host is locked (AppMember.Locked) never takes an
//	   app's active role and hands it on when it has it.
//	5: a member whose agent lacks a permission its app needs (an app with
//	   a VIP needs CAP_NET_ADMIN and CAP_NET_RAW) reports it
//	   (AppStatus.Missing), is unhealthy, and never takes the active role.
const CapabilityVersion = 5

// Paths of the agent API, served by the controller over mutual TLS (all but
// JoinPath, which is authenticated by the enrollment token).
const (
	JoinPath      = "/agent/v1/join"
	HeartbeatPath = "/agent/v1/heartbeat"
	InventoryPath = "/agent/v1/inventory"
	RenewPath     = "/agent/v1/renew"
	// DesiredPath answers the host's desired state (Desired). The agent
	// fetches it when a heartbeat reply's DesiredVersion differs from the
	// version it holds.
	DesiredPath = "/agent/v1/desired"
	// CAPath serves the controller CA without authentication: the agent
	// accepts it only when its public key hash matches the pin it was given.
	CAPath = "/agent/v1/ca"
)

// FailoverPort is the port, TCP and UDP, of an agent's failover listener
// and probe socket, where the members of an app's group reach each other
// (AppMember.Address).
const FailoverPort = 6386

// JoinRequest asks the controller to admit this node. The token proves the
// admin allowed it; the controller matches the node to a host of the
// inventory by hostname (and MAC, when the host has one) and signs CSR.
type JoinRequest struct {
	Capability int      `json:"capability"`
	Token      string   `json:"token"`
	Hostname   string   `json:"hostname"`
	MACs       []string `json:"macs"` // the node's Ethernet MACs, lowercase colon form
	// MgmtMAC is the MAC of the interface the agent reaches the controller
	// through ("" over loopback): the host\'s management MAC when the
	// controller adds the host itself (auto-add).
	MgmtMAC string `json:"mgmt_mac,omitempty"`
	CSR     []byte `json:"csr"` // PEM, PKCS #10, the node's own key
}

// JoinResponse admits the node: Certificate (PEM) names the host by its
// uuid, and CA (PEM) is what the agent trusts from now on.
type JoinResponse struct {
	HostUUID    string `json:"host_uuid"`
	Hostname    string `json:"hostname"`
	Certificate []byte `json:"certificate"`
	CA          []byte `json:"ca"`
}

// RenewRequest asks for a new certificate for the same identity. The
// controller grants it only once less than a third of the certificate's
// validity is left, when heartbeat replies carry RenewBy; earlier it
// answers 409 (conflict).
type RenewRequest struct {
	Capability int    `json:"capability"`
	CSR        []byte `json:"csr"`
}

// RenewResponse carries the new certificate (PEM).
type RenewResponse struct {
	Certificate []byte `json:"certificate"`
}

// Heartbeat is the small periodic message of an agent. The host is the
// one its client certificate names, never one named in the body.
type Heartbeat struct {
	Capability int    `json:"capability"`
	Seq        uint64 `json:"seq"` // grows by one per heartbeat of this agent run
	// Boot identifies the agent run (random at start), so a restart is
	// not mistaken for a replay.
	Boot string `json:"boot"`
	// InventoryHash is the hash of the last inventory the agent sent;
	// the controller asks for a new one when it differs from what it holds.
	InventoryHash string `json:"inventory_hash"`
	// DesiredVersion is the version of the desired state the agent has.
	DesiredVersion uint64 `json:"desired_version"`
	// Apps is the state of each app this host is a member or witness of,
	// as this member sees it (capability 2).
	Apps []AppStatus `json:"apps,omitempty"`
}

// HeartbeatReply tells the agent when to send the next heartbeat (the
// controller owns liveness) and whether to send more.
type HeartbeatReply struct {
	IntervalMillis int64      `json:"interval_ms"` // wait this long before the next heartbeat
	DesiredVersion uint64     `json:"desired_version"`
	SendInventory  bool       `json:"send_inventory"`
	RenewBy        *time.Time `json:"renew_by,omitempty"` // renew the certificate before this
}

// Inventory is the hardware and software of a node.
type Inventory struct {
	CollectedAt time.Time   `json:"collected_at"`
	CPUs        []CPU       `json:"cpus"`
	Memory      Memory      `json:"memory"`
	Disks       []Disk      `json:"disks"`
	Interfaces  []Interface `json:"interfaces"`
	OS          OS          `json:"os"`
	Kernel      string      `json:"kernel"`     // uname release
	Containerd  string      `json:"containerd"` // version, empty when absent
	Kubelet     string      `json:"kubelet"`    // version, empty when absent
}

// CPU is one processor package (socket).
type CPU struct {
	Socket  int    `json:"socket"`
	Model   string `json:"model"`
	Cores   int    `json:"cores"`   // physical cores of this socket
	Threads int    `json:"threads"` // logical CPUs of this socket
	MHz     int    `json:"mhz,omitempty"`
}

// Memory is the node's memory in bytes.
type Memory struct {
	TotalBytes     uint64 `json:"total_bytes"`
	AvailableBytes uint64 `json:"available_bytes"`
	HugePages2MiB  uint64 `json:"hugepages_2mib,omitempty"`
}

// Disk is one block device (not a partition).
type Disk struct {
	Name       string `json:"name"` // sda, nvme0n1, vda
	SizeBytes  uint64 `json:"size_bytes"`
	Type       string `json:"type"` // hdd, ssd, nvme, virtual
	Rotational bool   `json:"rotational"`
	Serial     string `json:"serial,omitempty"`
	Model      string `json:"model,omitempty"`
	InUse      bool   `json:"in_use"` // partitioned, mounted, or held by LVM/RAID
}

// Interface is one network interface.
type Interface struct {
	Name      string   `json:"name"`
	MAC       string   `json:"mac,omitempty"`
	SpeedMbps int      `json:"speed_mbps,omitempty"` // 0 when unknown
	State     string   `json:"state"`                // up, down, unknown (operstate)
	MTU       int      `json:"mtu"`
	Addresses []string `json:"addresses"` // CIDR form
	Virtual   bool     `json:"virtual"`   // no device behind it (veth, bridge, lo)
}

// OS is what /etc/os-release says.
type OS struct {
	ID         string `json:"id"`          // debian, ubuntu, centos, rhel, rocky
	VersionID  string `json:"version_id"`  // 12, 22.04, 9
	PrettyName string `json:"pretty_name"` // Debian GNU/Linux 12 (bookworm)
	IDLike     string `json:"id_like,omitempty"`
}

// Error is the body of an error answer of the agent API, as in the REST API.
type Error struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// InventoryReport is the body of InventoryPath: the inventory and the hash
// the agent will send in its heartbeats while nothing changes.
type InventoryReport struct {
	Capability int       `json:"capability"`
	Hash       string    `json:"hash"`
	Inventory  Inventory `json:"inventory"`
}

// Desired is the body of DesiredPath: what the controller wants this host
// to run. The agent keeps the last one on disk, so that its apps keep their
// redundancy while the controller is unreachable.
type Desired struct {
	Version uint64 `json:"version"`
	Apps    []App  `json:"apps"`
}

// An app's failure detection when it does not set its own: a heartbeat
// time of 100 ms with 4 probes in it.
const (
	DefaultHeartbeatMillis = 100
	DefaultProbes          = 4
)

// Detection is an app's failure detection with the defaults filled in:
// the heartbeat time in milliseconds and the probes in it (0: default).
func Detection(hbMillis, probes int) (int, int) {
	return cmp.Or(hbMillis, DefaultHeartbeatMillis), cmp.Or(probes, DefaultProbes)
}

// Limits of an app's failure detection: a heartbeat time of 20 ms to
// 60 s, 3 to 50 probes in it, and a probe at most every 5 ms.
const (
	MinHeartbeatMillis = 20
	MaxHeartbeatMillis = 60000
	MinProbes          = 3
	MaxProbes          = 50
	MinProbeMillis     = 5
)

// App is a redundant app as its members' agents run it: the members agree
// among themselves which one is active, hold the VIP there, and tell the
// app through the agent's local endpoint.
type App struct {
	Name string `json:"name"`
	// Port is the app's port on every member (0: none). The default
	// health check connects to it on 127.0.0.1.
	Port int `json:"port,omitempty"`
	// VIP is addr/prefix (empty: none). The active member adds it to the
	// interface that holds an address of the same network and announces
	// it with gratuitous ARP.
	VIP string `json:"vip,omitempty"`
	// Members are the voters of the app's group, app members and witnesses
	// alike; every member gets the same list.
	Members []AppMember `json:"members"`
	// HeartbeatMillis is the members' failure detection time: a standby
	// that hears nothing from the active for this long starts an election.
	// 0: DefaultHeartbeatMillis.
	HeartbeatMillis int `json:"heartbeat_ms,omitempty"`
	// Probes is how many times the active probes every member in a
	// heartbeat time (each probe renews its lease), at least 3 (VRRP's
	// master-down interval is three adverts). 0: DefaultProbes.
	Probes int `json:"probes,omitempty"`
	// LeanProbes once left raft's commit messages out beside the probes.
	// Every group probes with single datagrams now (one per probe and
	// member, the witness's answer, a probe again when an answer is late),
	// with or without it; it is kept so that apps that set it still
	// decode.
	LeanProbes bool `json:"lean_probes,omitempty"`
	// Health is how each member checks its own copy of the app.
	Health Health `json:"health"`
	// Switchover, when set, asks the group to move the active role (a
	// planned move). Seq grows with every request of the app; members
	// report the last Seq they carried out.
	Switchover *Switchover `json:"switchover,omitempty"`
}

// AppMember is one voter of an app's group.
type AppMember struct {
	HostUUID string `json:"host_uuid"` // what its certificate names
	Hostname string `json:"hostname"`
	// Address is host:port of the member agent's failover listener.
	Address string `json:"address"`
	// Witness members vote but never run the app (the tie-breaker of a
	// two-member group).
	Witness bool `json:"witness,omitempty"`
	// CertSerial is the serial (hex) of the member agent's current
	// certificate ("": it has none, as its host's agent never joined).
	// The other members accept from it that certificate, or one of a
	// later generation (CertGeneration): its renewal, before the desired
	// state names it; never an earlier one, replaced or revoked, for a
	// new connection (KeepCertConn says which open ones stay).
	CertSerial string `json:"cert_serial,omitempty"`
	// Locked members' hosts are out of service: they vote, but never take
	// the active role, and hand it on when they hold it (to a healthy
	// member, or to none: the app then stops until a member is unlocked or
	// healthy). Agents of capability 3 and earlier do not know it.
	Locked bool `json:"locked,omitempty"`
}

// certGenerationShift is where an agent certificate's serial holds its
// generation: above 128 random bits.
const certGenerationShift = 128

// MaxCertGeneration is the highest generation a certificate serial holds
// (a serial has at most 20 octets).
const MaxCertGeneration = 1<<31 - 1

// renewalBits are the low bits of a generation that count the renewals
// since the host's agent joined; the bits above count its joins.
const renewalBits = 16

// CertGeneration is the generation of an agent certificate with serial
// serial: the controller counts every certificate it signs for a host and
// puts the count in the serial's bits above the 128 random ones, joins
// in the high bits, renewals since the last join in the low 16
// (NextCertGeneration). Certificates signed before generations have 0.
func CertGeneration(serial *big.Int) uint64 {
	g := new(big.Int).Rsh(serial, certGenerationShift)
	if !g.IsUint64() {
		return MaxCertGeneration
	}
	return min(g.Uint64(), MaxCertGeneration)
}

// CertEnrollment is the join an agent certificate with serial serial
// descends from: a renewal keeps it, a join raises it.
func CertEnrollment(serial *big.Int) uint64 { return CertGeneration(serial) >> renewalBits }

// NextCertGeneration is the generation of the certificate the controller
// signs for a host whose current one has serial prev (hex; "": none), at
// a join (renewal false) or a renewal by the holder of prev. A renewal
// past the 65535th counts as a join.
func NextCertGeneration(prev string, renewal bool) uint64 {
	var gen uint64
	if p, ok := new(big.Int).SetString(prev, 16); ok && prev != "" {
		gen = CertGeneration(p)
	}
	if renewal && gen&(1<<renewalBits-1) < 1<<renewalBits-1 {
		return gen + 1
	}
	return (gen>>renewalBits + 1) << renewalBits
}

// CertSerial is the serial of an agent certificate of generation gen
// with the random bits random (those above 128 bits are dropped).
func CertSerial(gen uint64, random *big.Int) *big.Int {
	low := new(big.Int).And(random, new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), certGenerationShift), big.NewInt(1)))
	g := new(big.Int).SetUint64(min(gen, MaxCertGeneration))
	return low.Or(low, g.Lsh(g, certGenerationShift))
}

// AcceptCert says whether a member whose current certificate has serial
// current (hex, as CertSerial) is the holder of a certificate with serial
// got, for a new connection: the same one, or one of a later generation
// (a renewal or join the member has not heard of yet). A member with no
// current certificate has none that is accepted.
func AcceptCert(current string, got *big.Int) bool {
	cur, ok := new(big.Int).SetString(current, 16)
	if !ok || current == "" {
		return false
	}
	return cur.Cmp(got) == 0 || CertGeneration(got) > CertGeneration(cur)
}

// KeepCertConn says whether a connection made with a certificate of
// serial got may stay open once a member's current certificate has serial
// current: when AcceptCert does, or when got is an earlier renewal of the
// same join (its holder renewed it, proving it holds the key, and opens
// its next connections with the new one). A connection of a certificate
// from before the host's agent joined again is closed: whoever held it
// then may not be the host.
func KeepCertConn(current string, got *big.Int) bool {
	if AcceptCert(current, got) {
		return true
	}
	cur, ok := new(big.Int).SetString(current, 16)
	return ok && current != "" && CertEnrollment(got) == CertEnrollment(cur) && CertGeneration(got) > 0
}

// Health is an app's health check, run by each member on its own copy.
type Health struct {
	// Kind is "tcp" (connect to 127.0.0.1:Port), "http" (GET Path on it,
	// 2xx or 3xx), or "none" (the app is always healthy). Empty: tcp
	// when the app has a port, none otherwise.
	Kind string `json:"kind,omitempty"`
	Path string `json:"path,omitempty"`
	// IntervalMillis between checks (0: 200); Failures in a row make the
	// app unhealthy (0: 3).
	IntervalMillis int `json:"interval_ms,omitempty"`
	Failures       int `json:"failures,omitempty"`
}

// Switchover is a planned move of an app's active role.
type Switchover struct {
	Seq uint64 `json:"seq"`
	To  string `json:"to,omitempty"` // host uuid; empty: any healthy standby
}

// Roles of a member in AppStatus.
const (
	RoleActive  = "active"  // holds the app's active role (and its VIP)
	RoleStandby = "standby" // ready to take over
	RoleWitness = "witness" // votes only
	RoleDown    = "down"    // not running the app's group (bad config, no listener)
)

// AppStatus is one member's view of an app, sent in every heartbeat.
type AppStatus struct {
	Name string `json:"name"`
	Role string `json:"role"`
	// Active is the host uuid of the active member as this member knows
	// it, Epoch the term it was elected in (0: none yet).
	Active string `json:"active,omitempty"`
	Epoch  uint64 `json:"epoch"`
	// Healthy: this member's copy of the app passes its health check, and
	// its agent has every permission the app needs.
	Healthy bool `json:"healthy"`
	// Missing lists the permissions (Linux capabilities) the agent lacks
	// to serve as this app's active member, each as "CAP_X (what it is
	// for)"; while any is missing the member never takes the active role.
	Missing []string `json:"missing,omitempty"`
	// Peers is how many other members this member heard from within the
	// last second (only the active knows; others report 0).
	Peers int `json:"peers"`
	// SwitchoverSeq is the last planned switchover this member saw done.
	SwitchoverSeq uint64 `json:"switchover_seq,omitempty"`
	// Last is the last change of active member this member saw.
	Last *AppSwitch `json:"last,omitempty"`
}

// AppSwitch is one change of an app's active member.
type AppSwitch struct {
	Epoch uint64    `json:"epoch"`
	From  string    `json:"from,omitempty"` // host uuid; empty: the first active
	To    string    `json:"to"`
	At    time.Time `json:"at"` // when the new active took the role
	// DurationMillis is from the moment the group lost its active (the
	// last contact the new active had with the old one, or the start of a
	// planned move) to the new active taking the role.
	DurationMillis int64  `json:"duration_ms"`
	Reason         string `json:"reason"` // one of the Switch… reasons
}

// Reasons of an AppSwitch, the only ones there are: a controller ignores
// a switchover reported with another.
const (
	SwitchFirst     = "first"     // the app's first active member
	SwitchFailure   = "failure"   // the active member was lost
	SwitchPlanned   = "planned"   // an operator's or a node's planned move
	SwitchUnhealthy = "unhealthy" // the active member's app failed its check
)

// SwitchReason says whether r is one of the reasons of an AppSwitch.
func SwitchReason(r string) bool {
	switch r {
	case SwitchFirst, SwitchFailure, SwitchPlanned, SwitchUnhealthy:
		return true
	}
	return false
}

// Paths of the agent's local endpoint, served on a unix socket of the
// node (not the network) for the apps running there.
const (
	// LocalAppsPath lists this node's apps as []LocalApp.
	LocalAppsPath = "/v1/apps"
	// LocalAppPath (with the app's name appended) answers one LocalApp.
	// With ?watch=1 it streams one LocalApp per line: at once, at every
	// change, and at every probe (20 ms at the defaults) while this member
	// is active. An app that must act only while active stops acting when
	// ValidMillis has passed since the last line, or when the stream ends.
	LocalAppPath = "/v1/apps/"
	// POST LocalAppPath + NAME + "/switchover" (body LocalSwitchover,
	// optional) on the active member hands the role over: a planned move,
	// answered once a standby has taken it (the answer is this member's
	// LocalApp), 409 when this member is not active or no standby is
	// healthy.
)

// ReadyPort is the agent's readiness listener on the node's loopback:
// HTTPS with the agent's certificate, for the kubelet's readiness probe
// of an app's pods (kubelets do not verify a probe's certificate).
const ReadyPort = 6387

// ReadyPath is the readiness probe of app's pod on this node: 200 while
// this member is active, 503 while it is not, 404 when this node runs no
// such app. A Service selecting the app's pods therefore sends traffic to
// the active member's pod alone, without the controller.
func ReadyPath(app string) string { return LocalAppPath + app + "/ready" }

// LocalSwitchover is the body of a local switchover request.
type LocalSwitchover struct {
	To string `json:"to,omitempty"` // hostname of the member to move to; empty: any healthy standby
}

// LocalApp is what an app learns from its local agent.
type LocalApp struct {
	Name string `json:"name"`
	Role string `json:"role"` // active, standby or witness
	// Active says whether this node's copy of the app is the active one.
	Active bool   `json:"active"`
	Epoch  uint64 `json:"epoch"`
	// ActiveMember is the hostname of the active member, as far as this
	// member knows ("" when none).
	ActiveMember string `json:"active_member,omitempty"`
	// ValidMillis is how long, from when this answer was written, the
	// active role is assured without a newer answer (0 unless active).
	ValidMillis int64 `json:"valid_ms,omitempty"`
}
