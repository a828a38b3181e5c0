package api

import (
	"net/http"
	"strconv"
	"strings"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/auth"
	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/store"
)

const (
	defaultPage = 1000
	maxPage     = 1000
)

func hostOut(h store.Host) apitype.Host {
	labels := h.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	return apitype.Host{
		ID: h.ID, UUID: h.UUID, Hostname: h.Hostname, Personality: h.Personality,
		Administrative: h.Administrative, Operational: h.Operational,
		Availability: h.Availability, InvProvision: h.InvProvision, MgmtMAC: h.MgmtMAC,
		MgmtIP: h.MgmtIP, Pool: h.PoolName, Group: h.Group, Labels: labels, Location: h.Location,
		BMType: h.BMType, BMIP: h.BMIP, BMUsername: h.BMUsername, SSHUser: h.SSHUser, SSHKey: h.SSHKey,
		NodeState: h.NodeState, KubeletVersion: h.KubeletVersion, NodeReason: h.NodeReason,
		CreatedAt: h.CreatedAt, UpdatedAt: h.UpdatedAt,
	}
}

func (s *Server) listHosts(r *http.Request, _ auth.Principal) (any, error) {
	q := r.URL.Query()
	limit, err := queryLimit(r, defaultPage, maxPage)
	if err != nil {
		return nil, err
	}
	f := store.HostFilter{
		Personality: q.Get("personality"), Availability: q.Get("availability"),
		Administrative: q.Get("administrative"), Operational: q.Get("operational"),
		InvProvision: q.Get("invprovision"), Group: q.Get("group"), Limit: limit + 1,
	}
	if m := q.Get("marker"); m != "" {
		id, err := strconv.ParseInt(m, 10, 64)
		if err != nil || id < 1 {
			return nil, problem.Invalidf("marker", "marker %q is not one this API returned; use the next value of the previous page", m)
		}
		f.AfterID = id
	}
	for _, sel := range q["label"] {
		k, v, hasValue := strings.Cut(sel, "=")
		if k == "" {
			return nil, problem.Invalidf("label", "label selector %q: write key or key=value", sel)
		}
		f.Labels = append(f.Labels, store.LabelSelector{Key: k, Value: v, HasValue: hasValue})
	}
	hosts, err := s.d.Inventory.List(r.Context(), f)
	if err != nil {
		return nil, err
	}
	out := apitype.HostList{Hosts: make([]apitype.Host, 0, len(hosts))}
	if len(hosts) > limit {
		hosts = hosts[:limit]
		out.Next = strconv.FormatInt(hosts[limit-1].ID, 10)
	}
	for _, h := range hosts {
		out.Hosts = append(out.Hosts, hostOut(h))
	}
	return out, nil
}

func (s *Server) addHost(r *http.Request, p auth.Principal) (any, error) {
	var req apitype.HostCreate
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	h, err := s.d.Inventory.Add(r.Context(), p.Actor(), req)
	if err != nil {
		return nil, err
	}
	// A Node of its name may exist already: its own, or one in conflict for host-show to say.
	return hostOut(h), nil
}

func (s *Server) getHost(r *http.Request, _ auth.Principal) (any, error) {
	h, err := s.d.Inventory.Get(r.Context(), r.PathValue("host"))
	if err != nil {
		return nil, err
	}
	return hostOut(h), nil
}

func (s *Server) updateHost(r *http.Request, p auth.Principal) (any, error) {
	var req apitype.HostUpdate
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	h, err := s.d.Inventory.Update(r.Context(), p.Actor(), r.PathValue("host"), req)
	if err != nil {
		return nil, err
	}
	s.appsChanged(r.Context()) // a member's name or address may have changed
	return hostOut(h), nil
}

func (s *Server) deleteHost(r *http.Request, p auth.Principal) (any, error) {
	_, err := s.d.Inventory.Delete(r.Context(), p.Actor(), r.PathValue("host"))
	return nil, err
}

func labelsOut(h store.Host) apitype.HostLabels { return apitype.HostLabels{Labels: hostOut(h).Labels} }

func (s *Server) getLabels(r *http.Request, _ auth.Principal) (any, error) {
	h, err := s.d.Inventory.Get(r.Context(), r.PathValue("host"))
	if err != nil {
		return nil, err
	}
	return labelsOut(h), nil
}

func (s *Server) assignLabels(r *http.Request, p auth.Principal) (any, error) {
	var req apitype.HostLabels
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	h, err := s.d.Inventory.AssignLabels(r.Context(), p.Actor(), r.PathValue("host"), req.Labels)
	if err != nil {
		return nil, err
	}
	return labelsOut(h), nil
}

func (s *Server) removeLabels(r *http.Request, p auth.Principal) (any, error) {
	h, err := s.d.Inventory.RemoveLabels(r.Context(), p.Actor(), r.PathValue("host"), r.URL.Query()["key"])
	if err != nil {
		return nil, err
	}
	return labelsOut(h), nil
}

func (s *Server) upgradeHost(r *http.Request, p auth.Principal) (any, error) {
	return nil, s.d.Inventory.Upgrade(r.Context(), p.Actor(), r.PathValue("host"))
}
