package api

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// FuzzGroupRequest feeds arbitrary bodies and ?wait= values to the group
// command parsers: they refuse with EINVALID naming a field, or accept an
// op of the group set with a timeout within bounds and args its decoder
// takes.
func FuzzGroupRequest(f *testing.F) {
	for _, s := range []struct{ body, wait string }{
		{`{"op":"volume","args":{"level":40}}`, ""},
		{`{"op":"volume","args":{"level":40},"timeout":"20s"}`, "5s"},
		{`{"op":"mute","args":{"muted":true}}`, "0"},
		{`{"op":"amp","args":{"on":false},"timeout":"100ms"}`, "1m"},
		{`{"op":"test","args":{"duration_ms":200}}`, ""},
		{`{"op":"test"}`, "10m"},
		{`{"op":"reboot","args":null}`, "-1s"},
		{`{"op":"config","args":{"tele_interval_s":30,"delay_ms":0}}`, "soon"},
		{`{"op":"play","args":{}}`, ""},
		{`{"op":"volume","args":{"level":40},"timeout":"1h"}`, ""},
		{`{"op":"volume","args":{"level":"loud"}}`, ""},
		{`{"op":"dance"}`, ""},
		{`{"op":"volume","args":{"level":40},"devices":["x"]}`, ""},
		{`{} {}`, ""},
		{`[`, ""},
		{``, ""},
	} {
		f.Add([]byte(s.body), s.wait)
	}
	f.Fuzz(func(t *testing.T, body []byte, wait string) {
		check := func(err error) {
			t.Helper()
			if code := loa.ErrorCode(err); code != loa.EINVALID {
				t.Fatalf("error code %q (%v), want invalid", code, err)
			}
			if msg := loa.ErrorMessage(err); msg == "" || msg == "internal error" {
				t.Fatalf("error message %q names nothing", msg)
			}
		}
		r := httptest.NewRequest("POST", "/api/v1/areas/a/commands?wait="+url.QueryEscape(wait), nil)
		if d, err := parseWait(r); err != nil {
			check(err)
		} else if d < 0 || d > maxGroupWait {
			t.Fatalf("wait %q accepted as %v", wait, d)
		}
		var req groupRequest
		if err := decodeJSON(strings.NewReader(string(body)), &req); err != nil {
			check(err)
			return
		}
		op, args, timeout, err := parseGroupRequest(req)
		if err != nil {
			check(err)
			return
		}
		if !protocol.OperatorOp(op) || op == "play" || op == "stop" || op == "firmware" {
			t.Fatalf("accepted op %q", op)
		}
		if err := protocol.CheckArgs(op, args); err != nil {
			t.Fatalf("accepted args %s its decoder refuses: %v", args, err)
		}
		if timeout < 100*time.Millisecond || timeout > loa.GroupMaxTimeout {
			t.Fatalf("accepted timeout %v", timeout)
		}
	})
}
