package failover

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Probes are single UDP datagrams between the members of an app, on the
// failover port (the same number as the TCP listener): the building block
// of a listening standby, where the active sends each probe as one
// datagram to every member instead of a raft heartbeat round trip over
// TCP to each, the witness answers every probe and a standby only the
// probes that ask it to.
//
// A datagram is authenticated with a key both ends derive from a raft
// connection between them (the mutual TLS connection's exported keying
// material, RFC 8446 section 7.5, for this app): no key is distributed,
// only members whose certificates the other accepted hold one, and a key
// lives as long as its connection, so that a revoked certificate's
// connections, closed, take their keys along. A member holding several
// connections to a peer holds several keys; the key id says which one
// signed a datagram. Nothing in a probe is secret: it is signed, not
// encrypted.
//
// Version 1, every number big-endian:
//
//	offset  size  field
//	0       1     version: 1
//	1       1     kind: 1 probe, 2 answer
//	2       1     flags: on a probe, bit 0 "answer me even if you are not the
//	              witness"; on an answer, bit 0 "no promise": the answerer
//	              does not follow the sender in its term (a candidate, a
//	              member about to stand, one of a newer term), and answers
//	              only to be heard; no other bit is defined
//	3       1     a: the length of the app name, 1 to 64
//	4       a     the app name
//	4+a     1     u: the length of the sender's host uuid, 1 to 64
//	5+a     u     the sender's host uuid
//	5+a+u   8     key id: the first 8 bytes of SHA-256 of the key
//	13+a+u  8     term: the sender's raft term
//	21+a+u  8     seq: a probe's sequence number; an answer's is that of
//	              the probe it answers
//	29+a+u  8     log index: the sender's last raft log index (an answer's:
//	              the answerer's)
//	37+a+u  16    HMAC-SHA256 of every byte before it, under the key,
//	              truncated to its first 16 bytes
//
// 55 to 181 bytes: within any link's MTU. A receiver takes a datagram
// only when every length matches, the version and kind are known, no
// undefined flag is set, the key id names a live key of the member the
// sender field names, the HMAC matches, and the seq is new for that
// member, key and kind (replayWindow): a replayed datagram never counts
// twice, a reordered one counts once. A later version changes the first
// byte.
const (
	probeVersion = 1
	// probeAnswerMe on a probe asks every member to answer it, not only
	// the witness.
	probeAnswerMe = 1 << 0
	// probeNoPromise on an answer says it confirms nothing: the answerer
	// does not follow the sender in its term, and asks for a raft
	// message (which brings a candidate back, or tells an old leader of
	// the newer term).
	probeNoPromise = 1 << 0
	maxProbeName   = 64
	probeMACSize   = 16
	probeKeySize   = 32
	// probeKeyLabel is the label of the TLS exporter that derives a
	// connection's probe key; the app name is its context.
	probeKeyLabel  = "hummingbird failover probe"
	minProbePacket = 3 + 1 + 1 + 1 + 1 + 8 + 3*8 + probeMACSize
	maxProbePacket = minProbePacket - 2 + 2*maxProbeName
)

// probeKind is a datagram's kind.
type probeKind uint8

const (
	kindProbe  probeKind = 1
	kindAnswer probeKind = 2
)

// probe is a datagram's content, as sent and as received.
type probe struct {
	Kind  probeKind
	Flags uint8
	App   string // the app, as its group names it
	From  string // the sender's host uuid
	Term  uint64
	Seq   uint64
	Index uint64
}

var (
	errProbeLength  = errors.New("probe datagram: lengths do not match")
	errProbeVersion = errors.New("probe datagram: unknown version")
	errProbeKind    = errors.New("probe datagram: unknown kind")
	errProbeFlags   = errors.New("probe datagram: undefined flags")
	errProbeName    = errors.New("probe datagram: a name is empty or longer than 64 bytes")
)

// probeView is a parsed datagram, its names still in the datagram.
type probeView struct {
	kind             probeKind
	flags            uint8
	app, from        []byte
	keyID            [8]byte
	term, seq, index uint64
	signed           []byte // every byte the MAC covers
	mac              []byte
}

// checkProbeHeader checks what a datagram's kind and flags may be.
func checkProbeHeader(kind probeKind, flags uint8) error {
	switch kind {
	case kindProbe:
		if flags&^probeAnswerMe != 0 {
			return errProbeFlags
		}
	case kindAnswer:
		if flags&^probeNoPromise != 0 {
			return errProbeFlags
		}
	default:
		return errProbeKind
	}
	return nil
}

