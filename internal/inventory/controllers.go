package inventory

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/fm"
	"hummingbird.io/hummingbird/internal/leader"
	"hummingbird.io/hummingbird/internal/problem"
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

// DeleteController removes a controller that is gone for good from the list, and clears its
// alarm 400.005. Only a controller the leader counts lost may be removed: one that renews its
// row is running (stop it, and it leaves the list itself), and the one that leads is running
// by definition. The row is deleted only while it is the run that was lost: a controller of
// that name that comes back meanwhile stays.
func (s *Service) DeleteController(ctx context.Context, actor, name string) error {
	return s.st.Write(ctx, func(tx store.Tx) error {
		rows, err := tx.ListControllers()
		if err != nil {
			return err
		}
		i := slices.IndexFunc(rows, func(c store.Controller) bool { return c.Name == name })
		if i < 0 {
			return problem.NotFoundf("no controller %q: hbctl controller-list shows them", name)
		}
		c := rows[i]
		lead, err := tx.Leadership(leader.Duty)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if lead.Holder != "" && lead.Holder == c.RunID {
			return problem.Conflictf("", "controller %s leads: it cannot be removed from the list; stop it, and another takes the lead", name)
		}
		lost, err := controllerLost(tx, name)
		if err != nil {
			return err
		}
		if !lost {
			return problem.Conflictf("", "controller %s is up (it renews its row): stop it, and it leaves the list itself; "+
				"only a controller the leader counts lost (alarm %s) is removed by hand", name, fm.AlarmControllerLost)
		}
		if err := tx.DeleteController(c.Name, c.RunID); err != nil {
			return err
		}
		at := s.stamp()
		if err := fm.Clear(tx, fm.AlarmControllerLost, "controller", roster.Entity(name),
			fmt.Sprintf("controller %s removed from the list by %s", name, actor), s.newUUID(), at); err != nil {
			return err
		}
		return tx.AppendEvent(&store.Event{
			UUID: s.newUUID(), Time: at, Code: CodeHostCommand, EntityType: "controller",
			EntityID: roster.Entity(name), Action: "controller.delete", Actor: actor,
			Reason: fmt.Sprintf("controller %s (%s, %s) removed from the list", name, c.Address, c.Version),
		})
	})
}

// controllerLost says whether alarm 400.005 is raised for controller name.
func controllerLost(tx store.Tx, name string) (bool, error) {
	alarms, err := tx.ListAlarms(store.AlarmFilter{EntityInstance: roster.Entity(name)})
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(alarms, func(a store.Alarm) bool {
		return a.AlarmID == fm.AlarmControllerLost && a.EntityInstance == roster.Entity(name)
	}), nil
}
