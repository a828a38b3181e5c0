package fm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"

	"hummingbird.io/hummingbird/internal/feed"
	"hummingbird.io/hummingbird/internal/store"
)

// Notification is what the webhook receives for each alarm raise or clear,
// in the order they happened.
type Notification struct {
	EventID          int64     `json:"event_id"` // grows; a receiver can drop what it has seen
	UUID             string    `json:"uuid"`
	Time             time.Time `json:"time"`
	AlarmID          string    `json:"alarm_id"`
	State            string    `json:"state"` // set | clear
	EntityTypeID     string    `json:"entity_type_id"`
	EntityInstanceID string    `json:"entity_instance_id"`
	Reason           string    `json:"reason"`
}

// Webhook delivers alarm raises and clears to a URL. The event log is its
// outbox: it posts every alarm event after the last one delivered, in
// order, retrying with capped, jittered backoff, and stores how far it got,
// so a restart neither loses nor repeats a notification (a crash between a
// delivery and its cursor write may repeat that one; EventID tells).
type Webhook struct {
	URL    string
	Store  store.Store
	Client *http.Client
	Log    *slog.Logger
	// Poll is how often it looks for new events; Base and Max bound the
	// backoff after a failed delivery.
	Poll, Base, Max time.Duration
}

const webhookCursor = "alarm-webhook"

// CheckURL validates a webhook URL.
func CheckURL(u string) error {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
		return fmt.Errorf("alarm webhook %q: give an http(s) URL", Redact(u))
	}
	return nil
}

// Redact is a webhook URL as it may be logged: without its password and
// with its query's values masked, where receivers often take a secret.
func Redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(an unparsable URL)"
	}
	if p.RawQuery != "" {
		q := p.Query()
		for k := range q {
			q[k] = []string{"xxxxx"}
		}
		p.RawQuery = q.Encode()
	}
	return p.Redacted()
}

// Run delivers until ctx ends.
func (w *Webhook) Run(ctx context.Context) error {
	if err := CheckURL(w.URL); err != nil {
		return err
	}
	if w.Client == nil {
		w.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if w.Log == nil {
		w.Log = slog.New(slog.DiscardHandler)
	}
	log := w.Log.With("logger", "fm.webhook")
	if w.Poll == 0 {
		w.Poll = time.Second
	}
	if w.Base == 0 {
		w.Base, w.Max = time.Second, 5*time.Minute
	}
	start, err := w.start(ctx)
	if err != nil {
		return err
	}
	// Every event is read, not only alarms: an id missing below the alarms read may be an
	// alarm whose transaction commits late (see feed.Cursor).
	cursor := feed.NewCursor(start)
	failures := 0
	for {
		var evs []store.Event
		err := w.Store.Read(ctx, func(tx store.Tx) error {
			var err error
			evs, err = tx.EventsAfter(cursor.At(), nil, 500)
			return err
		})
		if err == nil {
			stored := cursor.At()
			for _, e := range cursor.Fresh(evs) {
				if e.Action == "alarm.set" || e.Action == "alarm.clear" {
					if err = w.deliver(ctx, e); err != nil {
						break
					}
				}
				cursor.Done(e.ID)
			}
			cursor.Advance(time.Now())
			if at := cursor.At(); at != stored {
				if werr := w.Store.Write(ctx, func(tx store.Tx) error { return tx.SetCursor(webhookCursor, at) }); err == nil {
					err = werr
				}
			}
		}
		wait := w.Poll
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			failures++
			ceil := min(w.Base<<min(failures, 20), w.Max)
			wait = time.Duration(rand.Float64() * float64(ceil))
			log.Warn("alarm notification not delivered", "url", Redact(w.URL), "err", err, "retry_in", wait.Round(time.Millisecond))
		} else {
			failures = 0
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// start returns the cursor; on the first run it starts at the newest
// event, so that history is not replayed to a new receiver.
func (w *Webhook) start(ctx context.Context) (int64, error) {
	var cursor int64
	err := w.Store.Write(ctx, func(tx store.Tx) error {
		v, ok, err := tx.Cursor(webhookCursor)
		if err != nil || ok {
			cursor = v
			return err
		}
		last, err := tx.ListEvents(store.EventFilter{Limit: 1})
		if err != nil {
			return err
		}
		if len(last) > 0 {
			cursor = last[0].ID
		}
		return tx.SetCursor(webhookCursor, cursor)
	})
	return cursor, err
}

func (w *Webhook) deliver(ctx context.Context, e store.Event) error {
	state := "set"
	if e.Action == "alarm.clear" {
		state = "clear"
	}
	b, err := json.Marshal(Notification{
		EventID: e.ID, UUID: e.UUID, Time: e.Time, AlarmID: e.Code, State: state,
		EntityTypeID: e.EntityType, EntityInstanceID: e.EntityID, Reason: e.Reason,
	})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", w.URL, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hummingbird-fm")
	resp, err := w.Client.Do(req)
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = Redact(ue.URL)
	}
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return errors.New("the receiver answered " + resp.Status)
	}
	return nil
}
