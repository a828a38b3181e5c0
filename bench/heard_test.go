package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/inventory"
	"hummingbird.io/hummingbird/internal/mtce"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/wire"
)

// envHeardHosts sets how many agents BenchmarkHeardNotes beats (default 100,000).
const envHeardHosts = "HB_BENCH_HEARD_HOSTS"

// heardInterval is the agents' heartbeat interval in BenchmarkHeardNotes: 60 s, the period
// of the fleet target (1,667 heartbeats a second for 100,000 agents).
const heardInterval = 60 * time.Second

// BenchmarkHeardNotes measures what liveness across controllers costs at fleet scale, on
// PostgreSQL: every agent beats to a controller that does not lead, which notes the hosts it
// heard from every mtce.FlushInterval (250 ms) as one row; the leader applies the notes
// before its checks (every 15 s at a 60 s interval; here every second, which costs more).
// One b.N is a minute of the fleet's time, run as fast as it goes: each 250 ms slot's
// heartbeats to the second controller's monitor, then its flush, and every fourth slot the
// leader's apply, each timed. It reports note-bytes (the host ids of one note, as stored),
// flush-ms and apply-ms (p50, p99), db-ms/1k-beats (flush and apply per 1,000 heartbeats,
// wall time) and the CPU per 1,000 heartbeats of this process (both monitors and the
// heartbeats' own bookkeeping) and of the PostgreSQL server's processes, apart.
//
//	HB_TEST_POSTGRES=postgres://… go test ./bench -run '^$' -bench HeardNotes -benchtime 1x
func BenchmarkHeardNotes(b *testing.B) {
	n := 100_000
	if v := os.Getenv(envHeardHosts); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 240 {
			b.Fatalf("%s=%q: give a number of agents, 240 or more", envHeardHosts, v)
		}
	}
	ctx := context.Background()
	st, err := store.Open(ctx, postgresDB(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	hosts := heardHosts(b, st, n)
	timing := mtce.Timing{Interval: heardInterval, DegradeAfter: 3, FailAfter: 6}
	lead := mtce.New(st, mtce.Config{Timing: timing, ID: "ctl-a"})
	if err := lead.Start(ctx); err != nil {
		b.Fatal(err)
	}
	other := mtce.New(st, mtce.Config{Timing: timing, ID: "ctl-b"})
	const slots = int(heardInterval / mtce.FlushInterval) // 240 a minute
	var (
		flushes, applies latencies
		noteBytes        int
		beats            int
		seq              = map[int64]uint64{}
	)
	cpu0, pg0 := processCPU(), postgresCPU(b)
	b.ResetTimer()
	for range b.N {
		for s := range slots {
			for i := s * n / slots; i < (s+1)*n/slots; i++ {
				h := hosts[i]
				seq[h.ID]++
				if _, err := other.Heartbeat(ctx, h, wire.Heartbeat{Capability: wire.CapabilityVersion, Boot: "bench", Seq: seq[h.ID]}, ""); err != nil {
					b.Fatal(err)
				}
				beats++
			}
			t0 := time.Now()
			if err := other.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			flushes.add(time.Since(t0))
			if s%4 == 3 {
				t0 := time.Now()
				if err := lead.Apply(ctx); err != nil {
					b.Fatal(err)
				}
				applies.add(time.Since(t0))
			}
			if s == 0 {
				noteBytes = heardNoteBytes(b, st)
			}
		}
	}
	b.StopTimer()
	cpu, pg := processCPU()-cpu0, postgresCPU(b)-pg0
	if left := heardRows(b, st); left > 1 {
		b.Errorf("%d notes left after the leader's last apply, want at most the last one", left)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	per1k := func(d time.Duration) float64 { return ms(d) * 1000 / float64(beats) }
	var db time.Duration
	for _, d := range append(append([]time.Duration{}, flushes.d...), applies.d...) {
		db += d
	}
	b.ReportMetric(float64(noteBytes), "note-bytes")
	b.ReportMetric(ms(flushes.percentile(0.5)), "flush-p50-ms")
	b.ReportMetric(ms(flushes.percentile(0.99)), "flush-p99-ms")
	b.ReportMetric(ms(applies.percentile(0.5)), "apply-p50-ms")
	b.ReportMetric(ms(applies.percentile(0.99)), "apply-p99-ms")
	b.ReportMetric(per1k(db), "db-ms/1k-beats")
	b.ReportMetric(per1k(cpu), "cpu-ms/1k-beats")
	b.ReportMetric(per1k(pg), "postgres-cpu-ms/1k-beats")
	b.Logf("%d agents, %d heartbeats in %d minute(s) of fleet time, %d notes and %d applies", n, beats, b.N, len(flushes.d), len(applies.d))
}

// heardHosts stores n edgeworkers with agents, available, and returns them.
func heardHosts(tb testing.TB, st store.Store, n int) []store.Host {
	tb.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	hosts := make([]store.Host, 0, n)
	const batch = 5_000
	for len(hosts) < n {
		err := st.Write(context.Background(), func(tx store.Tx) error {
			for i := 0; i < batch && len(hosts) < n; i++ {
				id, err := tx.NextID("hosts")
				if err != nil {
					return err
				}
				h := store.Host{ID: id, UUID: fmt.Sprintf("00000000-0000-4000-8000-%012d", id), Hostname: fmt.Sprintf("edge-%06d", id),
					Personality: "edgeworker", Administrative: inventory.AdminUnlocked, Operational: inventory.OperEnabled,
					Availability: inventory.AvailAvailable, InvProvision: inventory.ProvProvisioned, CreatedAt: now, UpdatedAt: now}
				if err := tx.InsertHost(&h); err != nil {
					return err
				}
				if err := tx.SetHostAgent(h.ID, fmt.Sprintf("%x", id)); err != nil {
					return err
				}
				hosts = append(hosts, h)
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return hosts
}

// heardNoteBytes is the length of the host ids of the newest note.
func heardNoteBytes(tb testing.TB, st store.Store) int {
	tb.Helper()
	var notes []store.Heard
	if err := st.Read(context.Background(), func(tx store.Tx) (err error) { notes, err = tx.ListHeard(); return err }); err != nil {
		tb.Fatal(err)
	}
	if len(notes) == 0 {
		tb.Fatal("no note stored after a flush")
	}
	ids := notes[len(notes)-1].HostIDs
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.FormatInt(id, 10)
	}
	return len(strings.Join(parts, ","))
}

// heardRows counts the notes stored.
func heardRows(tb testing.TB, st store.Store) int {
	tb.Helper()
	var notes []store.Heard
	if err := st.Read(context.Background(), func(tx store.Tx) (err error) { notes, err = tx.ListHeard(); return err }); err != nil {
		tb.Fatal(err)
	}
	return len(notes)
}

// postgresCPU is the CPU time of every process of this machine named postgres: the test
// server's postmaster and its backends (a benchmark runs on a quiet machine).
func postgresCPU(tb testing.TB) time.Duration {
	tb.Helper()
	var sum time.Duration
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		comm, err := os.ReadFile(filepath.Join(d, "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != "postgres" {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(d))
		if cpu, err := readProcCPU(pid); err == nil { // a backend may have ended meanwhile
			sum += cpu
		}
	}
	return sum
}

// TestHeardNotesSetup runs BenchmarkHeardNotes' minute with 2,400 agents on PostgreSQL, so
// that go test ./bench catches a broken benchmark: it fails on errors and on notes left
// unapplied, not on time.
func TestHeardNotesSetup(t *testing.T) {
	if os.Getenv(envPostgres) == "" {
		skip(t, "%s is not set: the notes are PostgreSQL's (several controllers)", envPostgres)
	}
	t.Setenv(envHeardHosts, "2400")
	r := testing.Benchmark(BenchmarkHeardNotes)
	if r.N == 0 {
		t.Fatal("BenchmarkHeardNotes did not run (see its log)")
	}
	t.Logf("%v %v", r, r.Extra)
}