// parseProbe parses datagram b strictly; it checks no MAC.
func parseProbe(b []byte) (probeView, error) {
	var v probeView
	if len(b) < minProbePacket || len(b) > maxProbePacket {
		return v, errProbeLength
	}
	if b[0] != probeVersion {
		return v, fmt.Errorf("%w %d", errProbeVersion, b[0])
	}
	v.kind, v.flags = probeKind(b[1]), b[2]
	if err := checkProbeHeader(v.kind, v.flags); err != nil {
		return v, err
	}
	rest := b[3:]
	name := func() ([]byte, error) {
		n := int(rest[0])
		if n == 0 || n > maxProbeName {
			return nil, errProbeName
		}
		// What must follow the name: the next length byte (or the key
		// id) at least.
		if len(rest) < 1+n+1 {
			return nil, errProbeLength
		}
		s := rest[1 : 1+n]
		rest = rest[1+n:]
		return s, nil
	}
	var err error
	if v.app, err = name(); err != nil {
		return v, err
	}
	if v.from, err = name(); err != nil {
		return v, err
	}
	if len(rest) != 8+3*8+probeMACSize {
		return v, errProbeLength
	}
	copy(v.keyID[:], rest)
	v.term = binary.BigEndian.Uint64(rest[8:])
	v.seq = binary.BigEndian.Uint64(rest[16:])
	v.index = binary.BigEndian.Uint64(rest[24:])
	v.signed, v.mac = b[:len(b)-probeMACSize], rest[32:]
	return v, nil
}

// probe is v's content.
func (v *probeView) probe() probe {
	return probe{Kind: v.kind, Flags: v.flags, App: string(v.app), From: string(v.from), Term: v.term, Seq: v.seq, Index: v.index}
}

// appendProbe appends p, signed with key id keyID, to dst: every byte
// the MAC covers (appendProbeMAC appends it).
func appendProbe(dst []byte, p *probe, keyID [8]byte) ([]byte, error) {
	if err := checkProbeHeader(p.Kind, p.Flags); err != nil {
		return dst, err
	}
	if len(p.App) == 0 || len(p.App) > maxProbeName || len(p.From) == 0 || len(p.From) > maxProbeName {
		return dst, errProbeName
	}
	dst = append(dst, probeVersion, byte(p.Kind), p.Flags, byte(len(p.App)))
	dst = append(dst, p.App...)
	dst = append(dst, byte(len(p.From)))
	dst = append(dst, p.From...)
	dst = append(dst, keyID[:]...)
	dst = binary.BigEndian.AppendUint64(dst, p.Term)
	dst = binary.BigEndian.AppendUint64(dst, p.Seq)
	dst = binary.BigEndian.AppendUint64(dst, p.Index)
	return dst, nil
}

// replayWindow takes each sequence number once: one above the highest
// taken, or one of the 64 below it not yet taken, so that datagrams
// reordered on the way still count, but none counts twice. Numbers
// further below are refused.
type replayWindow struct {
	top  uint64 // the highest taken
	seen uint64 // bit i: top-i was taken
}

// take says whether seq is new, and notes it when it is.
func (w *replayWindow) take(seq uint64) bool {
	switch {
	case seq > w.top || w.seen == 0:
		if w.seen == 0 {
			w.seen = 1
		} else if d := seq - w.top; d < 64 {
			w.seen = w.seen<<d | 1
		} else {
			w.seen = 1
		}
		w.top = seq
		return true
	case w.top-seq >= 64:
		return false
	default:
		bit := uint64(1) << (w.top - seq)
		if w.seen&bit != 0 {
			return false
		}
		w.seen |= bit
		return true
	}
}

// probeKey is the key of one raft connection between this member and a
// peer, with what it takes to sign and check datagrams.
type probeKey struct {
	id   [8]byte
	key  []byte
	peer string // the host uuid at the connection's far end

	mu      sync.Mutex
	mac     hash.Hash // HMAC-SHA256 under key, reset at every use
	sum     [sha256.Size]byte
	probes  replayWindow // the peer's probes taken under this key
	answers replayWindow // and its answers
}

// connProbeKey derives the probe key of app's raft connection cs. Both
// ends of the connection get the same one.
func connProbeKey(cs tls.ConnectionState, app string) (*probeKey, error) {
	key, err := cs.ExportKeyingMaterial(probeKeyLabel, []byte(app), probeKeySize)
	if err != nil {
		return nil, fmt.Errorf("probe key: %w", err)
	}
	return newProbeKey(key), nil
}

