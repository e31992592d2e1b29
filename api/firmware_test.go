package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
)

// fakeFirmware is an in-memory FirmwareService: sig "good" verifies,
// anything else is refused as the real service refuses a bad signature.
type fakeFirmware struct {
	mu       sync.Mutex
	images   map[string][]byte
	meta     map[string]*loa.FirmwareImage
	rollouts map[string]*loa.Rollout
}

func newFakeFirmware() *fakeFirmware {
	return &fakeFirmware{images: map[string][]byte{}, meta: map[string]*loa.FirmwareImage{}, rollouts: map[string]*loa.Rollout{}}
}

func (f *fakeFirmware) UploadFirmware(ctx context.Context, version, sig, name string, r io.Reader, by string) (*loa.FirmwareImage, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read upload: %w", err)
	}
	if sig != "good" {
		return nil, loa.Errorf(loa.EINVALID, "sig: the signature does not verify with the operator key")
	}
	sum := sha256.Sum256(b)
	img := &loa.FirmwareImage{ID: hex.EncodeToString(sum[:8]), Version: version, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:]),
		Sig: sig, Name: name, CreatedBy: by, CreatedAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.images[img.ID], f.meta[img.ID] = b, img
	return img, nil
}

func (f *fakeFirmware) FirmwareImage(ctx context.Context, id string) (*loa.FirmwareImage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if img := f.meta[id]; img != nil {
		return img, nil
	}
	return nil, loa.Errorf(loa.ENOTFOUND, "firmware image %q not found", id)
}

func (f *fakeFirmware) FirmwareImages(ctx context.Context) ([]*loa.FirmwareImage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*loa.FirmwareImage
	for _, img := range f.meta {
		out = append(out, img)
	}
	return out, nil
}

type nopSeekCloser struct{ *bytes.Reader }

func (nopSeekCloser) Close() error { return nil }

func (f *fakeFirmware) OpenFirmware(ctx context.Context, id string) (*loa.FirmwareImage, io.ReadSeekCloser, error) {
	img, err := f.FirmwareImage(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return img, nopSeekCloser{bytes.NewReader(f.images[id])}, nil
}

func (f *fakeFirmware) StartRollout(ctx context.Context, r *loa.Rollout) error {
	if _, err := f.FirmwareImage(ctx, r.ImageID); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r.ID = fmt.Sprintf("ro-%d", len(f.rollouts)+1)
	r.State = loa.RolloutRunning
	for i, d := range r.Targets.Devices {
		r.Devices = append(r.Devices, loa.RolloutDevice{Device: d, Wave: min(i, len(r.Waves)-1), State: loa.RolloutDevicePending})
	}
	c := *r
	f.rollouts[r.ID] = &c
	return nil
}

func (f *fakeFirmware) set(id string, fn func(r *loa.Rollout) error) (*loa.Rollout, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.rollouts[id]
	if r == nil {
		return nil, loa.Errorf(loa.ENOTFOUND, "rollout %q not found", id)
	}
	if err := fn(r); err != nil {
		return nil, err
	}
	c := *r
	return &c, nil
}

func (f *fakeFirmware) PauseRollout(ctx context.Context, id, reason string) (*loa.Rollout, error) {
	return f.set(id, func(r *loa.Rollout) error {
		if r.State != loa.RolloutRunning {
			return loa.Errorf(loa.ECONFLICT, "rollout %s is %s, not running", id, r.State)
		}
		r.State, r.Reason = loa.RolloutPaused, reason
		return nil
	})
}

func (f *fakeFirmware) ResumeRollout(ctx context.Context, id string) (*loa.Rollout, error) {
	return f.set(id, func(r *loa.Rollout) error {
		if r.State != loa.RolloutPaused {
			return loa.Errorf(loa.ECONFLICT, "rollout %s is %s, not paused", id, r.State)
		}
		r.State, r.Reason = loa.RolloutRunning, ""
		return nil
	})
}

func (f *fakeFirmware) AbortRollout(ctx context.Context, id, reason string) (*loa.Rollout, error) {
	return f.set(id, func(r *loa.Rollout) error { r.State, r.Reason = loa.RolloutAborted, reason; return nil })
}

func (f *fakeFirmware) Rollout(ctx context.Context, id string) (*loa.Rollout, error) {
	return f.set(id, func(*loa.Rollout) error { return nil })
}

func (f *fakeFirmware) Rollouts(ctx context.Context) ([]*loa.Rollout, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*loa.Rollout
	for _, r := range f.rollouts {
		c := *r
		out = append(out, &c)
	}
	return out, nil
}

// fwEnv is newEnv's store and tokens behind a server with a firmware
// service and the real store checking device credentials.
type fwEnv struct {
	*env
	fw     *fakeFirmware
	devPW  string // dev-a1's MQTT password
	server *httptest.Server
}

func newFWEnv(t *testing.T) *fwEnv {
	e := newEnv(t)
	pw, err := e.db.ResetDeviceCredentials(context.Background(), "dev-a1")
	if err != nil {
		t.Fatal(err)
	}
	fe := &fwEnv{env: e, fw: newFakeFirmware(), devPW: pw}
	s := &api.Server{Areas: e.db, Devices: e.db, Tokens: e.db, Audit: e.db, Firmware: fe.fw, Receivers: e.db}
	fe.server = httptest.NewServer(api.ValidateWithSpec(t, s.Handler()))
	t.Cleanup(fe.server.Close)
	e.srv = fe.server // env.do now talks to this server
	return fe
}

func firmwareForm(t *testing.T, fields [][2]string, file []byte) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range fields {
		mw.WriteField(f[0], f[1])
	}
	if file != nil {
		fw, _ := mw.CreateFormFile("file", "rx.img")
		fw.Write(file)
	}
	mw.Close()
	return mw.FormDataContentType(), buf.Bytes()
}

