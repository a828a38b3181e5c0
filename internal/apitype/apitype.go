// Package apitype defines the JSON shapes of Hummingbird's REST API v1,
// shared by the controller's handlers and the typed client. The contract
// they implement is api/openapi.yaml. Storage rows are separate types in
// package store; nothing here is written to the database as it is.
package apitype

import (
	"time"

	"hummingbird.io/hummingbird/internal/wire"
)

// Personalities a host can have.
const (
	PersonalityController = "controller"
	PersonalityWorker     = "worker"
	PersonalityStorage    = "storage"
	PersonalityEdgeworker = "edgeworker"
)

// Personalities lists the personalities a host may have.
var Personalities = []string{PersonalityController, PersonalityWorker, PersonalityStorage, PersonalityEdgeworker}

// Host states.
const (
	AdminLocked       = "locked"
	AdminUnlocked     = "unlocked"
	OperDisabled      = "disabled"
	OperEnabled       = "enabled"
	AvailOffline      = "offline"
	AvailOnline       = "online"
	AvailAvailable    = "available"
	AvailDegraded     = "degraded"
	AvailFailed       = "failed"
	ProvUnprovisioned = "unprovisioned"
	ProvProvisioning  = "provisioning"
	ProvProvisioned   = "provisioned"
	ProvFailed        = "failed"
)

// HostEnums lists the values each enumerated host field (and list filter) takes.
var HostEnums = map[string][]string{
	"personality":    Personalities,
	"administrative": {AdminLocked, AdminUnlocked},
	"operational":    {OperDisabled, OperEnabled},
	"availability":   {AvailOffline, AvailOnline, AvailAvailable, AvailDegraded, AvailFailed},
	"invprovision":   {ProvUnprovisioned, ProvProvisioning, ProvProvisioned, ProvFailed},
}

// Host is one host of the inventory, StarlingX-shaped.
type Host struct {
	ID             int64             `json:"id"`
	UUID           string            `json:"uuid"`
	Hostname       string            `json:"hostname"`
	Personality    string            `json:"personality"`
	Administrative string            `json:"administrative"` // locked | unlocked
	Operational    string            `json:"operational"`    // disabled | enabled
	Availability   string            `json:"availability"`   // offline | online | available | degraded | failed
	InvProvision   string            `json:"invprovision"`   // unprovisioned | provisioning | provisioned | failed
	MgmtMAC        string            `json:"mgmt_mac"`
	MgmtIP         string            `json:"mgmt_ip"`
	Pool           string            `json:"pool"` // the address pool mgmt_ip is from
	Group          string            `json:"group"`
	Labels         map[string]string `json:"labels"`
	Location       string            `json:"location"`
	BMType         string            `json:"bm_type"`
	BMIP           string            `json:"bm_ip"`
	BMUsername     string            `json:"bm_username"`
	SSHUser        string            `json:"ssh_user"` // the controller's SSH login to provision the host; empty: root
	SSHKey         string            `json:"ssh_key"`  // name of a key in the controller's SSH key directory; empty: default
	// NodeState is Ready or NotReady for a host with a Kubernetes Node, as
	// the controller last read it; KubeletVersion and NodeReason with it.
	// Conflict: a Node of the host's name is not the host's (NodeReason says
	// why), and Hummingbird leaves it alone.
	NodeState      string    `json:"node_state"`
	KubeletVersion string    `json:"kubelet_version"`
	NodeReason     string    `json:"node_reason"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// HostCreate is the body of POST /v1/hosts.
type HostCreate struct {
	Hostname    string            `json:"hostname"`
	Personality string            `json:"personality"`
	MgmtMAC     string            `json:"mgmt_mac,omitempty"`
	MgmtIP      string            `json:"mgmt_ip,omitempty"`
	Pool        string            `json:"pool,omitempty"` // default: the management pool
	Location    string            `json:"location,omitempty"`
	Group       string            `json:"group,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	BMType      string            `json:"bm_type,omitempty"`
	BMIP        string            `json:"bm_ip,omitempty"`
	BMUsername  string            `json:"bm_username,omitempty"`
	SSHUser     string            `json:"ssh_user,omitempty"`
	SSHKey      string            `json:"ssh_key,omitempty"`
}

