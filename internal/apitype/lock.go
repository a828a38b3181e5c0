package apitype

import "time"

// LockRequest is the body of POST /v1/hosts/{host}/lock.
type LockRequest struct {
	// Force evicts the pods no controller manages too, which nothing recreates; without it a
	// Node that runs any is refused.
	Force bool `json:"force,omitempty"`
	// Timeout bounds the drain, as a Go duration from 10s to 1h; empty means 5m.
	Timeout string `json:"timeout,omitempty"`
}

// LockOperation is a host-lock: the answer of POST and GET /v1/hosts/{host}/lock.
type LockOperation struct {
	Host    string `json:"host"`
	State   string `json:"state"` // draining | locked | failed | cancelled
	Force   bool   `json:"force"`
	Timeout string `json:"timeout"`
	// PodsTotal are the pods the drain evicts; PodsEvicted those of them gone from the Node.
	PodsTotal   int `json:"pods_total"`
	PodsEvicted int `json:"pods_evicted"`
	// Pending names the pods still on the Node (namespace/name).
	Pending []string `json:"pending"`
	// Message says what the drain waits for, or why the lock failed.
	Message    string     `json:"message"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// Runner is the controller that carries the lock out (or did): the leader when it took it
	// ("" until one did, and for a lock with nothing to drain). CancelBy is who cancelled it
	// while it drained.
	Runner   string `json:"runner"`
	CancelBy string `json:"cancel_by"`
}
