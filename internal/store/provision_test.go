package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/store/storetest"
)

func TestProvision(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			t.Run("ssh login", func(t *testing.T) { t.Parallel(); testHostSSH(t, storetest.Open(t, b.DSN(t))) })
			t.Run("jobs", func(t *testing.T) { t.Parallel(); testProvisionJobs(t, storetest.Open(t, b.DSN(t))) })
			t.Run("log", func(t *testing.T) { t.Parallel(); testProvisionLog(t, storetest.Open(t, b.DSN(t))) })
			t.Run("host deleted", func(t *testing.T) { t.Parallel(); testProvisionCascade(t, storetest.Open(t, b.DSN(t))) })
		})
	}
}

// read runs fn in a read transaction and returns what it returns.
func read[T any](t *testing.T, s store.Store, fn func(tx store.Tx) (T, error)) T {
	t.Helper()
	var out T
	if err := s.Read(context.Background(), func(tx store.Tx) error {
		var err error
		out, err = fn(tx)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// write runs fn in a write transaction and fails the test if it fails.
func write(t *testing.T, s store.Store, fn func(tx store.Tx) error) {
	t.Helper()
	if err := s.Write(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

func insertHosts(t *testing.T, s store.Store, hosts ...store.Host) {
	t.Helper()
	write(t, s, func(tx store.Tx) error {
		for i := range hosts {
			if err := tx.InsertHost(&hosts[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// job is a queued job of a host, with ids from the provision_jobs counter.
func job(t *testing.T, s store.Store, hostID int64, hostname string) store.ProvisionJob {
	t.Helper()
	j := store.ProvisionJob{HostID: hostID, Hostname: hostname, State: "queued", CreatedBy: "aaaa",
		CreatedAt: t0, UpdatedAt: t0}
	write(t, s, func(tx store.Tx) error {
		var err error
		j.ID, err = tx.NextID("provision_jobs")
		return err
	})
	j.UUID = fmt.Sprintf("00000000-0000-4000-9000-%012d", j.ID)
	return j
}

func testHostSSH(t *testing.T, s store.Store) {
	a := host(1, "edge-01")
	a.SSHUser, a.SSHKey = "hb", "edge-fleet"
	insertHosts(t, s, a, host(2, "edge-02"))
	got := read(t, s, func(tx store.Tx) (store.Host, error) { return tx.HostByID(1) })
	if diff := cmp.Diff(a, got); diff != "" {
		t.Errorf("host with an SSH login (-want +got):\n%s", diff)
	}
	hosts := read(t, s, func(tx store.Tx) ([]store.Host, error) { return tx.ListHosts(store.HostFilter{}) })
	if len(hosts) != 2 || hosts[0].SSHKey != "edge-fleet" || hosts[1].SSHUser != "" || hosts[1].SSHKey != "" {
		t.Errorf("listed hosts: %+v, want edge-01 with its SSH login and edge-02 without", hosts)
	}

	a.SSHUser, a.SSHKey, a.UpdatedAt = "root", "", t0.Add(time.Minute)
	write(t, s, func(tx store.Tx) error { return tx.UpdateHost(&a) })
	got = read(t, s, func(tx store.Tx) (store.Host, error) { return tx.HostByHostname("edge-01") })
	if diff := cmp.Diff(a, got); diff != "" {
		t.Errorf("after update (-want +got):\n%s", diff)
	}
}

func testProvisionJobs(t *testing.T, s store.Store) {
	ctx := context.Background()
	insertHosts(t, s, host(1, "edge-01"), host(2, "edge-02"), host(3, "edge-03"))

	j1 := job(t, s, 1, "edge-01")
	j1.Reinstall = true
	write(t, s, func(tx store.Tx) error { return tx.InsertProvisionJob(&j1) })
	if j1.ID != 1 {
		t.Errorf("first job id %d, want 1", j1.ID)
	}
	got := read(t, s, func(tx store.Tx) (store.ProvisionJob, error) { return tx.ProvisionJobByID(j1.ID) })
	if diff := cmp.Diff(j1, got); diff != "" {
		t.Errorf("queued job (-want +got):\n%s", diff)
	}

	// A host has one job queued or running at a time: a second one is a
	// conflict on the host, and leaves nothing behind.
	second := func(state string) {
		t.Helper()
		j := job(t, s, 1, "edge-01")
		err := s.Write(ctx, func(tx store.Tx) error { return tx.InsertProvisionJob(&j) })
		if !problem.Is(err, problem.Conflict) || problem.FieldOf(err) != "host" {
			t.Errorf("second job while the first is %s: got %v (field %q), want a conflict on host",
				state, err, problem.FieldOf(err))
		}
		err = s.Read(ctx, func(tx store.Tx) error { _, err := tx.ProvisionJobByID(j.ID); return err })
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("job %d after the refused insert: %v, want not found", j.ID, err)
		}
	}
	second("queued")

	j1.State, j1.TasksTotal, j1.TasksDone, j1.Task = "running", 12, 3, "install packages"
	j1.StartedAt, j1.UpdatedAt = t0.Add(time.Second), t0.Add(2*time.Second)
	write(t, s, func(tx store.Tx) error { return tx.UpdateProvisionJob(&j1) })
	got = read(t, s, func(tx store.Tx) (store.ProvisionJob, error) { return tx.ProvisionJobByID(j1.ID) })
	if diff := cmp.Diff(j1, got); diff != "" {
		t.Errorf("running job (-want +got):\n%s", diff)
	}
	second("running")

	j1.State, j1.TasksDone, j1.Changed, j1.Task = "succeeded", 12, 5, ""
	j1.FinishedAt, j1.UpdatedAt = t0.Add(time.Hour), t0.Add(time.Hour)
	write(t, s, func(tx store.Tx) error { return tx.UpdateProvisionJob(&j1) })
	got = read(t, s, func(tx store.Tx) (store.ProvisionJob, error) { return tx.ProvisionJobByID(j1.ID) })
	if diff := cmp.Diff(j1, got); diff != "" {
		t.Errorf("finished job (-want +got):\n%s", diff)
	}

	// Once the first has ended, the host takes a new job.
	j2 := job(t, s, 1, "edge-01")
	j3 := job(t, s, 2, "edge-02")
	j3.State, j3.Task, j3.Message = "failed", "configure network", "unreachable"
	j3.StartedAt, j3.FinishedAt = t0.Add(time.Second), t0.Add(time.Minute)
	write(t, s, func(tx store.Tx) error {
		if err := tx.InsertProvisionJob(&j2); err != nil {
			return err
		}
		return tx.InsertProvisionJob(&j3)
	})
	j4 := job(t, s, 2, "edge-02")
	write(t, s, func(tx store.Tx) error { return tx.InsertProvisionJob(&j4) })

	for _, tc := range []struct {
		host int64
		want store.ProvisionJob
	}{{1, j2}, {2, j4}} {
		got := read(t, s, func(tx store.Tx) (store.ProvisionJob, error) { return tx.LatestProvisionJob(tc.host) })
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("LatestProvisionJob(%d) (-want +got):\n%s", tc.host, diff)
		}
	}
	err := s.Read(ctx, func(tx store.Tx) error { _, err := tx.LatestProvisionJob(3); return err })
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("latest job of a host without jobs: %v, want not found", err)
	}

	ids := func(states ...string) []int64 {
		t.Helper()
		js := read(t, s, func(tx store.Tx) ([]store.ProvisionJob, error) { return tx.ListProvisionJobs(states...) })
		var out []int64
		for _, j := range js {
			out = append(out, j.ID)
		}
		return out
	}
	for _, tc := range []struct {
		states []string
		want   []int64
	}{
		{nil, []int64{j1.ID, j2.ID, j3.ID, j4.ID}},
		{[]string{"queued"}, []int64{j2.ID, j4.ID}},
		{[]string{"queued", "running"}, []int64{j2.ID, j4.ID}},
		{[]string{"succeeded", "failed"}, []int64{j1.ID, j3.ID}},
		{[]string{"cancelled"}, nil},
	} {
		if diff := cmp.Diff(tc.want, ids(tc.states...)); diff != "" {
			t.Errorf("ListProvisionJobs(%q) ids (-want +got):\n%s", tc.states, diff)
		}
	}
	all := read(t, s, func(tx store.Tx) ([]store.ProvisionJob, error) { return tx.ListProvisionJobs() })
	if diff := cmp.Diff([]store.ProvisionJob{j1, j2, j3, j4}, all); diff != "" {
		t.Errorf("ListProvisionJobs() (-want +got):\n%s", diff)
	}

	missing := store.ProvisionJob{ID: 99, State: "failed", UpdatedAt: t0}
	if err := s.Write(ctx, func(tx store.Tx) error { return tx.UpdateProvisionJob(&missing) }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("update of a missing job: %v, want not found", err)
	}
	if err := s.Read(ctx, func(tx store.Tx) error { _, err := tx.ProvisionJobByID(99); return err }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing job: %v, want not found", err)
	}
}

func testProvisionLog(t *testing.T, s store.Store) {
	ctx := context.Background()
	insertHosts(t, s, host(1, "edge-01"), host(2, "edge-02"))
	a, b := job(t, s, 1, "edge-01"), job(t, s, 2, "edge-02")
	write(t, s, func(tx store.Tx) error {
		if err := tx.InsertProvisionJob(&a); err != nil {
			return err
		}
		return tx.InsertProvisionJob(&b)
	})

	var seqs []int64
	appendLog := func(jobID int64, texts ...string) {
		t.Helper()
		write(t, s, func(tx store.Tx) error {
			for _, text := range texts {
				seq, err := tx.AppendProvisionLog(jobID, text)
				if err != nil {
					return err
				}
				if jobID == a.ID {
					seqs = append(seqs, seq)
				}
			}
			return nil
		})
	}
	appendLog(a.ID, "TASK [gather facts]\n")
	appendLog(b.ID, "TASK [other host]\n")
	appendLog(a.ID, "ok: [edge-01]\n", "TASK [packages]\n")
	appendLog(a.ID, "changed: [edge-01]\n")
	if diff := cmp.Diff([]int64{1, 2, 3, 4}, seqs); diff != "" {
		t.Errorf("sequence numbers (-want +got):\n%s", diff)
	}

	all := []store.LogChunk{
		{Seq: 1, Text: "TASK [gather facts]\n"},
		{Seq: 2, Text: "ok: [edge-01]\n"},
		{Seq: 3, Text: "TASK [packages]\n"},
		{Seq: 4, Text: "changed: [edge-01]\n"},
	}
	for _, tc := range []struct {
		after int64
		limit int
		want  []store.LogChunk
	}{
		{0, 0, all},
		{2, 0, all[2:]},
		{1, 2, all[1:3]},
		{0, 1, all[:1]},
		{4, 0, nil},
	} {
		got := read(t, s, func(tx store.Tx) ([]store.LogChunk, error) { return tx.ProvisionLog(a.ID, tc.after, tc.limit) })
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ProvisionLog(after %d, limit %d) (-want +got):\n%s", tc.after, tc.limit, diff)
		}
	}
	got := read(t, s, func(tx store.Tx) ([]store.LogChunk, error) { return tx.ProvisionLog(b.ID, 0, 0) })
	if diff := cmp.Diff([]store.LogChunk{{Seq: 1, Text: "TASK [other host]\n"}}, got); diff != "" {
		t.Errorf("the other job's log (-want +got):\n%s", diff)
	}

	// Appends from many writers at once each get a number of their own.
	const n = 20
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Write(ctx, func(tx store.Tx) error {
				_, err := tx.AppendProvisionLog(b.ID, fmt.Sprintf("line %d\n", i))
				return err
			}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got = read(t, s, func(tx store.Tx) ([]store.LogChunk, error) { return tx.ProvisionLog(b.ID, 0, 0) })
	if len(got) != n+1 {
		t.Fatalf("%d chunks after concurrent appends, want %d", len(got), n+1)
	}
	for i, c := range got {
		if c.Seq != int64(i+1) {
			t.Errorf("chunk %d has seq %d, want %d", i, c.Seq, i+1)
		}
	}

	err := s.Write(ctx, func(tx store.Tx) error { _, err := tx.AppendProvisionLog(99, "nobody\n"); return err })
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("append to a missing job's log: %v, want not found", err)
	}
}

// testProvisionCascade deletes a host: its jobs and their logs go with it.
func testProvisionCascade(t *testing.T, s store.Store) {
	ctx := context.Background()
	insertHosts(t, s, host(1, "edge-01"), host(2, "edge-02"))
	a, b := job(t, s, 1, "edge-01"), job(t, s, 2, "edge-02")
	write(t, s, func(tx store.Tx) error {
		for _, j := range []*store.ProvisionJob{&a, &b} {
			if err := tx.InsertProvisionJob(j); err != nil {
				return err
			}
			if _, err := tx.AppendProvisionLog(j.ID, "TASK [gather facts]\n"); err != nil {
				return err
			}
		}
		return nil
	})
	write(t, s, func(tx store.Tx) error { return tx.DeleteHost(1) })

	err := s.Read(ctx, func(tx store.Tx) error { _, err := tx.ProvisionJobByID(a.ID); return err })
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("job of a deleted host: %v, want not found", err)
	}
	if got := read(t, s, func(tx store.Tx) ([]store.LogChunk, error) { return tx.ProvisionLog(a.ID, 0, 0) }); len(got) != 0 {
		t.Errorf("log of a deleted host's job: %+v, want none", got)
	}
	left := read(t, s, func(tx store.Tx) ([]store.ProvisionJob, error) { return tx.ListProvisionJobs() })
	if diff := cmp.Diff([]store.ProvisionJob{b}, left); diff != "" {
		t.Errorf("jobs left (-want +got):\n%s", diff)
	}
	if got := read(t, s, func(tx store.Tx) ([]store.LogChunk, error) { return tx.ProvisionLog(b.ID, 0, 0) }); len(got) != 1 {
		t.Errorf("log of the other host's job: %+v, want its one chunk", got)
	}
}
