package api_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/store"
)

// healthz fetches /healthz and returns its status and body.
func (e *env) healthz() (int, map[string]any) {
	e.t.Helper()
	r := e.do("GET", "/healthz", "", nil)
	var body map[string]any
	r.json(e.t, &body)
	return r.status, body
}

// A change the disk refuses fails as a whole with 507 and a clear
// message: nothing changed, no audit record, and /healthz says the store
// is unhealthy until a write succeeds.
func TestDiskFullRefusesTheWholeChange(t *testing.T) {
	faults := new(store.WriteFaults)
	e := newEnvWith(t, store.Options{Faults: faults})
	if st, body := e.healthz(); st != http.StatusOK || body["ok"] != true {
		t.Fatalf("healthz before = %d %v", st, body)
	}
	auditBefore := e.auditActions()
	if err := faults.Arm(); err != nil {
		t.Fatal(err)
	}
	r := e.do("POST", "/api/v1/areas", e.admin, map[string]any{"id": "a-9", "parent_id": "xa-a", "name": "Cụm 9", "kind": "cluster"})
	wantError(t, r, http.StatusInsufficientStorage, loa.ENOSPACE, "disk is full", "not saved")
	st, body := e.healthz()
	storage, _ := body["storage"].(map[string]any)
	if st != http.StatusServiceUnavailable || body["ok"] != false || storage == nil || !strings.Contains(storage["error"].(string), "disk is full") {
		t.Fatalf("healthz while full = %d %v", st, body)
	}
	// Reads still answer.
	want(t, e.do("GET", "/api/v1/areas/hn", e.admin, nil), http.StatusOK)
	if err := faults.Disarm(); err != nil {
		t.Fatal(err)
	}
	wantError(t, e.do("GET", "/api/v1/areas/a-9", e.admin, nil), http.StatusNotFound, loa.ENOTFOUND)
	if got := e.auditActions(); !slices.Equal(got, auditBefore) {
		t.Fatalf("audit after a refused change = %v, want %v", got, auditBefore)
	}
	// Space again: the same request succeeds, with its one audit record,
	// and the store is healthy.
	r = e.do("POST", "/api/v1/areas", e.admin, map[string]any{"id": "a-9", "parent_id": "xa-a", "name": "Cụm 9", "kind": "cluster"})
	want(t, r, http.StatusCreated)
	if got := e.auditActions(); len(got) != len(auditBefore)+1 || got[0] != "area.create a-9" {
		t.Fatalf("audit after the change = %v", got)
	}
	if st, body := e.healthz(); st != http.StatusOK || body["ok"] != true {
		t.Fatalf("healthz after a write succeeded = %d %v", st, body)
	}
}

// fillingAudit fills the disk just before the API writes its detailed
// audit record: the change has committed, the record cannot be written.
type fillingAudit struct {
	*store.DB
	faults *store.WriteFaults
}

func (a fillingAudit) Audit(ctx context.Context, r loa.AuditRecord) error {
	if err := a.faults.Arm(); err != nil {
		return err
	}
	defer func() { _ = a.faults.Disarm() }()
	return a.DB.Audit(ctx, r)
}

// The disk fills between a change and its audit record: the change still
// has one, committed with it, naming the actor and the route.
func TestDiskFullNeverLeavesAChangeUnaudited(t *testing.T) {
	faults := new(store.WriteFaults)
	e := newEnvWith(t, store.Options{Faults: faults})
	auditBefore := len(e.auditActions())
	e.server.Audit = fillingAudit{e.db, faults}
	r := e.do("POST", "/api/v1/areas", e.admin, map[string]any{"id": "a-9", "parent_id": "xa-a", "name": "Cụm 9", "kind": "cluster"})
	want(t, r, http.StatusCreated) // the change happened; saying otherwise would be false
	want(t, e.do("GET", "/api/v1/areas/a-9", e.admin, nil), http.StatusOK)
	recs, err := e.db.AuditLog(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != auditBefore+1 {
		t.Fatalf("audit records = %d, want %d: the change has none", len(recs), auditBefore+1)
	}
	rec := recs[0]
	if rec.Actor != e.tokens[e.admin].ID || rec.Action != "POST /api/v1/areas" || rec.Object != "/api/v1/areas" || rec.At.IsZero() {
		t.Fatalf("the change's audit record = %+v", rec)
	}
}
