package loa

import (
	"context"
	"time"
)

// Alarm kinds: what is wrong with a receiver, or with the controller
// (station alarms, Device empty).
const (
	AlarmOffline     = "offline"     // no presence for longer than the offline threshold
	AlarmStreamLoss  = "stream_loss" // packet loss of a telemetry window above the threshold while streaming
	AlarmAmpFault    = "amp_fault"   // the receiver reported an amplifier fault
	AlarmTemperature = "temperature" // board temperature at or above the threshold
	AlarmTestFailed  = "test_failed" // the last speaker test did not pass
	// AlarmPlainReceiver: the receiver announces no srtp-gcm, so its
	// streams are plain RTP anyone on the path can forge (contract v2);
	// -require-srtp refuses it.
	AlarmPlainReceiver = "plain_receivers"
	// AlarmClockStep: the controller's wall clock stepped (NTP, an
	// operator, a resumed VM) by more than the scheduler's threshold; a
	// station alarm (no device), cleared an hour after the last step.
	AlarmClockStep = "clock_step"
	// AlarmDiskSpace is the station's own: the data directory's
	// filesystem is nearly full (Device is empty).
	AlarmDiskSpace = "disk_space"
	// AlarmNoAudience: a session streamed to tuned receivers and none
	// reported playing it (a dead relay, a wrong public RTP address); a
	// station alarm, cleared when a later session is heard.
	AlarmNoAudience = "no_audience"
	// AlarmOutOfSync: a receiver's reported sync error (tele.sync) stayed
	// above OutOfSyncMs for OutOfSyncFor: it plays out of step with its
	// neighbours (an echo); cleared below half of it.
	AlarmOutOfSync = "out_of_sync"
	// AlarmBrokerLink: the controller is not connected to its MQTT broker
	// (an external one down at start, or an outage); a station alarm,
	// cleared when the link is back.
	AlarmBrokerLink = "broker_link"
	// AlarmRelayFailover: a relay has played other than its primary URL
	// (a backup, its fallback) for longer than a threshold; a station
	// alarm, cleared when the primary plays again or the relay ends.
	AlarmRelayFailover = "relay_failover"
	// AlarmClusterNode: a node of the controller cluster does not answer
	// the leader, or lags far behind its log (station alarm).
	AlarmClusterNode = "cluster_node"
	// AlarmBlobMissing: a cluster node lacks a media or firmware file its
	// records reference and could not pull it yet (station alarm).
	AlarmBlobMissing = "blob_missing"
	// AlarmNoQuorum: the controller cluster had no leader for longer than
	// an election (a quorum of nodes did not answer each other): nothing
	// was broadcast, scheduled or changed meanwhile. No node can write an
	// alarm then, so the next leader raises it as it opens the station,
	// with when the period began and ended, and clears it at once: a
	// record that notifies, not an alarm to fix.
	AlarmNoQuorum = "no_quorum"
	// AlarmBackupFailed: the last scheduled backup (-backup-dir) could not
	// be written (station alarm); cleared by the next one written.
	AlarmBackupFailed = "backup_failed"
)

// The out_of_sync alarm's threshold and how long it must hold.
const (
	OutOfSyncMs  = 20.0
	OutOfSyncFor = time.Minute
)

// AlarmKinds lists every alarm kind.
var AlarmKinds = []string{AlarmOffline, AlarmStreamLoss, AlarmAmpFault, AlarmTemperature, AlarmTestFailed, AlarmPlainReceiver, AlarmClockStep, AlarmDiskSpace, AlarmNoAudience, AlarmOutOfSync, AlarmBrokerLink, AlarmMainsLost, AlarmLowBattery, AlarmBulletinDeadline, AlarmRelayFailover, AlarmClusterNode, AlarmBlobMissing, AlarmBackupFailed, AlarmNoQuorum}

// ValidAlarmKind reports whether kind is one of AlarmKinds.
func ValidAlarmKind(kind string) bool {
	for _, k := range AlarmKinds {
		if k == kind {
			return true
		}
	}
	return false
}

