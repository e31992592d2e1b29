package api

import (
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/loa-broadcast/loa"
)

// uploadForm describes a multipart/form-data upload: small text fields
// that must come before the "file" part (browsers send fields in form
// order), and the words its errors use.
type uploadForm struct {
	limit    int64    // the whole body, in bytes
	fields   []string // the text fields read; others are skipped
	maxField int      // bytes in a text field
	expect   string   // what a good body holds: `a "file" field`
	after    string   // where "file" goes: `, after "version"`, or ""
}

// readUpload streams the "file" part of r's body into store with the text
// fields read before it (trimmed), never holding the file in memory. A
// body over the limit is ETOOLARGE, whoever noticed; a store failing
// because the client went away or sent a broken body is EINVALID, not our
// fault.
func readUpload(w http.ResponseWriter, r *http.Request, f uploadForm, store func(fields map[string]string, file *multipart.Part) error) error {
	if r.ContentLength > f.limit {
		return tooLarge(f.limit)
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return loa.Errorf(loa.EINVALID, "body: expected multipart/form-data with %s", f.expect)
	}
	body := &limitedBody{r: http.MaxBytesReader(w, r.Body, f.limit)}
	r.Body = body
	mr, err := r.MultipartReader()
	if err != nil {
		return loa.Errorf(loa.EINVALID, "body: bad multipart/form-data: %v", err)
	}
	fields := map[string]string{}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return loa.Errorf(loa.EINVALID, `file: required (a multipart field named "file"%s)`, f.after)
		}
		if err != nil {
			if body.overLimit.Load() {
				return tooLarge(f.limit)
			}
			return loa.Errorf(loa.EINVALID, "body: bad multipart/form-data: %v", err)
		}
		name := part.FormName()
		switch {
		case slices.Contains(f.fields, name):
			b, err := io.ReadAll(io.LimitReader(part, int64(f.maxField)+1))
			if err != nil {
				if body.overLimit.Load() {
					return tooLarge(f.limit)
				}
				return loa.Errorf(loa.EINVALID, "%s: %v", name, err)
			}
			if len(b) > f.maxField || !utf8.Valid(b) || strings.ContainsAny(string(b), "\x00\r\n") {
				return loa.Errorf(loa.EINVALID, "%s: at most %d bytes of UTF-8 on one line", name, f.maxField)
			}
			fields[name] = strings.TrimSpace(string(b))
		case name == "file":
			err := store(fields, part)
			if err != nil && body.overLimit.Load() {
				return tooLarge(f.limit)
			}
			if rerr := body.readErr(); err != nil && rerr != nil && loa.ErrorCode(err) == loa.EINTERNAL {
				return loa.Errorf(loa.EINVALID, "file: upload interrupted: %v", rerr)
			}
			return err
		}
	}
}
