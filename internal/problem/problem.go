// Package problem describes what went wrong in terms a caller can act on.
//
// Every layer of Hummingbird returns errors built here (or wraps them with
// %w), so the API can map them to one status code and JSON shape without
// matching strings, and callers can ask whether retrying makes sense.
package problem

import (
	"errors"
	"fmt"
)

// Kind says what the caller should do about an error.
type Kind int

// The kinds of problem. Internal is the zero value: an error that was not
// classified is never blamed on the caller.
const (
	// Internal is a fault of the server; the message is not shown to callers.
	Internal Kind = iota
	// Invalid means the request itself is wrong: fix it and send it again.
	Invalid
	// NotFound means the named object does not exist.
	NotFound
	// Conflict means the request clashes with what is stored (a duplicate,
	// or a state that forbids the change); change the request or the state.
	Conflict
	// NotSupported means the operation does not apply to this object at all.
	NotSupported
	// TooLarge means the request body is over the limit.
	TooLarge
	// Unauthenticated means no valid credentials were presented.
	Unauthenticated
	// Forbidden means the credentials are valid but lack the role needed.
	Forbidden
	// Unavailable is temporary: the same request may succeed later.
	Unavailable
	// MethodNotAllowed means the path exists but not with this method.
	MethodNotAllowed
)

var kindCodes = map[Kind]string{
	Internal:         "internal",
	Invalid:          "invalid_argument",
	NotFound:         "not_found",
	Conflict:         "conflict",
	NotSupported:     "not_supported",
	TooLarge:         "too_large",
	Unauthenticated:  "unauthenticated",
	Forbidden:        "forbidden",
	Unavailable:      "unavailable",
	MethodNotAllowed: "method_not_allowed",
}

// Code is the stable machine-readable name of the kind, as used in the API.
func (k Kind) Code() string { return kindCodes[k] }

// KindForCode is the inverse of Code; unknown codes map to Internal.
func KindForCode(code string) Kind {
	for k, c := range kindCodes {
		if c == code {
			return k
		}
	}
	return Internal
}

func (k Kind) String() string { return k.Code() }

// Error is a classified error. Message is written for a person and must not
// carry secrets or internals; Err, when set, is the cause kept for logs.
type Error struct {
	Kind    Kind
	Field   string // the request field at fault, if one is
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil && e.Message == "" {
		return e.Err.Error()
	}
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

func newf(k Kind, field, format string, args ...any) *Error {
	return &Error{Kind: k, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Invalidf reports a request that is wrong; field names the culprit.
func Invalidf(field, format string, args ...any) error {
	return newf(Invalid, field, format, args...)
}

// NotFoundf reports a missing object.
func NotFoundf(format string, args ...any) error { return newf(NotFound, "", format, args...) }

// Conflictf reports a clash with stored state; field names the culprit.
func Conflictf(field, format string, args ...any) error {
	return newf(Conflict, field, format, args...)
}

// NotSupportedf reports an operation that does not apply.
func NotSupportedf(format string, args ...any) error {
	return newf(NotSupported, "", format, args...)
}

// Unauthenticatedf reports missing or bad credentials.
func Unauthenticatedf(format string, args ...any) error {
	return newf(Unauthenticated, "", format, args...)
}

// Forbiddenf reports a role that is not allowed to do something.
func Forbiddenf(format string, args ...any) error { return newf(Forbidden, "", format, args...) }

// TooLargef reports an oversize request.
func TooLargef(format string, args ...any) error { return newf(TooLarge, "", format, args...) }

// Wrap classifies err as kind k with a message for a person; err stays
// reachable with errors.Is/As and is shown in logs, never to API callers.
func Wrap(k Kind, err error, format string, args ...any) error {
	e := newf(k, "", format, args...)
	e.Err = err
	return e
}

// KindOf returns the kind of err, or Internal when err is not classified.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// FieldOf returns the request field err blames, if any.
func FieldOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

// Retryable says whether sending the same request again may succeed.
func Retryable(err error) bool { return KindOf(err) == Unavailable }

// Is reports whether err is of kind k.
func Is(err error, k Kind) bool { return err != nil && KindOf(err) == k }
