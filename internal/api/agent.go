package api

import (
	"cmp"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/auth"
	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/pki"
	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/wire"
)

// agentHandler serves one agent API call for the agent a (zero for join).
type agentHandler func(r *http.Request, a agentID) (any, error)

// agentID is the host an agent's certificate names, with the hash of the
// inventory stored for it, read in the same transaction.
type agentID struct {
	host          store.Host
	inventoryHash string
}

// registerAgent adds the agent API: the protocol of package wire, over the
// same TLS listener. Agents are identified by their client certificate
// (issued at join, naming the host's uuid, its serial stored on the host);
// only the CA and join are reachable without one.
func (s *Server) registerAgent() {
	s.mux.HandleFunc("GET "+wire.CAPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Write(s.d.Agents.CA.PEM)
	})
	s.agent(wire.JoinPath, false, s.agentJoin)
	s.agent(wire.HeartbeatPath, true, s.agentHeartbeat)
	s.agent(wire.InventoryPath, true, s.agentInventory)
	s.agent(wire.RenewPath, true, s.agentRenew)
	s.agent(wire.DesiredPath, true, s.agentDesired)
}

func (s *Server) agent(path string, certified bool, h agentHandler) {
	s.mux.Handle("POST "+path, s.instrument("POST", path, func(w http.ResponseWriter, r *http.Request) {
		var (
			id  agentID
			err error
		)
		if certified {
			id, err = s.agentIdentity(r)
		}
		var v any
		if err == nil {
			v, err = h(r, id)
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}))
}

// agentIdentity is the host the client certificate names, if that
// certificate is still the one the host's agent holds.
func (s *Server) agentIdentity(r *http.Request) (agentID, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		return agentID{}, problem.Unauthenticatedf("the agent API needs the agent's client certificate: join first (hb-agent join)")
	}
	leaf := r.TLS.VerifiedChains[0][0]
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return agentID{}, problem.Unauthenticatedf("the certificate is not an agent's client certificate")
	}
	var (
		id     agentID
		serial string
	)
	err := s.d.Agents.Store.Read(r.Context(), func(tx store.Tx) error {
		var err error
		if id.host, err = tx.HostByUUID(leaf.Subject.CommonName); err != nil {
			return err
		}
		if serial, err = tx.HostAgent(id.host.ID); err != nil {
			return err
		}
		_, id.inventoryHash, err = tx.HostInventory(id.host.ID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return id, problem.Forbiddenf("the host of this certificate is no longer in the inventory")
	}
	if err != nil {
		return id, err
	}
	switch inventory.AgentState(serial) {
	case apitype.AgentNone:
		return id, problem.Forbiddenf("the agent of host %s was reset by an admin: join again with an enroll token", id.host.Hostname)
	case apitype.AgentRevoked:
		return id, problem.Forbiddenf("the certificate of host %s was revoked by an admin: join again with a new enroll token bound to the host", id.host.Hostname)
	}
	if serial != leaf.SerialNumber.Text(16) {
		return id, problem.Forbiddenf("this certificate of host %s was revoked or replaced: join again with a new enroll token", id.host.Hostname)
	}
	return id, nil
}

func (s *Server) agentJoin(r *http.Request, _ agentID) (any, error) {
	var req wire.JoinRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	name := strings.ToLower(strings.TrimSpace(req.Hostname))
	now := time.Now().UTC().Truncate(time.Microsecond)
	var (
		h       store.Host
		certPEM []byte
	)
	err := s.d.Agents.Store.Write(r.Context(), func(tx store.Tx) error {
		tok, err := auth.UseEnroll(tx, req.Token, name, now)
		if err != nil {
			return err
		}
		h, err = tx.HostByHostname(name)
		if errors.Is(err, store.ErrNotFound) && s.d.Agents.AutoAdd {
			h, err = s.autoAdd(tx, r, name, req.MgmtMAC)
		} else if errors.Is(err, store.ErrNotFound) {
			return problem.Forbiddenf("no host %s in the inventory: add it first (hbctl host-add -n %s -p edgeworker)", name, name)
		}
		if err != nil {
			return err
		}
		// The token, not what the node says of itself, decides whether
		// it may take the host's identity: an enrolled host needs a token
		// bound to it. (A transaction refused here counts no use.)
		enrolled, err := tx.HostAgent(h.ID)
		if err != nil {
			return err
		}
		if err := inventory.CheckEnroll(h, enrolled, tok.HostName); err != nil {
			return err
		}
		if h.MgmtMAC != "" && !slices.Contains(req.MACs, h.MgmtMAC) {
			return problem.Forbiddenf("host %s has management MAC %s, which this node does not have", name, h.MgmtMAC)
		}
		prev, err := tx.HostAgent(h.ID)
		if err != nil {
			return err
		}
		var serial string
		certPEM, serial, err = pki.SignAgent(s.d.Agents.CA, req.CSR, h.UUID, prev, false, now)
		if err != nil {
			return problem.Invalidf("csr", "%v", err)
		}
		if err := tx.SwapHostAgent(h.ID, enrolled, serial); errors.Is(err, store.ErrNotFound) {
			return problem.Conflictf("", "another node enrolled host %s at the same moment: if it is not the host's own agent, "+
				"revoke it (hbctl host-agent-revoke %s) and enroll the host with a token bound to it", h.Hostname, h.Hostname)
		} else if err != nil {
			return err
		}
		reason := fmt.Sprintf("the agent of host %s joined (certificate %s)", h.Hostname, serial)
		if enrolled != "" {
			reason += fmt.Sprintf(" with an enroll token bound to the host, replacing its %s agent", inventory.AgentState(enrolled))
		}
		return tx.AppendEvent(&store.Event{
			UUID: uuid.NewString(), Time: now, Code: inventory.CodeHostCommand, EntityType: "host",
			EntityID: "host=" + h.Hostname, Action: "host.enroll", Actor: "agent",
			Reason: reason,
		})
	})
	if err != nil {
		return nil, err
	}
	s.d.Agents.Monitor.Enrolled(h)
	s.agentCertChanged(r.Context())
	return wire.JoinResponse{HostUUID: h.UUID, Hostname: h.Hostname, Certificate: certPEM, CA: s.d.Agents.CA.PEM}, nil
}

// autoAdd adds a joining node as an edgeworker of the management pool,
// with the MAC it reached the controller through; on a static pool its
// address is the one it connected from.
func (s *Server) autoAdd(tx store.Tx, r *http.Request, name, mac string) (store.Host, error) {
	req := apitype.HostCreate{Hostname: name, Personality: apitype.PersonalityEdgeworker, MgmtMAC: mac}
	pool, err := tx.ManagementPool()
	if err != nil {
		return store.Host{}, err
	}
	if pool.Mode == apitype.PoolStatic {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			return store.Host{}, err
		}
		req.MgmtIP = host
	}
	h, err := s.d.Inventory.AddTx(tx, "agent-auto-add", req)
	if err != nil {
		return h, fmt.Errorf("adding the joining node: %w", err)
	}
	return h, nil
}

