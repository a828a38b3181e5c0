package store

import "fmt"

func (t *sqlTx) Setting(name string) (string, error) {
	var v string
	err := t.tx.QueryRowContext(t.ctx, `SELECT value FROM settings WHERE name = $1`, name).Scan(&v)
	return v, t.wrap("read setting "+name, err)
}

func (t *sqlTx) InitSetting(name, value string) error {
	r, err := t.exec("write setting "+name, `INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, value)
	if err != nil {
		return err
	}
	if n, err := r.RowsAffected(); err != nil {
		return t.wrap("write setting "+name, err)
	} else if n == 0 {
		return fmt.Errorf("setting %s is written already: %w", name, ErrNotFound)
	}
	return nil
}
