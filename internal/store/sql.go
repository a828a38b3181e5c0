package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// sqlStore is the Store over database/sql shared by both dialects. The SQL
// is written once: `$N` placeholders and RETURNING work on SQLite and
// PostgreSQL alike.
type sqlStore struct {
	dialect string
	writer  *sql.DB // SQLite: one connection, BEGIN IMMEDIATE
	reader  *sql.DB // may be the same pool as writer
	// classify turns a driver error into a problem error where it has a
	// meaning for the caller (unique violation, busy) and reports whether
	// the whole transaction may be retried.
	classify func(error) (err error, retry bool)
}

const maxTxAttempts = 5

func (s *sqlStore) Dialect() string { return s.dialect }

func (s *sqlStore) Ping(ctx context.Context) error {
	if err := s.reader.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", s.dialect, err)
	}
	return nil
}

func (s *sqlStore) Close() error {
	err := s.writer.Close()
	if s.reader != s.writer {
		err = errors.Join(err, s.reader.Close())
	}
	return err
}

func (s *sqlStore) Read(ctx context.Context, fn func(Tx) error) error {
	return s.run(ctx, s.reader, &sql.TxOptions{ReadOnly: true}, fn)
}

func (s *sqlStore) Write(ctx context.Context, fn func(Tx) error) error {
	return s.run(ctx, s.writer, nil, fn)
}

func (s *sqlStore) run(ctx context.Context, db *sql.DB, opts *sql.TxOptions, fn func(Tx) error) error {
	var err error
	for attempt := 1; attempt <= maxTxAttempts; attempt++ {
		var retry bool
		err, retry = s.once(ctx, db, opts, fn)
		if err == nil || !retry || ctx.Err() != nil {
			return err
		}
	}
	return err
}

func (s *sqlStore) once(ctx context.Context, db *sql.DB, opts *sql.TxOptions, fn func(Tx) error) (error, bool) {
	tx, err := db.BeginTx(ctx, opts)
	if err != nil {
		cerr, retry := s.classify(err)
		return fmt.Errorf("begin transaction: %w", cerr), retry
	}
	t := &sqlTx{dialect: s.dialect, tx: tx, ctx: ctx, classify: s.classify}
	if f, ok := FenceFrom(ctx); ok && (opts == nil || !opts.ReadOnly) {
		// A leader's write: first of all, is it still the leader?
		inner := fn
		fn = func(tx Tx) error {
			if err := tx.CheckEpoch(f.Duty, f.Epoch); err != nil {
				return err
			}
			return inner(tx)
		}
	}
	if err := fn(t); err != nil {
		_ = tx.Rollback()
		var de *driverError
		if errors.As(err, &de) {
			return err, de.retry
		}
		return err, false
	}
	if err := tx.Commit(); err != nil {
		if errors.Is(err, sql.ErrTxDone) && ctx.Err() != nil {
			// database/sql rolled the transaction back when ctx ended: say so,
			// so that callers see their cancellation or deadline.
			return fmt.Errorf("commit: %w", ctx.Err()), false
		}
		cerr, retry := s.classify(err)
		return fmt.Errorf("commit: %w", cerr), retry
	}
	return nil, false
}

// driverError marks an error that came from the database, classified.
type driverError struct {
	err   error
	retry bool
}

func (e *driverError) Error() string { return e.err.Error() }
func (e *driverError) Unwrap() error { return e.err }

type sqlTx struct {
	dialect  string
	tx       *sql.Tx
	ctx      context.Context
	classify func(error) (error, bool)
}

func (t *sqlTx) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	cerr, retry := t.classify(err)
	return &driverError{err: fmt.Errorf("%s: %w", op, cerr), retry: retry}
}

func (t *sqlTx) exec(op, q string, args ...any) (sql.Result, error) {
	r, err := t.tx.ExecContext(t.ctx, q, args...)
	return r, t.wrap(op, err)
}

func (t *sqlTx) NextID(counter string) (int64, error) {
	var id int64
	var err error
	if t.dialect == "postgres" {
		if !slices.Contains(counterNames, counter) {
			return 0, fmt.Errorf("next id: no counter %q", counter)
		}
		err = t.tx.QueryRowContext(t.ctx, `SELECT nextval('`+sequenceName(counter)+`')`).Scan(&id)
	} else {
		err = t.tx.QueryRowContext(t.ctx,
			`UPDATE counters SET value = value + 1 WHERE name = $1 RETURNING value`, counter).Scan(&id)
	}
	return id, t.wrap("next id "+counter, err)
}

