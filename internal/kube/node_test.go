package kube

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestManagedLabelsPatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name            string
		have, ann, want map[string]string
		patch           string // "" for none
	}{
		{name: "a new Node", have: map[string]string{"kubernetes.io/hostname": "e1"}, want: map[string]string{"a": "1", "b": ""},
			patch: `{"metadata":{"annotations":{"hummingbird.io/managed-labels":"a,b"},"labels":{"a":"1","b":""}}}`},
		{name: "in step", have: map[string]string{"a": "1", "x": "y"}, ann: map[string]string{ManagedLabelsAnnotation: "a"},
			want: map[string]string{"a": "1"}},
		{name: "drifted", have: map[string]string{"a": "2"}, ann: map[string]string{ManagedLabelsAnnotation: "a"},
			want:  map[string]string{"a": "1"},
			patch: `{"metadata":{"annotations":{"hummingbird.io/managed-labels":"a"},"labels":{"a":"1"}}}`},
		{name: "no longer wanted, others' left", have: map[string]string{"a": "1", "b": "2", "x": "y"},
			ann: map[string]string{ManagedLabelsAnnotation: "a,b"}, want: map[string]string{"a": "1"},
			patch: `{"metadata":{"annotations":{"hummingbird.io/managed-labels":"a"},"labels":{"b":null}}}`},
		{name: "removed by hand already", have: map[string]string{"a": "1"},
			ann: map[string]string{ManagedLabelsAnnotation: "a,b"}, want: map[string]string{"a": "1"},
			patch: `{"metadata":{"annotations":{"hummingbird.io/managed-labels":"a"}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			patch, needed := managedLabelsPatch(tc.have, tc.ann, tc.want)
			if !needed {
				if tc.patch != "" {
					t.Fatalf("no patch, want %s", tc.patch)
				}
				return
			}
			var got, want any
			if err := json.Unmarshal(patch, &got); err != nil {
				t.Fatal(err)
			}
			if tc.patch == "" {
				t.Fatalf("patch %s, want none", patch)
			}
			if err := json.Unmarshal([]byte(tc.patch), &want); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("patch (-want +got):\n%s", diff)
			}
		})
	}
}
