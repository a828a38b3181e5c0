package bench

import (
	"os"
	"testing"

	"hummingbird.io/hummingbird/internal/testbed"
)

// TestMain lets the test bed clean up after benchmarks that bring one up,
// also when the run is interrupted.
func TestMain(m *testing.M) {
	os.Exit(testbed.Main(m))
}
