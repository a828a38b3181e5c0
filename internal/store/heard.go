package store

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Heard is one controller's note of the hosts whose agents it heard from since its last note.
type Heard struct {
	Controller string
	Seq        int64 // grows by one with each note of the controller
	HostIDs    []int64
	At         time.Time // the controller's clock, for people
}

func (t *sqlTx) AppendHeard(h Heard) error {
	ids := make([]string, len(h.HostIDs))
	for i, id := range h.HostIDs {
		ids[i] = strconv.FormatInt(id, 10)
	}
	_, err := t.exec("append heard", `INSERT INTO heard (controller, seq, host_ids, heard_at) VALUES ($1, $2, $3, $4)`,
		h.Controller, h.Seq, strings.Join(ids, ","), utc(h.At))
	return err
}

func (t *sqlTx) ListHeard() ([]Heard, error) {
	rows, err := t.tx.QueryContext(t.ctx, `SELECT controller, seq, host_ids, heard_at FROM heard ORDER BY controller, seq`)
	if err != nil {
		return nil, t.wrap("list heard", err)
	}
	defer rows.Close()
	var out []Heard
	for rows.Next() {
		var (
			h   Heard
			ids string
		)
		if err := rows.Scan(&h.Controller, &h.Seq, &ids, &h.At); err != nil {
			return nil, t.wrap("list heard", err)
		}
		h.At = h.At.UTC()
		for _, s := range strings.Split(ids, ",") {
			if s == "" {
				continue
			}
			id, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("list heard: host id %q of %s/%d: %w", s, h.Controller, h.Seq, err)
			}
			h.HostIDs = append(h.HostIDs, id)
		}
		out = append(out, h)
	}
	return out, t.wrap("list heard", rows.Err())
}

func (t *sqlTx) DeleteHeard(controller string, upTo int64) error {
	_, err := t.exec("delete heard", `DELETE FROM heard WHERE controller = $1 AND seq <= $2`, controller, upTo)
	return err
}
