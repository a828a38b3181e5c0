package api

import (
	"net/http"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/auth"
	"hummingbird.io/hummingbird/internal/store"
)

// appOut is an app as the API shows it. Active and Epoch stay empty and 0:
// the group's agents report them once they run the failover.
func appOut(a store.App) apitype.App {
	out := apitype.App{ID: a.ID, UUID: a.UUID, Name: a.Name, Group: a.Group, Image: a.Image, Port: a.Port, VIP: a.VIP,
		Members: []apitype.AppMember{}, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
	for _, m := range a.Members {
		out.Members = append(out.Members, apitype.AppMember{Hostname: m.Hostname, Position: m.Position, Availability: m.Availability})
	}
	return out
}

func (s *Server) listApps(r *http.Request, _ auth.Principal) (any, error) {
	apps, err := s.d.Inventory.ListApps(r.Context())
	if err != nil {
		return nil, err
	}
	out := apitype.AppList{Apps: []apitype.App{}}
	for _, a := range apps {
		out.Apps = append(out.Apps, appOut(a))
	}
	return out, nil
}

func (s *Server) addApp(r *http.Request, p auth.Principal) (any, error) {
	var req apitype.AppCreate
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	a, err := s.d.Inventory.AddApp(r.Context(), p.Actor(), req)
	if err != nil {
		return nil, err
	}
	return appOut(a), nil
}

func (s *Server) getApp(r *http.Request, _ auth.Principal) (any, error) {
	a, err := s.d.Inventory.GetApp(r.Context(), r.PathValue("app"))
	if err != nil {
		return nil, err
	}
	return appOut(a), nil
}

func (s *Server) deleteApp(r *http.Request, p auth.Principal) (any, error) {
	return nil, s.d.Inventory.DeleteApp(r.Context(), p.Actor(), r.PathValue("app"))
}
