package api_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

// add puts a playing session as a service would have started it (an
// alert's, a schedule's, a fallback's) and returns its id.
func (f *fakeSessions) add(s *loa.Session) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.all == nil {
		f.all = map[string]*loa.Session{}
	}
	s.ID = fmt.Sprintf("s-%d", len(f.all)+1)
	s.State, s.StartedAt = loa.SessionPlaying, time.Date(2026, 11, 25, 6, 0, 0, 0, time.UTC)
	if s.MaxDuration == 0 {
		s.MaxDuration = time.Hour
	}
	f.all[s.ID] = s
	return s.ID
}

func (e *env) stopAs(secret, id string) response {
	e.t.Helper()
	return e.do("POST", "/api/v1/sessions/"+id+"/stop", secret, nil)
}

func (e *env) sessionState(id string) *loa.Session {
	e.t.Helper()
	s, err := e.sessions.Session(e.t.Context(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// TestStopNeedsTheAuthorityOfTheOrigin: an alert's session stops only
// through the alert's cancel, for every role; a schedule's only for those
// who may change the schedule; a manual one for its starter or a scope
// holding the starter's. Who stopped it is in the session and the audit.
func TestStopNeedsTheAuthorityOfTheOrigin(t *testing.T) {
	e := newEnv(t)
	a1 := loa.Targets{Areas: []string{"a-1"}}
	tok := func(secret string) string { return e.tokens[secret].ID }

	alert := e.sessions.add(&loa.Session{MediaID: "m-1", Targets: a1, Priority: loa.AlertPriorityEmergency,
		Origin: loa.Origin{Kind: loa.OriginAlert, ID: "al-1"}, CreatedBy: tok(e.province)})
	for _, who := range []string{e.admin, e.province, e.provA, e.opA} {
		wantError(t, e.stopAs(who, alert), http.StatusForbidden, "forbidden", "cancel the alert", "/api/v1/alerts/al-1/cancel")
	}
	if s := e.sessionState(alert); s.State != loa.SessionPlaying {
		t.Fatalf("the alert's session is %s", s.State)
	}

	// A schedule in the emergency band: an operator of its area sees its
	// session but may not change the schedule, so may not stop it.
	sc := scheduleBody("bao-dong", "a-1")
	sc["priority"] = 230
	_, r := e.createSchedule(e.province, sc)
	want(t, r, http.StatusCreated)
	siren := e.sessions.add(&loa.Session{MediaID: "m-1", Targets: a1, Priority: 230,
		Origin: loa.Origin{Kind: loa.OriginSchedule, ID: "bao-dong"}, CreatedBy: tok(e.province)})
	wantError(t, e.stopAs(e.opA, siren), http.StatusForbidden, "forbidden")
	_, r = e.createSchedule(e.opA, scheduleBody("sang", "a-1"))
	want(t, r, http.StatusCreated)
	morning := e.sessions.add(&loa.Session{MediaID: "m-1", Targets: a1, Priority: 64,
		Origin: loa.Origin{Kind: loa.OriginSchedule, ID: "sang"}, CreatedBy: tok(e.opA)})
	want(t, e.stopAs(e.opA, morning), http.StatusOK)

	// A manual session started from the province: the commune operator
	// sees it (its targets are in the commune) but may not stop it.
	provincial := e.sessions.add(&loa.Session{MediaID: "m-1", Targets: a1, Priority: 64,
		Origin: loa.Origin{Kind: loa.OriginManual}, CreatedBy: tok(e.province)})
	wantError(t, e.stopAs(e.opA, provincial), http.StatusForbidden, "forbidden", "wider scope")
	r = e.stopAs(e.provA, provincial) // province staff of the commune: still narrower than the starter
	wantError(t, r, http.StatusForbidden, "forbidden")
	r = e.stopAs(e.province, provincial)
	want(t, r, http.StatusOK)
	var stopped loa.Session
	r.json(t, &stopped)
	if stopped.State != loa.SessionStopped || stopped.StoppedBy != tok(e.province) {
		t.Errorf("stopped session: state %s, stopped_by %q; want stopped by %s", stopped.State, stopped.StoppedBy, tok(e.province))
	}
	// Started by the commune: its own operator, and anyone above, may stop it.
	own := e.sessions.add(&loa.Session{MediaID: "m-1", Targets: a1, Priority: 64, CreatedBy: tok(e.opA)})
	want(t, e.stopAs(e.opA, own), http.StatusOK)
	byProvA := e.sessions.add(&loa.Session{MediaID: "m-1", Targets: a1, Priority: 64, CreatedBy: tok(e.opA)})
	want(t, e.stopAs(e.provA, byProvA), http.StatusOK)
	if s := e.sessionState(byProvA); s.StoppedBy != tok(e.provA) {
		t.Errorf("stopped_by %q, want %s", s.StoppedBy, tok(e.provA))
	}

	recs, err := e.db.AuditLog(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var stops []string
	for _, rec := range recs {
		if rec.Action == "session.stop" {
			stops = append(stops, rec.Object+" by "+rec.Actor)
		}
	}
	slices.Sort(stops)
	wantStops := []string{morning + " by " + tok(e.opA), provincial + " by " + tok(e.province), own + " by " + tok(e.opA), byProvA + " by " + tok(e.provA)}
	slices.Sort(wantStops)
	if !slices.Equal(stops, wantStops) {
		t.Errorf("audited stops %v, want %v", stops, wantStops)
	}
}

// TestSDPListenersRestricted: the stream goes only to the caller's own
// address or the allow-list, from callers who may start such a session,
// for a bounded time, and can be stopped.
func TestSDPListenersRestricted(t *testing.T) {
	e := newEnv(t)
	m := e.withMedia()
	s, r := e.start(e.opA, map[string]any{"media_id": m, "targets": map[string]any{"areas": []string{"xa-a"}}})
	want(t, r, http.StatusCreated)
	sdp := "/api/v1/sessions/" + s.ID + "/sdp"

	wantError(t, e.do("GET", sdp+"?dest=198.51.100.7:5004", e.opA, nil), http.StatusForbidden, "forbidden", "dest", "allow-list")
	wantError(t, e.do("GET", sdp+"?dest=198.51.100.7:5004", e.admin, nil), http.StatusForbidden, "forbidden", "dest")
	want(t, e.do("GET", sdp+"?dest=127.0.0.1:6000", e.opA, nil), http.StatusOK) // the caller's own address
	want(t, e.do("GET", sdp+"?dest=192.0.2.9:6000&for=2h", e.opA, nil), http.StatusOK)
	for _, q := range []string{"for=7h", "for=10s", "for=soon"} {
		wantError(t, e.do("GET", sdp+"?dest=127.0.0.1:6000&"+q, e.opA, nil), http.StatusBadRequest, "invalid", "for")
	}
	e.sessions.mu.Lock()
	fors := slices.Clone(e.sessions.fors)
	e.sessions.mu.Unlock()
	if !slices.Equal(fors, []time.Duration{time.Hour, 2 * time.Hour}) {
		t.Errorf("listener times %v, want the default 1h, then 2h", fors)
	}
	wantError(t, e.do("GET", sdp+"?dest=127.0.0.1:6000", e.opB, nil), http.StatusNotFound, "not_found")
	wantError(t, e.do("GET", sdp+"?dest=127.0.0.1:6000", e.techA, nil), http.StatusForbidden, "forbidden")

	// The emergency band: as for starting such a session.
	siren := e.sessions.add(&loa.Session{MediaID: m, Targets: loa.Targets{Areas: []string{"a-1"}}, Priority: 240, CreatedBy: e.tokens[e.province].ID})
	wantError(t, e.do("GET", "/api/v1/sessions/"+siren+"/sdp?dest=127.0.0.1:6000", e.opA, nil), http.StatusForbidden, "forbidden", "emergency")

	listener := "/api/v1/sessions/" + s.ID + "/listeners/127.0.0.1:6000"
	wantError(t, e.do("DELETE", listener, e.opB, nil), http.StatusNotFound, "not_found")
	want(t, e.do("DELETE", listener, e.opA, nil), http.StatusNoContent)
	wantError(t, e.do("DELETE", listener, e.opA, nil), http.StatusNotFound, "not_found")
	wantError(t, e.do("DELETE", "/api/v1/sessions/"+s.ID+"/listeners/nowhere", e.opA, nil), http.StatusBadRequest, "invalid", "dest")
	if acts := e.auditActions(); !slices.Contains(acts, "session.listener.remove "+s.ID) {
		t.Errorf("audit %v", acts)
	}
}