func (fe *fwEnv) upload(secret string, fields [][2]string, file []byte) response {
	fe.t.Helper()
	ct, body := firmwareForm(fe.t, fields, file)
	req, _ := http.NewRequest("POST", fe.server.URL+"/api/v1/firmware", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Content-Type", ct)
	return fe.send(req)
}

func TestFirmwareUpload(t *testing.T) {
	fe := newFWEnv(t)
	image := bytes.Repeat([]byte("LOAFW1"), 1000)
	good := [][2]string{{"version", "1.2.0"}, {"sig", "good"}}

	// Operators and province staff may not; technicians and admins may.
	wantError(t, fe.upload(fe.opA, good, image), http.StatusForbidden, loa.EFORBIDDEN, "firmware")
	wantError(t, fe.upload(fe.province, good, image), http.StatusForbidden, loa.EFORBIDDEN)
	for _, c := range []struct {
		name   string
		fields [][2]string
		file   []byte
		words  []string
	}{
		{"bad signature", [][2]string{{"version", "1.2.0"}, {"sig", "forged"}}, image, []string{"sig"}},
		{"no signature", [][2]string{{"version", "1.2.0"}}, image, []string{"sig"}},
		{"bad version", [][2]string{{"version", "1.2.x"}, {"sig", "good"}}, image, []string{"version"}},
		{"no version", [][2]string{{"sig", "good"}}, image, []string{"version"}},
		{"no file", good, nil, []string{"file"}},
		{"two lines", [][2]string{{"version", "1.2.0\n1.3"}, {"sig", "good"}}, image, []string{"version"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, fe.upload(fe.techA, c.fields, c.file), http.StatusBadRequest, loa.EINVALID, c.words...)
		})
	}
	if n := len(fe.fw.meta); n != 0 {
		t.Fatalf("refused uploads stored %d images", n)
	}
	r := fe.upload(fe.techA, good, image)
	want(t, r, http.StatusCreated)
	var img loa.FirmwareImage
	r.json(t, &img)
	if img.Version != "1.2.0" || img.Size != int64(len(image)) || img.Name != "rx.img" || img.CreatedBy != fe.tokens[fe.techA].ID {
		t.Errorf("uploaded image %+v", img)
	}
	if !slices.Contains(fe.auditActions(), "firmware.upload "+img.ID) {
		t.Errorf("upload not audited: %v", fe.auditActions())
	}
	var list []loa.FirmwareImage
	r = fe.do("GET", "/api/v1/firmware", fe.opA, nil)
	want(t, r, http.StatusOK)
	r.json(t, &list)
	if len(list) != 1 || list[0].ID != img.ID {
		t.Errorf("list %+v", list)
	}
	want(t, fe.do("GET", "/api/v1/firmware/"+img.ID, fe.opA, nil), http.StatusOK)
	wantError(t, fe.do("GET", "/api/v1/firmware/nope", fe.opA, nil), http.StatusNotFound, loa.ENOTFOUND)
}

