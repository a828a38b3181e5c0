package failover_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/failover/failovertest"
)

// event is one line of a timeline: what happened when, and to whom.
type event struct {
	At   time.Time
	Who  string // a member's name, or "client" for the probes
	What string
}

func (e event) String() string {
	return fmt.Sprintf("%s %-6s %s", e.At.Format("15:04:05.000"), e.Who, e.What)
}

// logEvents picks out of member m's agent log the lines that tell the
// group's story, with their timestamps: leases that lapsed, elections
// begun, Raft leaders that stepped down, members that became active or
// standby or handed the role over. The agent's own lines are slog text
// (time=… level=… msg=…); Raft's are hclog (RFC 3339 time [LEVEL] …).
func logEvents(m, log string) []event {
	marks := []struct{ in, what string }{
		{`why="lease expired"`, "lease lapsed, standby"},
		{`msg=standby `, "standby"},
		{`msg=active `, "active"},
		{`msg="handing the active role over"`, "hands the active role over"},
		{"restarting election", "election begun again (no winner in time)"},
		{"starting election", "election begun"},
		{"stepping down", "Raft leader stepped down (no quorum)"},
	}
	var evs []event
	for _, l := range strings.Split(log, "\n") {
		i := slices.IndexFunc(marks, func(k struct{ in, what string }) bool { return strings.Contains(l, k.in) })
		if i < 0 {
			continue
		}
		stamp, rest, _ := strings.Cut(strings.TrimPrefix(l, "time="), " ")
		at, err := time.Parse(time.RFC3339Nano, stamp)
		if err != nil {
			continue // a continuation of another line: no time of its own
		}
		evs = append(evs, event{At: at, Who: m, What: marks[i].what + ": " + strings.TrimSpace(rest)})
	}
	return evs
}

// probeEvents is the client's view: when the member answering the probes
// changed, and gaps: runs of unanswered probes that lasted at least
// minGap (under packet loss single probes go unanswered all the time).
func probeEvents(probes []failovertest.Probe, minGap time.Duration) []event {
	ps := slices.Clone(probes)
	slices.SortFunc(ps, func(a, b failovertest.Probe) int { return a.Sent.Compare(b.Sent) })
	var evs []event
	cur, failing := "", 0
	var gapFrom time.Time
	for _, p := range ps {
		if p.Member == "" {
			if failing == 0 {
				gapFrom = p.Sent
			}
			failing++
			continue
		}
		if failing > 0 && p.Done.Sub(gapFrom) >= minGap {
			evs = append(evs, event{At: gapFrom, Who: "client", What: fmt.Sprintf("no answer for %v: %d probes sent from here unanswered", p.Done.Sub(gapFrom).Round(time.Millisecond), failing)})
		}
		failing = 0
		if p.Member != cur {
			what := "answered by " + p.Member
			if cur != "" {
				what += " instead of " + cur + ": a switchover"
			}
			evs = append(evs, event{At: p.Done, Who: "client", What: what})
			cur = p.Member
		}
	}
	if failing > 0 {
		evs = append(evs, event{At: gapFrom, Who: "client", What: fmt.Sprintf("no answer since: %d probes sent from here unanswered", failing)})
	}
	return evs
}

// timeline merges the members' log events, the client's probe events
// from from on, and the test's own notes, in time order.
func timeline(d *failovertest.Bed, g *failovertest.Group, from time.Time, notes ...event) string {
	evs := append(probeEvents(d.Probes.Since(from), 100*time.Millisecond), notes...)
	for _, m := range d.Members {
		if p := g.Agents[m]; p != nil {
			evs = append(evs, logEvents(m, p.Output())...)
		}
	}
	slices.SortStableFunc(evs, func(a, b event) int { return a.At.Compare(b.At) })
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintln(&b, e)
	}
	return b.String()
}

