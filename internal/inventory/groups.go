package inventory

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/store"
)

// GroupInfo is a group with its members and labels.
type GroupInfo struct {
	store.Group
	Members []store.GroupMember
	Labels  map[string]string
}

func (s *Service) groupEvent(tx store.Tx, action, actor, name, reason string) error {
	return tx.AppendEvent(&store.Event{
		UUID: s.newUUID(), Time: s.stamp(), EntityType: "group", EntityID: "group=" + name,
		Action: action, Actor: actor, Reason: reason,
	})
}

// AddGroup adds a group (federation) of hosts.
func (s *Service) AddGroup(ctx context.Context, actor, name, description string) (store.Group, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return store.Group{}, problem.Invalidf("name", "a group needs a name: lowercase letters, digits and '-', like press-line")
	}
	if err := CheckGroup(name); err != nil {
		return store.Group{}, problem.Invalidf("name", "group name %q: use lowercase letters, digits and '-', 63 at most (it becomes a Node label value)", name)
	}
	if err := CheckText("description", description, 255); err != nil {
		return store.Group{}, err
	}
	now := s.stamp()
	g := store.Group{Name: name, Description: description, CreatedAt: now, UpdatedAt: now}
	err := s.st.Write(ctx, func(tx store.Tx) error {
		if _, err := tx.GroupByName(name); err == nil {
			return problem.Conflictf("name", "there is already a group named %s", name)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := tx.InsertGroup(&g); err != nil {
			return err
		}
		return s.groupEvent(tx, "group.add", actor, name, fmt.Sprintf("group %s added", name))
	})
	return g, err
}

func lookupGroup(tx store.Tx, name string) (store.Group, error) {
	g, err := tx.GroupByName(name)
	if errors.Is(err, store.ErrNotFound) {
		return g, problem.NotFoundf("no group %q (hbctl group-list shows them)", name)
	}
	return g, err
}

// GetGroup returns a group and its members.
func (s *Service) GetGroup(ctx context.Context, name string) (GroupInfo, error) {
	var out GroupInfo
	err := s.st.Read(ctx, func(tx store.Tx) error {
		g, err := lookupGroup(tx, name)
		if err != nil {
			return err
		}
		out.Group = g
		if out.Labels, err = tx.GroupLabels(name); err != nil {
			return err
		}
		out.Members, err = tx.ListGroupMembers(name)
		return err
	})
	return out, err
}

// ListGroups returns every group with its members.
func (s *Service) ListGroups(ctx context.Context) ([]GroupInfo, error) {
	var out []GroupInfo
	err := s.st.Read(ctx, func(tx store.Tx) error {
		groups, err := tx.ListGroups()
		if err != nil {
			return err
		}
		// The members' names and states alone: at 100,000 hosts whole
		// host rows cost seconds and hundreds of megabytes.
		all, err := tx.ListGroupMembers("")
		if err != nil {
			return err
		}
		labels, err := tx.AllGroupLabels()
		if err != nil {
			return err
		}
		members := map[string][]store.GroupMember{}
		for _, m := range all {
			members[m.Group] = append(members[m.Group], m)
		}
		for _, g := range groups {
			l := labels[g.Name]
			if l == nil {
				l = map[string]string{}
			}
			out = append(out, GroupInfo{Group: g, Members: members[g.Name], Labels: l})
		}
		return nil
	})
	return out, err
}

// DeleteGroup deletes a group without members or apps.
func (s *Service) DeleteGroup(ctx context.Context, actor, name string) error {
	return s.st.Write(ctx, func(tx store.Tx) error {
		if _, err := lookupGroup(tx, name); err != nil {
			return err
		}
		apps, err := tx.AppsOfGroup(name)
		if err != nil {
			return err
		}
		if len(apps) > 0 {
			return problem.Conflictf("", "group %s has apps: %s; delete them first (hbctl app-delete %s)", name, appNames(apps), apps[0].Name)
		}
		members, err := tx.ListHosts(store.HostFilter{Group: name, Limit: 11})
		if err != nil {
			return err
		}
		if len(members) > 0 {
			var names []string
			for i, h := range members {
				if i == 10 {
					names = append(names, "…")
					break
				}
				names = append(names, h.Hostname)
			}
			return problem.Conflictf("", "group %s has members: %s; move them to another group (host-update HOST group=…) first", name, strings.Join(names, ", "))
		}
		if err := tx.DeleteGroup(name); err != nil {
			return err
		}
		return s.groupEvent(tx, "group.delete", actor, name, fmt.Sprintf("group %s deleted", name))
	})
}

