package store

import (
	"database/sql"
	"fmt"
	"time"
)

func (t *sqlTx) InsertApp(a *App) error {
	if _, err := t.exec("insert app", `INSERT INTO apps (id, uuid, name, group_name, image, port, vip, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		a.ID, a.UUID, a.Name, a.Group, a.Image, a.Port, a.VIP, utc(a.CreatedAt), utc(a.UpdatedAt)); err != nil {
		return err
	}
	var witness int64
	if a.Witness != nil {
		witness = a.Witness.HostID
	}
	if _, err := t.exec("insert app state", `INSERT INTO app_state (app_id, witness_host_id, health_kind, health_path,
		heartbeat_ms, probes, lean_probes)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, a.ID, nullID(witness), a.HealthKind, a.HealthPath,
		a.HeartbeatMillis, a.Probes, a.LeanProbes); err != nil {
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

// appSelect reads an app (alias a) with its state (s) and the hosts its
// state names.
const appSelect = `SELECT a.id, a.uuid, a.name, a.group_name, a.image, a.port, a.vip, a.created_at, a.updated_at,
	s.health_kind, s.health_path, s.heartbeat_ms, s.probes, s.lean_probes,
	COALESCE(s.witness_host_id, 0), COALESCE(w.hostname, ''), COALESCE(w.uuid, ''), COALESCE(w.mgmt_ip, ''), COALESCE(w.availability, ''),
	COALESCE(w.agent_serial, ''), COALESCE(s.active_host_id, 0), COALESCE(ah.hostname, ''), s.epoch,
	s.last_switch_epoch, s.last_switch_at, COALESCE(s.last_switch_from_host_id, 0), COALESCE(lf.hostname, ''),
	COALESCE(s.last_switch_to_host_id, 0), COALESCE(lt.hostname, ''), s.last_switch_duration_ms, s.last_switch_reason,
	s.switchover_seq, s.switchover_pending, COALESCE(s.switchover_to_host_id, 0), COALESCE(st.hostname, ''), s.switchover_at
	FROM apps a JOIN app_state s ON s.app_id = a.id
	LEFT JOIN hosts w ON w.id = s.witness_host_id
	LEFT JOIN hosts ah ON ah.id = s.active_host_id
	LEFT JOIN hosts lf ON lf.id = s.last_switch_from_host_id
	LEFT JOIN hosts lt ON lt.id = s.last_switch_to_host_id
	LEFT JOIN hosts st ON st.id = s.switchover_to_host_id `

// queryApps reads the apps where selects (on apps a), by name, with their
// members.
func (t *sqlTx) queryApps(op, where string, args ...any) ([]App, error) {
	rows, err := t.tx.QueryContext(t.ctx, appSelect+where+` ORDER BY a.name`, args...)
	if err != nil {
		return nil, t.wrap(op, err)
	}
	var out []App
	byID := map[int64]int{}
	for rows.Next() {
		var (
			a                  App
			w                  AppMember
			switchAt, switchOv sql.NullTime
		)
		if err := rows.Scan(&a.ID, &a.UUID, &a.Name, &a.Group, &a.Image, &a.Port, &a.VIP, &a.CreatedAt, &a.UpdatedAt,
			&a.HealthKind, &a.HealthPath, &a.HeartbeatMillis, &a.Probes, &a.LeanProbes,
			&w.HostID, &w.Hostname, &w.HostUUID, &w.MgmtIP, &w.Availability,
			&w.AgentSerial, &a.ActiveHostID, &a.ActiveHostname, &a.Epoch,
			&a.LastSwitch.Epoch, &switchAt, &a.LastSwitch.FromHostID, &a.LastSwitch.FromHostname,
			&a.LastSwitch.ToHostID, &a.LastSwitch.ToHostname, &a.LastSwitch.DurationMillis, &a.LastSwitch.Reason,
			&a.Switchover.Seq, &a.Switchover.Pending, &a.Switchover.ToHostID, &a.Switchover.ToHostname, &switchOv); err != nil {
			rows.Close()
			return nil, t.wrap(op, err)
		}
		a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
		if w.HostID != 0 {
			a.Witness = &w
		}
		if switchAt.Valid {
			a.LastSwitch.At = switchAt.Time.UTC()
		}
		if switchOv.Valid {
			a.Switchover.RequestedAt = switchOv.Time.UTC()
		}
		a.Members = []AppMember{}
		byID[a.ID] = len(out)
		out = append(out, a)
	}
	err = rows.Err()
	rows.Close()
	if err != nil || len(out) == 0 {
		return out, t.wrap(op, err)
	}
	rows, err = t.tx.QueryContext(t.ctx, `SELECT m.app_id, m.host_id, h.hostname, h.uuid, COALESCE(h.mgmt_ip, ''), h.availability,
		h.agent_serial, h.administrative = 'locked', m.position, COALESCE(ms.role, ''), COALESCE(ms.healthy, FALSE), ms.reported_at
		FROM app_members m JOIN hosts h ON h.id = m.host_id
		LEFT JOIN app_member_status ms ON ms.app_id = m.app_id AND ms.host_id = m.host_id
		WHERE m.app_id IN (SELECT a.id FROM apps a `+where+`)
		ORDER BY m.app_id, m.position, h.hostname`, args...)
	if err != nil {
		return nil, t.wrap(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			appID    int64
			m        AppMember
			reported sql.NullTime
		)
		if err := rows.Scan(&appID, &m.HostID, &m.Hostname, &m.HostUUID, &m.MgmtIP, &m.Availability, &m.AgentSerial, &m.Locked, &m.Position,
			&m.Role, &m.Healthy, &reported); err != nil {
			return nil, t.wrap(op, err)
		}
		if reported.Valid {
			m.ReportedAt = reported.Time.UTC()
		}
		if i, ok := byID[appID]; ok {
			out[i].Members = append(out[i].Members, m)
		}
	}
	return out, t.wrap(op, rows.Err())
}

func (t *sqlTx) AppByName(name string) (App, error) {
	apps, err := t.queryApps("app by name", `WHERE a.name = $1`, name)
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
	return t.queryApps("apps of host", `WHERE a.id IN (SELECT app_id FROM app_members WHERE host_id = $1)
		OR a.id IN (SELECT app_id FROM app_state WHERE witness_host_id = $1)`, hostID)
}

func (t *sqlTx) AppsOfGroup(name string) ([]App, error) {
	return t.queryApps("apps of group", `WHERE a.group_name = $1`, name)
}

// changedRow reports whether an update touched a row.
func changedRow(r sql.Result) bool {
	n, _ := r.RowsAffected()
	return n > 0
}

func (t *sqlTx) SetAppActive(appID, hostID, epoch int64) (bool, error) {
	r, err := t.exec("set app active", `UPDATE app_state SET active_host_id = $1, epoch = $2
		WHERE app_id = $3 AND epoch < $2`, hostID, epoch, appID)
	if err != nil {
		return false, err
	}
	return changedRow(r), nil
}

func (t *sqlTx) SetAppLastSwitch(appID int64, s AppSwitch) (bool, error) {
	r, err := t.exec("set app last switch", `UPDATE app_state SET last_switch_epoch = $1, last_switch_at = $2,
		last_switch_from_host_id = $3, last_switch_to_host_id = $4, last_switch_duration_ms = $5, last_switch_reason = $6
		WHERE app_id = $7 AND last_switch_epoch < $1`,
		s.Epoch, utc(s.At), nullID(s.FromHostID), nullID(s.ToHostID), s.DurationMillis, s.Reason, appID)
	if err != nil {
		return false, err
	}
	return changedRow(r), nil
}

func (t *sqlTx) SetAppMemberStatus(appID int64, s AppMemberStatus) error {
	_, err := t.exec("set app member status", `INSERT INTO app_member_status (app_id, host_id, role, healthy, reported_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (app_id, host_id) DO UPDATE SET role = excluded.role, healthy = excluded.healthy, reported_at = excluded.reported_at`,
		appID, s.HostID, s.Role, s.Healthy, utc(s.ReportedAt))
	return err
}

func (t *sqlTx) SetAppReport(appID int64, r AppReport) error {
	_, err := t.exec("set app report", `INSERT INTO app_reports (app_id, host_id, active_host_id, epoch, role, healthy,
		switchover_seq, last_switch, missing, reported_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (app_id, host_id) DO UPDATE SET active_host_id = excluded.active_host_id, epoch = excluded.epoch,
		role = excluded.role, healthy = excluded.healthy, switchover_seq = excluded.switchover_seq,
		last_switch = excluded.last_switch, missing = excluded.missing, reported_at = excluded.reported_at`,
		appID, r.HostID, r.ActiveHostID, r.Epoch, r.Role, r.Healthy, r.SwitchoverSeq, r.LastSwitch, r.Missing, utc(r.ReportedAt))
	return err
}

func (t *sqlTx) AppReports(appID int64) ([]AppReport, error) {
	rows, err := t.tx.QueryContext(t.ctx, `SELECT host_id, active_host_id, epoch, role, healthy, switchover_seq,
		last_switch, missing, reported_at FROM app_reports WHERE app_id = $1 ORDER BY host_id`, appID)
	if err != nil {
		return nil, t.wrap("app reports", err)
	}
	defer rows.Close()
	var out []AppReport
	for rows.Next() {
		var r AppReport
		if err := rows.Scan(&r.HostID, &r.ActiveHostID, &r.Epoch, &r.Role, &r.Healthy, &r.SwitchoverSeq,
			&r.LastSwitch, &r.Missing, &r.ReportedAt); err != nil {
			return nil, t.wrap("app reports", err)
		}
		r.ReportedAt = r.ReportedAt.UTC()
		out = append(out, r)
	}
	return out, t.wrap("app reports", rows.Err())
}

func (t *sqlTx) RequestAppSwitchover(appID, toHostID int64, at time.Time) (int64, error) {
	var seq int64
	err := t.tx.QueryRowContext(t.ctx, `UPDATE app_state SET switchover_seq = switchover_seq + 1, switchover_pending = TRUE,
		switchover_to_host_id = $1, switchover_at = $2 WHERE app_id = $3 RETURNING switchover_seq`,
		nullID(toHostID), utc(at), appID).Scan(&seq)
	return seq, t.wrap("request app switchover", err)
}

func (t *sqlTx) EndAppSwitchover(appID, doneSeq int64) (bool, error) {
	r, err := t.exec("end app switchover", `UPDATE app_state SET switchover_pending = FALSE
		WHERE app_id = $1 AND switchover_pending AND switchover_seq <= $2`, appID, doneSeq)
	if err != nil {
		return false, err
	}
	return changedRow(r), nil
}
