package loa

import (
	"strings"
	"testing"
)

func TestRelayValidate(t *testing.T) {
	good := func() *Relay {
		return &Relay{ID: "vov1", Name: "VOV1", URLs: []string{"https://stream.example/vov1.aac", "rtmp://backup.example/live/vov1"}}
	}
	if err := good().Validate(); err != nil {
		t.Fatalf("good relay: %v", err)
	}
	for _, u := range []string{"http://h/x.mp3", "https://h:8443/a.m3u8", "rtmp://h/live", "rtp://239.0.0.1:5004", "sdp://h/s.sdp"} {
		r := good()
		r.URLs = []string{u}
		if err := r.Validate(); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	bad := map[string]func(*Relay){
		"id":                func(r *Relay) { r.ID = "Bad ID" },
		"name":              func(r *Relay) { r.Name = " " },
		"urls":              func(r *Relay) { r.URLs = nil },
		"urls[0]":           func(r *Relay) { r.URLs = []string{"file:///etc/passwd"} },
		"urls[1]":           func(r *Relay) { r.URLs[1] = "http:///nohost" },
		"fallback_media_id": func(r *Relay) { r.FallbackMediaID = "Bad ID" },
		"silence_db":        func(r *Relay) { r.SilenceDB = 3 },
		"silence_s":         func(r *Relay) { r.SilenceS = -1 },
		"duration_s":        func(r *Relay) { r.DurationS = 90000 },
	}
	for field, spoil := range bad {
		r := good()
		spoil(r)
		err := r.Validate()
		if ErrorCode(err) != EINVALID || !strings.HasPrefix(ErrorMessage(err), field+":") {
			t.Errorf("%s: %v", field, err)
		}
	}
	r := good()
	r.URLs = []string{"http://h/a", "http://h/b", "http://h/c", "http://h/d", "http://h/e", "http://h/f", "http://h/g", "http://h/h", "http://h/i"}
	if ErrorCode(r.Validate()) != EINVALID {
		t.Error("nine URLs accepted")
	}
	for _, u := range []string{"http://h/a b", "http://h/\n", "javascript:alert(1)", "ftp://h/x", "//h/x", strings.Repeat("a", 3000)} {
		if ErrorCode(ValidateRelayURL("u", u)) != EINVALID {
			t.Errorf("%q accepted", u)
		}
	}
}

// FuzzValidateRelayURL: any string is accepted only as a URL of an
// allowed scheme with a host, and never panics.
func FuzzValidateRelayURL(f *testing.F) {
	for _, s := range []string{"http://h/x", "rtp://239.0.0.1:5004", "file:///etc", "sdp://[::1]:80/x", "http://%zz", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if err := ValidateRelayURL("u", s); err == nil {
			ok := false
			for _, sc := range RelaySchemes {
				ok = ok || strings.HasPrefix(strings.ToLower(s), sc+"://")
			}
			if !ok {
				t.Errorf("%q accepted", s)
			}
		}
	})
}
