package apitype

import "time"

// App is a redundant edge app: it runs warm on its members, edgeworkers of
// its group, and one member at a time is active. Active, Epoch, Standbys,
// LastSwitchover and the members' Role and Healthy are what the group's
// agents report; they stay empty until the agents run the app.
type App struct {
	ID      int64       `json:"id"`
	UUID    string      `json:"uuid"`
	Name    string      `json:"name"`
	Group   string      `json:"group"`
	Image   string      `json:"image"`
	Port    int         `json:"port"` // 0: none
	VIP     string      `json:"vip"`  // addr/prefix; empty: none
	Members []AppMember `json:"members"`
	// Witness is the hostname of the host that votes in the app's group but
	// never runs it; empty: none.
	Witness string `json:"witness"`
	// Health is each member's check of its own copy: tcp, http (GET
	// HealthPath) or none.
	Health     string `json:"health"`
	HealthPath string `json:"health_path"`
	// HeartbeatMillis is the members' failure detection time, with
	// Probes probes of every member in it; LeanProbes: as it was set (it
	// changes nothing any more: every group's probes are single datagrams).
	HeartbeatMillis int    `json:"heartbeat_ms"`
	Probes          int    `json:"probes"`
	LeanProbes      bool   `json:"lean_probes"`
	Active          string `json:"active"` // the active member's hostname
	Epoch           int64  `json:"epoch"`
	// Standbys are the members other than the active that reported
	// themselves healthy standbys and whose hosts are available.
	Standbys          []string           `json:"standbys"`
	LastSwitchover    *AppSwitchover     `json:"last_switchover,omitempty"`
	PendingSwitchover *AppSwitchoverPlan `json:"pending_switchover,omitempty"`
	CreatedAt         time.Time          `json:"created_at"`
	UpdatedAt         time.Time          `json:"updated_at"`
}

// AppMember is a host an app runs on; position 1 is the most preferred.
// Role (active, standby, down; empty until it reports) and Healthy are
// what its agent last reported, when a majority of the app's group
// confirms the active member and epoch that report names; otherwise Role
// is unknown, since UnknownSince (a member cut off from its group, or one
// whose report nobody else confirms).
type AppMember struct {
	Hostname     string     `json:"hostname"`
	Position     int        `json:"position"`
	Availability string     `json:"availability"`
	Role         string     `json:"role"`
	Healthy      bool       `json:"healthy"`
	UnknownSince *time.Time `json:"unknown_since,omitempty"`
}

// RoleUnknown is the role of a member whose report the app's group does
// not confirm: it may be active or not, as far as the controller knows.
const RoleUnknown = "unknown"

// AppSwitchover is a change of an app's active member, as the members
// reported it. From is empty for the app's first active member.
type AppSwitchover struct {
	Epoch          int64     `json:"epoch"`
	At             time.Time `json:"at"`
	From           string    `json:"from"`
	To             string    `json:"to"`
	DurationMillis int64     `json:"duration_ms"`
	Reason         string    `json:"reason"` // failure, planned, unhealthy, first
}

// AppSwitchoverPlan is a planned switchover the members have not yet
// reported done.
type AppSwitchoverPlan struct {
	Seq         int64     `json:"seq"`
	To          string    `json:"to"` // hostname; empty: any healthy standby
	RequestedAt time.Time `json:"requested_at"`
	// Awaits is the active member, whose agent learns of the request with
	// its next heartbeat's reply, due at DueAt (absent when the controller
	// has not heard it since it started).
	Awaits string     `json:"awaits,omitempty"`
	DueAt  *time.Time `json:"due_at,omitempty"`
}

// AppSwitchoverRequest is the optional body of POST
// /v1/apps/{app}/switchover.
type AppSwitchoverRequest struct {
	To string `json:"to,omitempty"` // a healthy standby; empty: any
}

// AppCreate is the body of POST /v1/apps. Without members, the app runs on
// every edgeworker of its group.
type AppCreate struct {
	Name    string   `json:"name"`
	Group   string   `json:"group"`
	Image   string   `json:"image"`
	Port    int      `json:"port,omitempty"`
	VIP     string   `json:"vip,omitempty"`
	Members []string `json:"members,omitempty"`
	// Witness is a host, not a member, that votes in the app's group to
	// break ties (a two-member group needs one to fail over).
	Witness string `json:"witness,omitempty"`
	// Health is tcp, http or none; empty: tcp when the app has a port,
	// none otherwise. HealthPath is the path of an http check (default /).
	Health     string `json:"health,omitempty"`
	HealthPath string `json:"health_path,omitempty"`
	// HeartbeatMillis is the members' failure detection time: a standby
	// that hears nothing from the active for this long takes over (20 to
	// 60000; 0: 100). Probes is how many times the active probes every
	// member in it (3 to 50, at most one every 5 ms; 0: 5). LeanProbes
	// is accepted and changes nothing: every group's probes are single
	// datagrams, answered by the witness, with a probe again when an
	// answer is late.
	HeartbeatMillis int  `json:"heartbeat_ms,omitempty"`
	Probes          int  `json:"probes,omitempty"`
	LeanProbes      bool `json:"lean_probes,omitempty"`
}

// AppList is the body of GET /v1/apps.
type AppList struct {
	Apps []App `json:"apps"`
}
