// Package store persists Hummingbird's state: one schema, embedded goose
// migrations, and one SQL implementation that runs on the embedded SQLite
// file (the zero-setup default) and on PostgreSQL (for several controllers).
//
// The store is deliberately narrow and dumb: it does not read the clock, make
// random ids or apply business rules. Callers (package inventory and friends)
// pass every timestamp and uuid in, and compose their work inside one
// transaction through Read and Write.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned (wrapped) when a looked-up row does not exist.
var ErrNotFound = errors.New("not found")

// Store opens transactions. Write transactions are serialized per database
// row they touch and retried on serialization failures, so fn may run more
// than once and must not have effects outside the transaction.
type Store interface {
	// Read runs fn in a read-only transaction.
	Read(ctx context.Context, fn func(Tx) error) error
	// Write runs fn in a read-write transaction, committed if fn returns nil.
	Write(ctx context.Context, fn func(Tx) error) error
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Dialect names the database behind the store ("sqlite" or "postgres").
	Dialect() string
	Close() error
}

// Tx is what a transaction can do. Every method runs inside the one
// transaction it belongs to.
type Tx interface {
	// NextID hands out the next value of a named counter ("hosts", "events",
	// "pools", "alarms", "provision_jobs", "apps").
	NextID(counter string) (int64, error)

	InsertHost(h *Host) error
	UpdateHost(h *Host) error
	DeleteHost(id int64) error
	HostByID(id int64) (Host, error)
	HostByUUID(uuid string) (Host, error)
	HostByHostname(name string) (Host, error)
	HostByMAC(mac string) (Host, error)
	HostByIP(ip string) (Host, error)
	ListHosts(f HostFilter) ([]Host, error)

	InsertToken(t *Token) error
	TokenByID(id string) (Token, error)
	ListTokens(kind string) ([]Token, error)
	DeleteToken(id string) error
	CountTokens(kind string) (int, error)
	// UseToken counts one use of a token, or fails with ErrNotFound when
	// its uses are spent.
	UseToken(id string) error

	// SetHostState stores a host's availability and operational state.
	SetHostState(id int64, availability, operational string, at time.Time) error
	// HostAgent and SetHostAgent read and write the serial of the client
	// certificate a host's agent holds ("" when it has none).
	HostAgent(id int64) (serial string, err error)
	SetHostAgent(id int64, serial string) error
	// SwapHostAgent sets the serial to serial only while it is still old,
	// and fails with ErrNotFound when another transaction changed it
	// first: two joins or renewals racing for one host, one wins.
	SwapHostAgent(id int64, old, serial string) error
	// ListAgentHosts lists the hosts whose agent holds a certificate, by
	// id: no more of each than the heartbeat monitor keeps.
	ListAgentHosts() ([]AgentHost, error)
	// HostInventory and SetHostInventory read and write a host's hardware
	// inventory (JSON of wire.Inventory) and its hash.
	HostInventory(id int64) (inventory, hash string, err error)
	SetHostInventory(id int64, inventory, hash string) error

	// RaiseAlarm stores an alarm, or updates the one with the same alarm id
	// and entity; raised says whether it is new.
	RaiseAlarm(a *Alarm) (raised bool, err error)
	// ClearAlarm deletes an alarm; cleared says whether there was one.
	ClearAlarm(alarmID, entity string) (cleared bool, err error)
	ListAlarms(f AlarmFilter) ([]Alarm, error)
	AlarmByUUID(uuid string) (Alarm, error)

	InsertPool(p *Pool) error
	DeletePool(id int64) error
	PoolByID(id int64) (Pool, error)
	PoolByName(name string) (Pool, error)
	// ManagementPool is the pool with the management role.
	ManagementPool() (Pool, error)
	ListPools() ([]Pool, error)
	// LockPool serializes address allocation in a pool until the
	// transaction ends.
	LockPool(id int64) error
	// HostsInPool lists up to limit hosts whose address is from the pool.
	HostsInPool(poolID int64, limit int) ([]Host, error)
	// SetPoolAllocFrom stores where the pool's next allocation starts
	// looking (Pool.AllocFrom).
	SetPoolAllocFrom(id int64, addr string) error
	// HeldAddresses returns those of addrs that a host holds as its
	// management address.
	HeldAddresses(addrs []string) ([]string, error)
	// CountPoolHosts counts the hosts holding an address of the pool.
	CountPoolHosts(poolID int64) (int, error)

	// UpsertLease stores a DHCP lease, replacing the one of the same MAC.
	UpsertLease(l *Lease) error
	LeaseByMAC(mac string) (Lease, error)
	DeleteLease(mac string) error
	ListLeases() ([]Lease, error)

	// GroupLabels are the labels a group gives its members' Nodes;
	// SetGroupLabels replaces them. AllGroupLabels maps every group that has
	// labels to them.
	GroupLabels(name string) (map[string]string, error)
	SetGroupLabels(name string, labels map[string]string) error
	AllGroupLabels() (map[string]map[string]string, error)

	// SetHostNode stores what was read of a host's Kubernetes Node; a zero
	// State forgets it (the host has no Node).
	SetHostNode(n HostNode) error

	InsertGroup(g *Group) error
	GroupByName(name string) (Group, error)
	ListGroups() ([]Group, error)
	DeleteGroup(name string) error
	// ListGroupMembers lists the members of group, or of every group when
	// group is empty, by group and id: what a group list shows of them.
	ListGroupMembers(group string) ([]GroupMember, error)

	// Leadership reads a duty's lease row, or fails with ErrNotFound when
	// no controller ever led it.
	Leadership(duty string) (Leadership, error)
	// SwapLeadership writes l only while the duty's row is still at
	// version old (0: there is no row yet), and fails with ErrNotFound when
	// another controller wrote it first.
	SwapLeadership(l Leadership, old int64) error
	// CheckEpoch fails with ErrFenced unless epoch is the duty's epoch. On
	// PostgreSQL it holds the row until the transaction ends, so that no
	// new leader's claim commits between the check and the commit.
	CheckEpoch(duty string, epoch int64) error

	// Setting reads a setting every controller agrees on (ErrNotFound when
	// none was written); InitSetting writes it if none was, and fails with
	// ErrNotFound otherwise.
	Setting(name string) (string, error)
	InitSetting(name, value string) error

	// PutController writes a controller's row; ListControllers lists them
	// by name; DeleteController deletes the row of name while it is still
	// run runID's.
	PutController(c Controller) error
	ListControllers() ([]Controller, error)
	DeleteController(name, runID string) error

	// AppendHeard stores a controller's note of the hosts it heard from;
	// ListHeard lists every note, by controller and seq; DeleteHeard
	// deletes a controller's notes up to seq upTo.
	AppendHeard(h Heard) error
	ListHeard() ([]Heard, error)
	DeleteHeard(controller string, upTo int64) error

	// AppendEvent gives e the next event id and stores it.
	AppendEvent(e *Event) error
	ListEvents(f EventFilter) ([]Event, error)
	// EventsAfter lists events with one of actions after id afterID,
	// oldest first, at most limit.
	EventsAfter(afterID int64, actions []string, limit int) ([]Event, error)
	// EventIDs are the oldest and the newest event id stored (0 and 0
	// when the log is empty).
	EventIDs() (oldest, newest int64, err error)
	// FirstEventSince is the id of the first event, by id, whose time is
	// at or after t; ok is false when every event is older. It reads the
	// events before that one: as many as are older than t.
	FirstEventSince(t time.Time) (id int64, ok bool, err error)
	// PruneEvents deletes the oldest events, at most limit of them, all
	// below id beforeID, and returns how many it deleted. The log stays
	// whole from its oldest event on: no event is deleted while an older
	// one is kept. It never deletes an event after a cursor (see Cursor),
	// however old: what a reader that keeps one has not read stays.
	PruneEvents(beforeID int64, limit int) (n int, err error)

	// InsertProvisionJob stores a new job; the caller sets its ID (from
	// NextID("provision_jobs")), UUID and times. A host has at most one job
	// queued or running: a second one fails with a conflict on field "host".
	InsertProvisionJob(j *ProvisionJob) error
	// UpdateProvisionJob writes a job's state, progress, task, message,
	// times, runner and cancellation, or fails with ErrNotFound when there
	// is no such job. Read the job with ProvisionJobForUpdate first.
	UpdateProvisionJob(j *ProvisionJob) error
	ProvisionJobByID(id int64) (ProvisionJob, error)
	// ProvisionJobForUpdate is ProvisionJobByID in a write transaction,
	// holding the job's row until it ends: controllers that change one
	// job at once (its leader's progress, another's cancellation) take
	// their turns instead of overwriting each other.
	ProvisionJobForUpdate(id int64) (ProvisionJob, error)
	// LatestProvisionJob is a host's newest job (the highest id), or
	// ErrNotFound when it never had one.
	LatestProvisionJob(hostID int64) (ProvisionJob, error)
	// ListProvisionJobs lists the jobs in any of states (every job when
	// none are given), by ascending id.
	ListProvisionJobs(states ...string) ([]ProvisionJob, error)
	// AppendProvisionLog adds a chunk of text to a job's log and returns
	// its sequence number: one more than the last chunk's, starting at 1.
	AppendProvisionLog(jobID int64, text string) (seq int64, err error)
	// ProvisionLog reads a job's log chunks after afterSeq, oldest first, at
	// most limit of them (0: no limit).
	ProvisionLog(jobID int64, afterSeq int64, limit int) ([]LogChunk, error)

	// InsertLockOp stores a new host lock; the caller sets its ID (from
	// NextID("lock_ops")), UUID and times. A host has at most one lock
	// draining: a second one fails with a conflict on field "host".
	InsertLockOp(o *LockOp) error
	// UpdateLockOp writes a lock's state, progress, message, end, runner
	// and cancellation, or fails with ErrNotFound. Read the lock with
	// LockOpForUpdate first.
	UpdateLockOp(o *LockOp) error
	// LockOpForUpdate reads a lock in a write transaction, holding its row
	// until the transaction ends (as ProvisionJobForUpdate).
	LockOpForUpdate(id int64) (LockOp, error)
	// LatestLockOp is a host's newest lock, or ErrNotFound when it was
	// never locked through a lock operation.
	LatestLockOp(hostID int64) (LockOp, error)
	// ListLockOps lists the locks in any of states (every lock when none
	// are given), by ascending id.
	ListLockOps(states ...string) ([]LockOp, error)
	// SerializeLocks makes the transaction take its turn with every other
	// one that called it, until it ends: deciding whether a controller
	// may be locked reads the other controllers' locks.
	SerializeLocks() error

	// InsertApp stores an app and its members; the caller sets its ID (from
	// NextID("apps")), UUID and times. Member positions are stored as given.
	InsertApp(a *App) error
	// AppByName reads an app with its members, or fails with ErrNotFound.
	AppByName(name string) (App, error)
	// ListApps lists every app with its members, by name.
	ListApps() ([]App, error)
	// DeleteApp deletes an app and its members, or fails with ErrNotFound.
	DeleteApp(id int64) error
	// AppsOfHost lists the apps a host is a member or the witness of, by
	// name.
	AppsOfHost(hostID int64) ([]App, error)
	// AppsOfGroup lists the apps of a group, by name.
	AppsOfGroup(name string) ([]App, error)
	// SetAppActive stores hostID as an app's active member in epoch, if
	// epoch is above the stored one: the active never goes back to an older
	// epoch. changed says whether it was stored.
	SetAppActive(appID, hostID, epoch int64) (changed bool, err error)
	// SetAppLastSwitch stores an app's last switchover, if its epoch is above
	// the stored last switchover's; changed says whether it was stored.
	SetAppLastSwitch(appID int64, s AppSwitch) (changed bool, err error)
	// SetAppMemberStatus stores what the controller shows of a member of
	// an app.
	SetAppMemberStatus(appID int64, s AppMemberStatus) error
	// SetAppReport stores what a voter of an app (a member or the
	// witness) last reported of it, replacing its earlier report.
	SetAppReport(appID int64, r AppReport) error
	// AppReports lists what the voters of an app last reported, by host
	// id (none when they never reported).
	AppReports(appID int64) ([]AppReport, error)
	// RequestAppSwitchover records a pending planned switchover of an app
	// to toHostID (0: any healthy standby), replacing a pending one, with the
	// next sequence number, which it returns.
	RequestAppSwitchover(appID, toHostID int64, at time.Time) (seq int64, err error)
	// EndAppSwitchover ends an app's pending switchover if its sequence
	// number is at most doneSeq; ended says whether one ended.
	EndAppSwitchover(appID, doneSeq int64) (ended bool, err error)

	// Cursor reads a named position in the event log (0 and false when
	// never set); SetCursor stores it. A cursor is the id up to which its
	// reader is done with the log: PruneEvents keeps every event after
	// the lowest cursor. A reader's cursor starts at the newest event (or
	// at its stored value) and never moves back, so that a prune that read
	// the cursors just before cannot delete an event a reader still needs.
	Cursor(name string) (int64, bool, error)
	SetCursor(name string, v int64) error
	// MinCursor is the lowest cursor and its name; ok is false when no
	// reader keeps one.
	MinCursor() (name string, at int64, ok bool, err error)
	// DeleteCursor forgets a reader's cursor, for a reader that is gone
	// for good; deleted says whether there was one.
	DeleteCursor(name string) (deleted bool, err error)
}

