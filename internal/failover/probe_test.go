package failover

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/raft"

	"hummingbird.io/hummingbird/internal/failover/failovertest"
	"hummingbird.io/hummingbird/internal/pki"
)

// testProbeDatagram is a well-formed datagram of p with key id 1..8 and a
// MAC of 0xee bytes (parseProbe checks no MAC).
func testProbeDatagram(t testing.TB, p probe) []byte {
	t.Helper()
	b, err := appendProbe(nil, &p, [8]byte{1, 2, 3, 4, 5, 6, 7, 8})
	if err != nil {
		t.Fatal(err)
	}
	return append(b, bytes.Repeat([]byte{0xee}, probeMACSize)...)
}

// TestParseProbe parses a probe and an answer field by field, and holds
// the decoder to refusing every malformed datagram: any length that does
// not match, an unknown version or kind, an undefined flag, an empty or
// oversized name.
func TestParseProbe(t *testing.T) {
	t.Parallel()
	p := probe{Kind: kindProbe, Flags: probeAnswerMe, App: "press", From: "00000000-0000-4000-8000-00000000000b",
		Term: 7, Seq: 1 << 40, Index: 42}
	b := testProbeDatagram(t, p)
	v, err := parseProbe(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, v.probe()); diff != "" {
		t.Errorf("parsed probe (-sent +parsed):\n%s", diff)
	}
	if v.keyID != [8]byte{1, 2, 3, 4, 5, 6, 7, 8} || !bytes.Equal(v.mac, b[len(b)-probeMACSize:]) ||
		!bytes.Equal(v.signed, b[:len(b)-probeMACSize]) {
		t.Errorf("key id %x, signed %x, MAC %x: not the datagram's", v.keyID, v.signed, v.mac)
	}
	if want := minProbePacket - 2 + len(p.App) + len(p.From); len(b) != want {
		t.Errorf("datagram of %d bytes, want %d", len(b), want)
	}
	long := probe{Kind: kindAnswer, App: string(bytes.Repeat([]byte{'a'}, 64)), From: string(bytes.Repeat([]byte{'u'}, 64))}
	if lb := testProbeDatagram(t, long); len(lb) != maxProbePacket {
		t.Errorf("datagram with the longest names has %d bytes, want %d", len(lb), maxProbePacket)
	} else if v, err := parseProbe(lb); err != nil || v.probe() != long {
		t.Errorf("datagram with the longest names: %+v, %v", v.probe(), err)
	}

	appAt, fromAt := 3, 4+len(p.App)
	with := func(at int, c byte) []byte {
		b := bytes.Clone(b)
		b[at] = c
		return b
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want error // nil: any
	}{
		{"empty", nil, errProbeLength},
		{"one byte short", b[:len(b)-1], errProbeLength},
		{"one byte more", append(bytes.Clone(b), 0), errProbeLength},
		{"version 0", with(0, 0), errProbeVersion},
		{"version 2", with(0, 2), errProbeVersion},
		{"kind 0", with(1, 0), errProbeKind},
		{"kind 3", with(1, 3), errProbeKind},
		{"undefined flag on a probe", with(2, probeAnswerMe|2), errProbeFlags},
		{"undefined flag on an answer", func() []byte { b := with(1, byte(kindAnswer)); b[2] = 2; return b }(), errProbeFlags},
		{"app name empty", with(appAt, 0), errProbeName},
		{"app name longer than 64", with(appAt, 65), errProbeName},
		{"app name shorter than said", with(appAt, byte(len(p.App)-1)), nil},
		{"app name longer than said", with(appAt, byte(len(p.App)+1)), nil},
		{"app name past the end", with(appAt, 64), nil},
		{"sender empty", with(fromAt, 0), errProbeName},
		{"sender longer than 64", with(fromAt, 200), errProbeName},
		{"sender shorter than said", with(fromAt, byte(len(p.From)-1)), errProbeLength},
		{"sender longer than said", with(fromAt, byte(len(p.From)+1)), errProbeLength},
		{"oversize", make([]byte, maxProbePacket+1), errProbeLength},
	} {
		if _, err := parseProbe(tc.b); err == nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	for n := range len(b) {
		if _, err := parseProbe(b[:n]); err == nil {
			t.Errorf("the datagram's first %d bytes parsed", n)
		}
	}
	for _, bad := range []probe{
		{Kind: kindProbe, App: "", From: "b"},
		{Kind: kindProbe, App: "a", From: string(make([]byte, 65))},
		{Kind: 3, App: "a", From: "b"},
		{Kind: kindAnswer, Flags: 2, App: "a", From: "b"},
	} {
		if _, err := appendProbe(nil, &bad, [8]byte{}); err == nil {
			t.Errorf("%+v encoded", bad)
		}
	}
}

// FuzzProbePacket holds the decoder to never panicking, and to taking
// only datagrams that encode back to the same bytes.
func FuzzProbePacket(f *testing.F) {
	f.Add(testProbeDatagram(f, probe{Kind: kindProbe, Flags: probeAnswerMe, App: "press",
		From: "00000000-0000-4000-8000-00000000000b", Term: 7, Seq: 9, Index: 42}))
	f.Add(testProbeDatagram(f, probe{Kind: kindAnswer, App: "a", From: "b", Term: 1<<64 - 1}))
	f.Add([]byte{})
	f.Add(make([]byte, minProbePacket))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := parseProbe(b)
		if err != nil {
			return
		}
		p := v.probe()
		again, err := appendProbe(nil, &p, v.keyID)
		if err != nil {
			t.Fatalf("parsed %+v does not encode: %v", p, err)
		}
		again = append(again, v.mac...)
		if !bytes.Equal(again, b) {
			t.Fatalf("parsed %x, encoded back %x", b, again)
		}
	})
}

