package store

import "fmt"

func (t *sqlTx) InsertApp(a *App) error {
	if _, err := t.exec("insert app", `INSERT INTO apps (id, uuid, name, group_name, image, port, vip, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		a.ID, a.UUID, a.Name, a.Group, a.Image, a.Port, a.VIP, utc(a.CreatedAt), utc(a.UpdatedAt)); err != nil {
		return err
	}
	for _, m := range a.Members {
		if _, err := t.exec("insert app member", `INSERT INTO app_members (app_id, host_id, position) VALUES ($1, $2, $3)`,
			a.ID, m.HostID, m.Position); err != nil {
			return err
		}
	}
	return nil
}

const appColumns = `id, uuid, name, group_name, image, port, vip, created_at, updated_at`

// queryApps reads the apps where selects, by name, with their members.
func (t *sqlTx) queryApps(op, where string, args ...any) ([]App, error) {
	rows, err := t.tx.QueryContext(t.ctx, `SELECT `+appColumns+` FROM apps `+where+` ORDER BY name`, args...)
	if err != nil {
		return nil, t.wrap(op, err)
	}
	var out []App
	byID := map[int64]int{}
	for rows.Next() {
		var a App
		if err := rows.Scan(&a.ID, &a.UUID, &a.Name, &a.Group, &a.Image, &a.Port, &a.VIP, &a.CreatedAt, &a.UpdatedAt); err != nil {
			rows.Close()
			return nil, t.wrap(op, err)
		}
		a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
		a.Members = []AppMember{}
		byID[a.ID] = len(out)
		out = append(out, a)
	}
	err = rows.Err()
	rows.Close()
	if err != nil || len(out) == 0 {
		return out, t.wrap(op, err)
	}
	rows, err = t.tx.QueryContext(t.ctx, `SELECT m.app_id, m.host_id, h.hostname, h.availability, m.position
		FROM app_members m JOIN hosts h ON h.id = m.host_id
		WHERE m.app_id IN (SELECT id FROM apps `+where+`)
		ORDER BY m.app_id, m.position, h.hostname`, args...)
	if err != nil {
		return nil, t.wrap(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			appID int64
			m     AppMember
		)
		if err := rows.Scan(&appID, &m.HostID, &m.Hostname, &m.Availability, &m.Position); err != nil {
			return nil, t.wrap(op, err)
		}
		if i, ok := byID[appID]; ok {
			out[i].Members = append(out[i].Members, m)
		}
	}
	return out, t.wrap(op, rows.Err())
}

func (t *sqlTx) AppByName(name string) (App, error) {
	apps, err := t.queryApps("app by name", `WHERE name = $1`, name)
	if err != nil {
		return App{}, err
	}
	if len(apps) == 0 {
		return App{}, fmt.Errorf("app %q: %w", name, ErrNotFound)
	}
	return apps[0], nil
}

func (t *sqlTx) ListApps() ([]App, error) { return t.queryApps("list apps", "") }

func (t *sqlTx) DeleteApp(id int64) error {
	return t.one("delete app", `DELETE FROM apps WHERE id = $1`, id)
}

func (t *sqlTx) AppsOfHost(hostID int64) ([]App, error) {
	return t.queryApps("apps of host", `WHERE id IN (SELECT app_id FROM app_members WHERE host_id = $1)`, hostID)
}

func (t *sqlTx) AppsOfGroup(name string) ([]App, error) {
	return t.queryApps("apps of group", `WHERE group_name = $1`, name)
}
