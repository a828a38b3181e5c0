package apitype

// A host's agent, as HostAgent.Agent says it.
const (
	AgentNone     = "none"     // no agent yet, or reset: any enroll token may enroll the host
	AgentEnrolled = "enrolled" // its agent holds a certificate; only a token bound to the host enrolls it again
	AgentRevoked  = "revoked"  // its certificate was revoked; only a token bound to the host enrolls it again
)

// HostAgent is the body of the answers of POST /v1/hosts/{host}/agent/reset
// and /agent/revoke: the host's agent as the command left it.
type HostAgent struct {
	Host     string `json:"host"`
	HostUUID string `json:"host_uuid"`
	Agent    string `json:"agent"`   // none, enrolled or revoked
	Message  string `json:"message"` // what happened, and how the host enrolls again
}
