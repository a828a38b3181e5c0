// Package fm is fault management: the alarms Hummingbird raises, modelled on
// StarlingX's (alarm id, severity, entity, reason, proposed repair action,
// service affecting), each raise and clear written in the caller's
// transaction together with its event, so the active alarms and the event
// log never disagree.
package fm

import (
	"fmt"
	"time"

	"hummingbird.io/hummingbird/internal/store"
)

// Alarm ids of the host maintenance group, as StarlingX numbers them.
const (
	AlarmHostLocked    = "200.001" // warning: taken out of service on purpose
	AlarmHostFailed    = "200.004" // critical, service affecting
	AlarmHeartbeatLoss = "200.005" // major while degraded, critical when failed
)

// AlarmAppRedundancy is StarlingX's service group loss of redundancy: a
// redundant app has no healthy standby (major), on entity app=NAME.
const AlarmAppRedundancy = "400.002"

// AlarmAppMember is StarlingX's service group failure, for one member: the
// member cannot serve as the app's active member because its agent lacks
// a permission the app needs (major), on entity app=NAME.host=HOSTNAME.
const AlarmAppMember = "400.001"

// AlarmControllerLost is StarlingX's service manager's loss of communication
// with its peer controller: a controller sharing the database stopped
// renewing its row (major), on entity controller=NAME; the leader raises it.
const AlarmControllerLost = "400.005"

// Severities, least to most severe.
const (
	Warning  = "warning"
	Minor    = "minor"
	Major    = "major"
	Critical = "critical"
)

// Raise stores a (or updates its severity and reason) and, when it is new
// or changed, appends its event. The caller sets every field but ID and
// RaisedAt/UpdatedAt, which come from at.
func Raise(tx store.Tx, a store.Alarm, eventUUID string, at time.Time) error {
	prev, err := tx.ListAlarms(store.AlarmFilter{EntityInstance: a.EntityInstance})
	if err != nil {
		return err
	}
	for _, p := range prev {
		if p.AlarmID == a.AlarmID && p.Severity == a.Severity && p.Reason == a.Reason {
			return nil // already raised as it is
		}
	}
	a.RaisedAt, a.UpdatedAt = at, at
	if _, err := tx.RaiseAlarm(&a); err != nil {
		return err
	}
	return tx.AppendEvent(&store.Event{
		UUID: eventUUID, Time: at, Code: a.AlarmID, EntityType: a.EntityType, EntityID: a.EntityInstance,
		Action: "alarm.set", Actor: "mtce", Reason: fmt.Sprintf("%s (%s)", a.Reason, a.Severity),
	})
}

// Clear deletes an alarm and appends a clear event when there was one.
func Clear(tx store.Tx, alarmID, entityType, entity, reason, eventUUID string, at time.Time) error {
	cleared, err := tx.ClearAlarm(alarmID, entity)
	if err != nil || !cleared {
		return err
	}
	return tx.AppendEvent(&store.Event{
		UUID: eventUUID, Time: at, Code: alarmID, EntityType: entityType, EntityID: entity,
		Action: "alarm.clear", Actor: "mtce", Reason: reason,
	})
}
