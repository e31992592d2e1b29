package protocol

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
)

func init() {
	decoders["programme"] = func(b []byte) (any, error) { return DecodeProgrammeMeta(string(bytes.TrimSpace(b))) }
}

// The golden programme meta of CONTRACT.md is the occurrence derived with
// the secret of 32 bytes of 0x07, and its fields are documented.
func TestProgrammeMetaGolden(t *testing.T) {
	blocks, documented := readContract(t)
	for name := range jsonFields(reflect.TypeOf(ProgrammeMeta{})) {
		if !documented[name] {
			t.Errorf("programme meta field %q is not in a CONTRACT.md field table", name)
		}
	}
	occ := "sang@2026-12-04T23:00:00Z"
	session, ts0 := ProgrammeSession(bytes.Repeat([]byte{7}, 32), occ)
	at, _ := time.Parse(time.RFC3339, "2026-12-04T23:00:00Z")
	want := ProgrammeMeta{Session: session, Occurrence: occ, StartMs: at.UnixMilli(), TS0: ts0, Frames: 45000,
		EndMs: at.Add(15 * time.Minute).UnixMilli(), Priority: 64}
	found := false
	for _, b := range blocks {
		if b.kind != "programme" {
			continue
		}
		found = true
		if got := string(bytes.TrimSpace(b.body)); got != want.Encode() {
			t.Errorf("CONTRACT.md:%d: %s, want %s", b.line, got, want.Encode())
		}
	}
	if !found {
		t.Fatal("no programme example")
	}
	if s2, ts2 := ProgrammeSession(bytes.Repeat([]byte{8}, 32), occ); s2 == session || ts2 == ts0 {
		t.Error("another secret gives the same session")
	}
}

// Frames sit on the occurrence's timeline; a rule's end cuts it short.
func TestProgrammeMetaTimeline(t *testing.T) {
	m := ProgrammeMeta{StartMs: 1_000_000, Frames: 100}
	if got := m.End(); got != time.UnixMilli(1_002_000) {
		t.Errorf("end %v", got)
	}
	m.EndMs = 1_001_000
	if got := m.End(); got != time.UnixMilli(1_001_000) {
		t.Errorf("end with end_ms %v", got)
	}
	for ms, want := range map[int64]int{1_000_000: 0, 1_000_019: 0, 1_000_020: 1, 1_001_999: 99, 999_999: -1, 999_980: -1, 999_979: -2} {
		if got := m.FrameAt(time.UnixMilli(ms)); got != want {
			t.Errorf("frame at %d: %d, want %d", ms, got, want)
		}
	}
}

// Bad metas are refused, naming the field.
func TestDecodeProgrammeMetaRefuses(t *testing.T) {
	good := `{"session":"p-1","occ":"s@t","start_ms":5,"ts0":1,"frames":10,"priority":64}`
	if _, err := DecodeProgrammeMeta(good); err != nil {
		t.Fatal(err)
	}
	for meta, want := range map[string]string{
		strings.Replace(good, `"p-1"`, `""`, 1):                          "session",
		strings.Replace(good, `"start_ms":5`, `"start_ms":0`, 1):         "start_ms",
		strings.Replace(good, `"frames":10`, `"frames":0`, 1):            "frames",
		strings.Replace(good, `"priority":64`, `"priority":64,"x":1`, 1): "x",
		strings.Replace(good, `,"priority":64`, ``, 1):                   "priority",
		strings.Replace(good, `"ts0":1`, `"ts0":1,"end_ms":5`, 1):        "end_ms",
		`[]`: "programme meta",
	} {
		if _, err := DecodeProgrammeMeta(meta); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want one naming %s", meta, err, want)
		}
	}
}

func FuzzDecodeProgrammeMeta(f *testing.F) {
	f.Add(`{"session":"p-1","occ":"s@t","start_ms":5,"ts0":1,"frames":10,"priority":64}`)
	f.Fuzz(func(t *testing.T, s string) {
		m, err := DecodeProgrammeMeta(s)
		if err != nil {
			return
		}
		if _, err := DecodeProgrammeMeta(m.Encode()); err != nil {
			t.Fatalf("re-encoded meta refused: %v", err)
		}
	})
}
