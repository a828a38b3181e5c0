package store

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

func (t *sqlTx) UseToken(id string) error {
	r, err := t.exec("use token", `UPDATE tokens SET uses = uses + 1
		WHERE id = $1 AND (max_uses = 0 OR uses < max_uses)`, id)
	if err != nil {
		return err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return fmt.Errorf("use token %q: %w", id, ErrNotFound)
	}
	return nil
}

// one runs an UPDATE that must touch exactly one row.
func (t *sqlTx) one(op, q string, args ...any) error {
	r, err := t.exec(op, q, args...)
	if err != nil {
		return err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	return nil
}

func (t *sqlTx) SetHostState(id int64, availability, operational string, at time.Time) error {
	return t.one("set host state", `UPDATE hosts SET availability = $1, operational = $2, updated_at = $3
		WHERE id = $4`, availability, operational, utc(at), id)
}

func (t *sqlTx) HostAgent(id int64) (string, error) {
	var serial string
	err := t.tx.QueryRowContext(t.ctx, `SELECT agent_serial FROM hosts WHERE id = $1`, id).Scan(&serial)
	return serial, t.wrap("host agent", err)
}

func (t *sqlTx) SetHostAgent(id int64, serial string) error {
	return t.one("set host agent", `UPDATE hosts SET agent_serial = $1 WHERE id = $2`, serial, id)
}

func (t *sqlTx) SwapHostAgent(id int64, old, serial string) error {
	return t.one("swap host agent", `UPDATE hosts SET agent_serial = $1 WHERE id = $2 AND agent_serial = $3`, serial, id, old)
}

func (t *sqlTx) ListAgentHosts() ([]AgentHost, error) {
	rows, err := t.tx.QueryContext(t.ctx, `SELECT id, hostname, personality, availability FROM hosts
		WHERE agent_serial <> '' ORDER BY id`)
	if err != nil {
		return nil, t.wrap("list agent hosts", err)
	}
	defer rows.Close()
	var out []AgentHost
	for rows.Next() {
		var h AgentHost
		if err := rows.Scan(&h.ID, &h.Hostname, &h.Personality, &h.Availability); err != nil {
			return nil, t.wrap("list agent hosts", err)
		}
		out = append(out, h)
	}
	return out, t.wrap("list agent hosts", rows.Err())
}

func (t *sqlTx) HostInventory(id int64) (string, string, error) {
	var inv, hash string
	err := t.tx.QueryRowContext(t.ctx, `SELECT inventory, inventory_hash FROM hosts WHERE id = $1`, id).Scan(&inv, &hash)
	return inv, hash, t.wrap("host inventory", err)
}

func (t *sqlTx) SetHostInventory(id int64, inv, hash string) error {
	return t.one("set host inventory", `UPDATE hosts SET inventory = $1, inventory_hash = $2 WHERE id = $3`, inv, hash, id)
}

const alarmColumns = `id, uuid, alarm_id, entity_type, entity_instance, severity, reason, alarm_type,
	probable_cause, proposed_repair_action, service_affecting, raised_at, updated_at`

func (t *sqlTx) RaiseAlarm(a *Alarm) (bool, error) {
	r, err := t.exec("update alarm", `UPDATE alarms SET severity = $1, reason = $2, alarm_type = $3,
		probable_cause = $4, proposed_repair_action = $5, service_affecting = $6, updated_at = $7
		WHERE alarm_id = $8 AND entity_instance = $9`, a.Severity, a.Reason, a.AlarmType, a.ProbableCause,
		a.ProposedRepairAction, a.ServiceAffecting, utc(a.UpdatedAt), a.AlarmID, a.EntityInstance)
	if err != nil {
		return false, err
	}
	if n, _ := r.RowsAffected(); n > 0 {
		return false, nil
	}
	id, err := t.NextID("alarms")
	if err != nil {
		return false, err
	}
	a.ID = id
	_, err = t.exec("raise alarm", `INSERT INTO alarms (`+alarmColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`, a.ID, a.UUID, a.AlarmID,
		a.EntityType, a.EntityInstance, a.Severity, a.Reason, a.AlarmType, a.ProbableCause,
		a.ProposedRepairAction, a.ServiceAffecting, utc(a.RaisedAt), utc(a.UpdatedAt))
	return err == nil, err
}

func (t *sqlTx) ClearAlarm(alarmID, entity string) (bool, error) {
	r, err := t.exec("clear alarm", `DELETE FROM alarms WHERE alarm_id = $1 AND entity_instance = $2`, alarmID, entity)
	if err != nil {
		return false, err
	}
	n, _ := r.RowsAffected()
	return n > 0, nil
}

func (t *sqlTx) queryAlarms(op, q string, args ...any) ([]Alarm, error) {
	rows, err := t.tx.QueryContext(t.ctx, q, args...)
	if err != nil {
		return nil, t.wrap(op, err)
	}
	defer rows.Close()
	var out []Alarm
	for rows.Next() {
		var a Alarm
		if err := rows.Scan(&a.ID, &a.UUID, &a.AlarmID, &a.EntityType, &a.EntityInstance, &a.Severity,
			&a.Reason, &a.AlarmType, &a.ProbableCause, &a.ProposedRepairAction, &a.ServiceAffecting,
			&a.RaisedAt, &a.UpdatedAt); err != nil {
			return nil, t.wrap(op, err)
		}
		a.RaisedAt, a.UpdatedAt = a.RaisedAt.UTC(), a.UpdatedAt.UTC()
		out = append(out, a)
	}
	return out, t.wrap(op, rows.Err())
}

func (t *sqlTx) ListAlarms(f AlarmFilter) ([]Alarm, error) {
	if f.Severity != "" {
		if err := t.customPlans(); err != nil {
			return nil, err
		}
	}
	q, args := alarmsQuery(t.dialect, f)
	return t.queryAlarms("list alarms", q, args...)
}

// alarmsQuery is the query of ListAlarms on dialect.
func alarmsQuery(dialect string, f AlarmFilter) (string, []any) {
	conds, args := eqTerms(dialect, eqFilter{"entity_instance", f.EntityInstance}, eqFilter{"severity", f.Severity})
	if f.AfterID > 0 {
		args = append(args, f.AfterID)
		conds = append(conds, fmt.Sprintf("id > $%d", len(args)))
	}
	q := `SELECT ` + alarmColumns + ` FROM alarms`
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	q += " ORDER BY id"
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	return q, args
}

func (t *sqlTx) AlarmByUUID(uuid string) (Alarm, error) {
	as, err := t.queryAlarms("alarm by uuid", `SELECT `+alarmColumns+` FROM alarms WHERE uuid = $1`, uuid)
	if err != nil {
		return Alarm{}, err
	}
	if len(as) == 0 {
		return Alarm{}, fmt.Errorf("alarm %s: %w", uuid, ErrNotFound)
	}
	return as[0], nil
}

func (t *sqlTx) EventsAfter(afterID int64, actions []string, limit int) ([]Event, error) {
	args := []any{afterID}
	var ph []string
	for _, a := range actions {
		args = append(args, a)
		ph = append(ph, fmt.Sprintf("$%d", len(args)))
	}
	q := `SELECT id, uuid, event_time, code, entity_type, entity_id, action, actor, reason FROM events WHERE id > $1`
	if len(ph) > 0 {
		q += ` AND action IN (` + strings.Join(ph, ", ") + `)`
	}
	q += fmt.Sprintf(" ORDER BY id LIMIT %d", limit)
	rows, err := t.tx.QueryContext(t.ctx, q, args...)
	if err != nil {
		return nil, t.wrap("events after", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		if err := rows.Scan(&e.ID, &e.UUID, &e.Time, &e.Code, &e.EntityType, &e.EntityID, &e.Action, &e.Actor, &e.Reason); err != nil {
			return nil, t.wrap("events after", err)
		}
		e.Time = e.Time.UTC()
		out = append(out, e)
	}
	return out, t.wrap("events after", rows.Err())
}

// Cursors live in the counters table under cursorPrefix: every row there
// is a reader's, and the prune keeps what the lowest one has not read.
const cursorPrefix = "cursor:"

func (t *sqlTx) Cursor(name string) (int64, bool, error) {
	var v int64
	err := t.tx.QueryRowContext(t.ctx, `SELECT value FROM counters WHERE name = $1`, cursorPrefix+name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return v, err == nil, t.wrap("cursor", err)
}

func (t *sqlTx) SetCursor(name string, v int64) error {
	_, err := t.exec("set cursor", `INSERT INTO counters (name, value) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, cursorPrefix+name, v)
	return err
}

func (t *sqlTx) MinCursor() (string, int64, bool, error) {
	var (
		name string
		v    int64
	)
	// substr, not LIKE: exact on both databases, whatever the collation;
	// the table has a row per counter and per reader.
	err := t.tx.QueryRowContext(t.ctx, `SELECT name, value FROM counters
		WHERE substr(name, 1, $1) = $2 ORDER BY value, name LIMIT 1`, len(cursorPrefix), cursorPrefix).Scan(&name, &v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0, false, nil
	}
	if err != nil {
		return "", 0, false, t.wrap("lowest cursor", err)
	}
	return strings.TrimPrefix(name, cursorPrefix), v, true, nil
}

func (t *sqlTx) DeleteCursor(name string) (bool, error) {
	r, err := t.exec("delete cursor", `DELETE FROM counters WHERE name = $1`, cursorPrefix+name)
	if err != nil {
		return false, err
	}
	n, _ := r.RowsAffected()
	return n > 0, nil
}

func (t *sqlTx) EventIDs() (int64, int64, error) {
	var lo, hi sql.NullInt64
	// Two subqueries: SQLite reads MIN and MAX from the index only when a
	// query has one of them.
	err := t.tx.QueryRowContext(t.ctx, `SELECT (SELECT MIN(id) FROM events), (SELECT MAX(id) FROM events)`).Scan(&lo, &hi)
	return lo.Int64, hi.Int64, t.wrap("event ids", err)
}

func (t *sqlTx) FirstEventSince(at time.Time) (int64, bool, error) {
	var id int64
	err := t.tx.QueryRowContext(t.ctx, `SELECT id FROM events WHERE event_time >= $1 ORDER BY id LIMIT 1`, utc(at)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return id, err == nil, t.wrap("first event since", err)
}

func (t *sqlTx) PruneEvents(beforeID int64, limit int) (int, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("prune events: limit %d: give a positive batch size", limit)
	}
	_, at, ok, err := t.MinCursor()
	if err != nil {
		return 0, err
	}
	if ok && at+1 < beforeID {
		beforeID = at + 1
	}
	r, err := t.exec("prune events", fmt.Sprintf(`DELETE FROM events WHERE id IN
		(SELECT id FROM events WHERE id < $1 ORDER BY id LIMIT %d)`, limit), beforeID)
	if err != nil {
		return 0, err
	}
	n, err := r.RowsAffected()
	return int(n), t.wrap("prune events", err)
}
