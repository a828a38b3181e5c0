package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"sort"
	"strings"

	"hummingbird.io/hummingbird/internal/problem"
)

// decode reads a JSON object from the request body into v (a pointer to a
// struct), refusing what a person would want to hear about: no body, the
// wrong media type, malformed JSON, an array or string where an object
// belongs, fields v does not have, and values of the wrong type.
func decode(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !(r.Method == http.MethodPatch && mt == "application/merge-patch+json")) {
			return problem.Invalidf("", "the body must be JSON: send Content-Type: application/json, not %q", ct)
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return problem.TooLargef("the request body is over %d bytes", tooBig.Limit)
		}
		return problem.Invalidf("", "the request body could not be read")
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return problem.Invalidf("", "the request body is empty; send a JSON object")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return jsonProblem(err)
	}
	if fields == nil {
		return problem.Invalidf("", "the body must be a JSON object, not null")
	}
	known := jsonFields(reflect.TypeOf(v).Elem())
	for name := range fields {
		if _, ok := known[name]; !ok {
			names := make([]string, 0, len(known))
			for n := range known {
				names = append(names, n)
			}
			sort.Strings(names)
			return problem.Invalidf(name, "unknown field %q; the fields are: %s", name, strings.Join(names, ", "))
		}
	}
	if err := json.Unmarshal(body, v); err != nil {
		return jsonProblem(err)
	}
	return nil
}

func jsonProblem(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syn):
		return problem.Invalidf("", "malformed JSON at byte %d: fix the request body", syn.Offset)
	case errors.As(err, &typ) && typ.Field == "":
		return problem.Invalidf("", "the body must be a JSON object, not %s", typ.Value)
	case errors.As(err, &typ):
		// A value inside an object (labels.zone) is blamed on its field.
		field, _, _ := strings.Cut(typ.Field, ".")
		return problem.Invalidf(field, "%s must be %s, not %s", typ.Field, describe(typ.Type), typ.Value)
	}
	return problem.Invalidf("", "malformed JSON: fix the request body")
}

func describe(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Map:
		return "an object of " + describe(t.Elem()) + " values"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.Bool:
		return "true or false"
	}
	return "a " + t.Kind().String()
}

// jsonFields returns the JSON names of a struct's fields.
func jsonFields(t reflect.Type) map[string]struct{} {
	out := map[string]struct{}{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous {
			for n := range jsonFields(f.Type) {
				out[n] = struct{}{}
			}
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = struct{}{}
	}
	return out
}

// queryLimit parses the limit parameter: default def, at most max.
func queryLimit(r *http.Request, def, max int) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return def, nil
	}
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil || n < 1 || n > max || fmt.Sprint(n) != s {
		return 0, problem.Invalidf("limit", "limit %q must be a whole number from 1 to %d", s, max)
	}
	return n, nil
}
