package e2e

import (
	"os"
	"testing"

	"hummingbird.io/hummingbird/internal/testbed"
)

func TestMain(m *testing.M) {
	os.Exit(testbed.Main(m))
}

// requireBed skips the test unless the end-to-end tests were asked for.
func requireBed(t *testing.T) {
	t.Helper()
	if os.Getenv("HB_E2E") != "1" {
		t.Skip("end-to-end test: set HB_E2E=1 to run it on the test bed (needs root and test/bed/prepare)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("HB_E2E=1 but not root: the test bed needs root")
	}
}
