package protocol

import "testing"

func TestStatusOlder(t *testing.T) {
	for _, c := range []struct {
		s          Status
		boot, conn uint64
		older      bool
	}{
		{Status{Boot: 7, Conn: 3}, 7, 4, true},  // late Will of the previous connection
		{Status{Boot: 6, Conn: 9}, 7, 1, true},  // late Will of the previous boot
		{Status{Boot: 7, Conn: 4}, 7, 4, false}, // same connection: the latest wins
		{Status{Boot: 7, Conn: 5}, 7, 4, false}, // a newer connection
		{Status{Boot: 8, Conn: 1}, 7, 4, false}, // a new boot starts conn again
		{Status{Boot: 7}, 7, 0, false},          // receivers without conn: boot alone
		{Status{Boot: 7}, 7, 2, true},           // conn absent is 0: older than any conn of the boot
		{Status{Boot: 8}, 7, 2, false},          // ... but not than an earlier boot
	} {
		if got := c.s.Older(c.boot, c.conn); got != c.older {
			t.Errorf("(%d,%d).Older(%d,%d) = %v, want %v", c.s.Boot, c.s.Conn, c.boot, c.conn, got, c.older)
		}
	}
	s, err := DecodeStatus([]byte(`{"online":false,"boot":7,"ts":0}`))
	if err != nil || s.Conn != 0 {
		t.Errorf("a status without conn: %+v, %v; want conn 0", s, err)
	}
}
