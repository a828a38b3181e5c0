package failover

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/raft"
)

func entries(from, to uint64, term uint64) []*raft.Log {
	var ls []*raft.Log
	for i := from; i <= to; i++ {
		ls = append(ls, &raft.Log{Index: i, Term: term, Type: raft.LogCommand, Data: []byte{byte(i)}})
	}
	return ls
}

func indexes(t *testing.T, s *fileStore) []uint64 {
	t.Helper()
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	var got []uint64
	for i := first; i <= last && last > 0; i++ {
		var l raft.Log
		if err := s.GetLog(i, &l); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		got = append(got, l.Index*100+l.Term)
	}
	return got
}

// TestFileStoreKeeps: what the log and the stable keys held is there
// after the store is opened again: appends, a suffix overwritten by a
// new leader, a prefix compacted away, and a torn last line dropped.
func TestFileStoreKeeps(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := openFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []func() error{
		func() error { return s.StoreLogs(entries(1, 5, 1)) },
		func() error { return s.StoreLogs(entries(4, 6, 2)) }, // overwrites 4 and 5
		func() error { return s.DeleteRange(1, 2) },
		func() error { return s.SetUint64([]byte("CurrentTerm"), 2) },
		func() error { return s.Set([]byte("LastVoteCand"), []byte("b")) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	want := []uint64{301, 402, 502, 602}
	if diff := cmp.Diff(want, indexes(t, s)); diff != "" {
		t.Errorf("in memory (-want +got):\n%s", diff)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A crash in the middle of a line.
	f, err := os.OpenFile(filepath.Join(dir, "log.jsonl"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"Index":7,"Ter`)
	f.Close()
	s, err = openFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if diff := cmp.Diff(want, indexes(t, s)); diff != "" {
		t.Errorf("opened again (-want +got):\n%s", diff)
	}
	if term, _ := s.GetUint64([]byte("CurrentTerm")); term != 2 {
		t.Errorf("term %d, want 2", term)
	}
	if v, err := s.Get([]byte("LastVoteCand")); err != nil || string(v) != "b" {
		t.Errorf("vote %q %v, want b", v, err)
	}
}

// TestFileStoreSlowDisk: raft's appends do not wait for a disk that is
// slow to sync (the leader appends on the loop that renews the active's
// lease); the sync follows in the background, and closing the store
// waits for it. A disk that fails to sync fails the next append.
func TestFileStoreSlowDisk(t *testing.T) {
	t.Parallel()
	s, err := openFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	synced := make(chan struct{}, 16)
	s.mu.Lock()
	s.sync = func(f *os.File) error {
		<-release
		synced <- struct{}{}
		return f.Sync()
	}
	s.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- s.StoreLogs(entries(1, 3, 1)) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("StoreLogs waited for the disk's sync")
	}
	if err := s.StoreLogs(entries(4, 4, 1)); err != nil { // while the first sync still runs
		t.Fatal(err)
	}
	if diff := cmp.Diff([]uint64{101, 201, 301, 401}, indexes(t, s)); diff != "" {
		t.Errorf("readable before the sync (-want +got):\n%s", diff)
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case <-closed:
		t.Fatal("Close returned before the log was synced")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if len(synced) == 0 {
		t.Error("the log was never synced")
	}

	s, err = openFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	eio := &os.PathError{Op: "sync", Path: "log.jsonl", Err: syscall.EIO}
	s.mu.Lock()
	s.sync = func(*os.File) error { return eio }
	s.mu.Unlock()
	if err := s.StoreLogs(entries(1, 1, 1)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := s.StoreLogs(entries(2, 2, 1))
		if errors.Is(err, syscall.EIO) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("appends after a failed sync: %v, want the sync's error", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSlotFile keeps the newest record whole through a torn write: a
// slot whose write a crash cut short is not read, and the record before
// it is.
func TestSlotFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "stable.slots")
	sf, rec, err := openSlotFile(path)
	if err != nil || rec != nil {
		t.Fatalf("a new slot file: record %q, %v", rec, err)
	}
	// Made whole: a write changes no metadata, and syncs its data alone.
	if st, err := os.Stat(path); err != nil || st.Size() != 2*slotSize {
		t.Fatalf("a new slot file: %v, want %d bytes", err, 2*slotSize)
	}
	for _, r := range []string{"one", "two", "three"} {
		if err := sf.write([]byte(r)); err != nil {
			t.Fatal(err)
		}
	}
	if err := sf.write(make([]byte, maxSlotRecord+1)); err == nil {
		t.Error("a record larger than a slot was written")
	}
	sf.Close()
	reopen := func() string {
		t.Helper()
		sf, rec, err := openSlotFile(path)
		if err != nil {
			t.Fatal(err)
		}
		sf.Close()
		return string(rec)
	}
	if got := reopen(); got != "three" {
		t.Fatalf("reopened: %q, want three", got)
	}
	// "three" (seq 3) is in slot 1; tear it: a byte of its record, then
	// its header.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("X"), slotSize+slotHeader+1); err != nil {
		t.Fatal(err)
	}
	if got := reopen(); got != "two" {
		t.Errorf("slot of three torn: %q, want two (the slot before)", got)
	}
	if _, err := f.WriteAt(make([]byte, slotHeader), slotSize); err != nil {
		t.Fatal(err)
	}
	sf, rec, err = openSlotFile(path)
	if err != nil || string(rec) != "two" {
		t.Fatalf("header of three zeroed: %q, %v; want two", rec, err)
	}
	// The next write goes over the torn slot, not over two.
	if err := sf.write([]byte("four")); err != nil {
		t.Fatal(err)
	}
	sf.Close()
	if got := reopen(); got != "four" {
		t.Errorf("after writing four: %q", got)
	}
	if _, _, ok := readSlot(f, 0); !ok {
		t.Error("two's slot was overwritten")
	}
}

// TestFileStoreReadsStableJSON opens a member's directory written before
// stable.slots: the term and vote in stable.json are read, kept in the
// slots at the next write, and stable.json goes.
func TestFileStoreReadsStableJSON(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "stable.json"), []byte(`{"bytes":{"LastVoteCand":"YQ=="},"uint64":{"CurrentTerm":7}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := openFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if term, _ := s.GetUint64([]byte("CurrentTerm")); term != 7 {
		t.Errorf("term %d from stable.json, want 7", term)
	}
	if v, _ := s.Get([]byte("LastVoteCand")); string(v) != "a" {
		t.Errorf("vote %q from stable.json, want a", v)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 8); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(filepath.Join(dir, "stable.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stable.json after a write: %v, want it gone", err)
	}
	s, err = openFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	term, _ := s.GetUint64([]byte("CurrentTerm"))
	v, _ := s.Get([]byte("LastVoteCand"))
	if term != 8 || string(v) != "a" {
		t.Errorf("reopened: term %d, vote %q; want 8 and a", term, v)
	}
}