// Host is the stored row of a host, with its labels.
type Host struct {
	ID             int64
	UUID           string
	Hostname       string
	Personality    string
	Administrative string
	Operational    string
	Availability   string
	InvProvision   string
	MgmtMAC        string // empty when unset (NULL in the table)
	MgmtIP         string // empty when unset (NULL in the table)
	Location       string
	Group          string
	BMType         string
	BMIP           string
	BMUsername     string
	SSHUser        string // the user the controller logs in as over SSH
	SSHKey         string // the name of the controller's SSH key credential, not a key
	Labels         map[string]string
	PoolID         int64  // 0 when the host has no pool
	PoolName       string // read only: the name of pool PoolID
	// Read only, from SetHostNode: the state of the host's Node (Ready,
	// NotReady, or empty when it has none), its kubelet's version and why
	// it is not Ready.
	NodeState      string
	KubeletVersion string
	NodeReason     string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// AgentHost is a host whose agent holds a certificate, as the heartbeat
// monitor watches it.
type AgentHost struct {
	ID           int64
	Hostname     string
	Personality  string
	Availability string
}

// GroupMember is a host of a group, as the group list shows it.
type GroupMember struct {
	Group        string
	Hostname     string
	Personality  string
	Availability string
}

// ProvisionJob is the stored row of a provisioning job.
type ProvisionJob struct {
	ID         int64
	UUID       string
	HostID     int64
	Hostname   string // read only: the hostname of HostID
	State      string // queued | running | succeeded | failed | cancelled
	Reinstall  bool
	TasksTotal int
	TasksDone  int
	Changed    int    // tasks that changed something
	Task       string // the task running now, or the one that failed
	Message    string // why it failed
	CreatedBy  string
	CreatedAt  time.Time
	StartedAt  time.Time // zero until it starts
	FinishedAt time.Time // zero until it ends
	UpdatedAt  time.Time
	// Epoch and Runner are the leader's epoch and name that run the job
	// (0 and "" while it is queued).
	Epoch  int64
	Runner string
	// CancelBy is who asked to cancel the running job ("" when nobody
	// did): the leader that runs it stops it.
	CancelBy string
}

// LockOp is one host lock (package hostlock): asked through any
// controller's API, carried out by the leader.
type LockOp struct {
	ID       int64
	UUID     string
	HostID   int64
	Hostname string // read only: the hostname of HostID
	State    string // draining | locked | failed | cancelled
	Force    bool
	Timeout  time.Duration
	Actor    string
	// Apps are the apps the lock moves off the host before it drains;
	// Drain says whether it cordons and drains the host's Node, Note why
	// not.
	Apps  []string
	Drain bool
	Note  string
	// PodsTotal, PodsEvicted and Pending are the drain's progress; Message
	// what it waits for, or why it ended as it did.
	PodsTotal   int
	PodsEvicted int
	Pending     []string
	Message     string
	StartedAt   time.Time
	FinishedAt  time.Time // zero while draining
	UpdatedAt   time.Time
	// Epoch and Runner are the leader's epoch and name that carry the lock
	// out (0 and "" until a leader takes it); CancelBy who asked to cancel
	// it while it drained.
	Epoch    int64
	Runner   string
	CancelBy string
}

// LogChunk is one piece of a job's log, in order of Seq.
type LogChunk struct {
	Seq  int64
	Text string
}

// HostNode is what the controller last read of a host's Kubernetes Node.
type HostNode struct {
	HostID         int64
	State          string // Ready | NotReady; empty: the host has no Node
	KubeletVersion string
	Reason         string
	UpdatedAt      time.Time
}

// Pool is the stored row of an address pool. Lists of addresses and ranges
// are stored as their comma-separated text, as the operator gave them
// (normalized); package inventory parses and checks them.
type Pool struct {
	ID           int64
	UUID         string
	Name         string
	Role         string // management | edge
	Mode         string // static | dynamic
	Network      string // CIDR
	Ranges       string // "a-b,c-d"; empty: the whole network
	Gateway      string
	DNS          string // "a,b"
	NTP          string // "a,b"
	Reserved     string // "a,b": controller addresses no host may take
	LeaseSeconds int64
	CreatedAt    time.Time
	UpdatedAt    time.Time
	// AllocFrom is where the next allocation of a dynamic pool starts
	// looking: every address of the pool below it is held by a host
	// (empty: look from the start). Pools do not change once made; a
	// change of their ranges or reserved addresses would have to empty it.
	AllocFrom string
}

// Lease is a DHCP lease the controller gave.
type Lease struct {
	MAC       string
	IP        string
	HostID    int64
	PoolID    int64
	ExpiresAt time.Time
	UpdatedAt time.Time
}

// LabelSelector matches hosts with a label key, and value when HasValue.
type LabelSelector struct {
	Key      string
	Value    string
	HasValue bool
}

// HostFilter selects hosts; zero fields do not filter. Hosts come back by
// ascending id, after AfterID, at most Limit of them (0: no limit).
type HostFilter struct {
	Personality    string
	Availability   string
	Administrative string
	Operational    string
	InvProvision   string
	Group          string
	Labels         []LabelSelector
	AfterID        int64
	Limit          int
}

// Token is the stored row of a bearer token: its secret only as a hash.
type Token struct {
	ID           string
	Kind         string
	Role         string
	SecretSHA256 string
	Description  string
	CreatedBy    string
	CreatedAt    time.Time
	ExpiresAt    *time.Time
	MaxUses      int64  // 0: no limit
	Uses         int64  // uses so far
	HostName     string // enrollment tokens: the only host it admits ("" any)
}

// Group is a group (federation) of hosts.
type Group struct {
	Name        string
	Description string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// App is a redundant edge app: it runs warm on its members, edgeworkers of
// its group, in order of preference.
type App struct {
	ID      int64
	UUID    string
	Name    string
	Group   string
	Image   string
	Port    int    // 0: none
	VIP     string // addr/prefix; empty: none
	Members []AppMember
	// Witness votes in the app's group but never runs the app; nil: none.
	// Its Position is 0 and it has no reported status.
	Witness *AppMember
	// HealthKind (tcp, http, none) and HealthPath are each member's check
	// of its own copy of the app.
	HealthKind string
	HealthPath string
	// HeartbeatMillis, Probes and LeanProbes are the members' failure
	// detection (wire.App); 0 is the agents' default.
	HeartbeatMillis int
	Probes          int
	LeanProbes      bool
	// What the members report (read only; see SetAppActive and
	// SetAppLastSwitch): the active member (0: none yet) and the epoch it
	// was elected in, and the last switchover.
	ActiveHostID   int64
	ActiveHostname string
	Epoch          int64
	LastSwitch     AppSwitch // zero Epoch: none yet
	// Switchover is the last planned switchover asked for (read only; see
	// RequestAppSwitchover).
	Switchover AppSwitchover
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// AppMember is a host an app runs on.
type AppMember struct {
	HostID       int64
	Hostname     string // read only: the hostname of HostID
	HostUUID     string // read only: the uuid of HostID
	MgmtIP       string // read only: the management address of HostID
	Availability string // read only: the availability of HostID
	AgentSerial  string // read only: the serial of HostID's agent certificate ("": none)
	Locked       bool   // read only: HostID is administratively locked (out of service)
	Position     int    // 1 is the most preferred
	// Read only, from SetAppMemberStatus: the member's role and health as it
	// last reported them, and when that changed (zero: never reported).
	Role       string
	Healthy    bool
	ReportedAt time.Time
}

// AppMemberStatus is what a member reports of an app.
type AppMemberStatus struct {
	HostID     int64
	Role       string
	Healthy    bool
	ReportedAt time.Time
}

// AppReport is what one voter of an app's group last reported of it, as
// it reported it.
type AppReport struct {
	HostID        int64
	ActiveHostID  int64 // 0: none known, or not a member of the app
	Epoch         int64
	Role          string
	Healthy       bool
	SwitchoverSeq int64
	LastSwitch    string // the reported last switchover (JSON); "": none
	// Missing are the capabilities the member's agent lacks for the app,
	// comma-separated ("CAP_NET_ADMIN,CAP_NET_RAW"); "": none.
	Missing    string
	ReportedAt time.Time
}

// AppSwitch is a change of an app's active member.
type AppSwitch struct {
	Epoch          int64
	At             time.Time
	FromHostID     int64  // 0: none (the first active)
	FromHostname   string // read only
	ToHostID       int64
	ToHostname     string // read only
	DurationMillis int64
	Reason         string
}

// AppSwitchover is a planned switchover the operator asked for.
type AppSwitchover struct {
	Seq         int64 // grows with every request of the app
	Pending     bool  // not yet reported done
	ToHostID    int64 // 0: any healthy standby
	ToHostname  string
	RequestedAt time.Time
}

// Alarm is an active alarm, StarlingX-shaped.
type Alarm struct {
	ID                   int64
	UUID                 string
	AlarmID              string // 200.004, 200.005, …
	EntityType           string // host
	EntityInstance       string // host=edge-01
	Severity             string // warning | minor | major | critical
	Reason               string
	AlarmType            string // communication, operational, …
	ProbableCause        string
	ProposedRepairAction string
	ServiceAffecting     bool
	RaisedAt             time.Time
	UpdatedAt            time.Time
}

// AlarmFilter selects alarms; zero fields do not filter. Alarms come back
// by ascending id, the order they were raised in, after AfterID, at most
// Limit of them (0: no limit, every alarm that matches).
type AlarmFilter struct {
	EntityInstance string
	Severity       string
	AfterID        int64
	Limit          int
}

// Event is the stored row of an event-log entry.
type Event struct {
	ID         int64
	UUID       string
	Time       time.Time
	Code       string
	EntityType string
	EntityID   string
	Action     string
	Actor      string
	Reason     string
}

// EventFilter selects events; they come back newest first, before BeforeID
// when it is set, at most Limit of them (0: no limit).
type EventFilter struct {
	EntityType string
	EntityID   string
	Action     string
	BeforeID   int64
	Limit      int
}
