package inventory

import (
	"context"
	"errors"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/fm"
	"hummingbird.io/hummingbird/internal/leader"
	"hummingbird.io/hummingbird/internal/roster"
	"hummingbird.io/hummingbird/internal/store"
)

// ListControllers lists the controllers that share the database: which leads, in which epoch
// and with which duties, and which the leader counts lost (alarm 400.005).
func (s *Service) ListControllers(ctx context.Context) ([]apitype.Controller, error) {
	out := []apitype.Controller{}
	err := s.st.Read(ctx, func(tx store.Tx) error {
		out = out[:0]
		rows, err := tx.ListControllers()
		if err != nil {
			return err
		}
		lead, err := tx.Leadership(leader.Duty)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		alarms, err := tx.ListAlarms(store.AlarmFilter{})
		if err != nil {
			return err
		}
		lost := map[string]bool{}
		for _, a := range alarms {
			if a.AlarmID == fm.AlarmControllerLost {
				lost[a.EntityInstance] = true
			}
		}
		for _, r := range rows {
			c := apitype.Controller{Name: r.Name, Address: r.Address, Version: r.Version, State: apitype.ControllerUp,
				Duties: []string{}, StartedAt: r.StartedAt, LastSeen: r.SeenAt}
			if lost[roster.Entity(r.Name)] {
				c.State = apitype.ControllerLost
			}
			if lead.Holder != "" && lead.Holder == r.RunID {
				c.Leader, c.Epoch = true, lead.Epoch
				c.Duties = append(c.Duties, r.Duties...)
			}
			out = append(out, c)
		}
		return nil
	})
	return out, err
}
