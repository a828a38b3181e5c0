package store

import (
	"database/sql"
	"fmt"
	"strings"
	"time"
)

const provisionJobColumns = `id, uuid, host_id, state, reinstall, tasks_total, tasks_done, changed,
	task, message, created_by, created_at, started_at, finished_at, updated_at, epoch, runner, cancel_by`

// provisionJobSelect reads a job with the hostname of its host.
const provisionJobSelect = provisionJobColumns +
	`, (SELECT h.hostname FROM hosts h WHERE h.id = provision_jobs.host_id)`

// nullTime stores the zero time as NULL, for times that are not there yet.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}

func (t *sqlTx) InsertProvisionJob(j *ProvisionJob) error {
	_, err := t.exec("insert provision job", `INSERT INTO provision_jobs (`+provisionJobColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
		j.ID, j.UUID, j.HostID, j.State, j.Reinstall, j.TasksTotal, j.TasksDone, j.Changed,
		j.Task, j.Message, j.CreatedBy, utc(j.CreatedAt), nullTime(j.StartedAt), nullTime(j.FinishedAt),
		utc(j.UpdatedAt), j.Epoch, j.Runner, j.CancelBy)
	return err
}

func (t *sqlTx) UpdateProvisionJob(j *ProvisionJob) error {
	r, err := t.exec("update provision job", `UPDATE provision_jobs SET state = $1, tasks_total = $2,
		tasks_done = $3, changed = $4, task = $5, message = $6, started_at = $7, finished_at = $8,
		updated_at = $9, epoch = $10, runner = $11, cancel_by = $12 WHERE id = $13`,
		j.State, j.TasksTotal, j.TasksDone, j.Changed, j.Task, j.Message, nullTime(j.StartedAt),
		nullTime(j.FinishedAt), utc(j.UpdatedAt), j.Epoch, j.Runner, j.CancelBy, j.ID)
	if err != nil {
		return err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return fmt.Errorf("update provision job %d: %w", j.ID, ErrNotFound)
	}
	return nil
}

func (t *sqlTx) queryProvisionJobs(op, q string, args ...any) ([]ProvisionJob, error) {
	rows, err := t.tx.QueryContext(t.ctx, q, args...)
	if err != nil {
		return nil, t.wrap(op, err)
	}
	defer rows.Close()
	var out []ProvisionJob
	for rows.Next() {
		var (
			j                 ProvisionJob
			started, finished sql.NullTime
			hostname          sql.NullString
		)
		if err := rows.Scan(&j.ID, &j.UUID, &j.HostID, &j.State, &j.Reinstall, &j.TasksTotal,
			&j.TasksDone, &j.Changed, &j.Task, &j.Message, &j.CreatedBy, &j.CreatedAt, &started,
			&finished, &j.UpdatedAt, &j.Epoch, &j.Runner, &j.CancelBy, &hostname); err != nil {
			return nil, t.wrap(op, err)
		}
		j.Hostname = hostname.String
		j.CreatedAt, j.UpdatedAt = j.CreatedAt.UTC(), j.UpdatedAt.UTC()
		if started.Valid {
			j.StartedAt = started.Time.UTC()
		}
		if finished.Valid {
			j.FinishedAt = finished.Time.UTC()
		}
		out = append(out, j)
	}
	return out, t.wrap(op, rows.Err())
}

func (t *sqlTx) oneProvisionJob(op, q string, args ...any) (ProvisionJob, error) {
	js, err := t.queryProvisionJobs(op, q, args...)
	if err != nil {
		return ProvisionJob{}, err
	}
	if len(js) == 0 {
		return ProvisionJob{}, fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	return js[0], nil
}

func (t *sqlTx) ProvisionJobByID(id int64) (ProvisionJob, error) {
	return t.oneProvisionJob(fmt.Sprintf("provision job %d", id),
		`SELECT `+provisionJobSelect+` FROM provision_jobs WHERE id = $1`, id)
}

func (t *sqlTx) ProvisionJobForUpdate(id int64) (ProvisionJob, error) {
	r, err := t.exec("lock provision job", `UPDATE provision_jobs SET updated_at = updated_at WHERE id = $1`, id)
	if err != nil {
		return ProvisionJob{}, err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return ProvisionJob{}, fmt.Errorf("provision job %d: %w", id, ErrNotFound)
	}
	return t.ProvisionJobByID(id)
}

func (t *sqlTx) LatestProvisionJob(hostID int64) (ProvisionJob, error) {
	return t.oneProvisionJob(fmt.Sprintf("latest provision job of host %d", hostID),
		`SELECT `+provisionJobSelect+` FROM provision_jobs WHERE host_id = $1 ORDER BY id DESC LIMIT 1`, hostID)
}

func (t *sqlTx) ListProvisionJobs(states ...string) ([]ProvisionJob, error) {
	where, args := inStates(states)
	return t.queryProvisionJobs("list provision jobs", `SELECT `+provisionJobSelect+` FROM provision_jobs`+where+" ORDER BY id", args...)
}

// inStates is the WHERE clause of a list of the rows in any of states (none when no state is
// given), and its arguments.
func inStates(states []string) (string, []any) {
	if len(states) == 0 {
		return "", nil
	}
	args := make([]any, len(states))
	ph := make([]string, len(states))
	for i, s := range states {
		args[i], ph[i] = s, fmt.Sprintf("$%d", i+1)
	}
	return ` WHERE state IN (` + strings.Join(ph, ", ") + `)`, args
}

// AppendProvisionLog first touches the job's row, as LockPool does, so that
// on PostgreSQL two appends to one log take their turns instead of both
// reading the same last sequence number.
func (t *sqlTx) AppendProvisionLog(jobID int64, text string) (int64, error) {
	r, err := t.exec("lock provision job", `UPDATE provision_jobs SET updated_at = updated_at WHERE id = $1`, jobID)
	if err != nil {
		return 0, err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return 0, fmt.Errorf("append to the log of provision job %d: %w", jobID, ErrNotFound)
	}
	var seq int64
	err = t.tx.QueryRowContext(t.ctx, `INSERT INTO provision_log (job_id, seq, text)
		VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM provision_log WHERE job_id = $1), $2)
		RETURNING seq`, jobID, text).Scan(&seq)
	return seq, t.wrap("append provision log", err)
}

func (t *sqlTx) ProvisionLog(jobID int64, afterSeq int64, limit int) ([]LogChunk, error) {
	q := `SELECT seq, text FROM provision_log WHERE job_id = $1 AND seq > $2 ORDER BY seq`
	if limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", limit)
	}
	rows, err := t.tx.QueryContext(t.ctx, q, jobID, afterSeq)
	if err != nil {
		return nil, t.wrap("provision log", err)
	}
	defer rows.Close()
	var out []LogChunk
	for rows.Next() {
		var c LogChunk
		if err := rows.Scan(&c.Seq, &c.Text); err != nil {
			return nil, t.wrap("provision log", err)
		}
		out = append(out, c)
	}
	return out, t.wrap("provision log", rows.Err())
}
