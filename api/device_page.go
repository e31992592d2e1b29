package api

import (
	"net/http"
	"strconv"
	"strings"
	"unicode"

	"github.com/loa-broadcast/loa"
)

// Device list paging: GET /api/v1/devices answers one page when ?limit=
// is given, in id order, with the matching total in X-Total-Count and the
// next page's cursor (the page's last id) in X-Next-Cursor. The body stays
// the plain array it always was, so callers that page nothing see no change.
const (
	maxDevicePage  = 1000
	maxDeviceQuery = 100
)

// devicePage is the parsed ?q=&limit=&cursor=.
type devicePage struct {
	q      string // folded (fold); empty matches every device
	limit  int    // 0: every matching device
	cursor string // only ids after it
}

func parseDevicePage(r *http.Request) (devicePage, error) {
	q := r.URL.Query()
	var p devicePage
	if raw := q.Get("q"); raw != "" {
		if len(raw) > maxDeviceQuery || strings.ContainsAny(raw, "\x00\r\n") {
			return p, loa.Errorf(loa.EINVALID, "q: at most %d bytes on one line", maxDeviceQuery)
		}
		p.q = fold(strings.TrimSpace(raw))
	}
	if raw := q.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxDevicePage {
			return p, loa.Errorf(loa.EINVALID, "limit: must be an integer within 1..%d", maxDevicePage)
		}
		p.limit = n
	}
	if p.cursor = q.Get("cursor"); p.cursor != "" {
		if err := loa.ValidateID("cursor", p.cursor); err != nil {
			return p, err
		}
	}
	return p, nil
}

// match reports whether d's id or name holds the search text, whatever
// its case and diacritics ("loa cho" finds "Loa chợ", "dinh" "Đình").
func (p *devicePage) match(d *loa.Device) bool {
	if p.q == "" {
		return true
	}
	return strings.Contains(fold(d.ID), p.q) || strings.Contains(fold(d.Name), p.q)
}

// foldVi maps each Vietnamese letter with a mark to its base letter.
var foldVi = func() map[rune]rune {
	m := map[rune]rune{}
	for _, group := range []string{"aàáạảãâầấậẩẫăằắặẳẵ", "eèéẹẻẽêềếệểễ", "iìíịỉĩ", "oòóọỏõôồốộổỗơờớợởỡ", "uùúụủũưừứựửữ", "yỳýỵỷỹ", "dđ"} {
		rs := []rune(group)
		for _, r := range rs[1:] {
			m[r] = rs[0]
		}
	}
	return m
}()

// fold lowers s and drops Vietnamese diacritics, precomposed or as
// combining marks.
func fold(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if unicode.Is(unicode.Mn, r) {
			continue
		}
		r = unicode.ToLower(r)
		if base, ok := foldVi[r]; ok {
			r = base
		}
		b.WriteRune(r)
	}
	return b.String()
}
