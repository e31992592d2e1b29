package loa_test

import (
	"testing"

	"github.com/loa-broadcast/loa"
)

func TestNotifyRuleMatchesAlarm(t *testing.T) {
	tree := loa.NewAreaTree([]*loa.Area{{ID: "qn", Kind: loa.AreaProvince}, {ID: "bc", ParentID: "qn", Kind: loa.AreaCommune},
		{ID: "bc-1", ParentID: "bc", Kind: loa.AreaCluster}, {ID: "hn", Kind: loa.AreaProvince}})
	offline := loa.Alarm{Kind: loa.AlarmOffline, Severity: loa.SeverityCritical, Area: "bc-1", Device: "rx"}
	temp := loa.Alarm{Kind: loa.AlarmTemperature, Severity: loa.SeverityWarning, Area: "bc-1", Device: "rx"}
	station := loa.Alarm{Kind: loa.AlarmDiskSpace, Severity: loa.SeverityWarning}
	chain := []loa.NotifyStep{{Username: "tech", Channel: loa.ChannelEmail}}
	for _, c := range []struct {
		name string
		rule loa.NotifyRule
		al   loa.Alarm
		want bool
	}{
		{"province subtree", loa.NotifyRule{AreaID: "qn", Event: loa.NotifyAlarm, Enabled: true, Chain: chain}, offline, true},
		{"another province", loa.NotifyRule{AreaID: "hn", Event: loa.NotifyAlarm, Enabled: true, Chain: chain}, offline, false},
		{"disabled", loa.NotifyRule{Event: loa.NotifyAlarm, Chain: chain}, offline, false},
		{"kind listed", loa.NotifyRule{Event: loa.NotifyAlarm, Enabled: true, AlarmKinds: []string{"amp_fault", "offline"}, Chain: chain}, offline, true},
		{"kind not listed", loa.NotifyRule{Event: loa.NotifyAlarm, Enabled: true, AlarmKinds: []string{"amp_fault"}, Chain: chain}, offline, false},
		{"critical only", loa.NotifyRule{Event: loa.NotifyAlarm, Enabled: true, MinSeverity: "critical", Chain: chain}, temp, false},
		{"warning and up", loa.NotifyRule{Event: loa.NotifyAlarm, Enabled: true, MinSeverity: "warning", Chain: chain}, temp, true},
		{"station alarm, station rule", loa.NotifyRule{Event: loa.NotifyAlarm, Enabled: true, Chain: chain}, station, true},
		{"station alarm, area rule", loa.NotifyRule{AreaID: "qn", Event: loa.NotifyAlarm, Enabled: true, Chain: chain}, station, false},
		{"alert rule", loa.NotifyRule{Event: loa.NotifyAlertDelivery, BelowPercent: 90, Enabled: true, Chain: chain}, offline, false},
	} {
		if err := c.rule.Validate(); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if got := c.rule.MatchesAlarm(&c.al, tree); got != c.want {
			t.Errorf("%s: MatchesAlarm = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestNotifyRuleValidate(t *testing.T) {
	ok := loa.NotifyRule{Event: loa.NotifyAlarm, Chain: []loa.NotifyStep{{Username: "tech", Channel: loa.ChannelSMS}}}
	for name, change := range map[string]func(r *loa.NotifyRule){
		"event":         func(r *loa.NotifyRule) { r.Event = "storm" },
		"empty chain":   func(r *loa.NotifyRule) { r.Chain = nil },
		"channel":       func(r *loa.NotifyRule) { r.Chain[0].Channel = "zalo" },
		"username":      func(r *loa.NotifyRule) { r.Chain[0].Username = "Tech!" },
		"minutes":       func(r *loa.NotifyRule) { r.AfterMinutes = -1 },
		"step minutes":  func(r *loa.NotifyRule) { r.Chain[0].AfterMinutes = loa.MaxNotifyMinutes + 1 },
		"severity":      func(r *loa.NotifyRule) { r.MinSeverity = "fatal" },
		"below percent": func(r *loa.NotifyRule) { r.BelowPercent = 50 },
		"alert percent": func(r *loa.NotifyRule) { r.Event = loa.NotifyAlertDelivery },
	} {
		r := ok
		r.Chain = append([]loa.NotifyStep(nil), ok.Chain...)
		change(&r)
		if err := r.Validate(); loa.ErrorCode(err) != loa.EINVALID {
			t.Errorf("%s: Validate = %v, want invalid", name, err)
		}
	}
	for _, s := range []string{"a@b.vn", "ky.thuat@quangninh.gov.vn"} {
		if err := loa.ValidateEmail("email", s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	for _, s := range []string{"nope", "A <a@b.vn>", "a@b.vn\r\nBcc: x@y"} {
		if err := loa.ValidateEmail("email", s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	if loa.ValidatePhone("phone", "+84912345678") != nil || loa.ValidatePhone("phone", "0912345678") == nil {
		t.Error("phone validation")
	}
}