func (s *Server) agentHeartbeat(r *http.Request, id agentID) (any, error) {
	var hb wire.Heartbeat
	if err := decode(r, &hb); err != nil {
		return nil, err
	}
	reply, err := s.d.Agents.Monitor.Heartbeat(r.Context(), id.host, hb, id.inventoryHash)
	if err != nil {
		return nil, err
	}
	if exp := r.TLS.VerifiedChains[0][0].NotAfter; s.renewable(exp, time.Now()) {
		reply.RenewBy = &exp
	}
	return reply, nil
}

// renewable says whether a certificate that expires at exp may be renewed
// at now: once less than RenewBefore (a third of its validity by default)
// is left, as the heartbeat reply offers it (RenewBy). Earlier renewals
// are refused, so that a stolen certificate cannot be made to last.
func (s *Server) renewable(exp, now time.Time) bool {
	return exp.Sub(now) < cmp.Or(s.d.Agents.RenewBefore, pki.AgentCertValidity/3)
}

func (s *Server) agentInventory(r *http.Request, id agentID) (any, error) {
	h := id.host
	var rep wire.InventoryReport
	if err := decode(r, &rep); err != nil {
		return nil, err
	}
	if rep.Hash == "" {
		return nil, problem.Invalidf("hash", "an inventory report needs its hash")
	}
	// What a node reports is printed on operators' terminals and pages:
	// control characters (escape sequences among them) do not get stored.
	rep.Hash = printable(rep.Hash)
	cleanInventory(&rep.Inventory)
	b, err := json.Marshal(rep.Inventory)
	if err != nil {
		return nil, err
	}
	err = s.d.Agents.Store.Write(r.Context(), func(tx store.Tx) error {
		return tx.SetHostInventory(h.ID, string(b), rep.Hash)
	})
	return struct{}{}, err
}

