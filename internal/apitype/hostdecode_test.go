package apitype

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// decodesFast reports whether DecodeHostList reads data itself, without
// handing it to encoding/json.
func decodesFast(data []byte) bool {
	var l HostList
	d := decoder{data: data}
	return d.hostList(&l) && d.end()
}

// sameAsUnmarshal checks DecodeHostList gives what json.Unmarshal gives
// for data, value and error alike, and DecodeHost likewise.
func sameAsUnmarshal(t *testing.T, data []byte) {
	t.Helper()
	var want HostList
	werr := json.Unmarshal(data, &want)
	got := HostList{Hosts: []Host{{ID: 99}}, Next: "stale"} // zeroed first
	gerr := DecodeHostList(data, &got)
	if (gerr == nil) != (werr == nil) {
		t.Fatalf("DecodeHostList(%q) error %v, json.Unmarshal error %v", data, gerr, werr)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("DecodeHostList(%q) differs from json.Unmarshal (-want +got):\n%s", data, diff)
	}

	var wantHost Host
	werr = json.Unmarshal(data, &wantHost)
	gotHost := Host{Hostname: "stale", Labels: map[string]string{"a": "b"}}
	gerr = DecodeHost(data, &gotHost)
	if (gerr == nil) != (werr == nil) {
		t.Fatalf("DecodeHost(%q) error %v, json.Unmarshal error %v", data, gerr, werr)
	}
	if diff := cmp.Diff(wantHost, gotHost); diff != "" {
		t.Fatalf("DecodeHost(%q) differs from json.Unmarshal (-want +got):\n%s", data, diff)
	}
}

