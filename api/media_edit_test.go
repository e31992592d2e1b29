package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/loa-broadcast/loa"
)

// The in-memory media service renames, deletes and opens its items too;
// an item named "Bản tin dùng" is used by a playlist and a schedule.
const usedMediaName = "Bản tin dùng"

var fakeOgg = []byte("OggS" + strings.Repeat("\x00", 60))

func (f *fakeMedia) RenameMedia(ctx context.Context, id, name string) (*loa.Media, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.items[id]
	if !ok {
		return nil, loa.Errorf(loa.ENOTFOUND, "media %q not found", id)
	}
	m.Name = name
	return m, nil
}

func (f *fakeMedia) DeleteMedia(ctx context.Context, id string) (*loa.Media, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.items[id]
	if !ok {
		return nil, loa.Errorf(loa.ENOTFOUND, "media %q not found", id)
	}
	if m.Name == usedMediaName {
		return nil, loa.NewInUseError(id, []loa.MediaUse{{Kind: loa.UsePlaylist, ID: "chieu", Name: "Bản tin chiều"}, {Kind: loa.UseSchedule, ID: "sang", Name: "Chương trình sáng"}})
	}
	delete(f.items, id)
	return m, nil
}

func (f *fakeMedia) OpenMedia(ctx context.Context, id string) (*loa.Media, io.ReadSeekCloser, error) {
	m, err := f.Media(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	return m, nopSeekCloser{bytes.NewReader(fakeOgg)}, nil
}

func TestMediaRenameDeleteAudio(t *testing.T) {
	e := newEnv(t)
	var m, used loa.Media
	r := e.upload(e.opA, map[string]string{"name": "Thông báo"}, "a.wav", "RIFF....WAVE")
	want(t, r, http.StatusCreated)
	r.json(t, &m)
	r = e.upload(e.opA, map[string]string{"name": usedMediaName}, "b.wav", "RIFF..b.WAVE")
	want(t, r, http.StatusCreated)
	r.json(t, &used)

	// Listening: the stored file, with ranges.
	r = e.do("GET", "/api/v1/media/"+m.ID+"/audio", e.techA, nil)
	want(t, r, http.StatusOK)
	if r.header.Get("Content-Type") != "audio/ogg" || !bytes.Equal(r.body, fakeOgg) {
		t.Errorf("audio: %s %q", r.header.Get("Content-Type"), r.body)
	}
	req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/media/"+m.ID+"/audio", nil)
	req.Header.Set("Authorization", "Bearer "+e.techA)
	req.Header.Set("Range", "bytes=0-3")
	r = e.send(req)
	want(t, r, http.StatusPartialContent)
	if string(r.body) != "OggS" {
		t.Errorf("range 0-3: %q", r.body)
	}
	wantError(t, e.do("GET", "/api/v1/media/nope/audio", e.techA, nil), http.StatusNotFound, "not_found")

	// Renaming: a name is required; a technician may not.
	wantError(t, e.do("PATCH", "/api/v1/media/"+m.ID, e.opA, map[string]string{"name": "  "}), http.StatusBadRequest, "invalid", "name")
	wantError(t, e.do("PATCH", "/api/v1/media/"+m.ID, e.techA, map[string]string{"name": "Khác"}), http.StatusForbidden, "forbidden")
	r = e.do("PATCH", "/api/v1/media/"+m.ID, e.opA, map[string]string{"name": "Thông báo mới"})
	want(t, r, http.StatusOK)
	r.json(t, &m)
	if m.Name != "Thông báo mới" || !slices.Contains(e.auditActions(), "media.rename "+m.ID) {
		t.Errorf("renamed %+v, audit %v", m, e.auditActions())
	}

	// Deleting: refused while used, naming what uses it.
	r = e.do("DELETE", "/api/v1/media/"+used.ID, e.opA, nil)
	wantError(t, r, http.StatusConflict, "in_use", "Bản tin chiều", "Chương trình sáng")
	var body struct {
		UsedBy []loa.MediaUse `json:"used_by"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil || len(body.UsedBy) != 2 || body.UsedBy[0].Kind != "playlist" || body.UsedBy[1].Name != "Chương trình sáng" {
		t.Errorf("used_by %s (%v)", r.body, err)
	}
	wantError(t, e.do("DELETE", "/api/v1/media/"+m.ID, e.techA, nil), http.StatusForbidden, "forbidden")
	want(t, e.do("DELETE", "/api/v1/media/"+m.ID, e.opA, nil), http.StatusNoContent)
	wantError(t, e.do("GET", "/api/v1/media/"+m.ID, e.opA, nil), http.StatusNotFound, "not_found")
	if !slices.Contains(e.auditActions(), "media.delete "+m.ID) {
		t.Errorf("audit %v", e.auditActions())
	}
}
