package api_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// upload posts a multipart form: fields first, then the file part (if
// fileName is not "-").
func (e *env) upload(secret string, fields map[string]string, fileName, content string) response {
	e.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		if err := mw.WriteField(k, v); err != nil {
			e.t.Fatal(err)
		}
	}
	if fileName != "-" {
		fw, err := mw.CreateFormFile("file", fileName)
		if err != nil {
			e.t.Fatal(err)
		}
		io.WriteString(fw, content)
	}
	mw.Close()
	req, err := http.NewRequest("POST", e.srv.URL+"/api/v1/media", &buf)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+secret)
	return e.send(req)
}

func TestUploadMedia(t *testing.T) {
	e := newEnv(t)
	r := e.upload(e.opA, map[string]string{"name": "Thông báo tiêm chủng"}, "tiem-chung.wav", "RIFF....WAVE")
	want(t, r, http.StatusCreated)
	var m struct {
		ID, Name  string
		CreatedBy string `json:"created_by"`
		Size      int64
	}
	r.json(t, &m)
	if m.Name != "Thông báo tiêm chủng" || m.Size != int64(len("RIFF....WAVE")) || m.CreatedBy != e.tokens[e.opA].ID {
		t.Errorf("uploaded %s", r.body)
	}
	if !slices.Contains(e.auditActions(), "media.upload "+m.ID) {
		t.Errorf("audit %v", e.auditActions())
	}

	r = e.upload(e.opA, nil, "nhạc nền.mp3", "ID3")
	want(t, r, http.StatusCreated)
	r.json(t, &m)
	if m.Name != "nhạc nền.mp3" {
		t.Errorf("name defaults to %q, want the file name", m.Name)
	}

	r = e.do("GET", "/api/v1/media", e.techA, nil)
	want(t, r, http.StatusOK)
	var list []struct{ ID string }
	r.json(t, &list)
	if len(list) != 2 {
		t.Errorf("media list %s", r.body)
	}
	want(t, e.do("GET", "/api/v1/media/"+m.ID, e.techA, nil), http.StatusOK)
	wantError(t, e.do("GET", "/api/v1/media/m-404", e.techA, nil), http.StatusNotFound, "not_found")
}

func TestBadUploadsAre400(t *testing.T) {
	e := newEnv(t)
	wantError(t, e.do("POST", "/api/v1/media", e.opA, `{"name":"x"}`), http.StatusBadRequest, "invalid", "multipart/form-data", "file")
	wantError(t, e.upload(e.opA, map[string]string{"name": "x"}, "-", ""), http.StatusBadRequest, "invalid", "file")
	wantError(t, e.upload(e.opA, map[string]string{"name": strings.Repeat("á", 150)}, "a.wav", "RIFF"), http.StatusBadRequest, "invalid", "name")
	wantError(t, e.upload(e.opA, nil, "", "RIFF"), http.StatusBadRequest, "invalid", "name")
	wantError(t, e.upload(e.opA, nil, "not-audio.txt", "hello"), http.StatusUnsupportedMediaType, "unsupported")
	if n := e.media.count(); n != 0 {
		t.Errorf("bad uploads stored %d media", n)
	}
}

func TestOversizedUploadIs413(t *testing.T) {
	e := newEnv(t) // MaxUpload is 64 KiB
	big := strings.Repeat("x", 100<<10)
	wantError(t, e.upload(e.opA, nil, "big.wav", big), http.StatusRequestEntityTooLarge, "too_large", "64 KiB")

	// Without a Content-Length the limit is found while streaming.
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		fw, _ := mw.CreateFormFile("file", "big.wav")
		_, err := io.WriteString(fw, big)
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	req, err := http.NewRequest("POST", e.srv.URL+"/api/v1/media", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+e.opA)
	r := e.send(req)
	if req.ContentLength > 0 {
		t.Fatal("test request has a Content-Length")
	}
	wantError(t, r, http.StatusRequestEntityTooLarge, "too_large")
	pr.Close()
	if n := e.media.count(); n != 0 {
		t.Errorf("oversized uploads stored %d media", n)
	}
	want(t, e.upload(e.opA, nil, "small.wav", strings.Repeat("x", 60<<10)), http.StatusCreated)
}

func TestInterruptedUploadIsNotAServerError(t *testing.T) {
	e := newEnv(t)
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("file", "cut.wav")
	io.WriteString(fw, strings.Repeat("x", 1000))
	// No closing boundary, and the connection ends 500 bytes short of the
	// announced length.
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/v1/media HTTP/1.1\r\nHost: loa\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n",
		e.opA, mw.FormDataContentType(), buf.Len()+500)
	conn.Write(buf.Bytes())
	conn.(*net.TCPConn).CloseWrite()
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r := response{status: res.StatusCode, header: res.Header, body: b}
	wantError(t, r, http.StatusBadRequest, "invalid", "interrupted")
	if e.media.count() != 0 {
		t.Error("an interrupted upload was stored")
	}
}