// GroupLabels returns a group's labels, the ones it gives its members' Nodes.
func (s *Service) GroupLabels(ctx context.Context, name string) (map[string]string, error) {
	var out map[string]string
	err := s.st.Read(ctx, func(tx store.Tx) error {
		if _, err := lookupGroup(tx, name); err != nil {
			return err
		}
		var err error
		out, err = tx.GroupLabels(name)
		return err
	})
	return out, err
}

// AssignGroupLabels sets labels on a group, keeping its others, in one
// transaction with its event.
func (s *Service) AssignGroupLabels(ctx context.Context, actor, name string, labels map[string]string) (map[string]string, error) {
	if len(labels) == 0 {
		return nil, problem.Invalidf("labels", "give at least one label to assign, like zone=north")
	}
	if err := CheckLabels(labels); err != nil {
		return nil, err
	}
	return s.relabelGroup(ctx, actor, name, "group.label.assign", func(l map[string]string) []string {
		var changed []string
		for k, v := range labels {
			if old, ok := l[k]; !ok || old != v {
				l[k] = v
				changed = append(changed, k+"="+v)
			}
		}
		return changed
	})
}

// RemoveGroupLabels removes labels from a group by key; keys it does not
// have are refused, so a typo does not pass for a success.
func (s *Service) RemoveGroupLabels(ctx context.Context, actor, name string, keys []string) (map[string]string, error) {
	if len(keys) == 0 {
		return nil, problem.Invalidf("keys", "give at least one label key to remove")
	}
	var missing error
	labels, err := s.relabelGroup(ctx, actor, name, "group.label.remove", func(l map[string]string) []string {
		var removed []string
		for _, k := range keys {
			if _, ok := l[k]; !ok {
				missing = problem.NotFoundf("group has no label %q (hbctl group-label-list shows its labels)", k)
				return nil
			}
			delete(l, k)
			removed = append(removed, k)
		}
		return removed
	})
	if missing != nil {
		return nil, missing
	}
	return labels, err
}

// relabelGroup applies change to a copy of a group's labels and stores the
// result with an event naming what changed; nothing changed, nothing is
// written.
func (s *Service) relabelGroup(ctx context.Context, actor, name, action string, change func(map[string]string) []string) (map[string]string, error) {
	var out map[string]string
	err := s.st.Write(ctx, func(tx store.Tx) error {
		if _, err := lookupGroup(tx, name); err != nil {
			return err
		}
		old, err := tx.GroupLabels(name)
		if err != nil {
			return err
		}
		labels := make(map[string]string, len(old))
		for k, v := range old {
			labels[k] = v
		}
		changed := change(labels)
		out = old
		if len(changed) == 0 {
			return nil
		}
		if err := tx.SetGroupLabels(name, labels); err != nil {
			return err
		}
		out = labels
		sort.Strings(changed)
		return s.groupEvent(tx, action, actor, name,
			fmt.Sprintf("group %s labels: %s %s", name, strings.TrimPrefix(action, "group.label."), strings.Join(changed, ", ")))
	})
	return out, err
}

// checkGroupExists refuses a host in a group that was never added.
func checkGroupExists(tx store.Tx, group string) error {
	if group == "" {
		return nil
	}
	if _, err := tx.GroupByName(group); errors.Is(err, store.ErrNotFound) {
		return problem.Invalidf("group", "no group %q: add it first with hbctl group-add %s", group, group)
	} else if err != nil {
		return err
	}
	return nil
}
