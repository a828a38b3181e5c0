package inventory

import (
	"context"
	"fmt"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/store"
)

// revokedSerial is the agent serial of a host whose agent's certificate an
// admin revoked: no certificate has it (serials are hex), and the host
// counts as enrolled, so that only a token bound to it enrolls it again.
const revokedSerial = "revoked"

// AgentState says what a host's agent serial means: apitype.AgentNone,
// AgentEnrolled or AgentRevoked.
func AgentState(serial string) string {
	switch serial {
	case "":
		return apitype.AgentNone
	case revokedSerial:
		return apitype.AgentRevoked
	}
	return apitype.AgentEnrolled
}

// CheckEnroll says whether a join may enroll the agent of host h, whose
// agent serial is serial, with an enroll token bound to boundHost ("" for
// a fleet token, which admits any host). The enroll token and then the
// client certificate are a host's identity, never the hostname or MACs a
// node reports: a host that has an agent, or had one revoked, is enrolled
// again only with a token bound to it, or after host-agent-reset.
func CheckEnroll(h store.Host, serial, boundHost string) error {
	if serial == "" || boundHost == h.Hostname {
		return nil
	}
	return problem.Forbiddenf("host %s already has an enrolled agent (or had its certificate revoked), and this enroll token "+
		"is not bound to it: enroll it with a token bound to the host (hbctl token-create --type enroll --host %s), "+
		"or let any enroll token enroll it again with hbctl host-agent-reset %s", h.Hostname, h.Hostname, h.Hostname)
}

// ResetAgent clears the agent of host ref: its certificate stops working at
// once, and any enroll token may enroll the host again, as one that never
// had an agent.
func (s *Service) ResetAgent(ctx context.Context, actor, ref string) (apitype.HostAgent, error) {
	return s.setAgent(ctx, actor, ref, "", "host.agent.reset",
		"the agent of host %s was reset: its certificate is refused, and any enroll token may enroll the host again")
}

// RevokeAgent revokes the certificate of host ref's agent at once. The host
// is enrolled again only with a new token bound to it.
func (s *Service) RevokeAgent(ctx context.Context, actor, ref string) (apitype.HostAgent, error) {
	return s.setAgent(ctx, actor, ref, revokedSerial, "host.agent.revoke",
		"the certificate of host %s's agent was revoked: only a new enroll token bound to the host enrolls it again")
}

func (s *Service) setAgent(ctx context.Context, actor, ref, serial, action, reason string) (apitype.HostAgent, error) {
	var out apitype.HostAgent
	err := s.st.Write(ctx, func(tx store.Tx) error {
		h, err := Lookup(tx, ref)
		if err != nil {
			return err
		}
		old, err := tx.HostAgent(h.ID)
		if err != nil {
			return err
		}
		if serial == revokedSerial && old == "" {
			return problem.Conflictf("", "host %s has no agent to revoke: its agent never joined, or was reset", h.Hostname)
		}
		if err := tx.SetHostAgent(h.ID, serial); err != nil {
			return err
		}
		out = apitype.HostAgent{Host: h.Hostname, HostUUID: h.UUID, Agent: AgentState(serial), Message: fmt.Sprintf(reason, h.Hostname)}
		if old != "" && old != revokedSerial {
			out.Message += fmt.Sprintf(" (certificate %s)", old)
		}
		return s.event(tx, s.stamp(), CodeHostCommand, action, actor, h, out.Message)
	})
	return out, err
}
