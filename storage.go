package loa

import "time"

// StorageHealth is the state of the station's writes to its disk:
// unhealthy from a write that failed for lack of space or an I/O error
// until one succeeds.
type StorageHealth struct {
	OK       bool      `json:"ok"`
	Error    string    `json:"error,omitempty"`    // why the last write failed
	FailedAt time.Time `json:"failed_at,omitzero"` // when it failed
}

// BrokerHealth is the state of the controller's link to its MQTT broker:
// while it is down no receiver can be commanded and presence is unknown;
// the station keeps serving and waits the outage out.
type BrokerHealth struct {
	Connected bool      `json:"connected"`
	Since     time.Time `json:"since,omitzero"` // when the link last came up or went down
}
