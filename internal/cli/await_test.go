package cli

import (
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
)

func TestAwaitText(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 4, 12, 0, 0, 0, time.Local)
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	for _, c := range []struct {
		p    apitype.AppSwitchoverPlan
		want string
	}{
		{apitype.AppSwitchoverPlan{}, ""},
		{apitype.AppSwitchoverPlan{Awaits: "edge-01"}, "waiting for edge-01's agent to heartbeat"},
		{apitype.AppSwitchoverPlan{Awaits: "edge-01", DueAt: at(9400 * time.Millisecond)}, "waiting for edge-01's next heartbeat, due in 9s (at 12:00:09)"},
		{apitype.AppSwitchoverPlan{Awaits: "edge-01", DueAt: at(-3 * time.Second)}, "waiting for edge-01's next heartbeat, due 3s ago"},
	} {
		if got := awaitText(&c.p, now); got != c.want {
			t.Errorf("awaitText(%+v) = %q, want %q", c.p, got, c.want)
		}
	}
}
