package api

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/loa-broadcast/loa"
)

// FuzzParseLogin feeds the sign-in body parser outside input: it must
// never panic, and either refuse with EINVALID or answer a non-empty
// lower-case username and a non-empty password.
func FuzzParseLogin(f *testing.F) {
	for _, s := range []string{
		`{"username":"lan","password":"mật khẩu đủ dài"}`,
		`{"username":" LAN ","password":"x"}`,
		`{"username":"","password":"x"}`,
		`{"username":"lan"}`,
		`{"username":1,"password":"x"}`,
		`{"username":"lan","password":"x","extra":true}`,
		`{"username":"lan","password":"x"} {}`,
		`[]`, `null`, ``, `{`, "\xff\xfe",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := parseLogin(body)
		if err != nil {
			if loa.ErrorCode(err) != loa.EINVALID {
				t.Fatalf("%q: %v, want EINVALID", body, err)
			}
			return
		}
		if req.Username == "" || req.Password == "" {
			t.Fatalf("%q: accepted %+v", body, req)
		}
		if utf8.ValidString(req.Username) && req.Username != strings.ToLower(strings.TrimSpace(req.Username)) {
			t.Fatalf("%q: username %q not normalised", body, req.Username)
		}
	})
}
