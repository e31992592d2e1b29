package api

import (
	"net/http"

	"github.com/loa-broadcast/loa"
)

// StorageHealth reports whether the store's last write reached the disk
// (store.DB).
type StorageHealth interface {
	StorageHealth() loa.StorageHealth
}

// healthzBody is GET /healthz's answer.
type healthzBody struct {
	OK      bool               `json:"ok"`
	Storage *loa.StorageHealth `json:"storage,omitempty"`
}

// healthz answers 200 while the station can write, 503 saying why after a
// write failed for lack of space or an I/O error, until one succeeds: a
// station that cannot save changes is not healthy.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	body := healthzBody{OK: true}
	if s.Storage != nil {
		st := s.Storage.StorageHealth()
		body.Storage, body.OK = &st, st.OK
	}
	status := http.StatusOK
	if !body.OK {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, body)
}
