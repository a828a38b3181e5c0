package api

import (
	"context"
	"net/http"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/auth"
	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/wire"
)

// appOut is an app as the API shows it, with what its members' agents
// report.
func appOut(a store.App) apitype.App {
	out := apitype.App{ID: a.ID, UUID: a.UUID, Name: a.Name, Group: a.Group, Image: a.Image, Port: a.Port, VIP: a.VIP,
		Members: []apitype.AppMember{}, Health: a.HealthKind, HealthPath: a.HealthPath, Active: a.ActiveHostname,
		Epoch: a.Epoch, Standbys: []string{}, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt, LeanProbes: a.LeanProbes}
	out.HeartbeatMillis, out.Probes = wire.Detection(a.HeartbeatMillis, a.Probes)
	for _, m := range a.Members {
		am := apitype.AppMember{Hostname: m.Hostname, Position: m.Position,
			Availability: m.Availability, Role: m.Role, Healthy: m.Healthy}
		if m.Role == apitype.RoleUnknown {
			since := m.ReportedAt
			am.UnknownSince = &since
		}
		out.Members = append(out.Members, am)
	}
	if a.Witness != nil {
		out.Witness = a.Witness.Hostname
	}
	for _, m := range inventory.HealthyStandbys(a) {
		out.Standbys = append(out.Standbys, m.Hostname)
	}
	if ls := a.LastSwitch; ls.Epoch != 0 {
		out.LastSwitchover = &apitype.AppSwitchover{Epoch: ls.Epoch, At: ls.At, From: ls.FromHostname, To: ls.ToHostname,
			DurationMillis: ls.DurationMillis, Reason: ls.Reason}
	}
	if sw := a.Switchover; sw.Pending {
		out.PendingSwitchover = &apitype.AppSwitchoverPlan{Seq: sw.Seq, To: sw.ToHostname, RequestedAt: sw.RequestedAt}
	}
	return out
}

// awaiting fills in whose heartbeat a pending switchover of a waits for,
// and when it is due.
func (s *Server) awaiting(a store.App, out *apitype.App) {
	p := out.PendingSwitchover
	if p == nil || s.d.Agents == nil || s.d.Agents.Monitor == nil {
		return
	}
	for _, m := range a.Members {
		if m.Hostname != out.Active {
			continue
		}
		p.Awaits = m.Hostname
		if due, ok := s.d.Agents.Monitor.NextHeartbeat(m.HostID); ok {
			due = due.UTC()
			p.DueAt = &due
		}
	}
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
	s.appsChanged(r.Context())
	return appOut(a), nil
}

func (s *Server) getApp(r *http.Request, _ auth.Principal) (any, error) {
	a, err := s.d.Inventory.GetApp(r.Context(), r.PathValue("app"))
	if err != nil {
		return nil, err
	}
	out := appOut(a)
	s.awaiting(a, &out)
	return out, nil
}

func (s *Server) deleteApp(r *http.Request, p auth.Principal) (any, error) {
	if err := s.d.Inventory.DeleteApp(r.Context(), p.Actor(), r.PathValue("app")); err != nil {
		return nil, err
	}
	s.appsChanged(r.Context())
	return nil, nil
}

// switchoverApp asks an app's members to move its active role; the body is
// optional.
func (s *Server) switchoverApp(r *http.Request, p auth.Principal) (any, error) {
	var req apitype.AppSwitchoverRequest
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			return nil, err
		}
	}
	a, err := s.d.Inventory.RequestSwitchover(r.Context(), p.Actor(), r.PathValue("app"), req.To)
	if err != nil {
		return nil, err
	}
	s.appsChanged(r.Context())
	out := appOut(a)
	s.awaiting(a, &out)
	return out, nil
}

// appsChanged rebuilds this controller's view of apps at once, so that the
// next heartbeat of each member that reaches it tells its agent to fetch its
// new desired state. (The reconcilers, and the other controllers' views,
// react to the change's event: package feed.) A failure is logged: the
// periodic rebuild catches up.
func (s *Server) appsChanged(ctx context.Context) {
	if s.d.Apps == nil {
		return
	}
	if err := s.d.Apps.Refresh(context.WithoutCancel(ctx)); err != nil {
		s.log.Warn("rebuilding the view of apps failed", "err", err)
	}
}
