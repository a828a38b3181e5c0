package dhcp

import (
	"net"
	"sync"
	"time"
)

// discoveredTable remembers the unknown MACs reported in the last ttl, at
// most max of them. All entries live the same ttl, so the insertion order is
// the expiry order: a FIFO queue drops the expired ones in O(1) each.
type discoveredTable struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	seen  map[[6]byte]time.Time
	queue []discoveredEntry // oldest first; queue[head:] are live
	head  int
}

type discoveredEntry struct {
	mac [6]byte
	at  time.Time
}

type discoveredResult int

const (
	discoveredNew    discoveredResult = iota // report it
	discoveredRecent                         // reported less than ttl ago
	discoveredFull                           // the table is full: do not report
)

func newDiscoveredTable(max int, ttl time.Duration) *discoveredTable {
	return &discoveredTable{max: max, ttl: ttl, seen: make(map[[6]byte]time.Time)}
}

// add records mac as reported at now, unless it was reported less than ttl
// ago or the table is full.
func (t *discoveredTable) add(mac net.HardwareAddr, now time.Time) discoveredResult {
	var key [6]byte
	copy(key[:], mac)
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.head < len(t.queue) {
		e := t.queue[t.head]
		if now.Sub(e.at) < t.ttl && !now.Before(e.at) {
			break // not expired (a clock that went back expires everything)
		}
		delete(t.seen, e.mac)
		t.queue[t.head] = discoveredEntry{}
		t.head++
	}
	if t.head > len(t.queue)/2 {
		t.queue = append(t.queue[:0], t.queue[t.head:]...)
		t.head = 0
	}
	if _, ok := t.seen[key]; ok {
		return discoveredRecent
	}
	if len(t.seen) >= t.max {
		return discoveredFull
	}
	t.seen[key] = now
	t.queue = append(t.queue, discoveredEntry{mac: key, at: now})
	return discoveredNew
}

// len is the number of MACs remembered.
func (t *discoveredTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.seen)
}

// logLimiter lets one log line per message through per interval and counts
// the others. Messages are constants, so the map stays small.
type logLimiter struct {
	mu       sync.Mutex
	interval time.Duration
	last     map[string]time.Time
	dropped  map[string]int
}

func newLogLimiter(interval time.Duration) *logLimiter {
	return &logLimiter{interval: interval, last: make(map[string]time.Time), dropped: make(map[string]int)}
}

// allow tells whether msg may be logged at now and how many lines with it
// were left out since the last one.
func (l *logLimiter) allow(msg string, now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if last, ok := l.last[msg]; ok && now.Sub(last) < l.interval && !now.Before(last) {
		l.dropped[msg]++
		return false, 0
	}
	n := l.dropped[msg]
	l.last[msg] = now
	delete(l.dropped, msg)
	return true, n
}