// Alarm severities.
const (
	SeverityWarning  = "warning"
	SeverityCritical = "critical" // the receiver cannot play
)

// Alarm is one problem of one receiver, from raised to cleared. A device
// has at most one active alarm of each kind.
type Alarm struct {
	ID        string    `json:"id"`
	Device    string    `json:"device"`
	Area      string    `json:"area,omitempty"` // the device's area when raised
	Kind      string    `json:"kind"`
	Severity  string    `json:"severity"`
	Value     float64   `json:"value"`     // what was measured: seconds offline, loss %, °C, test level dBFS
	Threshold float64   `json:"threshold"` // the limit it crossed, in the same unit
	Msg       string    `json:"msg"`
	RaisedAt  time.Time `json:"raised_at"`
	ClearedAt time.Time `json:"cleared_at,omitzero"`
	// Ack is the acknowledgement of someone who has seen the alarm; it
	// stays active, marked so, until its condition clears.
	Ack *AlarmAck `json:"ack,omitempty"`
}

// AlarmAck is who acknowledged an alarm, when, and their note.
type AlarmAck struct {
	By   string    `json:"by"` // the actor, as the audit log names it
	At   time.Time `json:"at"`
	Note string    `json:"note,omitempty"`
}

// MaxAlarmNote bounds an acknowledgement's note, in bytes.
const MaxAlarmNote = 500

// Active reports whether the alarm has not been cleared.
func (a *Alarm) Active() bool { return a.ClearedAt.IsZero() }

// AlarmThresholds are the limits the alarm evaluator applies.
type AlarmThresholds struct {
	Offline       time.Duration // raise once a device has been offline this long
	StreamLossPct float64       // raise when a telemetry window's loss exceeds this, in %; clear at half
	TempC         float64       // raise at or above this board temperature, °C
	TempClearC    float64       // clear below this (hysteresis, so a device near the limit does not flap)
}

// DefaultAlarmThresholds returns the thresholds used when none are configured.
func DefaultAlarmThresholds() AlarmThresholds {
	return AlarmThresholds{Offline: 5 * time.Minute, StreamLossPct: 5, TempC: 75, TempClearC: 70}
}

// Validate names the first threshold that cannot work.
func (t AlarmThresholds) Validate() error {
	switch {
	case t.Offline <= 0:
		return Errorf(EINVALID, "alarm offline: must be positive")
	case t.StreamLossPct <= 0 || t.StreamLossPct > 100:
		return Errorf(EINVALID, "alarm stream loss: must be within (0, 100] %%")
	case t.TempClearC >= t.TempC:
		return Errorf(EINVALID, "alarm temperature clear: %g °C must be below the raise level %g °C", t.TempClearC, t.TempC)
	}
	return nil
}

// Alarm change events, as sent to watchers, the SSE stream and webhooks.
const (
	AlarmRaised  = "raised"
	AlarmCleared = "cleared"
	// AlarmAcknowledged goes to watchers (the event streams) only, not
	// to the webhook, which carries raises and clears.
	AlarmAcknowledged = "acknowledged"
	// AlarmUpdated: an active alarm described anew (its value and message)
	// without a new raise; to watchers only, as acknowledged.
	AlarmUpdated = "updated"
)

// AlarmChange is an alarm raised or cleared.
type AlarmChange struct {
	Event string `json:"event"` // raised or cleared
	Alarm Alarm  `json:"alarm"`
}

// AlarmFilter selects alarms. Zero fields select everything.
type AlarmFilter struct {
	Active bool   // only alarms not cleared
	Kind   string // only this kind
	Device string // only this device
}

// AlarmService lists alarms and streams their changes (the API consumes it).
type AlarmService interface {
	// Alarms returns the alarms matching f, newest first.
	Alarms(ctx context.Context, f AlarmFilter) ([]Alarm, error)
	// WatchAlarms returns the active alarms now and a channel of every
	// change after them, in order, until ctx ends. The channel is closed
	// when ctx ends or when the watcher falls too far behind (it should
	// then watch again).
	WatchAlarms(ctx context.Context) ([]Alarm, <-chan AlarmChange, error)
}
