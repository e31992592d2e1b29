package broker

import "testing"

func TestACL(t *testing.T) {
	a := acl{controller: "ctl"}
	tests := []struct {
		user, topic string
		write, want bool
	}{
		// controller: anything under loa/v1/, wildcards included
		{"ctl", "loa/v1/dev/d1/cmd", true, true},
		{"ctl", "loa/v1/dev/+/status", false, true},
		{"ctl", "loa/v1/#", false, true},
		{"ctl", "loa/#", false, false},
		{"ctl", "#", false, false},
		{"ctl", "$SYS/broker/uptime", false, false},
		{"ctl", "other/x", true, false},

		// device publishes: own status, ack, tele, event only
		{"d1", "loa/v1/dev/d1/status", true, true},
		{"d1", "loa/v1/dev/d1/ack", true, true},
		{"d1", "loa/v1/dev/d1/tele", true, true},
		{"d1", "loa/v1/dev/d1/event", true, true},
		{"d1", "loa/v1/dev/d1/cmd", true, false},
		{"d1", "loa/v1/dev/d2/status", true, false},
		{"d1", "loa/v1/dev/d1/status/x", true, false},
		{"d1", "loa/v1/dev/d1/other", true, false},
		{"d1", "loa/v2/dev/d1/status", true, false},
		{"d1", "loa/v1/dev/ctl/status", true, false},
		{"d1", "$SYS/x", true, false},

		// device subscribes: own cmd, spelled out
		{"d1", "loa/v1/dev/d1/cmd", false, true},
		{"d1", "loa/v1/dev/d2/cmd", false, false},
		{"d1", "loa/v1/dev/+/cmd", false, false},
		{"d1", "loa/v1/dev/d1/#", false, false},
		{"d1", "loa/v1/dev/d1/+", false, false},
		{"d1", "loa/v1/dev/d1/status", false, false},
		{"d1", "#", false, false},
		{"d1", "$share/g/loa/v1/dev/d1/cmd", false, false},
	}
	for _, tt := range tests {
		if got := a.allow(tt.user, tt.topic, tt.write); got != tt.want {
			t.Errorf("allow(%q, %q, write=%v) = %v, want %v", tt.user, tt.topic, tt.write, got, tt.want)
		}
	}
}
