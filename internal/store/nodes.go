package store

import (
	"fmt"
	"sort"
)

func (t *sqlTx) GroupLabels(name string) (map[string]string, error) {
	all, err := t.groupLabels(`SELECT group_name, key, value FROM group_labels WHERE group_name = $1`, name)
	if err != nil {
		return nil, err
	}
	if all[name] == nil {
		return map[string]string{}, nil
	}
	return all[name], nil
}

func (t *sqlTx) AllGroupLabels() (map[string]map[string]string, error) {
	return t.groupLabels(`SELECT group_name, key, value FROM group_labels`)
}

func (t *sqlTx) groupLabels(q string, args ...any) (map[string]map[string]string, error) {
	rows, err := t.tx.QueryContext(t.ctx, q, args...)
	if err != nil {
		return nil, t.wrap("group labels", err)
	}
	defer rows.Close()
	out := map[string]map[string]string{}
	for rows.Next() {
		var g, k, v string
		if err := rows.Scan(&g, &k, &v); err != nil {
			return nil, t.wrap("group labels", err)
		}
		if out[g] == nil {
			out[g] = map[string]string{}
		}
		out[g][k] = v
	}
	return out, t.wrap("group labels", rows.Err())
}

func (t *sqlTx) SetGroupLabels(name string, labels map[string]string) error {
	if _, err := t.exec("set group labels", `DELETE FROM group_labels WHERE group_name = $1`, name); err != nil {
		return err
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, err := t.exec("set group labels", `INSERT INTO group_labels (group_name, key, value) VALUES ($1, $2, $3)`,
			name, k, labels[k]); err != nil {
			return err
		}
	}
	return nil
}

func (t *sqlTx) SetHostNode(n HostNode) error {
	if n.State == "" {
		_, err := t.exec("clear host node", `DELETE FROM host_nodes WHERE host_id = $1`, n.HostID)
		return err
	}
	_, err := t.exec("set host node", `INSERT INTO host_nodes (host_id, state, kubelet_version, reason, updated_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (host_id) DO UPDATE SET state = excluded.state, kubelet_version = excluded.kubelet_version,
			reason = excluded.reason, updated_at = excluded.updated_at`,
		n.HostID, n.State, n.KubeletVersion, n.Reason, utc(n.UpdatedAt))
	if err != nil {
		return fmt.Errorf("host %d: %w", n.HostID, err)
	}
	return nil
}