func mustAppend(t testing.TB, l HostList) []byte {
	t.Helper()
	b, err := l.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeHostList(t *testing.T) {
	t.Parallel()
	full, at := fullHost()
	var many HostList // more values than a decoder shares
	for i := range maxShared + 10 {
		many.Hosts = append(many.Hosts, Host{Location: fmt.Sprint(i), Group: strings.Repeat("g", i%100), Labels: map[string]string{"a": "b"}})
	}
	indented, err := json.MarshalIndent(HostList{Hosts: []Host{full, {ID: -7}}, Next: "8"}, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
		fast bool // DecodeHostList reads it itself
	}{
		{"full hosts", mustAppend(t, HostList{Hosts: []Host{full, {ID: 7, CreatedAt: at}}, Next: "42"}), true},
		{"empty list", mustAppend(t, HostList{Hosts: []Host{}}), true},
		{"nil hosts", mustAppend(t, HostList{}), true},
		{"empty object", []byte(`{}`), true},
		{"zero host", mustAppend(t, HostList{Hosts: []Host{{}}}), true},
		{"escapes", mustAppend(t, HostList{Hosts: []Host{{
			Hostname: "a\x00b\x1f\b\f\n\r\t\\\"\u2028\u2029\x7f é\xff\xfe€\xe2\x82 <&>",
			Labels:   map[string]string{"\xff": "\u2029", "k\n": "v\t"},
		}}}), true},
		{"all escapes", []byte(`{"hosts":[{"hostname":"\"\\\/\b\f\n\r\t\u00e9\u20AC\ud83d\ude00x"}]}`), true},
		{"lone surrogates", []byte(`{"hosts":[{"hostname":"\ud83d","uuid":"\ude00\ud83d\u0041","location":"\ud83d\ud83d\ude00","pool":"\ud83dx\ude00"}]}`), true},
		{"labels null", []byte(`{"hosts":[{"labels":null}]}`), true},
		{"labels empty", []byte(`{"hosts":[{"labels":{}}]}`), true},
		{"label value null", []byte(`{"hosts":[{"labels":{"a":null,"b":"c"}}]}`), true},
		{"label repeated", []byte(`{"hosts":[{"labels":{"a":"1","a":"2"}}]}`), true},
		{"label key escaped", []byte(`{"hosts":[{"labels":{"\u0061\n":"x"}}]}`), true},
		{"shared values", []byte(`{"hosts":[{"pool":"a\nb","group":"x","labels":{"x":"x","\u0078":"a\nb"}},{"pool":"a\nb","group":"x","labels":{"x":"a\nb"}}]}`), true},
		{"many shared values", mustAppend(t, many), true},
		{"next absent", mustAppend(t, HostList{Hosts: []Host{full}}), true},
		{"next present", mustAppend(t, HostList{Hosts: []Host{full}, Next: "a/b"}), true},
		{"next first", []byte(`{"next":"9","hosts":[{"id":1}]}`), true},
		{"indented", indented, true},
		{"white space everywhere", []byte(" \r\n\t{ \"hosts\" : [ { \"id\" : 1 , \"labels\" : { \"a\" : \"b\" } } , null ] , \"next\" : \"x\" } \n"), true},
		{"keys in another order", []byte(`{"hosts":[{"updated_at":"2026-01-02T03:04:05Z","labels":{"z":"1"},"hostname":"h","id":3,"created_at":"2026-01-02T03:04:05.123+02:00"}]}`), true},
		{"nulls", []byte(`{"hosts":[null,{"id":null,"uuid":null,"created_at":null,"updated_at":null}],"next":null}`), true},
		{"hosts null", []byte(`{"hosts":null}`), true},
		{"min and max id", []byte(`{"hosts":[{"id":-9223372036854775808},{"id":9223372036854775807},{"id":-0},{"id":0}]}`), true},

		{"uppercase key", []byte(`{"hosts":[{"ID":1}]}`), false},
		{"uppercase list key", []byte(`{"Hosts":[{"id":1}]}`), false},
		{"escaped key", []byte(`{"hosts":[{"\u0069d":1}]}`), false},
		{"unknown key", []byte(`{"hosts":[{"id":1,"color":"red"}]}`), false},
		{"unknown list key", []byte(`{"hosts":[],"total":3}`), false},
		{"duplicate key", []byte(`{"hosts":[{"hostname":"a","hostname":"b"}]}`), false},
		{"duplicate labels", []byte(`{"hosts":[{"labels":{"a":"1"},"labels":{"b":"2"}}]}`), false},
		{"duplicate hosts", []byte(`{"hosts":[{"id":1}],"hosts":[{"hostname":"x"}]}`), false},
		{"float id", []byte(`{"hosts":[{"id":1.5}]}`), false},
		{"exponent id", []byte(`{"hosts":[{"id":1e3}]}`), false},
		{"id too big", []byte(`{"hosts":[{"id":9223372036854775808}]}`), false},
		{"id too small", []byte(`{"hosts":[{"id":-9223372036854775809}]}`), false},
		{"id leading zero", []byte(`{"hosts":[{"id":01}]}`), false},
		{"id string", []byte(`{"hosts":[{"id":"1"}]}`), false},
		{"string number", []byte(`{"hosts":[{"hostname":1}]}`), false},
		{"label number", []byte(`{"hosts":[{"labels":{"a":1}}]}`), false},
		{"labels array", []byte(`{"hosts":[{"labels":["a"]}]}`), false},
		{"host string", []byte(`{"hosts":["a"]}`), false},
		{"bad time", []byte(`{"hosts":[{"created_at":"yesterday"}]}`), false},
		{"escaped time", []byte(`{"hosts":[{"created_at":"2026-01-02T03:04:05\u005a"}]}`), false},
		{"number time", []byte(`{"hosts":[{"created_at":0}]}`), false},
		{"invalid UTF-8", []byte("{\"hosts\":[{\"hostname\":\"a\xffb\"}]}"), false},
		{"control character", []byte("{\"hosts\":[{\"hostname\":\"a\nb\"}]}"), false},
		{"bad escape", []byte(`{"hosts":[{"hostname":"\x"}]}`), false},
		{"short unicode escape", []byte(`{"hosts":[{"hostname":"\u12"}]}`), false},
		{"trailing garbage", []byte(`{"hosts":[]}x`), false},
		{"two values", []byte(`{"hosts":[]} {}`), false},
		{"trailing comma", []byte(`{"hosts":[{"id":1},]}`), false},
		{"missing brace", []byte(`{"hosts":[{"id":1}]`), false},
		{"nul", []byte(`{"hosts":[nul]}`), false},
		{"null list", []byte(`null`), false},
		{"array", []byte(`[]`), false},
		{"empty", []byte(``), false},
		{"only space", []byte(" \n"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sameAsUnmarshal(t, tc.data)
			if fast := decodesFast(tc.data); fast != tc.fast {
				t.Errorf("DecodeHostList read %q itself: %v, want %v", tc.data, fast, tc.fast)
			}
		})
	}
}

func TestDecodeHost(t *testing.T) {
	t.Parallel()
	h := Host{ID: 5, Hostname: "w-5", Labels: map[string]string{"zone": "b"}, CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)}
	data, err := h.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	var got Host
	if err := DecodeHost(data, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(h, got); diff != "" {
		t.Errorf("DecodeHost (-want +got):\n%s", diff)
	}
	for _, data := range []string{`null`, `{}`, ` {"id":1} `, `{"ID":1}`, `{"id":1}}`, `[]`, `{"labels":{}}`} {
		sameAsUnmarshal(t, []byte(data))
	}
}

// FuzzDecodeHostList holds DecodeHostList and DecodeHost to json.Unmarshal
// (go test ./internal/apitype -run '^$' -fuzz FuzzDecodeHostList): for a
// list AppendJSON writes from the fuzzed fields, compact and indented,
// and for the raw fuzzed bytes as they are.
func FuzzDecodeHostList(f *testing.F) {
	f.Add(int64(1), "edge-1", "site", "a<b>&c", "\u2028\xff", "x", int64(1765069323), int64(5), 0,
		[]byte(`{"hosts":[{"id":1,"hostname":"a","labels":{"k":"v"},"created_at":"2026-01-02T03:04:05Z"}],"next":"2"}`))
	f.Add(int64(-9), "", "", "", "\"\\\x00", "\x1f", int64(0), int64(999999999), -12600,
		[]byte(`{"hosts":[null,{"labels":null,"id":-0}]}`))
	f.Add(int64(0), "\xed\xa0\xbd", "k", "v", "", "", int64(-62135596800), int64(0), 3600,
		[]byte(`{"hosts":[{"hostname":"\ud83d\ude00\ud83d\u0041"}]}`))
	f.Add(int64(1<<62), "h", "", "", "", "", int64(1), int64(1), 1,
		[]byte(`{"hosts":[{"Id":1}]}`))
	f.Add(int64(2), "h", "", "", "", "", int64(1), int64(1), 1,
		[]byte(`{"hosts":[{"id":1.0}]} `))
	f.Add(int64(3), "h", "", "", "", "", int64(1), int64(1), 1,
		[]byte(`{"hosts":[{"id":1,"id":2}]}`))
	f.Add(int64(4), "h", "", "", "", "", int64(1), int64(1), 1,
		[]byte(`{"hosts":[{"created_at":"2026-01-02T03:04:05+24:00"}]}`))
	f.Add(int64(5), "h", "", "", "", "", int64(1), int64(1), 1,
		[]byte(`{"hosts":[{"hostname":"a"}]`))
	f.Fuzz(func(t *testing.T, id int64, hostname, key, value, other, next string, sec, nsec int64, offset int, raw []byte) {
		sameAsUnmarshal(t, raw)

		h := fuzzHost(id, hostname, key, value, other, sec, nsec, offset)
		data, err := HostList{Hosts: []Host{h, {Hostname: next}}, Next: next}.AppendJSON(nil)
		if err != nil {
			return
		}
		sameAsUnmarshal(t, data)
		var probe HostList
		if json.Unmarshal(data, &probe) == nil && !decodesFast(data) {
			t.Errorf("DecodeHostList left %q to encoding/json", data)
		}
		var indented []byte
		if indented, err = json.MarshalIndent(json.RawMessage(data), " ", "\t"); err != nil {
			t.Fatal(err)
		}
		sameAsUnmarshal(t, indented)
	})
}

// benchHosts is a page of n hosts as the controller writes it.
func benchHosts(b *testing.B, n int) []byte {
	at := time.Date(2026, 3, 4, 5, 6, 7, 891234000, time.UTC)
	l := HostList{Next: fmt.Sprint(n)}
	for i := range n {
		l.Hosts = append(l.Hosts, Host{
			ID: int64(i + 1), UUID: fmt.Sprintf("5b1e0c1e-8f5a-4f0e-9a55-%012x", i), Hostname: fmt.Sprintf("edge-%05d", i),
			Personality: PersonalityWorker, Administrative: AdminUnlocked, Operational: OperEnabled,
			Availability: AvailAvailable, InvProvision: ProvProvisioned,
			MgmtMAC: fmt.Sprintf("52:54:00:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff),
			MgmtIP:  fmt.Sprintf("10.20.%d.%d", i/250, i%250+1), Pool: "management", Group: fmt.Sprintf("line-%d", i%8),
			Labels:   map[string]string{"site": "plant-1", "zone": fmt.Sprintf("zone-%d", i%4), "rack": fmt.Sprintf("r%03d", i/40)},
			Location: fmt.Sprintf("hall %d, rack %d", i%3, i/40), BMType: "ipmi", BMIP: fmt.Sprintf("10.30.%d.%d", i/250, i%250+1),
			BMUsername: "admin", NodeState: "Ready", KubeletVersion: "v1.31.4",
			CreatedAt: at.Add(time.Duration(i) * time.Second), UpdatedAt: at.Add(time.Duration(i) * time.Minute),
		})
	}
	data, err := l.AppendJSON(nil)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

func BenchmarkDecodeHostList(b *testing.B) {
	data := benchHosts(b, 1000)
	for _, bc := range []struct {
		name   string
		decode func([]byte, *HostList) error
	}{
		{"DecodeHostList", DecodeHostList},
		{"Unmarshal", func(data []byte, l *HostList) error { return json.Unmarshal(data, l) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				var l HostList
				if err := bc.decode(data, &l); err != nil || len(l.Hosts) != 1000 {
					b.Fatal(err, len(l.Hosts))
				}
			}
		})
	}
}
