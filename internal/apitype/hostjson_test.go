package apitype

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// stdJSON is what encoding/json's Encoder writes for v, without its
// trailing newline.
func stdJSON(t testing.TB, v any) ([]byte, error) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func sameAsStd(t *testing.T, l HostList) {
	t.Helper()
	want, werr := stdJSON(t, l)
	got, gerr := l.AppendJSON(nil)
	if werr != nil || gerr != nil {
		if werr == nil || !errors.Is(gerr, errNotAppendable) {
			t.Fatalf("AppendJSON error %v, encoding/json error %v: want both to fail or neither", gerr, werr)
		}
		return
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("AppendJSON wrote\n%s\nencoding/json writes\n%s", got, want)
	}
	if len(l.Hosts) == 1 {
		one, err := l.Hosts[0].AppendJSON(nil)
		want, _ := stdJSON(t, l.Hosts[0])
		if err != nil || !bytes.Equal(one, want) {
			t.Fatalf("Host.AppendJSON wrote\n%s (%v)\nencoding/json writes\n%s", one, err, want)
		}
	}
}

// fullHost is a host with every field set, some with text that JSON
// escapes, and the time it was made at.
func fullHost() (Host, time.Time) {
	at := time.Date(2026, 12, 7, 1, 2, 3, 400500600, time.UTC)
	return Host{
		ID: 42, UUID: "5b1e0c1e-8f5a-4f0e-9a55-3f0f5d7c9a11", Hostname: "edge-0042", Personality: PersonalityEdgeworker,
		Administrative: AdminUnlocked, Operational: OperEnabled, Availability: AvailAvailable, InvProvision: ProvProvisioned,
		MgmtMAC: "52:54:00:12:34:56", MgmtIP: "10.20.0.42", Pool: "management", Group: "press",
		Labels: map[string]string{"site": "line-1", "rack": "r<7>", "": "empty key", "zone": ""}, Location: `hall "B" & yard`,
		BMType: "ipmi", BMIP: "10.30.0.42", BMUsername: "admin", SSHUser: "hb", SSHKey: "site-key",
		NodeState: "Ready", KubeletVersion: "v1.31.4", NodeReason: "",
		CreatedAt: at, UpdatedAt: at.In(time.FixedZone("", -(3*3600 + 30*60))),
	}, at
}

func TestHostListAppendJSON(t *testing.T) {
	t.Parallel()
	full, at := fullHost()
	for _, tc := range []struct {
		name string
		l    HostList
	}{
		{"nil hosts", HostList{}},
		{"no hosts, next", HostList{Hosts: []Host{}, Next: "17"}},
		{"zero host", HostList{Hosts: []Host{{}}}},
		{"full host", HostList{Hosts: []Host{full}, Next: "42"}},
		{"empty labels", HostList{Hosts: []Host{{Labels: map[string]string{}}}}},
		{"escapes", HostList{Hosts: []Host{{Hostname: "a\x00b\x1f\b\f\n\r\t\\\"\u2028\u2029\x7f é\xff\xfe€\xe2\x82", Labels: map[string]string{"\xff": "\u2029"}}}}},
		{"two hosts", HostList{Hosts: []Host{full, {ID: 7, CreatedAt: at}}}},
		{"year past 9999", HostList{Hosts: []Host{{CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}}},
		{"year before 0", HostList{Hosts: []Host{{UpdatedAt: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}}}},
	} {
		t.Run(tc.name, func(t *testing.T) { sameAsStd(t, tc.l) })
	}
}

// fuzzHost is a host of the fuzzers' inputs: any text in its fields, any
// time in any zone (some outside what a time's JSON allows), labels nil
// or not.
func fuzzHost(id int64, hostname, key, value, other string, sec, nsec int64, offset int) Host {
	at := time.Unix(sec, nsec).In(time.FixedZone("", offset%(30*3600)))
	h := Host{
		ID: id, UUID: other, Hostname: hostname, Personality: value, Location: other + hostname,
		NodeReason: key + value, Labels: map[string]string{key: value, other: hostname},
		CreatedAt: at, UpdatedAt: at.Add(time.Duration(nsec)),
	}
	if len(key)%3 == 0 {
		h.Labels = nil
	}
	return h
}

// FuzzHostJSON holds AppendJSON to encoding/json's output for any text in
// any field (go test ./internal/apitype -run '^$' -fuzz FuzzHostJSON).
func FuzzHostJSON(f *testing.F) {
	f.Add(int64(1), "edge-1", "site", "a<b>&c", "\u2028\xff", "x", int64(1765069323), int64(5), 0)
	f.Add(int64(-9), "", "", "", "\"\\\x00", "\x1f", int64(0), int64(999999999), -12600)
	f.Fuzz(func(t *testing.T, id int64, hostname, key, value, other, next string, sec, nsec int64, offset int) {
		h := fuzzHost(id, hostname, key, value, other, sec, nsec, offset)
		sameAsStd(t, HostList{Hosts: []Host{h, {Hostname: next}}, Next: next})
		sameAsStd(t, HostList{Hosts: []Host{h}})
	})
}