// Receivers download with their own credentials and resume with Range.
func TestFirmwareDownload(t *testing.T) {
	fe := newFWEnv(t)
	image := make([]byte, 50000)
	for i := range image {
		image[i] = byte(i * 7)
	}
	r := fe.upload(fe.admin, [][2]string{{"version", "2"}, {"sig", "good"}}, image)
	want(t, r, http.StatusCreated)
	var img loa.FirmwareImage
	r.json(t, &img)

	get := func(user, pass, rng string) response {
		req, _ := http.NewRequest("GET", fe.server.URL+"/fw/"+img.ID, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		return fe.send(req)
	}
	for name, creds := range map[string][2]string{
		"none": {"", ""}, "wrong password": {"dev-a1", "nope"}, "other device's password": {"dev-b1", fe.devPW},
		"unknown device": {"ghost", fe.devPW}, "bad id": {"../x", fe.devPW},
	} {
		t.Run(name, func(t *testing.T) {
			r := get(creds[0], creds[1], "")
			wantError(t, r, http.StatusUnauthorized, loa.EUNAUTHORIZED)
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
			}
		})
	}
	// An API token is no device credential.
	req, _ := http.NewRequest("GET", fe.server.URL+"/fw/"+img.ID, nil)
	req.Header.Set("Authorization", "Bearer "+fe.admin)
	want(t, fe.send(req), http.StatusUnauthorized)

	full := get("dev-a1", fe.devPW, "")
	want(t, full, http.StatusOK)
	if !bytes.Equal(full.body, image) {
		t.Fatalf("downloaded %d bytes that differ from the %d uploaded", len(full.body), len(image))
	}
	if et := full.header.Get("ETag"); et != `"`+img.SHA256+`"` {
		t.Errorf("ETag %q, want the quoted SHA-256", et)
	}
	part := get("dev-a1", fe.devPW, "bytes=30000-")
	want(t, part, http.StatusPartialContent)
	if !bytes.Equal(part.body, image[30000:]) {
		t.Errorf("resumed download: %d bytes, not the image's tail", len(part.body))
	}
	wantError(t, fwGet(t, fe, "dev-a1", fe.devPW, "nope"), http.StatusNotFound, loa.ENOTFOUND)
}

func fwGet(t *testing.T, fe *fwEnv, user, pass, id string) response {
	req, _ := http.NewRequest("GET", fe.server.URL+"/fw/"+id, nil)
	req.SetBasicAuth(user, pass)
	return fe.send(req)
}

