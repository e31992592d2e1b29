package loa

import (
	"context"
	"time"
)

// A session's delivery report: one line per receiver it targeted, from
// the receiver's own evidence. The states are the alerts' (DeliveryQueued
// … DeliveryFailed) and DeliveryStopped; the reasons are the alerts'
// (ReasonOffline …) and those below.
const (
	// DeliveryStopped: a user or the session's origin stopped the session
	// before it finished here; not a failure of the receiver.
	DeliveryStopped = "stopped"

	ReasonPreempted = "preempted" // a session of higher priority took the receiver
	ReasonNoReport  = "no_report" // it started, then neither a finished event nor RTCP said it played on
)

// Evidence says how a receiver's delivery is known.
const (
	EvidenceEvent = "event" // its own played and finished events
	EvidenceRTCP  = "rtcp"  // only its RTCP receiver reports: packets received (a receiver that sends no events)
)

// ReceiverDelivery is one receiver's line in a session's delivery report.
type ReceiverDelivery struct {
	Device    string    `json:"device"`
	State     string    `json:"state"`
	Reason    string    `json:"reason,omitempty"`
	Detail    string    `json:"detail,omitempty"`
	Evidence  string    `json:"evidence,omitempty"` // EvidenceEvent or EvidenceRTCP, once started
	QueuedAt  time.Time `json:"queued_at"`
	AckedAt   time.Time `json:"acked_at,omitzero"`
	StartedAt time.Time `json:"started_at,omitzero"` // its first frame (receiver clock), or the first RTCP progress
	EndedAt   time.Time `json:"ended_at,omitzero"`
	// The receiver's finished stats, summed over its plays of the session
	// (a preemption or a restart plays it again): frames played (silence
	// included), packets lost, frames of silence after a gap.
	Played  uint64 `json:"played_frames"`
	Lost    uint64 `json:"lost_packets"`
	Silence uint64 `json:"silence_frames"`
	// RTPReceived is the packets its RTCP receiver reports say arrived
	// (extended highest sequence − cumulative lost), summed over its plays.
	RTPReceived uint64 `json:"rtp_received"`
}

// Final reports whether d is settled.
func (d *ReceiverDelivery) Final() bool {
	return d.State == DeliveryFinished || d.State == DeliveryFailed || d.State == DeliveryStopped
}

// DeliveryTotals counts a report's receivers by state.
type DeliveryTotals struct {
	Receivers int `json:"receivers"`
	Queued    int `json:"queued"`
	Acked     int `json:"acked"`
	Started   int `json:"started"`
	Finished  int `json:"finished"`
	Stopped   int `json:"stopped"`
	Failed    int `json:"failed"`
}

// Add counts d.
func (t *DeliveryTotals) Add(d *ReceiverDelivery) {
	t.Receivers++
	switch d.State {
	case DeliveryQueued:
		t.Queued++
	case DeliveryAcked:
		t.Acked++
	case DeliveryStarted:
		t.Started++
	case DeliveryFinished:
		t.Finished++
	case DeliveryStopped:
		t.Stopped++
	case DeliveryFailed:
		t.Failed++
	}
}

// DeliveryService reads sessions' delivery reports.
type DeliveryService interface {
	// SessionDelivery returns session id's report, sorted by device;
	// ENOTFOUND if there is no such session.
	SessionDelivery(ctx context.Context, id string) ([]ReceiverDelivery, error)
}