// TestReplayWindow takes each sequence number once: new highs, reordered
// ones within 64 below the highest, never one taken or further below.
func TestReplayWindow(t *testing.T) {
	t.Parallel()
	var w replayWindow
	var got []bool
	seqs := []uint64{10, 8, 9, 8, 10, 11, 75, 11, 12, 12, 74, 1 << 63, 1<<63 - 63, 1<<63 - 64, 0}
	for _, s := range seqs {
		got = append(got, w.take(s))
	}
	want := []bool{true, true, true, false, false, true, true, false, true, false, true, true, true, false, false}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("taken of %v (-want +got):\n%s", seqs, diff)
	}
	var z replayWindow
	if !z.take(0) || z.take(0) || !z.take(1) || z.take(0) {
		t.Error("seq 0 first: not taken once")
	}
}

// probeMember is one member's failover listener in a probeGroup.
type probeMember struct {
	uuid, addr string
	serial     string  // its certificate's
	ca         *pki.CA // the CA that signed it
	mux        *mux
	s          *stream
}

// newProbeGroup runs n members' failover listeners and probe sockets (A,
// B, ...) on loopback with real mutual TLS, each with app "press" of them
// all; the
// connections each accepts for raft are read until they fail, then
// closed, as raft does.
func newProbeGroup(t testing.TB, n int) []*probeMember {
	t.Helper()
	ca, pool := failovertest.CA(t)
	log := slog.New(slog.DiscardHandler)
	members := map[string]string{}
	certs := map[string]string{}
	var group []*probeMember
	for i := range n {
		uuid := fmt.Sprintf("00000000-0000-4000-8000-00000000000%c", 'a'+i)
		c, k, serial := failovertest.Cert(t, ca, uuid, "", false)
		pair, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		ln, udp, err := listenFailover(t.Context(), "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		mb := &probeMember{uuid: uuid, addr: ln.Addr().String(), serial: serial, ca: ca,
			mux: newMux(ln, udp, func() (*tls.Certificate, error) { return &pair, nil }, pool, log)}
		members[mb.addr], certs[uuid] = uuid, serial
		group = append(group, mb)
	}
	for _, mb := range group {
		mb.s = mb.mux.stream("press", raft.ServerAddress(mb.addr), members, maps.Clone(certs), false, func(net.Conn) {})
		go mb.mux.serve()
		go mb.mux.serveProbes()
		go func() {
			for {
				c, err := mb.s.Accept()
				if err != nil {
					return
				}
				go func() {
					io.Copy(io.Discard, c)
					c.Close()
				}()
			}
		}()
		t.Cleanup(func() {
			mb.s.Close()
			mb.mux.ln.Close()
			mb.mux.udp.Close()
			mb.s.mu.Lock()
			conns := slices.Collect(maps.Keys(mb.s.conns))
			mb.s.mu.Unlock()
			for _, c := range conns {
				c.Close()
			}
		})
	}
	return group
}