// nullable stores "" as NULL so that UNIQUE ignores unset values.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func utc(t time.Time) time.Time { return t.UTC() }

const hostColumns = `id, uuid, hostname, personality, administrative, operational,
	availability, invprovision, mgmt_mac, mgmt_ip, location, host_group, bm_type, bm_ip,
	bm_username, ssh_user, ssh_key, created_at, updated_at, pool_id, labels`

// hostSelect reads hosts (alias h) with the name of their pool and the
// state of their Node: a query goes on with WHERE on h's columns.
const hostSelect = `SELECT h.id, h.uuid, h.hostname, h.personality, h.administrative, h.operational,
	h.availability, h.invprovision, h.mgmt_mac, h.mgmt_ip, h.location, h.host_group, h.bm_type, h.bm_ip,
	h.bm_username, h.ssh_user, h.ssh_key, h.created_at, h.updated_at, h.pool_id, h.labels,
	p.name, n.state, n.kubelet_version, n.reason
	FROM hosts h LEFT JOIN address_pools p ON p.id = h.pool_id LEFT JOIN host_nodes n ON n.host_id = h.id`

// nullID stores id 0 as NULL, for optional references.
func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

func (t *sqlTx) InsertHost(h *Host) error {
	labels, err := encodeLabels(h.Labels)
	if err != nil {
		return err
	}
	_, err = t.exec("insert host", `INSERT INTO hosts (`+hostColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)`,
		h.ID, h.UUID, h.Hostname, h.Personality, h.Administrative, h.Operational,
		h.Availability, h.InvProvision, nullable(h.MgmtMAC), nullable(h.MgmtIP), h.Location,
		h.Group, h.BMType, h.BMIP, h.BMUsername, h.SSHUser, h.SSHKey, utc(h.CreatedAt), utc(h.UpdatedAt),
		nullID(h.PoolID), labels)
	if err != nil {
		return err
	}
	return t.writeLabels(h.ID, h.Labels)
}

// encodeLabels is the hosts.labels column of labels: a JSON object, keys
// sorted, "{}" for none, so that equal labels are equal text.
func encodeLabels(labels map[string]string) (string, error) {
	if len(labels) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(labels)
	if err != nil {
		return "", fmt.Errorf("encode labels: %w", err)
	}
	return string(b), nil
}

// decodeLabels reads the hosts.labels column; it is never nil. The column
// is a flat object of strings, most often without escapes: such an object
// is split in place (keys and values share the column's memory), anything
// else goes to encoding/json. A list of 1,000 hosts spends a fifth of
// its store time here with encoding/json alone.
func decodeLabels(s string) (map[string]string, error) {
	if m, ok := splitLabels(s); ok {
		return m, nil
	}
	m := map[string]string{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("decode the labels column %q: %w", s, err)
	}
	return m, nil
}

// splitLabels decodes s, a JSON object of strings without a backslash or
// control character in them, in valid UTF-8; ok is false for anything
// else.
func splitLabels(s string) (m map[string]string, ok bool) {
	if !utf8.ValidString(s) {
		return nil, false
	}
	i := 0
	skip := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
			i++
		}
	}
	str := func() (string, bool) {
		if i >= len(s) || s[i] != '"' {
			return "", false
		}
		start := i + 1
		for j := start; j < len(s); j++ {
			switch c := s[j]; {
			case c == '"':
				i = j + 1
				return s[start:j], true
			case c == '\\' || c < 0x20:
				return "", false
			}
		}
		return "", false
	}
	skip()
	if i >= len(s) || s[i] != '{' {
		return nil, false
	}
	i++
	m = make(map[string]string, strings.Count(s, ":"))
	skip()
	if i < len(s) && s[i] == '}' {
		i++
		skip()
		return m, i == len(s)
	}
	for {
		skip()
		k, ok := str()
		if !ok {
			return nil, false
		}
		skip()
		if i >= len(s) || s[i] != ':' {
			return nil, false
		}
		i++
		skip()
		v, ok := str()
		if !ok {
			return nil, false
		}
		m[k] = v
		skip()
		if i >= len(s) {
			return nil, false
		}
		switch s[i] {
		case ',':
			i++
		case '}':
			i++
			skip()
			return m, i == len(s)
		default:
			return nil, false
		}
	}
}

func (t *sqlTx) UpdateHost(h *Host) error {
	labels, err := encodeLabels(h.Labels)
	if err != nil {
		return err
	}
	r, err := t.exec("update host", `UPDATE hosts SET hostname = $1, personality = $2,
		administrative = $3, operational = $4, availability = $5, invprovision = $6,
		mgmt_mac = $7, mgmt_ip = $8, location = $9, host_group = $10, bm_type = $11,
		bm_ip = $12, bm_username = $13, ssh_user = $14, ssh_key = $15, updated_at = $16,
		pool_id = $17 WHERE id = $18`,
		h.Hostname, h.Personality, h.Administrative, h.Operational, h.Availability,
		h.InvProvision, nullable(h.MgmtMAC), nullable(h.MgmtIP), h.Location, h.Group,
		h.BMType, h.BMIP, h.BMUsername, h.SSHUser, h.SSHKey, utc(h.UpdatedAt), nullID(h.PoolID), h.ID)
	if err != nil {
		return err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return fmt.Errorf("update host %d: %w", h.ID, ErrNotFound)
	}
	// Most updates change a state, not the labels: host_labels is
	// rewritten only when the labels column changes.
	r, err = t.exec("update labels", `UPDATE hosts SET labels = $1 WHERE id = $2 AND labels <> $1`, labels, h.ID)
	if err != nil {
		return err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return nil
	}
	if _, err := t.exec("clear labels", `DELETE FROM host_labels WHERE host_id = $1`, h.ID); err != nil {
		return err
	}
	return t.writeLabels(h.ID, h.Labels)
}

func (t *sqlTx) writeLabels(hostID int64, labels map[string]string) error {
	for k, v := range labels {
		if _, err := t.exec("insert label", `INSERT INTO host_labels (host_id, key, value)
			VALUES ($1, $2, $3)`, hostID, k, v); err != nil {
			return err
		}
	}
	return nil
}

func (t *sqlTx) DeleteHost(id int64) error {
	r, err := t.exec("delete host", `DELETE FROM hosts WHERE id = $1`, id)
	if err != nil {
		return err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return fmt.Errorf("delete host %d: %w", id, ErrNotFound)
	}
	return nil
}

func (t *sqlTx) hostWhere(op, where string, arg any) (Host, error) {
	hosts, err := t.queryHosts(op, 1, hostSelect+` WHERE `+where, arg)
	if err != nil {
		return Host{}, err
	}
	if len(hosts) == 0 {
		return Host{}, fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	return hosts[0], nil
}

func (t *sqlTx) HostByID(id int64) (Host, error) {
	return t.hostWhere("host by id", `h.id = $1`, id)
}

func (t *sqlTx) HostByUUID(u string) (Host, error) {
	return t.hostWhere("host by uuid", `h.uuid = $1`, u)
}

func (t *sqlTx) HostByHostname(n string) (Host, error) {
	return t.hostWhere("host by hostname", `h.hostname = $1`, n)
}

func (t *sqlTx) HostByMAC(m string) (Host, error) {
	return t.hostWhere("host by mac", `h.mgmt_mac = $1`, m)
}

func (t *sqlTx) HostByIP(ip string) (Host, error) {
	return t.hostWhere("host by ip", `h.mgmt_ip = $1`, ip)
}

func (t *sqlTx) ListHosts(f HostFilter) ([]Host, error) {
	var (
		conds []string
		args  []any
	)
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, strings.ReplaceAll(cond, "?", fmt.Sprintf("$%d", len(args))))
	}
	for _, c := range []struct{ col, v string }{
		{"personality", f.Personality}, {"availability", f.Availability},
		{"administrative", f.Administrative}, {"operational", f.Operational},
		{"invprovision", f.InvProvision}, {"host_group", f.Group},
	} {
		if c.v != "" {
			add("h."+c.col+" = ?", c.v)
		}
	}
	for _, l := range f.Labels {
		// IN rather than a correlated EXISTS: SQLite then answers from the
		// (key, value) index instead of scanning every host.
		if l.HasValue {
			args = append(args, l.Key, l.Value)
			conds = append(conds, fmt.Sprintf(`h.id IN (SELECT host_id FROM host_labels
				WHERE key = $%d AND value = $%d)`, len(args)-1, len(args)))
		} else {
			add(`h.id IN (SELECT host_id FROM host_labels WHERE key = ?)`, l.Key)
		}
	}
	if f.AfterID > 0 {
		add("h.id > ?", f.AfterID)
	}
	q := hostSelect
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	q += " ORDER BY h.id"
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	return t.queryHosts("list hosts", min(f.Limit, 10_000), q, args...)
}

// firstHosts is how many hosts queryHosts makes room for before it knows
// that more come: a filter's answer is often far smaller than its limit,
// and a Host is about 400 bytes.
const firstHosts = 128

// queryHosts runs q, a hostSelect, and reads up to capHint hosts growing
// the slice at most once: room for firstHosts, then for capHint when more
// come. With no hint (0) the slice grows as append grows it.
func (t *sqlTx) queryHosts(op string, capHint int, q string, args ...any) ([]Host, error) {
	rows, err := t.tx.QueryContext(t.ctx, q, args...)
	if err != nil {
		return nil, t.wrap(op, err)
	}
	hosts := make([]Host, 0, min(capHint, firstHosts))
	for rows.Next() {
		if len(hosts) == cap(hosts) && cap(hosts) < capHint {
			hosts = slices.Grow(hosts, capHint-len(hosts))
		}
		var (
			h       Host
			mac, ip sql.NullString
			pool    sql.NullInt64
			poolNm  sql.NullString
			node    [3]sql.NullString
			labels  string
		)
		if err := rows.Scan(&h.ID, &h.UUID, &h.Hostname, &h.Personality, &h.Administrative,
			&h.Operational, &h.Availability, &h.InvProvision, &mac, &ip, &h.Location, &h.Group,
			&h.BMType, &h.BMIP, &h.BMUsername, &h.SSHUser, &h.SSHKey, &h.CreatedAt, &h.UpdatedAt,
			&pool, &labels, &poolNm, &node[0], &node[1], &node[2]); err != nil {
			rows.Close()
			return nil, t.wrap(op, err)
		}
		var err error
		if h.Labels, err = decodeLabels(labels); err != nil {
			rows.Close()
			return nil, t.wrap(op, err)
		}
		h.MgmtMAC, h.MgmtIP, h.PoolID, h.PoolName = mac.String, ip.String, pool.Int64, poolNm.String
		h.NodeState, h.KubeletVersion, h.NodeReason = node[0].String, node[1].String, node[2].String
		h.CreatedAt, h.UpdatedAt = h.CreatedAt.UTC(), h.UpdatedAt.UTC()
		hosts = append(hosts, h)
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return nil, t.wrap(op, err)
	}
	rows.Close()
	return hosts, nil
}

const tokenColumns = `id, kind, role, secret_sha256, description, created_by, created_at, expires_at,
	max_uses, uses, host_name`

func (t *sqlTx) InsertToken(tok *Token) error {
	var exp any
	if tok.ExpiresAt != nil {
		exp = utc(*tok.ExpiresAt)
	}
	_, err := t.exec("insert token", `INSERT INTO tokens (`+tokenColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, tok.ID, tok.Kind, tok.Role, tok.SecretSHA256,
		tok.Description, tok.CreatedBy, utc(tok.CreatedAt), exp, tok.MaxUses, tok.Uses, tok.HostName)
	return err
}

func (t *sqlTx) queryTokens(op, q string, args ...any) ([]Token, error) {
	rows, err := t.tx.QueryContext(t.ctx, q, args...)
	if err != nil {
		return nil, t.wrap(op, err)
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		var (
			tok Token
			exp sql.NullTime
		)
		if err := rows.Scan(&tok.ID, &tok.Kind, &tok.Role, &tok.SecretSHA256, &tok.Description,
			&tok.CreatedBy, &tok.CreatedAt, &exp, &tok.MaxUses, &tok.Uses, &tok.HostName); err != nil {
			return nil, t.wrap(op, err)
		}
		tok.CreatedAt = tok.CreatedAt.UTC()
		if exp.Valid {
			e := exp.Time.UTC()
			tok.ExpiresAt = &e
		}
		out = append(out, tok)
	}
	return out, t.wrap(op, rows.Err())
}

func (t *sqlTx) TokenByID(id string) (Token, error) {
	toks, err := t.queryTokens("token by id", `SELECT `+tokenColumns+` FROM tokens WHERE id = $1`, id)
	if err != nil {
		return Token{}, err
	}
	if len(toks) == 0 {
		return Token{}, fmt.Errorf("token %q: %w", id, ErrNotFound)
	}
	return toks[0], nil
}

func (t *sqlTx) ListTokens(kind string) ([]Token, error) {
	return t.queryTokens("list tokens",
		`SELECT `+tokenColumns+` FROM tokens WHERE kind = $1 ORDER BY created_at, id`, kind)
}

func (t *sqlTx) DeleteToken(id string) error {
	r, err := t.exec("delete token", `DELETE FROM tokens WHERE id = $1`, id)
	if err != nil {
		return err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return fmt.Errorf("delete token %q: %w", id, ErrNotFound)
	}
	return nil
}

func (t *sqlTx) CountTokens(kind string) (int, error) {
	var n int
	err := t.tx.QueryRowContext(t.ctx, `SELECT COUNT(*) FROM tokens WHERE kind = $1`, kind).Scan(&n)
	return n, t.wrap("count tokens", err)
}

func (t *sqlTx) AppendEvent(e *Event) error {
	id, err := t.NextID("events")
	if err != nil {
		return err
	}
	e.ID = id
	_, err = t.exec("append event", `INSERT INTO events (id, uuid, event_time, code,
		entity_type, entity_id, action, actor, reason)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, e.ID, e.UUID, utc(e.Time), e.Code,
		e.EntityType, e.EntityID, e.Action, e.Actor, e.Reason)
	return err
}

