package store

import (
	"database/sql"
	"fmt"
	"strings"
	"time"
)

const lockOpColumns = `id, uuid, host_id, state, force, timeout_ms, actor, apps, drain, note,
	pods_total, pods_evicted, pending, message, started_at, finished_at, updated_at, epoch, runner, cancel_by`

// lockOpSelect reads a lock with the hostname of its host.
const lockOpSelect = lockOpColumns + `, (SELECT h.hostname FROM hosts h WHERE h.id = lock_ops.host_id)`

// joinLines stores a list of names (apps, namespace/name of pods) one a line; none of them
// holds a newline.
func joinLines(s []string) string { return strings.Join(s, "\n") }

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func (t *sqlTx) InsertLockOp(o *LockOp) error {
	_, err := t.exec("insert lock", `INSERT INTO lock_ops (`+lockOpColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)`,
		o.ID, o.UUID, o.HostID, o.State, o.Force, o.Timeout.Milliseconds(), o.Actor, joinLines(o.Apps), o.Drain,
		o.Note, o.PodsTotal, o.PodsEvicted, joinLines(o.Pending), o.Message, utc(o.StartedAt),
		nullTime(o.FinishedAt), utc(o.UpdatedAt), o.Epoch, o.Runner, o.CancelBy)
	return err
}

func (t *sqlTx) UpdateLockOp(o *LockOp) error {
	r, err := t.exec("update lock", `UPDATE lock_ops SET state = $1, pods_total = $2, pods_evicted = $3,
		pending = $4, message = $5, finished_at = $6, updated_at = $7, epoch = $8, runner = $9,
		cancel_by = $10 WHERE id = $11`,
		o.State, o.PodsTotal, o.PodsEvicted, joinLines(o.Pending), o.Message, nullTime(o.FinishedAt),
		utc(o.UpdatedAt), o.Epoch, o.Runner, o.CancelBy, o.ID)
	if err != nil {
		return err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return fmt.Errorf("update lock %d: %w", o.ID, ErrNotFound)
	}
	return nil
}

func (t *sqlTx) queryLockOps(op, q string, args ...any) ([]LockOp, error) {
	rows, err := t.tx.QueryContext(t.ctx, q, args...)
	if err != nil {
		return nil, t.wrap(op, err)
	}
	defer rows.Close()
	var out []LockOp
	for rows.Next() {
		var (
			o             LockOp
			timeoutMS     int64
			apps, pending string
			finished      sql.NullTime
			hostname      sql.NullString
		)
		if err := rows.Scan(&o.ID, &o.UUID, &o.HostID, &o.State, &o.Force, &timeoutMS, &o.Actor, &apps, &o.Drain,
			&o.Note, &o.PodsTotal, &o.PodsEvicted, &pending, &o.Message, &o.StartedAt, &finished, &o.UpdatedAt,
			&o.Epoch, &o.Runner, &o.CancelBy, &hostname); err != nil {
			return nil, t.wrap(op, err)
		}
		o.Timeout = time.Duration(timeoutMS) * time.Millisecond
		o.Apps, o.Pending, o.Hostname = splitLines(apps), splitLines(pending), hostname.String
		o.StartedAt, o.UpdatedAt = o.StartedAt.UTC(), o.UpdatedAt.UTC()
		if finished.Valid {
			o.FinishedAt = finished.Time.UTC()
		}
		out = append(out, o)
	}
	return out, t.wrap(op, rows.Err())
}

func (t *sqlTx) oneLockOp(op, q string, args ...any) (LockOp, error) {
	os, err := t.queryLockOps(op, q, args...)
	if err != nil {
		return LockOp{}, err
	}
	if len(os) == 0 {
		return LockOp{}, fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	return os[0], nil
}

func (t *sqlTx) LockOpForUpdate(id int64) (LockOp, error) {
	r, err := t.exec("hold lock", `UPDATE lock_ops SET updated_at = updated_at WHERE id = $1`, id)
	if err != nil {
		return LockOp{}, err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return LockOp{}, fmt.Errorf("lock %d: %w", id, ErrNotFound)
	}
	return t.oneLockOp(fmt.Sprintf("lock %d", id), `SELECT `+lockOpSelect+` FROM lock_ops WHERE id = $1`, id)
}

func (t *sqlTx) LatestLockOp(hostID int64) (LockOp, error) {
	return t.oneLockOp(fmt.Sprintf("latest lock of host %d", hostID),
		`SELECT `+lockOpSelect+` FROM lock_ops WHERE host_id = $1 ORDER BY id DESC LIMIT 1`, hostID)
}

func (t *sqlTx) ListLockOps(states ...string) ([]LockOp, error) {
	where, args := inStates(states)
	return t.queryLockOps("list locks", `SELECT `+lockOpSelect+` FROM lock_ops`+where+" ORDER BY id", args...)
}

// SerializeLocks touches the lock_ops counter's row: on PostgreSQL (whose ids come from a
// sequence) the row is held until the transaction ends; SQLite serializes writers anyway.
func (t *sqlTx) SerializeLocks() error {
	_, err := t.exec("serialize locks", `UPDATE counters SET value = value WHERE name = 'lock_ops'`)
	return err
}
