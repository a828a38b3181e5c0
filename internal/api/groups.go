package api

import (
	"net/http"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/auth"
	"hummingbird.io/hummingbird/internal/inventory"
)

func groupOut(g inventory.GroupInfo) apitype.Group {
	out := apitype.Group{Name: g.Name, Description: g.Description, Members: []apitype.GroupMember{},
		Labels: groupLabelsOut(g.Labels).Labels, CreatedAt: g.CreatedAt, UpdatedAt: g.UpdatedAt}
	for _, h := range g.Members {
		out.Members = append(out.Members, apitype.GroupMember{Hostname: h.Hostname, Personality: h.Personality, Availability: h.Availability})
	}
	return out
}

func (s *Server) listGroups(r *http.Request, _ auth.Principal) (any, error) {
	groups, err := s.d.Inventory.ListGroups(r.Context())
	if err != nil {
		return nil, err
	}
	out := apitype.GroupList{Groups: []apitype.Group{}}
	for _, g := range groups {
		out.Groups = append(out.Groups, groupOut(g))
	}
	return out, nil
}

func (s *Server) addGroup(r *http.Request, p auth.Principal) (any, error) {
	var req apitype.GroupCreate
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	g, err := s.d.Inventory.AddGroup(r.Context(), p.Actor(), req.Name, req.Description)
	if err != nil {
		return nil, err
	}
	return groupOut(inventory.GroupInfo{Group: g}), nil
}

func (s *Server) getGroup(r *http.Request, _ auth.Principal) (any, error) {
	g, err := s.d.Inventory.GetGroup(r.Context(), r.PathValue("group"))
	if err != nil {
		return nil, err
	}
	return groupOut(g), nil
}

func (s *Server) deleteGroup(r *http.Request, p auth.Principal) (any, error) {
	return nil, s.d.Inventory.DeleteGroup(r.Context(), p.Actor(), r.PathValue("group"))
}

func groupLabelsOut(labels map[string]string) apitype.GroupLabels {
	if labels == nil {
		labels = map[string]string{}
	}
	return apitype.GroupLabels{Labels: labels}
}

func (s *Server) getGroupLabels(r *http.Request, _ auth.Principal) (any, error) {
	l, err := s.d.Inventory.GroupLabels(r.Context(), r.PathValue("group"))
	if err != nil {
		return nil, err
	}
	return groupLabelsOut(l), nil
}

func (s *Server) assignGroupLabels(r *http.Request, p auth.Principal) (any, error) {
	var req apitype.GroupLabels
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	l, err := s.d.Inventory.AssignGroupLabels(r.Context(), p.Actor(), r.PathValue("group"), req.Labels)
	if err != nil {
		return nil, err
	}
	return groupLabelsOut(l), nil
}

func (s *Server) removeGroupLabels(r *http.Request, p auth.Principal) (any, error) {
	l, err := s.d.Inventory.RemoveGroupLabels(r.Context(), p.Actor(), r.PathValue("group"), r.URL.Query()["key"])
	if err != nil {
		return nil, err
	}
	return groupLabelsOut(l), nil
}

func (s *Server) listControllers(r *http.Request, _ auth.Principal) (any, error) {
	cs, err := s.d.Inventory.ListControllers(r.Context())
	if err != nil {
		return nil, err
	}
	return apitype.ControllerList{Controllers: cs}, nil
}

func (s *Server) deleteController(r *http.Request, p auth.Principal) (any, error) {
	return nil, s.d.Inventory.DeleteController(r.Context(), p.Actor(), r.PathValue("controller"))
}