// HostUpdate is the body of PATCH /v1/hosts/{host}: a merge patch in which
// every field present replaces the stored one and an empty string clears an
// optional field. Labels, when present, replace the whole label set.
type HostUpdate struct {
	Hostname    *string            `json:"hostname,omitempty"`
	Personality *string            `json:"personality,omitempty"`
	MgmtMAC     *string            `json:"mgmt_mac,omitempty"`
	MgmtIP      *string            `json:"mgmt_ip,omitempty"`
	Pool        *string            `json:"pool,omitempty"`
	Location    *string            `json:"location,omitempty"`
	Group       *string            `json:"group,omitempty"`
	Labels      *map[string]string `json:"labels,omitempty"`
	BMType      *string            `json:"bm_type,omitempty"`
	BMIP        *string            `json:"bm_ip,omitempty"`
	BMUsername  *string            `json:"bm_username,omitempty"`
	SSHUser     *string            `json:"ssh_user,omitempty"`
	SSHKey      *string            `json:"ssh_key,omitempty"`
}

// HostLabels is the body of GET and POST /v1/hosts/{host}/labels and the
// answer of every label call: the host's labels after the call.
type HostLabels struct {
	Labels map[string]string `json:"labels"`
}

// HostList is the body of GET /v1/hosts. Next, when set, is the marker
// that fetches the following page.
type HostList struct {
	Hosts []Host `json:"hosts"`
	Next  string `json:"next,omitempty"`
}

// Pool modes and roles.
const (
	PoolStatic     = "static"  // operators give each host its address
	PoolDynamic    = "dynamic" // the controller allocates addresses and serves them by DHCP
	RoleManagement = "management"
	RoleEdge       = "edge"
)

