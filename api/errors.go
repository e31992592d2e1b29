package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/loa-broadcast/loa"
)

// statusOf maps every domain error code to its HTTP status. It is the only
// place the API decides a status from an error.
var statusOf = map[string]int{
	loa.EINVALID:      http.StatusBadRequest,
	loa.EUNAUTHORIZED: http.StatusUnauthorized,
	loa.EFORBIDDEN:    http.StatusForbidden,
	loa.ENOTFOUND:     http.StatusNotFound,
	loa.ECONFLICT:     http.StatusConflict,
	loa.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	loa.EUNSUPPORTED:  http.StatusUnsupportedMediaType,
	loa.ETIMEOUT:      http.StatusGatewayTimeout,
	loa.EGONE:         http.StatusGone,
	loa.ERATELIMIT:    http.StatusTooManyRequests,
	loa.EUNAVAILABLE:  http.StatusServiceUnavailable,
	loa.ENOSPACE:      http.StatusInsufficientStorage,
	loa.EINTERNAL:     http.StatusInternalServerError,
	loa.ENOTAPPROVED:  http.StatusConflict,

	loa.EUNAUTHENTICATED: http.StatusUnauthorized,
	loa.ECSRF:            http.StatusForbidden,
	loa.ELOGINBACKOFF:    http.StatusTooManyRequests,

	loa.EINUSE: http.StatusConflict,
}

// errorBody is the JSON shape of every error response.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
	Field string `json:"field,omitempty"` // the request field at fault, when the message names one
	// UsedBy names what keeps a thing from being deleted (in_use).
	UsedBy []loa.MediaUse `json:"used_by,omitempty"`
}

// fieldOf returns the field a message names by its convention, "field:
// what is wrong" (e.g. "targets.areas[2]: ..."), or "" if it names none.
func fieldOf(msg string) string {
	f, _, ok := strings.Cut(msg, ": ")
	if !ok || f == "" || f == "body" || len(f) > 64 {
		return ""
	}
	for i, c := range f {
		word := c >= 'a' && c <= 'z' || c == '_' || i > 0 && (c >= '0' && c <= '9' || c == '.' || c == '[' || c == ']')
		if !word {
			return ""
		}
	}
	return f
}

// errorResponse turns err into a status and body. Internal errors, and
// errors with a code the table does not know, get a generic message; the
// caller logs the real one.
func errorResponse(err error) (int, errorBody) {
	code := loa.ErrorCode(err)
	if code == loa.EINTERNAL {
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			code = loa.ETIMEOUT
		case errors.Is(err, context.Canceled):
			code = loa.EUNAVAILABLE
		}
	}
	status, ok := statusOf[code]
	if !ok || code == loa.EINTERNAL {
		return http.StatusInternalServerError, errorBody{Error: "internal error", Code: loa.EINTERNAL}
	}
	msg := loa.ErrorMessage(err)
	if msg == "internal error" { // a context error, not a *loa.Error
		msg = http.StatusText(status)
	}
	body := errorBody{Error: msg, Code: code, Field: fieldOf(msg)}
	var inUse *loa.InUseError
	if errors.As(err, &inUse) {
		body.UsedBy = inUse.Uses
	}
	return status, body
}

// writeError writes err as JSON, logging errors that are the server's
// fault. A refusal that may succeed later (a full transcode queue) says
// when in Retry-After.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, body := errorResponse(err)
	var later interface{ RetryAfter() time.Duration }
	if (status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests) && errors.As(err, &later) {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(later.RetryAfter().Round(time.Second).Seconds()))))
	}
	if status == http.StatusUnauthorized {
		// No keep-alive for a caller without credentials: an idle
		// connection is held only by someone who may use it.
		w.Header().Set("Connection", "close")
	}
	if status >= 500 {
		s.logger().LogAttrs(r.Context(), slog.LevelError, "request failed",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", status), slog.Any("err", err))
	}
	writeJSON(w, status, body)
}

// writeJSON writes v as the JSON response body with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client may be gone; nothing to do
}

// maxJSONBody bounds every JSON request body.
const maxJSONBody = 1 << 20

// decodeJSON reads one JSON object from r into v, rejecting unknown
// fields, wrong types, trailing data and bodies over maxJSONBody. Every
// failure is EINVALID with a message that names the problem.
func decodeJSON(r io.Reader, v any) error {
	b, err := readBody(r, maxJSONBody)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return loa.Errorf(loa.EINVALID, "body: empty; expected a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return loa.Errorf(loa.EINVALID, "body: unexpected data after the JSON object")
	}
	return nil
}

// readBody reads a whole request body of at most limit bytes: over it is
// ETOOLARGE (413), whether the route's http.MaxBytesReader or this check
// noticed.
func readBody(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	var mb *http.MaxBytesError
	if errors.As(err, &mb) || int64(len(b)) > limit {
		return nil, loa.Errorf(loa.ETOOLARGE, "body: larger than %s", sizeString(min(limit, limitOf(mb))))
	}
	if err != nil {
		return nil, loa.Errorf(loa.EINVALID, "body: reading failed: %v", err)
	}
	return b, nil
}

func limitOf(mb *http.MaxBytesError) int64 {
	if mb == nil {
		return 1<<63 - 1
	}
	return mb.Limit
}

// jsonError turns an encoding/json error into an EINVALID naming the
// field or the byte offset at fault.
func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return loa.Errorf(loa.EINVALID, "body: malformed JSON at byte %d: %s", syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return loa.Errorf(loa.EINVALID, "%s: expected %s, got JSON %s", field, typeName(typ.Type.String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return loa.Errorf(loa.EINVALID, "body: truncated JSON")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return loa.Errorf(loa.EINVALID, "body: unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return loa.Errorf(loa.EINVALID, "body: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// typeName describes a Go type in JSON terms.
func typeName(t string) string {
	t = strings.TrimPrefix(t, "*")
	switch {
	case t == "string":
		return "a string"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "an integer"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "[]"):
		return "an array"
	}
	return fmt.Sprintf("an object (%s)", t)
}
