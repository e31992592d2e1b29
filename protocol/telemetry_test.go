package protocol

import (
	"strings"
	"testing"
)

// Telemetry's ip must be an address and temp a board temperature; bad
// values refuse the whole payload.
func TestDecodeTelemetryIPAndTemp(t *testing.T) {
	ok := func(extra string) string {
		return `{"ts":1,"rssi":-80,"volume":50,"muted":false,"uptime":1` + extra + `}`
	}
	for _, b := range []string{ok(`,"temp":41`), ok(`,"temp":-20,"ip":"10.1.2.3"`), ok(`,"temp":80,"ip":"2001:db8::1"`)} {
		if _, err := DecodeTelemetry([]byte(b)); err != nil {
			t.Errorf("%s: %v", b, err)
		}
	}
	for b, want := range map[string]string{
		ok(`,"temp":41,"ip":"10.1.2"`):                           "ip",
		ok(`,"temp":41,"ip":"example.com"`):                      "ip",
		ok(`,"temp":41,"ip":"` + strings.Repeat("1", 100) + `"`): "ip",
		ok(`,"temp":251`):                                        "temp",
		ok(`,"temp":-1e300`):                                     "temp",
	} {
		if _, err := DecodeTelemetry([]byte(b)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want one naming %s", b, err, want)
		}
	}
}