func newProbeKey(key []byte) *probeKey {
	k := &probeKey{key: key, mac: hmac.New(sha256.New, key)}
	sum := sha256.Sum256(key)
	copy(k.id[:], sum[:])
	return k
}

// sign appends the MAC of b, a datagram up to its MAC, to b.
func (k *probeKey) sign(b []byte) []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.mac.Reset()
	k.mac.Write(b)
	return append(b, k.mac.Sum(k.sum[:0])[:probeMACSize]...)
}

// take takes v, a datagram under this key, when it is authentic and
// new: its MAC matches, and the replay window of its kind takes its seq.
// A datagram whose MAC does not match leaves the windows as they were.
func (k *probeKey) take(v *probeView) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.mac.Reset()
	k.mac.Write(v.signed)
	if !hmac.Equal(k.mac.Sum(k.sum[:0])[:probeMACSize], v.mac) {
		return errProbeMAC
	}
	w := &k.probes
	if v.kind == kindAnswer {
		w = &k.answers
	}
	if !w.take(v.seq) {
		return errProbeReplay
	}
	return nil
}

// addProbeKeyLocked notes the probe key of a raft connection with peer
// just tracked. s.mu is held.
func (s *stream) addProbeKeyLocked(peer string, k *probeKey) {
	k.peer = peer
	s.keys[peer] = append(s.keys[peer], k)
}

// dropProbeKeyLocked forgets the probe key of a raft connection with peer
// that closed. s.mu is held.
func (s *stream) dropProbeKeyLocked(peer string, k *probeKey) {
	keys := slices.DeleteFunc(s.keys[peer], func(o *probeKey) bool { return o == k })
	if len(keys) == 0 {
		delete(s.keys, peer)
		return
	}
	s.keys[peer] = keys
}

// newestProbeKey is the key of the raft connection with peer tracked
// last of those open, or nil.
func (s *stream) newestProbeKey(peer string) *probeKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := s.keys[peer]
	if len(keys) == 0 {
		return nil
	}
	return keys[len(keys)-1]
}

// probeKey is the key (and its id) of the raft connection with peer
// tracked last of those open; !ok when none is open.
func (s *stream) probeKey(peer string) (id [8]byte, key []byte, ok bool) {
	k := s.newestProbeKey(peer)
	if k == nil {
		return id, nil, false
	}
	return k.id, k.key, true
}

// probeKeyByID is peer's key with id id, of a raft connection open, or
// nil.
func (s *stream) probeKeyByID(peer []byte, id [8]byte) *probeKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.keys[string(peer)] {
		if k.id == id {
			return k
		}
	}
	return nil
}

var (
	errProbeApp    = errors.New("probe datagram: no such app here")
	errProbeKey    = errors.New("probe datagram: no open raft connection with the sender has its key")
	errProbeMAC    = errors.New("probe datagram: the MAC does not match")
	errProbeReplay = errors.New("probe datagram: seq taken already, or too old")
	// errNoProbeKey: no raft connection with the member is open; dialling
	// one makes a key.
	errNoProbeKey  = errors.New("no raft connection with the member is open")
	errNoProbeAddr = errors.New("no member with an IP address and port")
	errNoProbeConn = errors.New("no probe socket")
)

// probeHandler takes the authentic new datagrams of a stream's app, with
// the key that signed each (an answer goes out under it) and the address
// it came from. It runs on the mux's one reading goroutine: it must not
// block.
type probeHandler func(p probe, k *probeKey, from netip.AddrPort)

// setProbeHandler makes h take the stream's datagrams from now on (nil:
// they are dropped).
func (s *stream) setProbeHandler(h probeHandler) {
	s.mu.Lock()
	s.probeHandler = h
	s.mu.Unlock()
}

func (s *stream) handler() probeHandler {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.probeHandler
}

// sealProbe is p as a datagram to member peer, from this member (p's App
// and From are set), signed with the key of the raft connection with peer
// tracked last.
func (s *stream) sealProbe(peer string, p probe) ([]byte, error) {
	return s.sealProbeWith(peer, nil, p)
}

// sealProbeWith is sealProbe under key k (nil: the newest of peer's).
func (s *stream) sealProbeWith(peer string, k *probeKey, p probe) ([]byte, error) {
	if k == nil {
		k = s.newestProbeKey(peer)
	}
	if k == nil {
		return nil, fmt.Errorf("probe to member %s of app %s: %w", peer, s.app, errNoProbeKey)
	}
	p.App, p.From = s.app, s.id
	b, err := appendProbe(make([]byte, 0, maxProbePacket), &p, k.id)
	if err != nil {
		return nil, fmt.Errorf("probe to member %s of app %s: %w", peer, s.app, err)
	}
	return k.sign(b), nil
}

