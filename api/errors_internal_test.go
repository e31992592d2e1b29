package api

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/loa-broadcast/loa"
)

// TestErrorField checks the field an error names, for the console to put
// its message beside.
func TestErrorField(t *testing.T) {
	for msg, want := range map[string]string{
		"password: at least 10 characters":  "password",
		"targets.areas: xa-b":               "targets.areas",
		"cap_senders[2]: bad sender":        "cap_senders[2]",
		"body: malformed JSON at byte 3: x": "",
		"missing credentials: sign in":      "",
		"role operator may not do this":     "",
		"Content-Type: send JSON":           "",
	} {
		if _, b := errorResponse(loa.Errorf(loa.EINVALID, "%s", msg)); b.Field != want {
			t.Errorf("%q: field %q, want %q", msg, b.Field, want)
		}
	}
}

func TestErrorResponse(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		code   string
		msg    string
	}{
		{loa.Errorf(loa.EINVALID, "id: required"), 400, "invalid", "id: required"},
		{loa.Errorf(loa.EUNAUTHORIZED, "x"), 401, "unauthorized", "x"},
		{loa.Errorf(loa.EUNAUTHENTICATED, "sign in"), 401, "unauthenticated", "sign in"},
		{loa.Errorf(loa.ECSRF, "x"), 403, "csrf", "x"},
		{loa.Errorf(loa.ELOGINBACKOFF, "x"), 429, "login_backoff", "x"},
		{loa.Errorf(loa.EFORBIDDEN, "x"), 403, "forbidden", "x"},
		{fmt.Errorf("store: %w", loa.Errorf(loa.ENOTFOUND, "device %q not found", "d")), 404, "not_found", `device "d" not found`},
		{loa.Errorf(loa.ECONFLICT, "x"), 409, "conflict", "x"},
		{loa.Errorf(loa.ETOOLARGE, "x"), 413, "too_large", "x"},
		{loa.Errorf(loa.EUNSUPPORTED, "x"), 415, "unsupported", "x"},
		{loa.Errorf(loa.EUNAVAILABLE, "broker down"), 503, "unavailable", "broker down"},
		{loa.Errorf(loa.ETIMEOUT, "device d did not ack"), 504, "timeout", "device d did not ack"},
		{loa.Errorf(loa.EGONE, "claim code already used"), 410, "gone", "claim code already used"},
		{loa.Errorf(loa.ERATELIMIT, "slow down"), 429, "rate_limited", "slow down"},
		{loa.Errorf(loa.EINTERNAL, "bolt: page 7 corrupt"), 500, "internal", "internal error"},
		{fmt.Errorf("open /var/lib/loa: permission denied"), 500, "internal", "internal error"},
		{loa.Errorf("made_up", "secret detail"), 500, "internal", "internal error"},
		{fmt.Errorf("call: %w", context.DeadlineExceeded), 504, "timeout", "Gateway Timeout"},
	} {
		status, body := errorResponse(c.err)
		if status != c.status || body.Code != c.code || body.Error != c.msg {
			t.Errorf("%v: got %d %+v, want %d %s %q", c.err, status, body, c.status, c.code, c.msg)
		}
	}
}

func TestDecodeJSONMessages(t *testing.T) {
	var v struct {
		N int               `json:"n"`
		M map[string]string `json:"m"`
	}
	for body, want := range map[string]string{
		`{"n":"x"}`:     "n: expected an integer",
		`{"m":{"a":1}}`: "m: expected a string",
		`{"n":1,`:       "truncated",
		`{"n":1}x`:      "after the JSON object",
		`{"x":1}`:       `unknown field "x"`,
		`{"n":1 "m"}`:   "malformed JSON at byte",
		`  `:            "empty",
	} {
		err := decodeJSON(strings.NewReader(body), &v)
		if loa.ErrorCode(err) != loa.EINVALID || !strings.Contains(loa.ErrorMessage(err), want) {
			t.Errorf("%s: got %v, want invalid mentioning %q", body, err, want)
		}
	}
}