func TestRolloutRoutes(t *testing.T) {
	fe := newFWEnv(t)
	r := fe.upload(fe.admin, [][2]string{{"version", "2"}, {"sig", "good"}}, []byte("image"))
	want(t, r, http.StatusCreated)
	var img loa.FirmwareImage
	r.json(t, &img)

	for name, c := range map[string]struct {
		body  string
		words []string
	}{
		"no image":      {`{"targets":{"areas":["xa-a"]}}`, []string{"image_id"}},
		"no targets":    {`{"image_id":"x"}`, []string{"targets"}},
		"waves down":    {`{"image_id":"x","targets":{"areas":["xa-a"]},"waves":[50,10,100]}`, []string{"waves"}},
		"waves short":   {`{"image_id":"x","targets":{"areas":["xa-a"]},"waves":[10,50]}`, []string{"waves", "100"}},
		"threshold":     {`{"image_id":"x","targets":{"areas":["xa-a"]},"fail_threshold":1.5}`, []string{"fail_threshold"}},
		"timeout":       {`{"image_id":"x","targets":{"areas":["xa-a"]},"wave_timeout":"soon"}`, []string{"wave_timeout"}},
		"short timeout": {`{"image_id":"x","targets":{"areas":["xa-a"]},"wave_timeout":"1ms"}`, []string{"wave_timeout"}},
		"unknown field": {`{"image_id":"x","targets":{"areas":["xa-a"]},"force":true}`, []string{"force"}},
	} {
		t.Run(name, func(t *testing.T) {
			wantError(t, fe.do("POST", "/api/v1/rollouts", fe.admin, c.body), http.StatusBadRequest, loa.EINVALID, c.words...)
		})
	}
	// A technician scoped to xa-a cannot reach xa-b's devices.
	wantError(t, fe.do("POST", "/api/v1/rollouts", fe.techA, map[string]any{"image_id": img.ID, "targets": map[string]any{"devices": []string{"dev-b1"}}}),
		http.StatusForbidden, loa.EFORBIDDEN, "dev-b1")
	wantError(t, fe.do("POST", "/api/v1/rollouts", fe.opA, map[string]any{"image_id": img.ID, "targets": map[string]any{"devices": []string{"dev-a1"}}}),
		http.StatusForbidden, loa.EFORBIDDEN)
	if len(fe.fw.rollouts) != 0 {
		t.Fatal("a refused rollout was started")
	}

	r = fe.do("POST", "/api/v1/rollouts", fe.techA, map[string]any{"image_id": img.ID, "targets": map[string]any{"devices": []string{"dev-a1"}},
		"waves": []int{50, 100}, "fail_threshold": 0, "wave_timeout": "10m"})
	want(t, r, http.StatusCreated)
	var ro struct {
		loa.Rollout
		Totals []loa.WaveTotals `json:"totals"`
	}
	r.json(t, &ro)
	if ro.FailThreshold != 0 || ro.WaveTimeout != 10*time.Minute || !slices.Equal(ro.Waves, []int{50, 100}) || len(ro.Totals) != 2 || ro.Totals[0].Devices != 1 {
		t.Errorf("started %+v", ro)
	}
	// The defaults, and a rollout over xa-b that techA must not see.
	r = fe.do("POST", "/api/v1/rollouts", fe.admin, map[string]any{"image_id": img.ID, "targets": map[string]any{"devices": []string{"dev-b1"}}})
	want(t, r, http.StatusCreated)
	var other loa.Rollout
	r.json(t, &other)
	if other.FailThreshold != loa.DefaultFailThreshold || other.WaveTimeout != loa.DefaultWaveTimeout || !slices.Equal(other.Waves, loa.DefaultWaves) {
		t.Errorf("defaults not applied: %+v", other)
	}
	wantError(t, fe.do("GET", "/api/v1/rollouts/"+other.ID, fe.techA, nil), http.StatusNotFound, loa.ENOTFOUND)
	wantError(t, fe.do("POST", "/api/v1/rollouts/"+other.ID+"/abort", fe.techA, nil), http.StatusNotFound, loa.ENOTFOUND)
	var list []loa.Rollout
	r = fe.do("GET", "/api/v1/rollouts", fe.techA, nil)
	want(t, r, http.StatusOK)
	r.json(t, &list)
	if len(list) != 1 || list[0].ID != ro.ID || len(list[0].Devices) != 0 {
		t.Errorf("techA lists %+v; want only its rollout, without devices", list)
	}

	r = fe.do("POST", "/api/v1/rollouts/"+ro.ID+"/pause", fe.techA, `{"reason":"storm tonight"}`)
	want(t, r, http.StatusOK)
	var paused loa.Rollout
	r.json(t, &paused)
	if paused.State != loa.RolloutPaused || paused.Reason != "storm tonight" {
		t.Errorf("paused: %+v", paused)
	}
	wantError(t, fe.do("POST", "/api/v1/rollouts/"+ro.ID+"/pause", fe.techA, nil), http.StatusConflict, loa.ECONFLICT)
	wantError(t, fe.do("POST", "/api/v1/rollouts/"+ro.ID+"/resume", fe.techA, `{"reason":"a\nb"}`), http.StatusBadRequest, loa.EINVALID, "reason")
	wantError(t, fe.do("POST", "/api/v1/rollouts/"+ro.ID+"/resume", fe.techA, `{"why":"x"}`), http.StatusBadRequest, loa.EINVALID, "why")
	want(t, fe.do("POST", "/api/v1/rollouts/"+ro.ID+"/resume", fe.techA, nil), http.StatusOK)
	want(t, fe.do("POST", "/api/v1/rollouts/"+ro.ID+"/abort", fe.techA, nil), http.StatusOK)
	wantError(t, fe.do("POST", "/api/v1/rollouts/"+ro.ID+"/pause", fe.opA, nil), http.StatusForbidden, loa.EFORBIDDEN)
	acts := fe.auditActions()
	for _, a := range []string{"rollout.start " + ro.ID, "rollout.pause " + ro.ID, "rollout.resume " + ro.ID, "rollout.abort " + ro.ID} {
		if !slices.Contains(acts, a) {
			t.Errorf("%q not audited: %v", a, acts)
		}
	}
}

func FuzzParseRolloutRequest(f *testing.F) {
	for _, s := range []string{
		`{"image_id":"a","targets":{"areas":["p"]}}`,
		`{"image_id":"a","targets":{"devices":["d"]},"waves":[1,10,50,100],"fail_threshold":0.1,"wave_timeout":"30m"}`,
		`{"image_id":"a","targets":{"areas":["p"]},"waves":[100],"fail_threshold":0}`,
		`{"waves":[0,100]}`, `{"fail_threshold":"NaN"}`, `[]`, ``,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		ro, err := api.ParseRolloutRequest(strings.NewReader(body))
		if err != nil {
			if loa.ErrorCode(err) != loa.EINVALID {
				t.Fatalf("error %v is not invalid", err)
			}
			return
		}
		if err := ro.Validate(); err != nil {
			t.Fatalf("accepted a request that does not validate: %v", err)
		}
	})
}
