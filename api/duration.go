package api

import (
	"strconv"
	"time"

	"github.com/loa-broadcast/loa"
)

// durationIn reads a duration a request may send in either form the API
// answers it in: field as a Go duration ("2s"), or alt as an integer (ns
// holds it converted to nanoseconds), so a body read back can be sent
// again. example goes in the error message. given is false when neither
// is present.
func durationIn(field, alt, s string, ns *int64, example string) (d time.Duration, given bool, err error) {
	if s != "" {
		if d, err = time.ParseDuration(s); err != nil {
			return 0, false, loa.Errorf(loa.EINVALID, "%s: %s is not a duration like %q", field, strconv.Quote(s), example)
		}
		if ns != nil && *ns != int64(d) {
			return 0, false, loa.Errorf(loa.EINVALID, "%s, %s: they differ; send one (or both, equal)", field, alt)
		}
		return d, true, nil
	}
	if ns != nil {
		return time.Duration(*ns), true, nil
	}
	return 0, false, nil
}

// durationOut is a duration as requests send it, "" for zero.
func durationOut(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}