// connect opens a raft connection from from to to, and waits until both
// ends hold its probe key.
func connect(t testing.TB, from, to *probeMember) net.Conn {
	t.Helper()
	c, err := from.s.Dial(raft.ServerAddress(to.addr), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	id, _, ok := from.s.probeKey(to.uuid)
	if !ok || id != c.(*memberConn).key.id {
		t.Fatalf("%s's newest probe key for %s is not that of the connection it just made", from.uuid, to.uuid)
	}
	waitFor(t, "the far end to hold the probe key", func() bool { return to.s.probeKeyByID([]byte(from.uuid), id) != nil })
	return c
}

// waitFor waits up to 10 s for cond.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for start := time.Now(); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("waited 10 s for %s", what)
		}
	}
}

// keyIDs are the ids of s's probe keys for peer, oldest first.
func keyIDs(s *stream, peer string) [][8]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids [][8]byte
	for _, k := range s.keys[peer] {
		ids = append(ids, k.id)
	}
	return ids
}

// TestProbeKeys follows the probe keys of raft connections between two
// members, A and B: both ends of a connection derive the same 32-byte key
// (its id the first 8 bytes of its SHA-256), each connection its own; a
// member's newest key for a peer is that of the connection tracked last;
// a key goes with its connection, at both ends; once A's desired state
// names a new certificate of B (B joined again), A holds no key of B.
func TestProbeKeys(t *testing.T) {
	t.Parallel()
	g := newProbeGroup(t, 2)
	a, b := g[0], g[1]
	if _, _, ok := a.s.probeKey(b.uuid); ok {
		t.Fatal("A holds a key of B before any connection")
	}
	first := connect(t, b, a)
	idA, keyA, okA := a.s.probeKey(b.uuid)
	idB, keyB, okB := b.s.probeKey(a.uuid)
	if !okA || !okB || idA != idB || !bytes.Equal(keyA, keyB) {
		t.Fatalf("A's key for B %x (%x, %v), B's for A %x (%x, %v): want the same", keyA, idA, okA, keyB, idB, okB)
	}
	if sum := sha256.Sum256(keyA); len(keyA) != probeKeySize || !bytes.Equal(idA[:], sum[:8]) {
		t.Errorf("key %x with id %x: want 32 bytes, the id the first 8 of its SHA-256", keyA, idA)
	}
	second := connect(t, a, b)
	id2, key2, _ := a.s.probeKey(b.uuid)
	if id2 == idA || bytes.Equal(key2, keyA) {
		t.Error("a second connection has the first one's key")
	}
	for _, tc := range []struct {
		s    *stream
		peer string
	}{{a.s, b.uuid}, {b.s, a.uuid}} {
		if diff := cmp.Diff([][8]byte{idA, id2}, keyIDs(tc.s, tc.peer)); diff != "" {
			t.Errorf("%s's keys for %s (-want +got):\n%s", tc.s.self, tc.peer, diff)
		}
	}
	// B closes the first connection; A, reading it, closes its end.
	first.Close()
	for _, tc := range []struct {
		s    *stream
		peer string
	}{{b.s, a.uuid}, {a.s, b.uuid}} {
		waitFor(t, "the first connection's key to go", func() bool { return len(keyIDs(tc.s, tc.peer)) == 1 })
		if id, _, _ := tc.s.probeKey(tc.peer); id != id2 {
			t.Errorf("%s's newest key for %s is %x, want the second connection's %x", tc.s.self, tc.peer, id, id2)
		}
	}
	// B joined again: A closes the connections of B's earlier certificate.
	a.s.setCerts(map[string]string{a.uuid: a.serial, b.uuid: rejoined(t, b)}, false)
	if ids := keyIDs(a.s, b.uuid); len(ids) != 0 {
		t.Errorf("A holds keys %x of B's revoked certificate", ids)
	}
	waitFor(t, "B to see A close the connection", func() bool { return len(keyIDs(b.s, a.uuid)) == 0 })
	second.Close()
}

// rejoined is the serial of a new certificate of mb's host, as when its
// agent joined again: it revokes mb's.
func rejoined(t *testing.T, mb *probeMember) string {
	t.Helper()
	_, _, serial := failovertest.Cert(t, mb.ca, mb.uuid, mb.serial, false)
	return serial
}

