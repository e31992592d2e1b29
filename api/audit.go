package api

import (
	"net/http"
	"strconv"

	"github.com/loa-broadcast/loa"
)

// Audit log page sizes.
const (
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
)

// auditLog answers the newest audit records of the caller's scope, ?limit=N
// of them.
func (s *Server) auditLog(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.Audit == nil {
		return errUnavailable("audit")
	}
	limit := defaultAuditLimit
	if raw := r.URL.Query().Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxAuditLimit {
			return loa.Errorf(loa.EINVALID, "limit: must be an integer within 1..%d", maxAuditLimit)
		}
		limit = n
	}
	var keep func(*loa.AuditRecord) bool
	if c.scoped() {
		// A scoped admin reads what callers within its scope did; the
		// system's and station-wide callers' records are not its to read.
		if _, err := c.areaList(); err != nil {
			return err
		}
		keep = func(rec *loa.AuditRecord) bool {
			return rec.Scope != "" && c.tree.Within(rec.Scope, c.tok.AreaID)
		}
	}
	recs, err := s.Audit.AuditLogWhere(r.Context(), limit, keep)
	if err != nil {
		return err
	}
	if recs == nil {
		recs = []loa.AuditRecord{}
	}
	writeJSON(w, http.StatusOK, recs)
	return nil
}
