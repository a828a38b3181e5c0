package store

// EventsQuery and AlarmsQuery are the queries of ListEvents and ListAlarms,
// for the test of their plans.
var (
	EventsQuery = eventsQuery
	AlarmsQuery = alarmsQuery
)
