package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
)

// fakeLive answers offers with a fixed SDP and keeps its sessions in the
// fake session service.
type fakeLive struct {
	s      *fakeSessions
	reqs   []loa.LiveRequest
	frags  []string
	ended  []string
	refuse error
}

const testAnswer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\na=ptime:20\r\n"

func (f *fakeLive) StartLive(ctx context.Context, req loa.LiveRequest) (*loa.Session, string, error) {
	if f.refuse != nil {
		return nil, "", f.refuse
	}
	f.reqs = append(f.reqs, req)
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	if f.s.all == nil {
		f.s.all = map[string]*loa.Session{}
	}
	s := &loa.Session{ID: fmt.Sprintf("s-%d", len(f.s.all)+1), Targets: req.Targets, Priority: req.Priority, State: loa.SessionPlaying,
		Devices: slices.Clone(req.Targets.Devices), StartedAt: time.Date(2026, 11, 25, 6, 0, 0, 0, time.UTC), MaxDuration: time.Hour,
		Origin: loa.Origin{Kind: loa.OriginLive}, CreatedBy: req.CreatedBy, SSRC: 7}
	c := *s
	f.s.all[s.ID] = &c
	return s, testAnswer, nil
}

func (f *fakeLive) TrickleLive(ctx context.Context, id, frag string) error {
	f.frags = append(f.frags, frag)
	return nil
}

func (f *fakeLive) EndLive(ctx context.Context, id, by string) error {
	f.ended = append(f.ended, id)
	return f.s.StopSession(ctx, id, by, "ended by the speaker")
}

func (e *env) whip(method, path, secret, ctype, body string) response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	return e.send(req)
}

const testOffer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n"

// TestLiveWHIP: an operator goes on air in its commune (201, the answer
// and Location), trickles and ends it; bad requests change nothing.
func TestLiveWHIP(t *testing.T) {
	e := newEnv(t)
	live := &fakeLive{s: e.sessions}
	e.server.Live = live
	e.srv = httptest.NewServer(api.ValidateWithSpec(t, e.server.Handler()))
	t.Cleanup(e.srv.Close)

	r := e.whip("POST", "/api/v1/live?areas=a-1&priority=150&record=1", e.opA, "application/sdp", testOffer)
	want(t, r, http.StatusCreated)
	if string(r.body) != testAnswer || r.header.Get("Content-Type") != "application/sdp" || r.header.Get("Location") != "/api/v1/live/s-1" {
		t.Fatalf("answer %q, %v", r.body, r.header)
	}
	if got := live.reqs[0]; got.Offer != testOffer || got.Priority != 150 || !got.Record || !slices.Equal(got.Targets.Areas, []string{"a-1"}) ||
		got.CreatedBy != e.tokens[e.opA].ID {
		t.Errorf("request %+v", got)
	}
	want(t, e.whip("PATCH", "/api/v1/live/s-1", e.opA, "application/trickle-ice-sdpfrag", "a=end-of-candidates\r\n"), http.StatusNoContent)
	if len(live.frags) != 1 {
		t.Errorf("fragments %v", live.frags)
	}
	// Another commune's operator neither sees nor ends it.
	wantError(t, e.whip("DELETE", "/api/v1/live/s-1", e.opB, "", ""), http.StatusNotFound, "not_found")
	want(t, e.whip("DELETE", "/api/v1/live/s-1", e.opA, "", ""), http.StatusOK)
	if !slices.Equal(live.ended, []string{"s-1"}) {
		t.Errorf("ended %v", live.ended)
	}

	for _, tc := range []struct {
		name, path, secret, ctype string
		status                    int
		code                      string
	}{
		{"no targets", "/api/v1/live", e.opA, "application/sdp", http.StatusBadRequest, "invalid"},
		{"bad priority", "/api/v1/live?areas=a-1&priority=300", e.opA, "application/sdp", http.StatusBadRequest, "invalid"},
		{"bad record", "/api/v1/live?areas=a-1&record=maybe", e.opA, "application/sdp", http.StatusBadRequest, "invalid"},
		{"bad max_duration", "/api/v1/live?areas=a-1&max_duration=forever", e.opA, "application/sdp", http.StatusBadRequest, "invalid"},
		{"not SDP", "/api/v1/live?areas=a-1", e.opA, "application/json", http.StatusUnsupportedMediaType, "unsupported"},
		{"out of scope", "/api/v1/live?areas=b-1", e.opA, "application/sdp", http.StatusForbidden, "forbidden"},
		{"emergency by an operator", "/api/v1/live?areas=a-1&priority=240", e.opA, "application/sdp", http.StatusForbidden, "forbidden"},
		{"technician", "/api/v1/live?areas=a-1", e.techA, "application/sdp", http.StatusForbidden, "forbidden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(live.reqs)
			r := e.whip("POST", tc.path, tc.secret, tc.ctype, testOffer)
			wantError(t, r, tc.status, tc.code)
			if len(live.reqs) != before {
				t.Errorf("a refused request reached the live service")
			}
		})
	}
	// Province staff may speak at khẩn cấp.
	want(t, e.whip("POST", "/api/v1/live?areas=xa-b&priority=240", e.province, "application/sdp", testOffer), http.StatusCreated)
	// A session that is not live is no WHIP resource.
	e.sessions.mu.Lock()
	e.sessions.all["s-9"] = &loa.Session{ID: "s-9", Targets: loa.Targets{Areas: []string{"a-1"}}, State: loa.SessionPlaying, Origin: loa.Origin{Kind: loa.OriginManual}}
	e.sessions.mu.Unlock()
	wantError(t, e.whip("DELETE", "/api/v1/live/s-9", e.opA, "", ""), http.StatusNotFound, "not_found")
	wantError(t, e.whip("PATCH", "/api/v1/live/s-1", e.opA, "text/plain", "x"), http.StatusUnsupportedMediaType, "unsupported")
}
