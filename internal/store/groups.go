package store

import "fmt"

func (t *sqlTx) InsertGroup(g *Group) error {
	_, err := t.exec("insert group", `INSERT INTO host_groups (name, description, created_at, updated_at)
		VALUES ($1, $2, $3, $4)`, g.Name, g.Description, utc(g.CreatedAt), utc(g.UpdatedAt))
	return err
}

func (t *sqlTx) queryGroups(op, q string, args ...any) ([]Group, error) {
	rows, err := t.tx.QueryContext(t.ctx, q, args...)
	if err != nil {
		return nil, t.wrap(op, err)
	}
	defer rows.Close()
	var out []Group
	for rows.Next() {
		var g Group
		if err := rows.Scan(&g.Name, &g.Description, &g.CreatedAt, &g.UpdatedAt); err != nil {
			return nil, t.wrap(op, err)
		}
		g.CreatedAt, g.UpdatedAt = g.CreatedAt.UTC(), g.UpdatedAt.UTC()
		out = append(out, g)
	}
	return out, t.wrap(op, rows.Err())
}

func (t *sqlTx) GroupByName(name string) (Group, error) {
	gs, err := t.queryGroups("group by name", `SELECT name, description, created_at, updated_at
		FROM host_groups WHERE name = $1`, name)
	if err != nil {
		return Group{}, err
	}
	if len(gs) == 0 {
		return Group{}, fmt.Errorf("group %q: %w", name, ErrNotFound)
	}
	return gs[0], nil
}

func (t *sqlTx) ListGroups() ([]Group, error) {
	return t.queryGroups("list groups", `SELECT name, description, created_at, updated_at FROM host_groups ORDER BY name`)
}

func (t *sqlTx) DeleteGroup(name string) error {
	return t.one("delete group", `DELETE FROM host_groups WHERE name = $1`, name)
}

func (t *sqlTx) ListGroupMembers(group string) ([]GroupMember, error) {
	q, args := `SELECT host_group, hostname, personality, availability FROM hosts
		WHERE host_group <> '' ORDER BY host_group, id`, []any(nil)
	if group != "" {
		q, args = `SELECT host_group, hostname, personality, availability FROM hosts
			WHERE host_group = $1 ORDER BY id`, []any{group}
	}
	rows, err := t.tx.QueryContext(t.ctx, q, args...)
	if err != nil {
		return nil, t.wrap("list group members", err)
	}
	defer rows.Close()
	var out []GroupMember
	for rows.Next() {
		var m GroupMember
		if err := rows.Scan(&m.Group, &m.Hostname, &m.Personality, &m.Availability); err != nil {
			return nil, t.wrap("list group members", err)
		}
		out = append(out, m)
	}
	return out, t.wrap("list group members", rows.Err())
}
