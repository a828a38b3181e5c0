package controller_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"hummingbird.io/hummingbird/internal/controller"
	"hummingbird.io/hummingbird/internal/mtce"
)

// TestBadSettingsWriteNothing: a controller told something wrong refuses
// to start and leaves no data directory, CA or token behind.
func TestBadSettingsWriteNothing(t *testing.T) {
	t.Parallel()
	for name, mutate := range map[string]func(*controller.Config){
		"subnet":    func(c *controller.Config) { c.MgmtSubnet = "10.0.0.1/8" },
		"mode":      func(c *controller.Config) { c.MgmtMode = "sometimes" },
		"reserved":  func(c *controller.Config) { c.MgmtControllerIPs = []string{"10.9.9.9"} },
		"heartbeat": func(c *controller.Config) { c.Heartbeat.FailAfter = c.Heartbeat.DegradeAfter },
		"personality": func(c *controller.Config) {
			c.Heartbeat.Personalities = map[string]mtce.Timing{"gateway": c.Heartbeat.Timing}
		},
		"webhook": func(c *controller.Config) { c.AlarmWebhook = "mailto:ops@example.com" },
		"tls":     func(c *controller.Config) { c.TLSCert = "/nonexistent.crt" },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := controller.Defaults()
			cfg.DataDir = filepath.Join(t.TempDir(), "data")
			mutate(&cfg)
			c, err := controller.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
			if err == nil {
				c.Close()
				t.Fatal("the controller started")
			}
			if _, serr := os.Stat(cfg.DataDir); !os.IsNotExist(serr) {
				t.Errorf("refused with %q but the data directory was made", err)
			}
		})
	}
}
