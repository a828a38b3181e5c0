package failover

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/hashicorp/raft"
)

// fileStore keeps a member's raft log and its term and vote in two small
// files of its directory. An app's log holds a few entries per change of
// active member, so it lives in memory and the log file is appended to,
// and rewritten only when raft compacts it.
//
//	log.jsonl     one raft.Log per line, in index order
//	stable.slots  the term, the vote and raft's other stable keys, as
//	              JSON in a slotFile (stable.json before: read once)
//
// The term and the vote are synced to disk before raft is told they are
// stored, with one sync each (slotFile): no member votes twice in a term, and no term (the epoch of the
// active it elects) is used twice, whatever happens to the node. Log
// entries are written to the file at once and synced in the background,
// right after: raft's leader appends to its log on the loop that also
// renews the active member's lease, and a disk that takes longer than a
// lease to sync (90 ms was seen on a loaded virtual disk; SD cards and
// eMMC do worse) cost the active member its lease, and the service its
// VIP, in the middle of a planned move. What that gives up: an agent
// that crashes or is killed loses nothing (the kernel holds what was
// written), but a node that loses power within moments of a change may
// come back without the change's last entries. The group then makes the
// change again (a new election, in a later term); the members' votes,
// and with them the rule of one active per term, are unaffected.
type fileStore struct {
	dir string
	// sync syncs the log file (os.File.Sync; tests slow it down).
	sync func(*os.File) error

	mu     sync.Mutex
	logs   []raft.Log // contiguous indexes, logs[0].Index == first
	log    *os.File   // opened for appending
	stable stableFile
	slots  *slotFile // where stable is kept
	legacy bool      // stable was read from stable.json, still there
	// syncErr is the background sync's last failure, returned by the
	// next StoreLogs: raft stops on a disk that fails.
	syncErr error

	dirty   chan struct{} // the log file has writes to sync
	flusher sync.WaitGroup
	closed  bool
}

type stableFile struct {
	Bytes  map[string][]byte `json:"bytes"`
	Uint64 map[string]uint64 `json:"uint64"`
}

// openFileStore loads dir's files, making dir when it is missing. A last
// log line cut short by a crash is dropped: raft was never told it was
// stored.
func openFileStore(dir string) (*fileStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	s := &fileStore{dir: dir, sync: (*os.File).Sync, stable: stableFile{Bytes: map[string][]byte{}, Uint64: map[string]uint64{}},
		dirty: make(chan struct{}, 1)}
	slots, rec, err := openSlotFile(filepath.Join(dir, "stable.slots"))
	if err != nil {
		return nil, fmt.Errorf("raft stable state: %w", err)
	}
	s.slots = slots
	if rec != nil {
		if err := json.Unmarshal(rec, &s.stable); err != nil {
			slots.Close()
			return nil, fmt.Errorf("raft stable state %s: %w", filepath.Join(dir, "stable.slots"), err)
		}
	} else if b, err := os.ReadFile(filepath.Join(dir, "stable.json")); err == nil {
		s.legacy = true
		if err := json.Unmarshal(b, &s.stable); err != nil {
			slots.Close()
			return nil, fmt.Errorf("raft stable state %s: %w", filepath.Join(dir, "stable.json"), err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		slots.Close()
		return nil, err
	}
	if s.stable.Bytes == nil {
		s.stable.Bytes = map[string][]byte{}
	}
	if s.stable.Uint64 == nil {
		s.stable.Uint64 = map[string]uint64{}
	}
	path := filepath.Join(dir, "log.jsonl")
	if b, err := os.ReadFile(path); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			var l raft.Log
			if json.Unmarshal(sc.Bytes(), &l) != nil {
				break // a torn last line
			}
			if n := len(s.logs); n > 0 && l.Index != s.logs[n-1].Index+1 {
				// An entry overwriting a conflicting suffix was appended
				// after raft deleted that suffix from memory; the file
				// keeps both until it is rewritten.
				s.logs = truncateFrom(s.logs, l.Index)
			}
			s.logs = append(s.logs, l)
		}
		if err := s.rewrite(); err != nil {
			s.slots.Close()
			return nil, err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		s.slots.Close()
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.slots.Close()
		return nil, err
	}
	s.log = f
	s.flusher.Add(1)
	go s.flush()
	return s, nil
}

// flush syncs the log file after writes, one sync for all the writes
// made while the last one ran, until the store is closed.
func (s *fileStore) flush() {
	defer s.flusher.Done()
	for range s.dirty {
		s.mu.Lock()
		f := s.log
		s.mu.Unlock()
		if err := s.sync(f); err != nil && !errors.Is(err, os.ErrClosed) {
			// A file replaced by DeleteRange meanwhile was synced by it.
			s.mu.Lock()
			s.syncErr = fmt.Errorf("sync the raft log: %w", err)
			s.mu.Unlock()
		}
	}
}

// truncateFrom drops the entries at index idx and after.
func truncateFrom(logs []raft.Log, idx uint64) []raft.Log {
	if len(logs) == 0 || idx <= logs[0].Index {
		return logs[:0]
	}
	if n := idx - logs[0].Index; n < uint64(len(logs)) {
		return logs[:n]
	}
	return logs
}

// Close syncs what is left to sync and closes the log file.
func (s *fileStore) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.dirty)
	s.flusher.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.sync(s.log)
	if cerr := s.log.Close(); err == nil {
		err = cerr
	}
	if cerr := s.slots.Close(); err == nil {
		err = cerr
	}
	return err
}

