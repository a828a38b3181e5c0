package store

import (
	"fmt"
	"strings"
)

const poolColumns = `id, uuid, name, role, mode, network, ranges, gateway, dns, ntp, reserved,
	lease_seconds, created_at, updated_at, alloc_from`

func (t *sqlTx) InsertPool(p *Pool) error {
	_, err := t.exec("insert pool", `INSERT INTO address_pools (`+poolColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		p.ID, p.UUID, p.Name, p.Role, p.Mode, p.Network, p.Ranges, p.Gateway, p.DNS, p.NTP,
		p.Reserved, p.LeaseSeconds, utc(p.CreatedAt), utc(p.UpdatedAt), p.AllocFrom)
	return err
}

func (t *sqlTx) DeletePool(id int64) error {
	r, err := t.exec("delete pool", `DELETE FROM address_pools WHERE id = $1`, id)
	if err != nil {
		return err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return fmt.Errorf("delete pool %d: %w", id, ErrNotFound)
	}
	return nil
}

func (t *sqlTx) queryPools(op, q string, args ...any) ([]Pool, error) {
	rows, err := t.tx.QueryContext(t.ctx, q, args...)
	if err != nil {
		return nil, t.wrap(op, err)
	}
	defer rows.Close()
	var out []Pool
	for rows.Next() {
		var p Pool
		if err := rows.Scan(&p.ID, &p.UUID, &p.Name, &p.Role, &p.Mode, &p.Network, &p.Ranges,
			&p.Gateway, &p.DNS, &p.NTP, &p.Reserved, &p.LeaseSeconds, &p.CreatedAt, &p.UpdatedAt, &p.AllocFrom); err != nil {
			return nil, t.wrap(op, err)
		}
		p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
		out = append(out, p)
	}
	return out, t.wrap(op, rows.Err())
}

func (t *sqlTx) onePool(op, where string, arg any) (Pool, error) {
	ps, err := t.queryPools(op, `SELECT `+poolColumns+` FROM address_pools WHERE `+where, arg)
	if err != nil {
		return Pool{}, err
	}
	if len(ps) == 0 {
		return Pool{}, fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	return ps[0], nil
}

func (t *sqlTx) PoolByID(id int64) (Pool, error) {
	return t.onePool("pool by id", "id = $1", id)
}

func (t *sqlTx) PoolByName(name string) (Pool, error) {
	return t.onePool("pool by name", "name = $1", name)
}

func (t *sqlTx) ManagementPool() (Pool, error) {
	return t.onePool("management pool", "role = $1", "management")
}

func (t *sqlTx) ListPools() ([]Pool, error) {
	return t.queryPools("list pools", `SELECT `+poolColumns+` FROM address_pools ORDER BY id`)
}

// LockPool touches the pool's row: PostgreSQL then holds a row lock until
// the transaction ends; SQLite serializes writers anyway.
func (t *sqlTx) LockPool(id int64) error {
	r, err := t.exec("lock pool", `UPDATE address_pools SET updated_at = updated_at WHERE id = $1`, id)
	if err != nil {
		return err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return fmt.Errorf("lock pool %d: %w", id, ErrNotFound)
	}
	return nil
}

func (t *sqlTx) HostsInPool(poolID int64, limit int) ([]Host, error) {
	return t.queryHosts("hosts in pool", 0, hostSelect+` WHERE h.pool_id = $1
		ORDER BY h.id LIMIT $2`, poolID, limit)
}

func (t *sqlTx) SetPoolAllocFrom(id int64, addr string) error {
	r, err := t.exec("set pool allocation start", `UPDATE address_pools SET alloc_from = $1 WHERE id = $2`, addr, id)
	if err != nil {
		return err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return fmt.Errorf("set allocation start of pool %d: %w", id, ErrNotFound)
	}
	return nil
}

func (t *sqlTx) HeldAddresses(addrs []string) ([]string, error) {
	if len(addrs) == 0 {
		return nil, nil
	}
	var q strings.Builder
	q.WriteString(`SELECT mgmt_ip FROM hosts WHERE mgmt_ip IN (`)
	args := make([]any, len(addrs))
	for i, a := range addrs {
		if i > 0 {
			q.WriteString(", ")
		}
		fmt.Fprintf(&q, "$%d", i+1)
		args[i] = a
	}
	q.WriteString(")")
	rows, err := t.tx.QueryContext(t.ctx, q.String(), args...)
	if err != nil {
		return nil, t.wrap("held addresses", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var ip string
		if err := rows.Scan(&ip); err != nil {
			return nil, t.wrap("held addresses", err)
		}
		out = append(out, ip)
	}
	return out, t.wrap("held addresses", rows.Err())
}

func (t *sqlTx) CountPoolHosts(poolID int64) (int, error) {
	var n int
	err := t.tx.QueryRowContext(t.ctx, `SELECT COUNT(*) FROM hosts
		WHERE pool_id = $1 AND mgmt_ip IS NOT NULL`, poolID).Scan(&n)
	return n, t.wrap("count pool hosts", err)
}

func (t *sqlTx) UpsertLease(l *Lease) error {
	_, err := t.exec("upsert lease", `INSERT INTO dhcp_leases (mac, ip, host_id, pool_id, expires_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (mac) DO UPDATE SET ip = excluded.ip, host_id = excluded.host_id,
			pool_id = excluded.pool_id, expires_at = excluded.expires_at, updated_at = excluded.updated_at`,
		l.MAC, l.IP, l.HostID, l.PoolID, utc(l.ExpiresAt), utc(l.UpdatedAt))
	return err
}

func (t *sqlTx) queryLeases(op, q string, args ...any) ([]Lease, error) {
	rows, err := t.tx.QueryContext(t.ctx, q, args...)
	if err != nil {
		return nil, t.wrap(op, err)
	}
	defer rows.Close()
	var out []Lease
	for rows.Next() {
		var l Lease
		if err := rows.Scan(&l.MAC, &l.IP, &l.HostID, &l.PoolID, &l.ExpiresAt, &l.UpdatedAt); err != nil {
			return nil, t.wrap(op, err)
		}
		l.ExpiresAt, l.UpdatedAt = l.ExpiresAt.UTC(), l.UpdatedAt.UTC()
		out = append(out, l)
	}
	return out, t.wrap(op, rows.Err())
}

const leaseColumns = `mac, ip, host_id, pool_id, expires_at, updated_at`

func (t *sqlTx) LeaseByMAC(mac string) (Lease, error) {
	ls, err := t.queryLeases("lease by mac", `SELECT `+leaseColumns+` FROM dhcp_leases WHERE mac = $1`, mac)
	if err != nil {
		return Lease{}, err
	}
	if len(ls) == 0 {
		return Lease{}, fmt.Errorf("lease of %s: %w", mac, ErrNotFound)
	}
	return ls[0], nil
}

func (t *sqlTx) DeleteLease(mac string) error {
	_, err := t.exec("delete lease", `DELETE FROM dhcp_leases WHERE mac = $1`, mac)
	return err
}

func (t *sqlTx) ListLeases() ([]Lease, error) {
	return t.queryLeases("list leases", `SELECT `+leaseColumns+` FROM dhcp_leases ORDER BY mac`)
}
