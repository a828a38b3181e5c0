package apitype

import "time"

// ProvisionRequest is the body of POST /v1/hosts/{host}/provision.
type ProvisionRequest struct {
	// Reinstall replaces a kubelet that the Kubernetes version skew policy forbids, instead of
	// refusing the host.
	Reinstall bool `json:"reinstall,omitempty"`
}

// ProvisionJob is a provisioning job: the answer of every /v1/hosts/{host}/provision call.
type ProvisionJob struct {
	ID        int64  `json:"id"`
	UUID      string `json:"uuid"`
	Hostname  string `json:"hostname"`
	State     string `json:"state"` // queued | running | succeeded | failed | cancelled
	Reinstall bool   `json:"reinstall"`
	// TasksTotal and TasksDone count the playbook's tasks; Changed those that changed the host.
	TasksTotal int `json:"tasks_total"`
	TasksDone  int `json:"tasks_done"`
	Changed    int `json:"changed"`
	// Task is the task running now, or the one that failed.
	Task string `json:"task"`
	// Message says why the job failed.
	Message    string     `json:"message"`
	CreatedBy  string     `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// Runner is the controller that runs (or ran) the job: the leader when it took it ("" while
	// queued). CancelBy is who asked to cancel it while it ran ("" when nobody did).
	Runner   string `json:"runner"`
	CancelBy string `json:"cancel_by"`
}

// ProvisionLog is the body of GET /v1/hosts/{host}/provision/log: the log of the host's latest
// job after the chunk numbered by the query's after, and the number to ask after next time.
type ProvisionLog struct {
	JobID  int64      `json:"job_id"`
	State  string     `json:"state"`
	Chunks []LogChunk `json:"chunks"`
	Next   int64      `json:"next"`
}

// LogChunk is a piece of a job's log: lines of ansible-playbook's output.
type LogChunk struct {
	Seq  int64  `json:"seq"`
	Text string `json:"text"`
}
