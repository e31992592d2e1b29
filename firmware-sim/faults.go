package firmwaresim

import (
	"errors"
	"math"
	"net"
	"sync"
	"time"

	"github.com/loa-broadcast/loa/protocol"
)

// faults are hardware problems a test can give a receiver, to drive the
// controller's alarms: an overheating board and a failed amplifier.
type faults struct {
	mu      sync.Mutex
	temp    float64 // board temperature to report, when hasTemp
	hasTemp bool
	amp     bool // amplifier fault: nothing reaches the speakers
	mute    bool // its played and finished events are dropped (MuteEvents)
}

// MuteEvents drops (true) or sends again (false) the receiver's played and
// finished events while it plays on, as a receiver whose MQTT loses them
// while its RTP works (or a third-party one that sends none): the
// controller has only its RTCP reports.
func (r *Receiver) MuteEvents(mute bool) {
	r.faults.mu.Lock()
	defer r.faults.mu.Unlock()
	r.faults.mute = mute
}

// eventMuted reports whether v is a play event MuteEvents drops.
func (r *Receiver) eventMuted(v any) bool {
	ev, ok := v.(protocol.Event)
	if !ok || (ev.Type != protocol.EventPlayed && ev.Type != protocol.EventFinished) {
		return false
	}
	r.faults.mu.Lock()
	defer r.faults.mu.Unlock()
	return r.faults.mute
}

// SetTemperature makes the receiver report a board temperature of c °C
// from its next telemetry on; NaN returns to the normal 38–42 °C.
func (r *Receiver) SetTemperature(c float64) {
	r.faults.mu.Lock()
	defer r.faults.mu.Unlock()
	r.faults.temp, r.faults.hasTemp = c, !math.IsNaN(c)
}

// SetAmpFault breaks (true) or repairs (false) the amplifier and sends
// the amp_fault or amp_ok event, as a receiver's amplifier monitor does.
// A faulty amplifier plays nothing and fails speaker tests. It must not
// be called after Close or Kill.
func (r *Receiver) SetAmpFault(fault bool) error {
	if r.ended.Load() {
		return errors.New("receiver ended")
	}
	r.faults.mu.Lock()
	changed := r.faults.amp != fault
	r.faults.amp = fault
	r.faults.mu.Unlock()
	if !changed {
		return nil
	}
	ev := protocol.Event{Type: protocol.EventAmpOK, TS: time.Now().UnixMilli()}
	if fault {
		ev.Type, ev.Msg = protocol.EventAmpFault, "no output current"
	}
	r.send(protocol.KindEvent, ev)
	return nil
}

// ampFaulty reports whether SetAmpFault broke the amplifier.
func (r *Receiver) ampFaulty() bool {
	r.faults.mu.Lock()
	defer r.faults.mu.Unlock()
	return r.faults.amp
}

// temperature is the board temperature to report: the one set, or natural.
func (r *Receiver) temperature(natural float64) float64 {
	r.faults.mu.Lock()
	defer r.faults.mu.Unlock()
	if r.faults.hasTemp {
		return r.faults.temp
	}
	return natural
}

// localIP is the receiver's own address on its broker connection, as a
// real receiver reports its 4G bearer's address; "" when not connected.
func (r *Receiver) localIP() string {
	r.connMu.Lock()
	defer r.connMu.Unlock()
	if r.conn == nil {
		return ""
	}
	if a, ok := r.conn.LocalAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return ""
}
