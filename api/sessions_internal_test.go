package api

import (
	"strings"
	"testing"

	"github.com/loa-broadcast/loa"
)

func FuzzSessionRequest(f *testing.F) {
	for _, s := range []string{
		`{"media_id":"m-1","targets":{"areas":["xa-a"]}}`,
		`{"media_id":"m-1","targets":{"devices":["dev-1"]},"priority":240,"max_duration":"30m"}`,
		`{"media_id":"m-1","targets":{"areas":["a"],"devices":["b"]},"priority":0,"max_duration":"1h30m"}`,
		`{"media_id":"m-1","targets":{"areas":["Xã"]},"priority":256}`,
		`{"priority":1e3}`,
		`{"targets":null}`,
		`{} {}`,
		`[`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		sess, err := parseSessionRequest(strings.NewReader(string(body)))
		if err != nil {
			if code := loa.ErrorCode(err); code != loa.EINVALID {
				t.Fatalf("error code %q (%v), want invalid", code, err)
			}
			if msg := loa.ErrorMessage(err); msg == "" || msg == "internal error" {
				t.Fatalf("error message %q names nothing", msg)
			}
			return
		}
		if err := sess.Validate(); err != nil {
			t.Fatalf("accepted a session that does not validate: %v", err)
		}
		if sess.ID != "" || sess.State != "" || sess.CreatedBy != "" || len(sess.Devices) != 0 {
			t.Fatalf("the client set server-owned fields: %+v", sess)
		}
	})
}
