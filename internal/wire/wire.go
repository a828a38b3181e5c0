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

import "time"

// CapabilityVersion is the version of the protocol this build speaks.
//
//	1: enrollment, heartbeats with a server-chosen interval, hardware inventory.
const CapabilityVersion = 1

// Paths of the agent API, served by the controller over mutual TLS (all but
// JoinPath, which is authenticated by the enrollment token).
const (
	JoinPath      = "/agent/v1/join"
	HeartbeatPath = "/agent/v1/heartbeat"
	InventoryPath = "/agent/v1/inventory"
	RenewPath     = "/agent/v1/renew"
	// CAPath serves the controller CA without authentication: the agent
	// accepts it only when its public key hash matches the pin it was given.
	CAPath = "/agent/v1/ca"
)

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

// RenewRequest asks for a new certificate for the same identity.
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
