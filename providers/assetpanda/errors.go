package assetpanda

import (
	"errors"
	"fmt"
	"strings"
)

// Error is a failed Asset Panda call or a failed object of a bulk call.
// It never carries a secret: no credential, token or request body.
type Error struct {
	Op        string // what was being done, e.g. "create record"
	Status    int    // HTTP status; 0 when no response arrived
	Message   string // the API's message, or ours when there was no response
	Key       string // the object concerned (record key, email, id), if any
	Code      int    // the API's error code (2 = not unique), if any
	Retryable bool   // true when trying again later may succeed
	Err       error  // the underlying cause, if any
}

// Error renders `op "key": status 422: message (code 2): cause`.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	if e.Key != "" {
		fmt.Fprintf(&b, " %q", e.Key)
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, ": status %d", e.Status)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Code != 0 {
		fmt.Fprintf(&b, " (code %d)", e.Code)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// IsRetryable reports whether err is an *Error (anywhere in its chain) that
// may succeed when tried again later (429, 5xx, no response).
func IsRetryable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Retryable
}

// ErrNotFound matches every *NotFoundError with errors.Is.
var ErrNotFound = errors.New("not found")

// NotFoundError says a name was not found and which names exist, e.g.
// `module "IT Asets" not found in account "Acme" (have: "IT Assets", "Facilities")`.
type NotFoundError struct {
	Kind   string   // account, module, role, collection, field, option
	Name   string   // the name asked for
	Parent string   // where it was looked for, e.g. `account "Acme"`; may be empty
	Have   []string // the names that exist there
}

// Error renders the message.
func (e *NotFoundError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q not found", e.Kind, e.Name)
	if e.Parent != "" {
		b.WriteString(" in ")
		b.WriteString(e.Parent)
	}
	b.WriteString(" (have: ")
	if len(e.Have) == 0 {
		b.WriteString("none")
	}
	for i, h := range e.Have {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", h)
	}
	b.WriteString(")")
	return b.String()
}

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }
