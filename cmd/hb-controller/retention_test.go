package main

import (
	"testing"
	"time"

	"github.com/spf13/cobra"

	"hummingbird.io/hummingbird/internal/eventlog"
)

// TestEventRetentionSettings: the retention policy defaults to
// eventlog.DefaultPolicy and is set by flag or by its HB_ variable.
func TestEventRetentionSettings(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		env  map[string]string
		want eventlog.Policy
	}{
		{nil, nil, eventlog.DefaultPolicy()},
		{nil, map[string]string{"HB_EVENT_RETENTION_COUNT": "5000", "HB_EVENT_RETENTION_AGE": "2160h"},
			eventlog.Policy{Count: 5000, Age: 90 * 24 * time.Hour}},
		{[]string{"--event-retention-count", "0", "--event-retention-age", "720h"}, map[string]string{"HB_EVENT_RETENTION_COUNT": "5000"},
			eventlog.Policy{Age: 30 * 24 * time.Hour}},
	} {
		s := &settings{}
		cmd := &cobra.Command{RunE: func(*cobra.Command, []string) error { return nil }}
		s.flags(cmd.Flags())
		if err := cmd.Flags().Parse(c.args); err != nil {
			t.Fatal(err)
		}
		if err := s.load(cmd, func(k string) string { return c.env[k] }); err != nil {
			t.Fatalf("%v %v: %v", c.args, c.env, err)
		}
		if s.cfg.EventRetention != c.want {
			t.Errorf("%v %v: %+v, want %+v", c.args, c.env, s.cfg.EventRetention, c.want)
		}
	}
}
