package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/auth"
	"hummingbird.io/hummingbird/internal/fm"
	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/store"
)

var severities = []string{fm.Warning, fm.Minor, fm.Major, fm.Critical}

func alarmOut(a store.Alarm) apitype.Alarm {
	return apitype.Alarm{
		UUID: a.UUID, AlarmID: a.AlarmID, EntityTypeID: a.EntityType, EntityInstanceID: a.EntityInstance,
		Severity: a.Severity, ReasonText: a.Reason, AlarmType: a.AlarmType, ProbableCause: a.ProbableCause,
		ProposedRepairAction: a.ProposedRepairAction, ServiceAffecting: a.ServiceAffecting,
		Timestamp: a.RaisedAt, UpdatedAt: a.UpdatedAt,
	}
}

func (s *Server) listAlarms(r *http.Request, _ auth.Principal) (any, error) {
	q := r.URL.Query()
	limit, err := queryLimit(r, defaultPage, maxPage)
	if err != nil {
		return nil, err
	}
	f := store.AlarmFilter{EntityInstance: q.Get("entity_instance_id"), Severity: q.Get("severity"), Limit: limit + 1}
	if sv := f.Severity; sv != "" && !slices.Contains(severities, sv) {
		return nil, problem.Invalidf("severity", "severity %q is not one of: %s", sv, strings.Join(severities, ", "))
	}
	if m := q.Get("marker"); m != "" {
		id, err := strconv.ParseInt(m, 10, 64)
		if err != nil || id < 1 {
			return nil, problem.Invalidf("marker", "marker %q is not one this API returned; use the next value of the previous page", m)
		}
		f.AfterID = id
	}
	alarms, err := s.d.Inventory.Alarms(r.Context(), f)
	if err != nil {
		return nil, err
	}
	out := apitype.AlarmList{Alarms: make([]apitype.Alarm, 0, min(len(alarms), limit))}
	if len(alarms) > limit {
		alarms = alarms[:limit]
		out.Next = strconv.FormatInt(alarms[limit-1].ID, 10)
	}
	for _, a := range alarms {
		out.Alarms = append(out.Alarms, alarmOut(a))
	}
	return out, nil
}

func (s *Server) getAlarm(r *http.Request, _ auth.Principal) (any, error) {
	a, err := s.d.Inventory.Alarm(r.Context(), r.PathValue("alarm"))
	if err != nil {
		return nil, err
	}
	return alarmOut(a), nil
}

func (s *Server) getHostInventory(r *http.Request, _ auth.Principal) (any, error) {
	h, inv, hash, err := s.d.Inventory.HardwareInventory(r.Context(), r.PathValue("host"))
	if err != nil {
		return nil, err
	}
	out := apitype.HostInventory{Hostname: h.Hostname, Hash: hash}
	if err := json.Unmarshal([]byte(inv), &out.Inventory); err != nil {
		return nil, fmt.Errorf("stored inventory of %s: %w", h.Hostname, err)
	}
	return out, nil
}
