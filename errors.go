// Package loa holds the domain vocabulary of the Loa broadcast controller:
// devices, areas, media, sessions, priorities, users, and the error codes
// every adapter maps its failures to. It imports only the standard library.
package loa

import (
	"errors"
	"fmt"
)

// Error codes. The API maps each to one HTTP status in one table.
const (
	EINVALID      = "invalid"      // bad input; the message names the field
	ENOTFOUND     = "not_found"    // the thing does not exist (or is out of scope)
	ECONFLICT     = "conflict"     // already exists, or state forbids it
	EUNAUTHORIZED = "unauthorized" // a bad bearer token, or a wrong username or password
	EFORBIDDEN    = "forbidden"    // credentials fine, not allowed
	ETOOLARGE     = "too_large"    // body or file over the limit
	EUNSUPPORTED  = "unsupported"  // a format or operation Loa does not handle
	EUNAVAILABLE  = "unavailable"  // a dependency (broker, device) cannot be reached
	ETIMEOUT      = "timeout"      // a device or peer did not answer in time
	EGONE         = "gone"         // it existed and was used up (a consumed claim code)
	ERATELIMIT    = "rate_limited" // too many requests of this kind; retry later
	EINTERNAL     = "internal"     // a bug or an I/O failure
	ENOTAPPROVED  = "not_approved" // it names content that waits for an approver (a draft upload)
)

// Error is a domain error: a machine code and a message meant for the user.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("loa: %s: %s", e.Code, e.Message) }

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-facing message of the first *Error in err's
// chain, or a generic message for other errors so internals never leak.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// ENOSPACE is the code of a change the station's disk refused for lack of
// space: nothing of it was saved.
const ENOSPACE = "insufficient_storage"

// Codes of sign-in (api/login.go).
const (
	EUNAUTHENTICATED = "unauthenticated" // no credentials, or a sign-in session that has ended: sign in (again)
	ECSRF            = "csrf"            // a cookie-signed change without its session's X-CSRF-Token
	ELOGINBACKOFF    = "login_backoff"   // too many failed sign-ins for this account; retry after Retry-After
)
