package cli_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/controller/controllertest"
	"hummingbird.io/hummingbird/internal/fm"
	"hummingbird.io/hummingbird/internal/store"
)

// nextMarker matches the hint a page ends with on standard error.
var nextMarker = regexp.MustCompile(`add --marker (\d+) for the next page`)

// TestAlarmListPages: alarm-list shows every alarm, in the order they
// were raised, however small the pages it fetches; --limit and --marker
// walk the pages one at a time, the next marker on standard error; a bad
// limit or marker says what to give.
func TestAlarmListPages(t *testing.T) {
	t.Parallel()
	in := controllertest.Start(t, "", nil)
	h := newHbctlFor(t, in)
	var want []string
	at := time.Now().UTC().Truncate(time.Second)
	if err := in.Controller.Store.Write(context.Background(), func(tx store.Tx) error {
		for i := range 7 {
			entity := fmt.Sprintf("host=edge-%02d", i)
			want = append(want, entity)
			if err := fm.Raise(tx, store.Alarm{UUID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), AlarmID: fm.AlarmHeartbeatLoss,
				EntityType: "host", EntityInstance: entity, Severity: fm.Major, Reason: "heartbeat lost", AlarmType: "communication",
				ProbableCause: "loss of signal", ProposedRepairAction: "Check the node."}, fmt.Sprintf("ev-%d", i), at); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	lines := func(out string) []string { return strings.Fields(out) }
	for _, args := range [][]string{{}, {"--page-size", "2"}, {"--page-size", "7"}, {"--page-size", "1000"}} {
		args = append([]string{"alarm-list", "-c", "entity_instance_id", "-f", "value"}, args...)
		code, out, errs := h.run("", args...)
		if code != 0 || errs != "" {
			t.Fatalf("hbctl %s: exit %d: %s", strings.Join(args, " "), code, errs)
		}
		if diff := cmp.Diff(want, lines(out)); diff != "" {
			t.Errorf("hbctl %s (-want +got):\n%s", strings.Join(args, " "), diff)
		}
	}

	var paged []string
	marker := ""
	for pages := 1; ; pages++ {
		args := []string{"alarm-list", "-c", "entity_instance_id", "-f", "value", "--limit", "3"}
		if marker != "" {
			args = append(args, "--marker", marker)
		}
		code, out, errs := h.run("", args...)
		if code != 0 {
			t.Fatalf("hbctl %s: exit %d: %s", strings.Join(args, " "), code, errs)
		}
		paged = append(paged, lines(out)...)
		m := nextMarker.FindStringSubmatch(errs)
		if m == nil {
			if errs != "" || pages != 3 {
				t.Errorf("page %d ends with %q; want the last page to be the third, without a marker", pages, errs)
			}
			break
		}
		if pages == 3 {
			t.Fatalf("a fourth page after %v: %q", paged, errs)
		}
		marker = m[1]
	}
	if diff := cmp.Diff(want, paged); diff != "" {
		t.Errorf("alarm-list --limit 3, page by page (-want +got):\n%s", diff)
	}

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--limit", "1001"}, 1, "limit"},
		{[]string{"--limit", "-1"}, 2, "--limit"},
		{[]string{"--marker", "edge-01"}, 1, "marker"},
		{[]string{"--marker", "0"}, 1, "the next value of the previous page"},
	} {
		args := append([]string{"alarm-list"}, c.args...)
		if code, _, errs := h.run("", args...); code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("hbctl %s: exit %d, %q; want exit %d naming %q", strings.Join(args, " "), code, errs, c.code, c.want)
		}
	}
}

// TestEventListPages: event-list shows a page, newest first, and the
// marker of the next, older one; --marker shows that page.
func TestEventListPages(t *testing.T) {
	t.Parallel()
	h := newHbctl(t)
	for i := range 3 {
		h.ok("host-add", "-n", fmt.Sprintf("edge-%02d", i), "-p", "edgeworker", "-i", fmt.Sprintf("192.168.204.%d", 10+i))
	}
	args := []string{"event-list", "--action", "host.add", "-c", "entity", "-f", "value", "--limit", "2"}
	code, out, errs := h.run("", args...)
	m := nextMarker.FindStringSubmatch(errs)
	if code != 0 || out != "host=edge-02\nhost=edge-01\n" || m == nil {
		t.Fatalf("hbctl %s: exit %d, %q, %q; want the two newest and a marker", strings.Join(args, " "), code, out, errs)
	}
	code, out, errs = h.run("", append(args, "--marker", m[1])...)
	if code != 0 || out != "host=edge-00\n" || errs != "" {
		t.Errorf("hbctl %s --marker %s: exit %d, %q, %q; want the oldest and no marker", strings.Join(args, " "), m[1], code, out, errs)
	}
}
