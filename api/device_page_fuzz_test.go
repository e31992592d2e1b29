package api

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// fold is applied to every search and every device name: it never grows
// a valid string's rune count, is idempotent, and leaves no Vietnamese
// mark or capital behind.
func FuzzDeviceFold(f *testing.F) {
	for _, s := range []string{"", "Loa Đình Làng", "CHỢ", "Nghĩa An", "e\u0301", "\xff", "ǅ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := fold(s)
		if fold(got) != got {
			t.Errorf("fold(%q) = %q, folded again %q", s, got, fold(got))
		}
		if utf8.ValidString(s) && utf8.RuneCountInString(got) > utf8.RuneCountInString(s) {
			t.Errorf("fold(%q) = %q grew", s, got)
		}
		if strings.ContainsAny(got, "ĐđÀàÁáẠạƠơƯư") {
			t.Errorf("fold(%q) = %q keeps a mark", s, got)
		}
	})
}
