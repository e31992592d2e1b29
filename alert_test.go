package loa

import (
	"strings"
	"testing"
	"time"
)

func TestAlertValidate(t *testing.T) {
	now := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	good := func() *Alert {
		return &Alert{Title: "Bão số 9", Level: AlertEmergency, Content: AlertContent{MediaID: "m1"},
			Targets: Targets{Areas: []string{"p"}}, ExpiresAt: now.Add(time.Hour)}
	}
	a := good()
	if err := a.Validate(now); err != nil {
		t.Fatal(err)
	}
	if a.Repeats != 1 || a.Volume != DefaultVolume || a.Priority() != AlertPriorityEmergency || !a.Priority().Emergency() {
		t.Errorf("defaults: repeats %d volume %d priority %d", a.Repeats, a.Volume, a.Priority())
	}
	p := good()
	p.Level = AlertPriority
	if err := p.Validate(now); err != nil || p.Volume != 0 || p.Priority().Band() != BandPriority {
		t.Errorf("ưu tiên: err %v volume %d band %s", err, p.Volume, p.Priority().Band())
	}
	for field, mut := range map[string]func(*Alert){
		"level":            func(a *Alert) { a.Level = "urgent" },
		"content":          func(a *Alert) { a.Content = AlertContent{} },
		"content.text":     func(a *Alert) { a.Content = AlertContent{Text: strings.Repeat("bão ", 501)} },
		"content.media_id": func(a *Alert) { a.Content.MediaID = "Bad ID" },
		"both":             func(a *Alert) { a.Content.Text = "x" },
		"targets":          func(a *Alert) { a.Targets = Targets{} },
		"targets.areas":    func(a *Alert) { a.Targets.Areas = []string{"../x"} },
		"repeats":          func(a *Alert) { a.Repeats = 11 },
		"repeats<0":        func(a *Alert) { a.Repeats = -1 },
		"gap":              func(a *Alert) { a.Gap = 61 * time.Second },
		"volume":           func(a *Alert) { a.Volume = 101 },
		"expires_at":       func(a *Alert) { a.ExpiresAt = now.Add(-time.Second) },
		"expires_at zero":  func(a *Alert) { a.ExpiresAt = time.Time{} },
		"expires_at far":   func(a *Alert) { a.ExpiresAt = now.Add(25 * time.Hour) },
		"title":            func(a *Alert) { a.Title = strings.Repeat("x", 201) },
	} {
		a := good()
		mut(a)
		err := a.Validate(now)
		if ErrorCode(err) != EINVALID {
			t.Errorf("%s: got %v, want EINVALID", field, err)
			continue
		}
		if name, _, _ := strings.Cut(field, " "); !strings.Contains(ErrorMessage(err), strings.TrimSuffix(strings.TrimSuffix(name, "<0"), "both")) {
			t.Errorf("%s: message %q does not name the field", field, ErrorMessage(err))
		}
	}
	// 2000 characters of Vietnamese (multi-byte) text is within the limit.
	a = good()
	a.Content = AlertContent{Text: strings.Repeat("ờ", MaxAlertText)}
	if err := a.Validate(now); err != nil {
		t.Errorf("2000 characters refused: %v", err)
	}
}