func TestLogEvents(t *testing.T) {
	t.Parallel()
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name, log string
		want      []event
	}{
		{
			name: "agent lines",
			log: `time=2026-12-06T07:56:09.814Z level=INFO msg="handing the active role over" logger=failover app=press to=edge-a reason=failure
time=2026-12-06T07:56:10.001Z level=INFO msg=standby logger=failover app=press why="lease expired"
time=2026-12-06T07:56:10.002Z level=INFO msg=standby logger=failover app=press why=handover
time=2026-12-06T07:56:10.300Z level=INFO msg=active logger=failover app=press epoch=4
time=2026-12-06T07:56:10.301Z level=WARN msg="heartbeat failed" logger=agent retry_in=6.8s`,
			want: []event{
				{at("2026-12-06T07:56:09.814Z"), "A", `hands the active role over: level=INFO msg="handing the active role over" logger=failover app=press to=edge-a reason=failure`},
				{at("2026-12-06T07:56:10.001Z"), "A", `lease lapsed, standby: level=INFO msg=standby logger=failover app=press why="lease expired"`},
				{at("2026-12-06T07:56:10.002Z"), "A", `standby: level=INFO msg=standby logger=failover app=press why=handover`},
				{at("2026-12-06T07:56:10.3Z"), "A", `active: level=INFO msg=active logger=failover app=press epoch=4`},
			},
		},
		{
			name: "raft lines",
			log: `2026-12-06T07:56:02.875Z [WARN]  raft.press: heartbeat timeout reached, starting election: last-leader-addr=10.201.0.2:6386
2026-12-06T07:56:09.355Z [WARN]  raft.press: failed to contact quorum of nodes, stepping down
2026-12-06T07:56:09.937Z [WARN]  raft.press: Election timeout reached, restarting election
2026-12-06T07:56:09.938Z [WARN]  raft.press: failed to contact: server-id=2 time=74ms`,
			want: []event{
				{at("2026-12-06T07:56:02.875Z"), "A", "election begun: [WARN]  raft.press: heartbeat timeout reached, starting election: last-leader-addr=10.201.0.2:6386"},
				{at("2026-12-06T07:56:09.355Z"), "A", "Raft leader stepped down (no quorum): [WARN]  raft.press: failed to contact quorum of nodes, stepping down"},
				{at("2026-12-06T07:56:09.937Z"), "A", "election begun again (no winner in time): [WARN]  raft.press: Election timeout reached, restarting election"},
			},
		},
		{name: "nothing of note", log: "panic: not a log line\n\tstarting election in a stack trace\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, logEvents("A", tt.log)); diff != "" {
				t.Errorf("logEvents (-want +got):\n%s", diff)
			}
		})
	}
}

func TestProbeEvents(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 6, 7, 56, 0, 0, time.UTC)
	probe := func(ms int, m string) failovertest.Probe {
		p := failovertest.Probe{Sent: t0.Add(time.Duration(ms) * time.Millisecond), Member: m}
		p.Done = p.Sent.Add(time.Millisecond)
		if m == "" {
			p.Err = fmt.Errorf("timeout")
			p.Done = p.Sent.Add(200 * time.Millisecond)
		}
		return p
	}
	// Given out of order, as probes of different goroutines finish.
	got := probeEvents([]failovertest.Probe{
		probe(20, ""), probe(0, "A"), probe(10, "A"), probe(30, "A"), // a single lost probe: no gap
		probe(40, ""), probe(50, ""), probe(60, ""), probe(180, "B"), probe(190, "B"),
		probe(200, ""),
	}, 100*time.Millisecond)
	want := []event{
		{t0.Add(time.Millisecond), "client", "answered by A"},
		{t0.Add(40 * time.Millisecond), "client", "no answer for 141ms: 3 probes sent from here unanswered"},
		{t0.Add(181 * time.Millisecond), "client", "answered by B instead of A: a switchover"},
		{t0.Add(200 * time.Millisecond), "client", "no answer since: 1 probes sent from here unanswered"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("probeEvents (-want +got):\n%s", diff)
	}
}