// eventsQuery is the query of ListEvents on dialect.
func eventsQuery(dialect string, f EventFilter) (string, []any) {
	conds, args := eqTerms(dialect,
		eqFilter{"entity_id", f.EntityID}, eqFilter{"action", f.Action}, eqFilter{"entity_type", f.EntityType})
	if f.BeforeID > 0 {
		args = append(args, f.BeforeID)
		conds = append(conds, fmt.Sprintf("id < $%d", len(args)))
	}
	q := `SELECT id, uuid, event_time, code, entity_type, entity_id, action, actor, reason FROM events`
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	q += " ORDER BY id DESC"
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	return q, args
}

func (t *sqlTx) ListEvents(f EventFilter) ([]Event, error) {
	if f.EntityID == "" && (f.EntityType != "" || f.Action != "") {
		if err := t.customPlans(); err != nil {
			return nil, err
		}
	}
	q, args := eventsQuery(t.dialect, f)
	rows, err := t.tx.QueryContext(t.ctx, q, args...)
	if err != nil {
		return nil, t.wrap("list events", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		if err := rows.Scan(&e.ID, &e.UUID, &e.Time, &e.Code, &e.EntityType, &e.EntityID,
			&e.Action, &e.Actor, &e.Reason); err != nil {
			return nil, t.wrap("list events", err)
		}
		e.Time = e.Time.UTC()
		out = append(out, e)
	}
	return out, t.wrap("list events", rows.Err())
}

// eqFilter is an equality filter of a list: column col equals v, unless v
// is empty.
type eqFilter struct{ col, v string }

// eqTerms are the terms and arguments of filters. Filters come most
// selective first, and the first one given is the index the list is read
// from: every filter column has an index with the id after it, in the
// list's order. PostgreSQL chooses among them by its statistics; SQLite
// has none (nothing runs ANALYZE) and takes any index that matches one
// equality, such as the action's, reading 200,000 rows at 1,000,000
// events where the entity's reads 100. On SQLite the filters after the
// first are therefore written +col, which no index serves: they only sift
// the rows the first one's index found.
func eqTerms(dialect string, filters ...eqFilter) (conds []string, args []any) {
	indexed := false
	for _, f := range filters {
		if f.v == "" {
			continue
		}
		col := f.col
		if indexed && dialect == "sqlite" {
			col = "+" + col
		}
		indexed = true
		args = append(args, f.v)
		conds = append(conds, fmt.Sprintf("%s = $%d", col, len(args)))
	}
	return conds, args
}

// customPlansSQL makes PostgreSQL plan every query of the transaction for
// its arguments. pgx prepares a statement once per connection, and after
// five runs PostgreSQL may switch to a generic plan, made for any value:
// for action = $1 it assumes a sixth of the log matches and walks the id
// index backwards to the page's end, which reads the whole log for a rare
// action (270 ms at 1,000,000 events, against 3 ms through the action's
// index). Planning takes under a millisecond.
const customPlansSQL = `SET LOCAL plan_cache_mode = force_custom_plan`

// customPlans applies customPlansSQL on PostgreSQL, before a list query
// whose filters match a share of the rows that depends on their value: a
// type, an action or a severity. An entity matches few rows whatever its
// value, and a generic plan reads its index.
func (t *sqlTx) customPlans() error {
	if t.dialect != "postgres" {
		return nil
	}
	_, err := t.exec("plan for the filters", customPlansSQL)
	return err
}
