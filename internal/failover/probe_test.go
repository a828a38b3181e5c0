package failover

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
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