func (s *Server) agentRenew(r *http.Request, id agentID) (any, error) {
	h := id.host
	var req wire.RenewRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	now := time.Now()
	leaf := r.TLS.VerifiedChains[0][0]
	if exp := leaf.NotAfter; !s.renewable(exp, now) {
		return nil, problem.Conflictf("", "the certificate of host %s is valid until %s and may be renewed only from %s: "+
			"renew when a heartbeat reply offers it (renew_by)",
			h.Hostname, exp.UTC().Format(time.RFC3339), exp.Add(-cmp.Or(s.d.Agents.RenewBefore, pki.AgentCertValidity/3)).UTC().Format(time.RFC3339))
	}
	var certPEM []byte
	err := s.d.Agents.Store.Write(r.Context(), func(tx store.Tx) error {
		// The next generation of the certificate this request came with,
		// which must still be the host's when it is replaced.
		prev := leaf.SerialNumber.Text(16)
		var (
			serial string
			err    error
		)
		if certPEM, serial, err = pki.SignAgent(s.d.Agents.CA, req.CSR, h.UUID, prev, true, now); err != nil {
			return problem.Invalidf("csr", "%v", err)
		}
		err = tx.SwapHostAgent(h.ID, prev, serial)
		if errors.Is(err, store.ErrNotFound) {
			return problem.Forbiddenf("this certificate of host %s was replaced or revoked while it was being renewed: join again with a new enroll token", h.Hostname)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	s.agentCertChanged(r.Context())
	return wire.RenewResponse{Certificate: certPEM}, nil
}

// agentCertChanged rebuilds the view of apps after a host's agent got a
// new certificate: the desired state of its apps' members names it, so
// that they accept it alone from then on.
func (s *Server) agentCertChanged(ctx context.Context) {
	if s.d.Apps == nil {
		return
	}
	if err := s.d.Apps.Refresh(context.WithoutCancel(ctx)); err != nil {
		s.log.Warn("rebuilding the view of apps failed", "err", err)
	}
}

// agentDesired answers the desired state of the agent's host: the apps it
// is a member or witness of. The body, if any, is not read.
func (s *Server) agentDesired(r *http.Request, id agentID) (any, error) {
	if s.d.Apps == nil {
		return nil, problem.NotSupportedf("this controller serves no desired state")
	}
	return s.d.Apps.Desired(r.Context(), id.host.ID)
}

// printable is s without its control characters (C0, DEL, C1) and Unicode
// format characters (bidirectional overrides among them), and with
// invalid UTF-8 replaced: what a node says, made safe to show.
func printable(s string) string {
	clean := func(r rune) bool { return r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }
	if strings.IndexFunc(s, clean) < 0 && utf8.ValidString(s) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if clean(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
}

// cleanInventory makes every string of a node's inventory printable.
func cleanInventory(inv *wire.Inventory) {
	for i := range inv.CPUs {
		inv.CPUs[i].Model = printable(inv.CPUs[i].Model)
	}
	for i := range inv.Disks {
		d := &inv.Disks[i]
		d.Name, d.Type, d.Serial, d.Model = printable(d.Name), printable(d.Type), printable(d.Serial), printable(d.Model)
	}
	for i := range inv.Interfaces {
		n := &inv.Interfaces[i]
		n.Name, n.MAC, n.State = printable(n.Name), printable(n.MAC), printable(n.State)
		for j := range n.Addresses {
			n.Addresses[j] = printable(n.Addresses[j])
		}
	}
	o := &inv.OS
	o.ID, o.VersionID, o.PrettyName, o.IDLike = printable(o.ID), printable(o.VersionID), printable(o.PrettyName), printable(o.IDLike)
	inv.Kernel, inv.Containerd, inv.Kubelet = printable(inv.Kernel), printable(inv.Containerd), printable(inv.Kubelet)
}
