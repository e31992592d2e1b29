package loa

import (
	"strings"
	"unicode/utf8"
)

// MaxName is the longest name of anything a user names (areas, devices,
// media, playlists, schedules, calendars, tokens, alert titles), in bytes.
const MaxName = 200

// ValidateName checks a name a user gave something: valid UTF-8 of at
// most MaxName bytes, with no control character (C0 including NUL, tab
// and newlines, DEL, C1) and no Unicode line or paragraph separator, so a
// name is one printable line wherever it is shown or logged. A required
// name must not be blank. Every name of the domain is checked here.
func ValidateName(field, name string, required bool) error {
	if required && strings.TrimSpace(name) == "" {
		return Errorf(EINVALID, "%s: required, at most %d bytes", field, MaxName)
	}
	if len(name) > MaxName {
		return Errorf(EINVALID, "%s: at most %d bytes, not %d", field, MaxName, len(name))
	}
	if !utf8.ValidString(name) {
		return Errorf(EINVALID, "%s: not valid UTF-8", field)
	}
	for i, r := range name {
		if controlRune(r) {
			return Errorf(EINVALID, "%s: control character U+%04X at byte %d; a name is one line of printable text", field, r, i)
		}
	}
	return nil
}

// controlRune reports a C0 or C1 control character, DEL, or a Unicode
// line or paragraph separator.
func controlRune(r rune) bool {
	return r < 0x20 || r >= 0x7f && r <= 0x9f || r == '\u2028' || r == '\u2029'
}

// OneLine makes outside text (a CAP headline, a resource description) fit
// for a name: runs of white space become one space and other control
// characters are dropped.
func OneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.Map(func(r rune) rune {
		if controlRune(r) {
			return -1
		}
		return r
	}, s)
}