func (s *fileStore) FirstIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.logs) == 0 {
		return 0, nil
	}
	return s.logs[0].Index, nil
}

func (s *fileStore) LastIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.logs) == 0 {
		return 0, nil
	}
	return s.logs[len(s.logs)-1].Index, nil
}

func (s *fileStore) GetLog(index uint64, out *raft.Log) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.logs) == 0 || index < s.logs[0].Index || index > s.logs[len(s.logs)-1].Index {
		return raft.ErrLogNotFound
	}
	*out = s.logs[index-s.logs[0].Index]
	return nil
}

func (s *fileStore) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// StoreLogs appends the entries, replacing any from the first one's index
// on, and has the file synced in the background.
func (s *fileStore) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("the raft log is closed")
	}
	if s.syncErr != nil {
		return s.syncErr
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, l := range logs {
		if err := enc.Encode(l); err != nil {
			return err
		}
	}
	if _, err := s.log.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("append to the raft log: %w", err)
	}
	select {
	case s.dirty <- struct{}{}:
	default: // a sync is due already
	}
	for _, l := range logs {
		if n := len(s.logs); n > 0 && l.Index != s.logs[n-1].Index+1 {
			s.logs = truncateFrom(s.logs, l.Index)
		}
		s.logs = append(s.logs, *l)
	}
	return nil
}

// DeleteRange drops [lo, hi]: raft deletes a prefix after a snapshot and a
// suffix when a new leader overwrites it. The file is rewritten.
func (s *fileStore) DeleteRange(lo, hi uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.logs[:0:0]
	for _, l := range s.logs {
		if l.Index < lo || l.Index > hi {
			kept = append(kept, l)
		}
	}
	s.logs = kept
	if err := s.rewrite(); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(s.dir, "log.jsonl"), os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	s.log.Close()
	s.log = f
	return nil
}

// rewrite replaces the log file with the entries in memory.
func (s *fileStore) rewrite() error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for i := range s.logs {
		if err := enc.Encode(&s.logs[i]); err != nil {
			return err
		}
	}
	return writeSynced(filepath.Join(s.dir, "log.jsonl"), buf.Bytes())
}

func (s *fileStore) Set(key []byte, val []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stable.Bytes[string(key)] = append([]byte(nil), val...)
	return s.saveStable()
}

func (s *fileStore) Get(key []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.stable.Bytes[string(key)]
	if !ok {
		return nil, errors.New("not found")
	}
	return v, nil
}

func (s *fileStore) SetUint64(key []byte, val uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stable.Uint64[string(key)] = val
	return s.saveStable()
}

func (s *fileStore) GetUint64(key []byte) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stable.Uint64[string(key)], nil
}

func (s *fileStore) saveStable() error {
	b, err := json.Marshal(s.stable)
	if err != nil {
		return err
	}
	if err := s.slots.write(b); err != nil {
		return err
	}
	if s.legacy {
		// The slots hold it now, and are read first.
		os.Remove(filepath.Join(s.dir, "stable.json"))
		s.legacy = false
	}
	return nil
}

// writeSynced replaces path with data: a synced temporary file renamed over
// it, then the directory synced, so a crash leaves the old or the new.
func writeSynced(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}
