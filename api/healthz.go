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

// BrokerHealth reports the controller's link to its MQTT broker
// (devices.Fleet).
type BrokerHealth interface {
	BrokerHealth() loa.BrokerHealth
}

// healthzBody is GET /healthz's answer.
type healthzBody struct {
	OK      bool               `json:"ok"`
	Storage *loa.StorageHealth `json:"storage,omitempty"`
	Broker  *loa.BrokerHealth  `json:"broker,omitempty"`
}

// healthz answers 200 while the station can write, 503 saying why after a
// write failed for lack of space or an I/O error, until one succeeds: a
// station that cannot save changes is not healthy. A broker link that is
// down is reported, not a 503: the station serves and waits it out.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	body := healthzBody{OK: true}
	if s.Storage != nil {
		st := s.Storage.StorageHealth()
		body.Storage, body.OK = &st, st.OK
	}
	if s.Broker != nil {
		b := s.Broker.BrokerHealth()
		body.Broker = &b
	}
	status := http.StatusOK
	if !body.OK {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, body)
}
