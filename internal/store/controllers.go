package store

import (
	"strings"
	"time"
)

// Controller is the row of one controller that shares the database.
type Controller struct {
	Name      string
	RunID     string // the leadership row's holder while it leads
	Address   string
	Version   string
	Duties    []string // the parts it runs while it leads
	StartedAt time.Time
	Seen      int64     // grows with each renewal
	SeenAt    time.Time // the controller's clock at its last renewal
}

func (t *sqlTx) PutController(c Controller) error {
	_, err := t.exec("put controller", `INSERT INTO controllers (name, run_id, address, version, duties, started_at, seen, seen_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (name) DO UPDATE SET run_id = excluded.run_id, address = excluded.address, version = excluded.version,
		duties = excluded.duties, started_at = excluded.started_at, seen = excluded.seen, seen_at = excluded.seen_at`,
		c.Name, c.RunID, c.Address, c.Version, strings.Join(c.Duties, ","), utc(c.StartedAt), c.Seen, utc(c.SeenAt))
	return err
}

func (t *sqlTx) ListControllers() ([]Controller, error) {
	rows, err := t.tx.QueryContext(t.ctx, `SELECT name, run_id, address, version, duties, started_at, seen, seen_at
		FROM controllers ORDER BY name`)
	if err != nil {
		return nil, t.wrap("list controllers", err)
	}
	defer rows.Close()
	var out []Controller
	for rows.Next() {
		var (
			c      Controller
			duties string
		)
		if err := rows.Scan(&c.Name, &c.RunID, &c.Address, &c.Version, &duties, &c.StartedAt, &c.Seen, &c.SeenAt); err != nil {
			return nil, t.wrap("list controllers", err)
		}
		if duties != "" {
			c.Duties = strings.Split(duties, ",")
		}
		c.StartedAt, c.SeenAt = c.StartedAt.UTC(), c.SeenAt.UTC()
		out = append(out, c)
	}
	return out, t.wrap("list controllers", rows.Err())
}

func (t *sqlTx) DeleteController(name, runID string) error {
	_, err := t.exec("delete controller", `DELETE FROM controllers WHERE name = $1 AND run_id = $2`, name, runID)
	return err
}
