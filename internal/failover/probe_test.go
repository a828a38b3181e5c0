package failover

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
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
		{"a flag on an answer", with(1, byte(kindAnswer)), errProbeFlags},
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
		{Kind: kindAnswer, Flags: probeAnswerMe, App: "a", From: "b"},
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

// newProbeGroup runs n members' failover listeners (A, B, ...) on
// loopback with real mutual TLS, each with app "press" of them all; the
// connections each accepts for raft are read until they fail, then
// closed, as raft does.
func newProbeGroup(t *testing.T, n int) []*probeMember {
	t.Helper()
	ca, _, err := pki.EnsureCA(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
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
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		mb := &probeMember{uuid: uuid, addr: ln.Addr().String(), serial: serial, ca: ca,
			mux: newMux(ln, func() (*tls.Certificate, error) { return &pair, nil }, pool, log)}
		members[mb.addr], certs[uuid] = uuid, serial
		group = append(group, mb)
	}
	for _, mb := range group {
		mb.s = mb.mux.stream("press", raft.ServerAddress(mb.addr), members, maps.Clone(certs), false, func(net.Conn) {})
		go mb.mux.serve()
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
func connect(t *testing.T, from, to *probeMember) net.Conn {
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
func waitFor(t *testing.T, what string, cond func() bool) {
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
