package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"time"

	"github.com/loa-broadcast/loa"
)

// apiClient drives the controller through its HTTP API, as a user would.
// The demo and the whole-system tests use it.
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

func newAPIClient(base, token string) *apiClient {
	return &apiClient{base: base, token: token, http: &http.Client{Timeout: 2 * time.Minute}}
}

// apiError is an API error response.
type apiError struct {
	Status  int
	Code    string `json:"code"`
	Message string `json:"error"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

func (c *apiClient) do(ctx context.Context, method, path, contentType string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		e := &apiError{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil {
			e.Message = string(data)
		}
		return e
	}
	switch o := out.(type) {
	case nil:
		return nil
	case *string:
		*o = string(data)
		return nil
	default:
		return json.Unmarshal(data, out)
	}
}

func (c *apiClient) json(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	return c.do(ctx, method, path, "application/json", body, out)
}

func (c *apiClient) createArea(ctx context.Context, a loa.Area) error {
	in := map[string]string{"id": a.ID, "parent_id": a.ParentID, "name": a.Name, "kind": a.Kind, "code": a.Code}
	return c.json(ctx, "POST", "/api/v1/areas", in, nil)
}

// createDevice provisions a device and returns its MQTT password.
func (c *apiClient) createDevice(ctx context.Context, d loa.Device) (string, error) {
	var out struct {
		Password string `json:"password"`
	}
	in := map[string]any{"id": d.ID, "area_id": d.AreaID, "name": d.Name, "lat": d.Lat, "lon": d.Lon}
	if err := c.json(ctx, "POST", "/api/v1/devices", in, &out); err != nil {
		return "", err
	}
	return out.Password, nil
}

type deviceView struct {
	loa.Device
	State *loa.DeviceState `json:"state"`
}

func (c *apiClient) devices(ctx context.Context) ([]deviceView, error) {
	var out []deviceView
	return out, c.json(ctx, "GET", "/api/v1/devices", nil, &out)
}

func (c *apiClient) uploadMedia(ctx context.Context, name string, data []byte) (*loa.Media, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("name", name)
	fw, err := mw.CreateFormFile("file", name)
	if err != nil {
		return nil, err
	}
	fw.Write(data)
	mw.Close()
	var m loa.Media
	return &m, c.do(ctx, "POST", "/api/v1/media", mw.FormDataContentType(), &buf, &m)
}

type sessionRequest struct {
	MediaID     string      `json:"media_id"`
	Targets     loa.Targets `json:"targets"`
	Priority    int         `json:"priority,omitempty"`
	MaxDuration string      `json:"max_duration,omitempty"`
}

func (c *apiClient) startSession(ctx context.Context, r sessionRequest) (*loa.Session, error) {
	var s loa.Session
	return &s, c.json(ctx, "POST", "/api/v1/sessions", r, &s)
}

func (c *apiClient) session(ctx context.Context, id string) (*loa.Session, error) {
	var s loa.Session
	return &s, c.json(ctx, "GET", "/api/v1/sessions/"+id, nil, &s)
}

func (c *apiClient) stopSession(ctx context.Context, id string) error {
	return c.json(ctx, "POST", "/api/v1/sessions/"+id+"/stop", nil, nil)
}

func (c *apiClient) sdp(ctx context.Context, id, dest string) (string, error) {
	var s string
	return s, c.do(ctx, "GET", "/api/v1/sessions/"+id+"/sdp?dest="+dest, "", nil, &s)
}

// waitSession polls until the session is no longer playing.
func (c *apiClient) waitSession(ctx context.Context, id string) (*loa.Session, error) {
	for {
		s, err := c.session(ctx, id)
		if err != nil {
			return nil, err
		}
		if s.State != loa.SessionPlaying {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return s, fmt.Errorf("session %s still playing: %w", id, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
