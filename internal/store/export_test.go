package store

import (
	"context"
	"database/sql"
	"strings"
)

// EventsQuery and AlarmsQuery are the queries of ListEvents and ListAlarms,
// and CustomPlansSQL what runs before them on PostgreSQL, for the test of
// their plans.
var (
	EventsQuery = eventsQuery
	AlarmsQuery = alarmsQuery
)

const CustomPlansSQL = customPlansSQL

// OpenAt opens dsn migrated up to version only and returns its database
// handle, for tests of a later migration on rows stored before it.
func OpenAt(ctx context.Context, dsn string, version int64) (*sql.DB, error) {
	var (
		s   *sqlStore
		err error
	)
	if strings.HasPrefix(dsn, "postgres://") {
		s, err = openPostgres(dsn)
	} else {
		s, err = openSQLite(dsn)
	}
	if err != nil {
		return nil, err
	}
	if err := s.migrate(ctx, version, nil); err != nil {
		s.Close()
		return nil, err
	}
	if s.reader != s.writer {
		s.reader.Close()
	}
	return s.writer, nil
}
