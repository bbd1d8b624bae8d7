package assetpanda

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Error is a failed Asset Panda call or a failed object of a bulk call.
// It never carries a secret: no credential, token or request body (the
// client also blanks its secrets out of the API's messages).
type Error struct {
	Op        string // what was being done, e.g. "create record"
	Status    int    // HTTP status; 0 when no response arrived
	Message   string // the API's message, or ours when there was no response
	Key       string // the object concerned (record key, email, id), if any
	Code      int    // the API's error code (2 = not unique), if any
	Retryable bool   // true when trying again later may succeed
	Err       error  // the underlying cause, if any

	// Reason says in plain words what went wrong and what to fix, when the
	// client knows it (refused credentials or permissions); it leads the
	// rendered message.
	Reason string
	// TokenRequest is true when the failed call was the token request
	// (POST /v3/session/token).
	TokenRequest bool
	// Incomplete is true when a read could not be shown complete (see
	// ErrIncomplete).
	Incomplete bool
}

// ErrIncomplete matches, with errors.Is, every *Error of a read that cannot
// be shown complete: a paged reply without a total, a page that stops short
// of it, a total that changes between pages, or records that do not add up
// to it. Nothing may be taken from anyone on the strength of such a read.
var ErrIncomplete = errors.New("asset panda read cannot be shown complete")

// Error renders `reason: op "key": status 422: message (code 2): cause`.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Reason != "" {
		b.WriteString(e.Reason)
		b.WriteString(": ")
	}
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

// Is makes errors.Is(err, ErrIncomplete) true for an incomplete read.
func (e *Error) Is(target error) bool { return target == ErrIncomplete && e.Incomplete }

// Terminal reports whether trying again cannot help until someone changes
// the credentials or the permissions: the token request was refused (400,
// 401 or 403), a 401 persisted after the one re-authentication, or the
// service answered 403 to any call. Rate limits (429), server errors (5xx),
// timeouts, dropped connections and per-object 404 or 422 are not terminal.
func (e *Error) Terminal() bool {
	switch {
	case e.Retryable:
		return false
	case e.Status == http.StatusUnauthorized, e.Status == http.StatusForbidden:
		return true
	case e.TokenRequest && e.Status == http.StatusBadRequest:
		return true
	}
	return false
}

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