// received is a datagram a stream's handler took.
type received struct {
	p    probe
	from netip.AddrPort
}

// collect makes s's handler pass on what it takes; answer, when not nil,
// runs first.
func collect(s *stream, answer probeHandler) <-chan received {
	ch := make(chan received, 64)
	s.setProbeHandler(func(p probe, k *probeKey, from netip.AddrPort) {
		if answer != nil {
			answer(p, k, from)
		}
		ch <- received{p, from}
	})
	return ch
}

// next is the next datagram ch passes on.
func next(t *testing.T, ch <-chan received) received {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no datagram taken in 10 s")
		return received{}
	}
}

// none checks that ch has passed nothing on (more).
func none(t *testing.T, what string, ch <-chan received) {
	t.Helper()
	select {
	case r := <-ch:
		t.Errorf("%s: took %+v", what, r.p)
	default:
	}
}

// probeAddr is mb's probe socket's address.
func probeAddr(mb *probeMember) netip.AddrPort {
	return mb.mux.udp.LocalAddr().(*net.UDPAddr).AddrPort()
}

// send writes datagrams from mb's probe socket to to's, as they are.
func send(t *testing.T, mb, to *probeMember, datagrams ...[]byte) {
	t.Helper()
	for _, d := range datagrams {
		if _, err := mb.mux.udp.WriteToUDPAddrPort(d, probeAddr(to)); err != nil {
			t.Fatal(err)
		}
	}
}

