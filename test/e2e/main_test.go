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
func requireBed(t *testing.T) { t.Helper(); testbed.Require(t) }
