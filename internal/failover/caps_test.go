package failover

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMissingCapabilities runs this test binary again without any
// capability (setpriv, from util-linux) and checks that it names both
// capabilities redundant apps need; as root with them all it names none.
func TestMissingCapabilities(t *testing.T) {
	if os.Getenv("HB_TEST_CAPS_CHILD") != "" {
		fmt.Printf("missing=%s\n", strings.Join(MissingCapabilities(), "; "))
		return
	}
	t.Parallel()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI is set and this test needs root")
		}
		t.Skip("needs root: it drops capabilities from a root process")
	}
	if got := MissingCapabilities(); len(got) != 0 {
		t.Errorf("root misses %v", got)
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("CI is set and setpriv is not installed (apt-get install util-linux)")
		}
		t.Skip("setpriv is not installed")
	}
	cmd := exec.Command(setpriv, "--inh-caps=-all", "--bounding-set=-all", os.Args[0], "-test.run=^TestMissingCapabilities$")
	cmd.Env = append(os.Environ(), "HB_TEST_CAPS_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.Contains(string(out), "missing=CAP_NET_ADMIN (holding the VIP and passing connections on); CAP_NET_RAW (announcing the VIP with gratuitous ARP)") {
		t.Errorf("without capabilities: %s", out)
	}
}
