package apitype

import "time"

// App is a redundant edge app: it runs warm on its members, edgeworkers of
// its group, and one member at a time is active. Active and Epoch are what
// the group's agents report; they stay empty and 0 until the agents run the
// failover.
type App struct {
	ID        int64       `json:"id"`
	UUID      string      `json:"uuid"`
	Name      string      `json:"name"`
	Group     string      `json:"group"`
	Image     string      `json:"image"`
	Port      int         `json:"port"` // 0: none
	VIP       string      `json:"vip"`  // addr/prefix; empty: none
	Members   []AppMember `json:"members"`
	Active    string      `json:"active"` // the active member's hostname
	Epoch     int64       `json:"epoch"`
	CreatedAt time.Time   `json:"created_at"`
	UpdatedAt time.Time   `json:"updated_at"`
}

// AppMember is a host an app runs on; position 1 is the most preferred.
type AppMember struct {
	Hostname     string `json:"hostname"`
	Position     int    `json:"position"`
	Availability string `json:"availability"`
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
}

// AppList is the body of GET /v1/apps.
type AppList struct {
	Apps []App `json:"apps"`
}
