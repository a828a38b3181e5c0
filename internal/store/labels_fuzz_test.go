package store

import (
	"encoding/json"
	"maps"
	"testing"
)

// FuzzSplitLabels: whatever the fast path of decodeLabels accepts,
// encoding/json decodes to the same labels; and labels written by
// encodeLabels read back equal.
func FuzzSplitLabels(f *testing.F) {
	for _, s := range []string{`{}`, ` { } `, `{"site":"a","rack":"r7"}`,
		`{ "rack" : "r7", "site" : "a" }`, `{"a":"\"q"}`, `{"a":"<&>"}`, `{"a":1}`,
		`{"a":"b",}`, `{"a":"b"} x`, `{"é":"ü"}`, `{"a":"b","a":"c"}`, `{"a":"\u00e9"}`, "{\"a\":\"\t\"}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if m, ok := splitLabels(s); ok {
			var want map[string]string
			if err := json.Unmarshal([]byte(s), &want); err != nil {
				t.Fatalf("splitLabels(%q) = %v, but encoding/json refuses it: %v", s, m, err)
			}
			if !maps.Equal(m, want) {
				t.Fatalf("splitLabels(%q) = %v, encoding/json %v", s, m, want)
			}
		}
		// Any labels made of s round-trip through the column.
		in := map[string]string{s: s, "k": s}
		col, err := encodeLabels(in)
		if err != nil {
			t.Fatal(err)
		}
		out, err := decodeLabels(col)
		if err != nil {
			t.Fatalf("decodeLabels(%q): %v", col, err)
		}
		var want map[string]string
		if err := json.Unmarshal([]byte(col), &want); err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(out, want) {
			t.Fatalf("labels %q: column %q reads back as %v, want %v", in, col, out, want)
		}
	})
}