// sendProbe sends p to member peer as one datagram (sealProbe) from the
// probe socket to the member's address (an answer too goes there, not to
// where the probe came from). It fails when no raft connection with peer
// is open (errNoProbeKey): the caller may dial one. A connection just
// dialled has its key here a moment before its far end has: a datagram
// sent in between is refused.
func (s *stream) sendProbe(peer string, p probe) error {
	return s.sendProbeWith(peer, nil, p)
}

// sendProbeWith is sendProbe under key k (nil: the newest of peer's): an
// answer goes out under the key of the probe it answers, which the prober
// holds.
func (s *stream) sendProbeWith(peer string, k *probeKey, p probe) error {
	to, ok := s.probeAddrs[peer]
	if !ok {
		return fmt.Errorf("probe to member %s of app %s: %w", peer, s.app, errNoProbeAddr)
	}
	if s.m.udp == nil {
		return fmt.Errorf("probe to member %s of app %s: %w", peer, s.app, errNoProbeConn)
	}
	b, err := s.sealProbeWith(peer, k, p)
	if err != nil {
		return err
	}
	if _, err := s.m.udp.WriteToUDPAddrPort(b, to); err != nil {
		return fmt.Errorf("probe to member %s of app %s: %w", peer, s.app, err)
	}
	return nil
}

// openProbe checks datagram b: it returns the datagram and its app's
// stream when it is well-formed, for an app of this agent, authentic
// under the key of an open raft connection with its sender, and new.
// Where it came from is not checked: the key says who sent it, and a
// member's datagrams may leave from another of its addresses than the
// one the desired state names.
func (m *mux) openProbe(b []byte) (*stream, probe, error) {
	s, p, _, err := m.openProbeKey(b)
	return s, p, err
}

// openProbeKey is openProbe, with the key the datagram was signed with.
func (m *mux) openProbeKey(b []byte) (*stream, probe, *probeKey, error) {
	v, err := parseProbe(b)
	if err != nil {
		return nil, probe{}, nil, err
	}
	m.mu.Lock()
	s := m.apps[string(v.app)]
	m.mu.Unlock()
	if s == nil {
		return nil, probe{}, nil, errProbeApp
	}
	k := s.probeKeyByID(v.from, v.keyID)
	if k == nil {
		return nil, probe{}, nil, errProbeKey
	}
	if err := k.take(&v); err != nil {
		return nil, probe{}, nil, err
	}
	return s, probe{Kind: v.kind, Flags: v.flags, App: s.app, From: k.peer, Term: v.term, Seq: v.seq, Index: v.index}, k, nil
}

// serveProbes reads datagrams from the probe socket until it is closed,
// and hands each one openProbe takes to its stream's handler.
func (m *mux) serveProbes() {
	log := m.log.With("logger", "probe")
	buf := make([]byte, maxProbePacket+1) // one byte more: an oversized datagram is seen as such
	for {
		n, from, err := m.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			log.Warn("probe socket read failed", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		s, p, k, err := m.openProbeKey(buf[:n])
		if err != nil {
			m.probesRefused.Add(1)
			if log.Enabled(context.Background(), slog.LevelDebug) {
				log.Debug("probe datagram refused", "from", from.String(), "err", err)
			}
			continue
		}
		if h := s.handler(); h != nil {
			h(p, k, netip.AddrPortFrom(from.Addr().Unmap(), from.Port()))
		}
	}
}

// listenFailover opens the failover listener on addr, and the probe
// socket on the same address and port (UDP). When addr's port is 0 (any),
// the probe socket takes the port the listener got, and when another
// socket holds that one for UDP, both try again, a few times.
func listenFailover(ctx context.Context, addr string) (net.Listener, *net.UDPConn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	const attempts = 8
	for i := 1; ; i++ {
		ln, err := listen(ctx, addr)
		if err != nil {
			return nil, nil, err
		}
		var lc net.ListenConfig
		got := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		pc, err := lc.ListenPacket(ctx, "udp", net.JoinHostPort(host, got))
		if err == nil {
			return ln, pc.(*net.UDPConn), nil
		}
		ln.Close()
		if (port != "" && port != "0") || i == attempts {
			return nil, nil, fmt.Errorf("probe socket: %w", err)
		}
	}
}
