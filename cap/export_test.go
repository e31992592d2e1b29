package cap

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

// An alert that came from CAP exports as the message received, byte for
// byte: nothing invented, nothing lost.
func TestExportCAPOriginal(t *testing.T) {
	raw := readFixture(t, "testdata/valid/typhoon-polygon.xml")
	m, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	areas, devices := inventory()
	got, err := Map(m, areas, devices, now, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := got.Alert
	a.ID, a.State, a.CreatedAt = "a1", loa.AlertCancelled, now
	out, err := Export(a, "loa.quangngai", areas, devices)
	if err != nil || !bytes.Equal(out, raw) {
		t.Fatalf("%v\n%s", err, out)
	}
}

// A native alert exports as a valid CAP message that maps back to the
// same level, areas, test flag and text.
func TestExportNativeRoundTrip(t *testing.T) {
	areas, devices := inventory()
	created := time.Date(2026, 10, 12, 6, 30, 0, 0, time.UTC)
	for _, level := range []string{loa.AlertEmergency, loa.AlertPriority} {
		for _, test := range []bool{false, true} {
			a := &loa.Alert{
				ID: "al-20261012-1", Title: "Cảnh báo lũ", Level: level, Test: test,
				Content:   loa.AlertContent{Text: "Bà con sơ tán ngay."},
				Targets:   loa.Targets{Areas: []string{"binh-chau", "tinh-ky"}, Devices: []string{"hd-1", "nowhere"}},
				ExpiresAt: now.Add(2 * time.Hour), State: loa.AlertActive, CreatedAt: created,
			}
			out, err := Export(a, "loa.quangngai", areas, devices)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Parse(out)
			if err != nil {
				t.Fatalf("exported message does not parse: %v\n%s", err, out)
			}
			if m.Identifier != a.ID || m.Sender != "loa.quangngai" || m.MsgType != "Alert" || !m.SentAt.Equal(created) {
				t.Errorf("header %s %s %s %v", m.Identifier, m.Sender, m.MsgType, m.SentAt)
			}
			if want := map[bool]string{false: "Actual", true: "Exercise"}[test]; m.Status != want {
				t.Errorf("status %s, want %s", m.Status, want)
			}
			if !strings.Contains(string(out), "+07:00") {
				t.Errorf("times not in Vietnam's zone:\n%s", out)
			}
			back, err := Map(m, areas, devices, now, Options{})
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			b := back.Alert
			if b.Level != level || b.Test != test || !b.ExpiresAt.Equal(a.ExpiresAt) {
				t.Errorf("back: level %s test %v expires %v", b.Level, b.Test, b.ExpiresAt)
			}
			if !slices.Equal(b.Targets.Areas, a.Targets.Areas) || !slices.Equal(b.Targets.Devices, []string{"hd-1"}) {
				t.Errorf("back: targets %+v", b.Targets)
			}
			if b.Content.Text != "Cảnh báo lũ. Bà con sơ tán ngay." {
				t.Errorf("back: text %q", b.Content.Text)
			}
		}
	}
}

// A cancelled native alert exports as the Cancel of its Alert message,
// which Map reads as a cancel of that alert.
func TestExportNativeCancelled(t *testing.T) {
	areas, devices := inventory()
	a := &loa.Alert{
		ID: "al-7", Title: "Bão", Level: loa.AlertEmergency, Content: loa.AlertContent{MediaID: "m1"},
		Targets: loa.Targets{Areas: []string{"tinh-ky"}}, ExpiresAt: now.Add(time.Hour),
		State: loa.AlertCancelled, Reason: "hết nguy hiểm", CreatedAt: now.Add(-10 * time.Minute), EndedAt: now,
	}
	out, err := Export(a, "loa.quangngai", areas, devices)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got, err := Map(m, areas, devices, now, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := Reference{Sender: "loa.quangngai", Identifier: "al-7", Sent: FormatTime(a.CreatedAt.In(vietnam))}
	if m.MsgType != "Cancel" || m.Identifier == a.ID || len(got.Cancel) != 1 || got.Cancel[0] != want || m.Note != a.Reason {
		t.Errorf("%s %s %+v note %q", m.MsgType, m.Identifier, got.Cancel, m.Note)
	}
}

func TestExportBadSender(t *testing.T) {
	_, err := Export(&loa.Alert{ID: "a"}, "loa quang ngai", nil, nil)
	if loa.ErrorCode(err) != loa.EINVALID || !strings.Contains(loa.ErrorMessage(err), "sender:") {
		t.Fatalf("got %v", err)
	}
}

func TestGeometry(t *testing.T) {
	// One degree of latitude along a meridian is R·π/180.
	if d := DistanceKm(Point{15, 108}, Point{16, 108}); d < 111.19 || d > 111.20 {
		t.Errorf("1° of latitude: %.3f km", d)
	}
	if d := DistanceKm(Point{15, 108}, Point{15, 108}); d != 0 {
		t.Errorf("same point: %v", d)
	}
	// An L shape: the notch is outside although inside the bounding box.
	l := []Point{{0, 0}, {0, 2}, {1, 2}, {1, 1}, {2, 1}, {2, 0}, {0, 0}}
	for _, c := range []struct {
		p  Point
		in bool
	}{
		{Point{0.5, 0.5}, true}, {Point{0.5, 1.5}, true}, {Point{1.5, 0.5}, true},
		{Point{1.5, 1.5}, false}, {Point{-0.1, 0.5}, false}, {Point{0.5, 2.1}, false},
	} {
		if got := InPolygon(c.p, l); got != c.in {
			t.Errorf("%v in L: %v, want %v", c.p, got, c.in)
		}
	}
	c := Circle{Point{15.19, 108.88}, 6}
	if !InCircle(Point{15.23, 108.87}, c) || InCircle(Point{15.12, 108.86}, c) {
		t.Error("circle containment")
	}
}

func FuzzParse(f *testing.F) {
	for _, dir := range []string{"valid", "invalid", "unmappable"} {
		files, _ := filepath.Glob(filepath.Join("testdata", dir, "*.xml"))
		for _, p := range files {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	areas, devices := inventory()
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			if c := loa.ErrorCode(err); c != loa.EINVALID && c != loa.ETOOLARGE {
				t.Fatalf("error code %s: %v", c, err)
			}
			return
		}
		got, err := Map(m, areas, devices, now, Options{})
		if err != nil {
			if loa.ErrorCode(err) != loa.EINVALID {
				t.Fatalf("map error code: %v", err)
			}
			return
		}
		// Whatever Map makes, the alert service accepts.
		if a := got.Alert; a != nil {
			if got.Audio != nil {
				a.Content.MediaID = "imported"
			}
			if err := a.Validate(now); err != nil {
				t.Fatalf("mapped alert does not validate: %v", err)
			}
		}
	})
}

func BenchmarkParseTyphoon(b *testing.B) {
	raw := readFixture(b, "testdata/valid/typhoon-polygon.xml")
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// Mapping the typhoon polygon against a province's worth of receivers.
func BenchmarkMapPolygon5000Devices(b *testing.B) {
	m, err := Parse(readFixture(b, "testdata/valid/typhoon-polygon.xml"))
	if err != nil {
		b.Fatal(err)
	}
	areas, _ := inventory()
	devices := make([]*loa.Device, 5000)
	for i := range devices {
		// A grid over central Vietnam, about half inside the coastal polygon.
		devices[i] = &loa.Device{ID: fmt.Sprintf("d-%d", i), Lat: 14.9 + float64(i%100)*0.02, Lon: 107.3 + float64(i/100)*0.035}
	}
	for b.Loop() {
		if _, err := Map(m, areas, devices, now, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzGeometry drives the polygon, circle and references parsers
// directly, which FuzzParse reaches only through valid XML.
func FuzzGeometry(f *testing.F) {
	f.Add("16.80,107.45 16.70,107.85 16.30,108.10 16.80,107.45", "15.19,108.88 6", "a,b,2026-10-12T06:00:00+07:00")
	f.Add("1,2 3,4 5,6", "1,2 -1", "a,b")
	f.Add("nan,1 1,1 1,1 nan,1", "inf,0 1", "a,b,c d,e,f")
	f.Fuzz(func(t *testing.T, polygon, circle, refs string) {
		if p, err := ParsePolygon("polygon", polygon); err == nil {
			if len(p) < 4 || p[0] != p[len(p)-1] {
				t.Fatalf("%q -> %v", polygon, p)
			}
			for _, q := range p {
				if !(q.Lat >= -90 && q.Lat <= 90 && q.Lon >= -180 && q.Lon <= 180) {
					t.Fatalf("%q -> point %v out of range", polygon, q)
				}
			}
			InPolygon(p[0], p)
		} else if loa.ErrorCode(err) != loa.EINVALID {
			t.Fatal(err)
		}
		if c, err := ParseCircle("circle", circle); err == nil {
			if !(c.RadiusKm >= 0) || !InCircle(c.Center, c) {
				t.Fatalf("%q -> %+v", circle, c)
			}
		} else if loa.ErrorCode(err) != loa.EINVALID {
			t.Fatal(err)
		}
		if rs, err := ParseReferences(refs); err == nil {
			for _, r := range rs {
				if again, err := ParseReferences(r.String()); err != nil || len(again) != 1 || again[0] != r {
					t.Fatalf("%q: %v does not round-trip: %v %v", refs, r, again, err)
				}
			}
		} else if loa.ErrorCode(err) != loa.EINVALID {
			t.Fatal(err)
		}
	})
}
