package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"time"

	"github.com/loa-broadcast/loa"
)

// Client drives the controller through its HTTP API, as a user would.
// The demo and the whole-system tests use it.
type Client struct {
	BaseURL string
	Token   string
	http    *http.Client
}

func NewClient(base, token string) *Client {
	return &Client{BaseURL: base, Token: token, http: &http.Client{Timeout: 2 * time.Minute}}
}

// ClientError is an API error response.
type ClientError struct {
	Status  int
	Code    string `json:"code"`
	Message string `json:"error"`
}

func (e *ClientError) Error() string {
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

func (c *Client) Do(ctx context.Context, method, path, contentType string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
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
		e := &ClientError{Status: resp.StatusCode}
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

func (c *Client) JSON(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	return c.Do(ctx, method, path, "application/json", body, out)
}

func (c *Client) CreateArea(ctx context.Context, a loa.Area) error {
	in := map[string]string{"id": a.ID, "parent_id": a.ParentID, "name": a.Name, "kind": a.Kind, "code": a.Code}
	return c.JSON(ctx, "POST", "/api/v1/areas", in, nil)
}

// createDevice provisions a device and returns its MQTT password.
func (c *Client) CreateDevice(ctx context.Context, d loa.Device) (string, error) {
	var out struct {
		Password string `json:"password"`
	}
	in := map[string]any{"id": d.ID, "area_id": d.AreaID, "name": d.Name, "lat": d.Lat, "lon": d.Lon}
	if d.MSISDN != "" {
		in["msisdn"] = d.MSISDN
	}
	if err := c.JSON(ctx, "POST", "/api/v1/devices", in, &out); err != nil {
		return "", err
	}
	return out.Password, nil
}

type DeviceView struct {
	loa.Device
	State *loa.DeviceState `json:"state"`
}

func (c *Client) Devices(ctx context.Context) ([]DeviceView, error) {
	var out []DeviceView
	return out, c.JSON(ctx, "GET", "/api/v1/devices", nil, &out)
}

func (c *Client) UploadMedia(ctx context.Context, name string, data []byte) (*loa.Media, error) {
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
	return &m, c.Do(ctx, "POST", "/api/v1/media", mw.FormDataContentType(), &buf, &m)
}

type SessionRequest struct {
	MediaID     string      `json:"media_id"`
	Targets     loa.Targets `json:"targets"`
	Priority    int         `json:"priority,omitempty"`
	MaxDuration string      `json:"max_duration,omitempty"`
}

func (c *Client) StartSession(ctx context.Context, r SessionRequest) (*loa.Session, error) {
	var s loa.Session
	return &s, c.JSON(ctx, "POST", "/api/v1/sessions", r, &s)
}

func (c *Client) Session(ctx context.Context, id string) (*loa.Session, error) {
	var s loa.Session
	return &s, c.JSON(ctx, "GET", "/api/v1/sessions/"+id, nil, &s)
}

func (c *Client) StopSession(ctx context.Context, id string) error {
	return c.JSON(ctx, "POST", "/api/v1/sessions/"+id+"/stop", nil, nil)
}

func (c *Client) SDP(ctx context.Context, id, dest string) (string, error) {
	var s string
	return s, c.Do(ctx, "GET", "/api/v1/sessions/"+id+"/sdp?dest="+dest, "", nil, &s)
}

// waitSession polls until the session is no longer playing.
func (c *Client) WaitSession(ctx context.Context, id string) (*loa.Session, error) {
	for {
		s, err := c.Session(ctx, id)
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

// GroupCommandRequest is the body of POST /api/v1/areas/{id}/commands.
type GroupCommandRequest struct {
	Op      string          `json:"op"`
	Args    json.RawMessage `json:"args,omitempty"`
	Timeout string          `json:"timeout,omitempty"` // a Go duration; "" = the default
}

// GroupCommand sends a command to every device of area; with wait > 0 the
// API answers once it settled or wait passed.
func (c *Client) GroupCommand(ctx context.Context, area string, req GroupCommandRequest, wait time.Duration) (*loa.GroupCommand, error) {
	path := "/api/v1/areas/" + url.PathEscape(area) + "/commands"
	if wait > 0 {
		path += "?wait=" + wait.String()
	}
	var g loa.GroupCommand
	return &g, c.JSON(ctx, "POST", path, req, &g)
}

// GetGroupCommand returns a group command; with wait > 0 the API answers
// once it settled or wait passed.
func (c *Client) GetGroupCommand(ctx context.Context, id string, wait time.Duration) (*loa.GroupCommand, error) {
	path := "/api/v1/group-commands/" + url.PathEscape(id)
	if wait > 0 {
		path += "?wait=" + wait.String()
	}
	var g loa.GroupCommand
	return &g, c.JSON(ctx, "GET", path, nil, &g)
}

// WaitGroupCommand polls until the group command is done or ctx ends.
func (c *Client) WaitGroupCommand(ctx context.Context, id string) (*loa.GroupCommand, error) {
	for {
		g, err := c.GetGroupCommand(ctx, id, 5*time.Second)
		if err != nil {
			return nil, err
		}
		if g.State == loa.GroupDone {
			return g, nil
		}
		if err := ctx.Err(); err != nil {
			return g, fmt.Errorf("group command %s still running: %w", id, err)
		}
	}
}

// WaitOnline polls the API until n devices are online.
func (c *Client) WaitOnline(ctx context.Context, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		devs, err := c.Devices(ctx)
		if err != nil {
			return err
		}
		online := 0
		for _, d := range devs {
			if d.State != nil && d.State.Online {
				online++
			}
		}
		if online >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d receivers came online within %v", online, n, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// UploadFirmware uploads a signed receiver image.
func (c *Client) UploadFirmware(ctx context.Context, version, sig string, image []byte) (*loa.FirmwareImage, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("version", version)
	mw.WriteField("sig", sig)
	fw, _ := mw.CreateFormFile("file", "receiver-"+version+".img")
	fw.Write(image)
	mw.Close()
	var img loa.FirmwareImage
	return &img, c.Do(ctx, "POST", "/api/v1/firmware", mw.FormDataContentType(), &buf, &img)
}

// DeleteArea deletes an area nothing depends on (a conflict otherwise).
func (c *Client) DeleteArea(ctx context.Context, id string) error {
	return c.JSON(ctx, "DELETE", "/api/v1/areas/"+url.PathEscape(id), nil, nil)
}

// DecommissionDevice takes a device out of service and returns it as
// stored (with DecommissionedAt and revoked credentials).
func (c *Client) DecommissionDevice(ctx context.Context, id string) (*loa.Device, error) {
	var out struct {
		Device loa.Device `json:"device"`
	}
	if err := c.JSON(ctx, "DELETE", "/api/v1/devices/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	return &out.Device, nil
}
