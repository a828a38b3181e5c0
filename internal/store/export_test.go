package store

// EventsQuery and AlarmsQuery are the queries of ListEvents and ListAlarms,
// and CustomPlansSQL what runs before them on PostgreSQL, for the test of
// their plans.
var (
	EventsQuery = eventsQuery
	AlarmsQuery = alarmsQuery
)

const CustomPlansSQL = customPlansSQL