// Pool is an address pool: the management network, or a routed edge subnet.
type Pool struct {
	ID           int64     `json:"id"`
	UUID         string    `json:"uuid"`
	Name         string    `json:"name"`
	Role         string    `json:"role"` // management | edge
	Mode         string    `json:"mode"` // static | dynamic
	Network      string    `json:"network"`
	Ranges       []string  `json:"ranges"` // "first-last"; the whole network when empty
	Gateway      string    `json:"gateway"`
	DNS          []string  `json:"dns"`
	NTP          []string  `json:"ntp"`
	Reserved     []string  `json:"reserved"` // addresses no host may take
	LeaseSeconds int64     `json:"lease_seconds"`
	Used         int       `json:"used"` // hosts holding an address of the pool
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// PoolCreate is the body of POST /v1/addrpools.
type PoolCreate struct {
	Name         string   `json:"name"`
	Network      string   `json:"network"`
	Mode         string   `json:"mode"`
	Ranges       []string `json:"ranges,omitempty"`
	Gateway      string   `json:"gateway,omitempty"`
	DNS          []string `json:"dns,omitempty"`
	NTP          []string `json:"ntp,omitempty"`
	Reserved     []string `json:"reserved,omitempty"`
	LeaseSeconds int64    `json:"lease_seconds,omitempty"` // default 86400
}

// PoolList is the body of GET /v1/addrpools.
type PoolList struct {
	Pools []Pool `json:"pools"`
}

// Token roles, from most to least powerful.
const (
	RoleAdmin    = "admin"
	RoleOperator = "operator"
	RoleReader   = "reader"
)

// Roles lists the roles of API tokens, most powerful first.
var Roles = []string{RoleAdmin, RoleOperator, RoleReader}

// Group is a group (federation) of hosts.
type Group struct {
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Members     []GroupMember     `json:"members"`
	Labels      map[string]string `json:"labels"` // the group's own labels, given to its members' Nodes
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
}

// GroupLabels is the body of GET and POST /v1/groups/{group}/labels and
// the answer of every group label call: the group's labels after the call.
type GroupLabels struct {
	Labels map[string]string `json:"labels"`
}

// GroupMember is a host of a group, with its availability.
type GroupMember struct {
	Hostname     string `json:"hostname"`
	Personality  string `json:"personality"`
	Availability string `json:"availability"`
}

// GroupCreate is the body of POST /v1/groups.
type GroupCreate struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// GroupList is the body of GET /v1/groups.
type GroupList struct {
	Groups []Group `json:"groups"`
}

// Token types.
const (
	TokenAPI    = "api"    // a bearer token for the REST API, with a role
	TokenEnroll = "enroll" // lets hb-agent join a node to its host
)

// Token describes a token. Its secret is never part of it.
type Token struct {
	ID          string     `json:"id"`
	Type        string     `json:"type"`           // api | enroll
	Role        string     `json:"role,omitempty"` // api tokens; enroll tokens have none
	MaxUses     int64      `json:"max_uses,omitempty"`
	Uses        int64      `json:"uses"`
	Host        string     `json:"host,omitempty"` // enroll tokens: the only host it admits
	Description string     `json:"description"`
	CreatedBy   string     `json:"created_by"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
}

// TokenCreate is the body of POST /v1/tokens. TTL is a Go duration
// ("24h", "90m"); empty means the token does not expire.
type TokenCreate struct {
	Type        string `json:"type,omitempty"` // api (default) | enroll
	Role        string `json:"role,omitempty"` // required for api tokens
	Uses        int64  `json:"uses,omitempty"` // enroll tokens: how many joins (0: no limit)
	Host        string `json:"host,omitempty"` // enroll tokens: the only hostname it admits
	Description string `json:"description,omitempty"`
	TTL         string `json:"ttl,omitempty"`
}

// TokenCreated is the answer to POST /v1/tokens: the only time the bearer
// secret is shown.
type TokenCreated struct {
	Token
	Secret string `json:"token"`
}

// TokenList is the body of GET /v1/tokens.
type TokenList struct {
	Tokens []Token `json:"tokens"`
}

// Event is one entry of the event log: who did what to which entity, when.
// Code, when set, is the StarlingX-style log id (200.020 host added,
// 200.021 operator command on a host, 200.022 host state change).
type Event struct {
	ID         int64     `json:"id"`
	UUID       string    `json:"uuid"`
	Time       time.Time `json:"time"`
	Code       string    `json:"code,omitempty"`
	EntityType string    `json:"entity_type"`
	EntityID   string    `json:"entity_id"`
	Action     string    `json:"action"`
	Actor      string    `json:"actor"`
	Reason     string    `json:"reason"`
}

// EventList is the body of GET /v1/events, newest first.
type EventList struct {
	Events []Event `json:"events"`
	Next   string  `json:"next,omitempty"`
}

// Alarm is an active alarm, StarlingX-shaped.
type Alarm struct {
	UUID                 string    `json:"uuid"`
	AlarmID              string    `json:"alarm_id"`
	EntityTypeID         string    `json:"entity_type_id"`
	EntityInstanceID     string    `json:"entity_instance_id"`
	Severity             string    `json:"severity"` // warning | minor | major | critical
	ReasonText           string    `json:"reason_text"`
	AlarmType            string    `json:"alarm_type"`
	ProbableCause        string    `json:"probable_cause"`
	ProposedRepairAction string    `json:"proposed_repair_action"`
	ServiceAffecting     bool      `json:"service_affecting"`
	Timestamp            time.Time `json:"timestamp"`  // when it was raised
	UpdatedAt            time.Time `json:"updated_at"` // when its severity or reason last changed
}

// AlarmList is the body of GET /v1/alarms: a page of the active alarms,
// in the order they were raised (oldest first).
type AlarmList struct {
	Alarms []Alarm `json:"alarms"`
	// Next is the marker of the next page; empty on the last.
	Next string `json:"next,omitempty"`
}

// HostInventory is the body of GET /v1/hosts/{host}/inventory: what the
// host's agent last reported.
type HostInventory struct {
	Hostname  string         `json:"hostname"`
	Hash      string         `json:"hash"`
	Inventory wire.Inventory `json:"inventory"`
}

// Cluster is the body of GET /v1/cluster: the Kubernetes cluster the
// controller manages, as its API server reports it.
type Cluster struct {
	Configured bool   `json:"configured"` // false: the controller runs without --kubeconfig
	Server     string `json:"server,omitempty"`
	Version    string `json:"version,omitempty"`
	Nodes      int    `json:"nodes"`
	NodesReady int    `json:"nodes_ready"`
	CAHash     string `json:"ca_hash,omitempty"` // the cluster CA's pin, as kubeadm join takes it
}

// Version is the body of GET /v1/version.
type Version struct {
	Version    string `json:"version"`
	APIVersion string `json:"api_version"`
}

// Error is the body of every error response.
type Error struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody says what went wrong: Code is stable (see package problem),
// Message is for a person, Field names the request field at fault.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// Controller is one of the controllers that share the database: GET /v1/controllers
// (hbctl controller-list).
type Controller struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Version string `json:"version"`
	// State is up, or lost while the leader counts it lost (alarm 400.005: it stopped renewing
	// its row).
	State  string `json:"state"`
	Leader bool   `json:"leader"`
	// Duties are the parts the leader runs; empty on the others.
	Duties []string `json:"duties"`
	// Epoch is the leader's epoch; 0 on the others.
	Epoch     int64     `json:"epoch"`
	StartedAt time.Time `json:"started_at"`
	// LastSeen is the controller's own clock at its last renewal.
	LastSeen time.Time `json:"last_seen"`
}

// ControllerList is the body of GET /v1/controllers, by name.
type ControllerList struct {
	Controllers []Controller `json:"controllers"`
}

// Controller states.
const (
	ControllerUp   = "up"
	ControllerLost = "lost"
)