// seal is p as mb's datagram to to.
func seal(t *testing.T, mb, to *probeMember, p probe) []byte {
	t.Helper()
	d, err := mb.s.sealProbe(to.uuid, p)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestProbeRoundTrip has A, the active, probe B, a standby, and C, the
// witness, over the keys of A's raft connections to them: each takes
// every probe with its fields as sent, from A's probe socket; C answers
// every one, B only the probe that asks it to, and A takes the answers,
// fields as sent. Nothing is refused.
func TestProbeRoundTrip(t *testing.T) {
	t.Parallel()
	g := newProbeGroup(t, 3)
	a, b, c := g[0], g[1], g[2]
	connect(t, a, b)
	connect(t, a, c)
	answers := collect(a.s, nil)
	took := map[*probeMember]<-chan received{}
	for i, mb := range []*probeMember{b, c} {
		witness := mb == c
		took[mb] = collect(mb.s, func(p probe, _ *probeKey, _ netip.AddrPort) {
			if p.Kind == kindProbe && (witness || p.Flags&probeAnswerMe != 0) {
				if err := mb.s.sendProbe(p.From, probe{Kind: kindAnswer, Term: p.Term, Seq: p.Seq, Index: uint64(40 + i)}); err != nil {
					t.Errorf("%s answering: %v", mb.uuid, err)
				}
			}
		})
	}
	sent := []probe{
		{Kind: kindProbe, Term: 3, Seq: 1, Index: 42},
		{Kind: kindProbe, Flags: probeAnswerMe, Term: 3, Seq: 2, Index: 43},
	}
	for _, p := range sent {
		for _, mb := range []*probeMember{b, c} {
			if err := a.s.sendProbe(mb.uuid, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, mb := range []*probeMember{b, c} {
		for _, p := range sent {
			want := p
			want.App, want.From = "press", a.uuid
			r := next(t, took[mb])
			if diff := cmp.Diff(want, r.p); diff != "" {
				t.Errorf("%s took (-sent +taken):\n%s", mb.uuid, diff)
			}
			if r.from != probeAddr(a) {
				t.Errorf("%s took a probe from %v, want A's probe socket %v", mb.uuid, r.from, probeAddr(a))
			}
		}
	}
	answer := func(from string, seq, index uint64) probe {
		return probe{Kind: kindAnswer, App: "press", From: from, Term: 3, Seq: seq, Index: index}
	}
	want := []probe{answer(b.uuid, 2, 40), answer(c.uuid, 1, 41), answer(c.uuid, 2, 41)}
	var got []probe
	for range want {
		got = append(got, next(t, answers).p)
	}
	slices.SortFunc(got, func(x, y probe) int {
		if c := strings.Compare(x.From, y.From); c != 0 {
			return c
		}
		return int(x.Seq) - int(y.Seq)
	})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("A took answers (-want +got):\n%s", diff)
	}
	for _, mb := range g {
		if n := mb.mux.probesRefused.Load(); n != 0 {
			t.Errorf("%s refused %d datagrams", mb.uuid, n)
		}
	}
	none(t, "B after the probe that asked it", took[b])
}

// TestProbeRefused holds A to refusing every datagram but the authentic
// new ones, B and C being members with raft connections to A: a copy of
// B's probe with any one bit flipped (after which the probe itself still
// counts, once: no forged copy moved the replay window); B's probe sent
// again; and, signed with real keys, a datagram for an app A does not
// run, one naming a sender that is no member, one of C naming B as its
// sender, and one naming B's key signed with C's. Over the probe socket
// the same: the refused ones are counted, never taken.
func TestProbeRefused(t *testing.T) {
	t.Parallel()
	g := newProbeGroup(t, 3)
	a, b, c := g[0], g[1], g[2]
	connect(t, b, a)
	connect(t, c, a)
	valid := seal(t, b, a, probe{Kind: kindProbe, Flags: probeAnswerMe, Term: 2, Seq: 5, Index: 9})
	for i := range 8 * len(valid) {
		flipped := bytes.Clone(valid)
		flipped[i/8] ^= 1 << (i % 8)
		if _, p, err := a.mux.openProbe(flipped); err == nil {
			t.Errorf("bit %d flipped: taken as %+v", i, p)
		}
	}
	if _, p, err := a.mux.openProbe(valid); err != nil || p.Seq != 5 || p.From != b.uuid {
		t.Fatalf("B's probe after its forged copies: %+v, %v", p, err)
	}
	if _, _, err := a.mux.openProbe(valid); !errors.Is(err, errProbeReplay) {
		t.Errorf("B's probe again: %v, want %v", err, errProbeReplay)
	}

	keyB, keyC := a.s.newestProbeKey(b.uuid), a.s.newestProbeKey(c.uuid)
	forge := func(app, from string, id [8]byte, signer *probeKey) []byte {
		d, err := appendProbe(nil, &probe{Kind: kindProbe, App: app, From: from, Seq: 100}, id)
		if err != nil {
			t.Fatal(err)
		}
		return signer.sign(d)
	}
	forged := []struct {
		name string
		d    []byte
		want error
	}{
		{"an app A does not run", forge("mill", b.uuid, keyB.id, keyB), errProbeApp},
		{"a sender that is no member", forge("press", "00000000-0000-4000-8000-000000000099", keyB.id, keyB), errProbeKey},
		{"C naming B as the sender", forge("press", b.uuid, keyC.id, keyC), errProbeKey},
		{"B's key id, signed with C's key", forge("press", b.uuid, keyB.id, keyC), errProbeMAC},
	}
	for _, tc := range forged {
		if _, p, err := a.mux.openProbe(tc.d); !errors.Is(err, tc.want) {
			t.Errorf("%s: %+v, %v, want %v", tc.name, p, err, tc.want)
		}
	}

	// Over the wire: a flipped term, the forged ones, then B's next probe.
	took := collect(a.s, nil)
	flipped := seal(t, b, a, probe{Kind: kindProbe, Term: 2, Seq: 6})
	flipped[len(flipped)-probeMACSize-24+7] ^= 1
	refused := [][]byte{flipped}
	for _, tc := range forged {
		refused = append(refused, tc.d)
	}
	send(t, b, a, refused...)
	if err := b.s.sendProbe(a.uuid, probe{Kind: kindProbe, Term: 2, Seq: 7}); err != nil {
		t.Fatal(err)
	}
	if r := next(t, took); r.p.Seq != 7 {
		t.Errorf("A took %+v, want B's probe 7 alone", r.p)
	}
	waitFor(t, "A to count the refused datagrams", func() bool { return a.mux.probesRefused.Load() == uint64(len(refused)) })
	none(t, "A", took)
}

// TestProbeReplay sends B's datagrams to A out of order and again: A
// takes a datagram reordered within the window once, and none twice; an
// answer's seq is apart from the probes'.
func TestProbeReplay(t *testing.T) {
	t.Parallel()
	g := newProbeGroup(t, 2)
	a, b := g[0], g[1]
	connect(t, b, a)
	took := collect(a.s, nil)
	p1, p2, p3 := seal(t, b, a, probe{Kind: kindProbe, Seq: 1}), seal(t, b, a, probe{Kind: kindProbe, Seq: 2}),
		seal(t, b, a, probe{Kind: kindProbe, Seq: 3})
	a2 := seal(t, b, a, probe{Kind: kindAnswer, Seq: 2})
	send(t, b, a, p2, p1, p2, p1, a2, a2, p3)
	type taken struct {
		Kind probeKind
		Seq  uint64
	}
	want := []taken{{kindProbe, 2}, {kindProbe, 1}, {kindAnswer, 2}, {kindProbe, 3}}
	var got []taken
	for range want {
		r := next(t, took)
		got = append(got, taken{r.p.Kind, r.p.Seq})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("A took (-want +got):\n%s", diff)
	}
	waitFor(t, "A to count the replays", func() bool { return a.mux.probesRefused.Load() == 3 })
	none(t, "A", took)
}

// TestProbeRevoked revokes B's certificate at A (B joined again): A
// closes B's raft connections, and with them drops their keys, so that A
// refuses B's datagram signed before and cannot probe B; B cannot probe A
// once it sees the connection closed.
func TestProbeRevoked(t *testing.T) {
	t.Parallel()
	g := newProbeGroup(t, 2)
	a, b := g[0], g[1]
	connect(t, a, b) // B reads it, as raft does the connections it accepts
	took := collect(a.s, nil)
	before := seal(t, b, a, probe{Kind: kindProbe, Seq: 1})
	a.s.setCerts(map[string]string{a.uuid: a.serial, b.uuid: rejoined(t, b)}, false)
	if err := a.s.sendProbe(b.uuid, probe{Kind: kindProbe, Seq: 1}); !errors.Is(err, errNoProbeKey) {
		t.Errorf("A probing B: %v, want %v", err, errNoProbeKey)
	}
	send(t, b, a, before)
	waitFor(t, "A to refuse B's datagram", func() bool { return a.mux.probesRefused.Load() == 1 })
	none(t, "A", took)
	waitFor(t, "B to see the connection closed", func() bool { _, _, ok := b.s.probeKey(a.uuid); return !ok })
	if err := b.s.sendProbe(a.uuid, probe{Kind: kindProbe, Seq: 2}); !errors.Is(err, errNoProbeKey) {
		t.Errorf("B probing A: %v, want %v", err, errNoProbeKey)
	}
}

// TestStartProbeSocket starts a Manager on port 0 of loopback: its probe
// socket has the failover listener's address and port, and Stop closes
// both. A port another socket holds for UDP fails Start, which leaves the
// port free for TCP.
func TestStartProbeSocket(t *testing.T) {
	t.Parallel()
	ca, pool := failovertest.CA(t)
	const self = "00000000-0000-4000-8000-00000000000a"
	c, k, _ := failovertest.Cert(t, ca, self, "", false)
	pair, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Self: self, Listen: "127.0.0.1:0", Dir: t.TempDir(), CA: pool,
		Certs: func() (*tls.Certificate, error) { return &pair, nil }}
	m, err := Start(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	tcp, udp := m.Addr().String(), m.mux.udp.LocalAddr().String()
	if tcp != udp {
		t.Errorf("failover listener on %s, probe socket on %s: want the same", tcp, udp)
	}
	m.Stop()
	pc, err := net.ListenPacket("udp", udp)
	if err != nil {
		t.Fatalf("probe socket not closed by Stop: %v", err)
	}
	defer pc.Close()
	o.Listen = pc.LocalAddr().String()
	if m, err := Start(t.Context(), o); err == nil {
		m.Stop()
		t.Fatalf("started on %s, held for UDP", o.Listen)
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		t.Fatalf("failed Start left the TCP port held: %v", err)
	}
	ln.Close()
}

// BenchmarkProbeRoundTrip is what a probe costs its ends besides the
// socket: B encodes and signs it, A checks and takes it.
func BenchmarkProbeRoundTrip(b *testing.B) {
	g := newProbeGroup(b, 2)
	ma, mb := g[0], g[1]
	connect(b, mb, ma)
	p := probe{Kind: kindProbe, Flags: probeAnswerMe, Term: 3, Index: 42}
	b.ReportAllocs()
	for b.Loop() {
		p.Seq++
		d, err := mb.s.sealProbe(ma.uuid, p)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := ma.mux.openProbe(d); err != nil {
			b.Fatal(err)
		}
	}
}
