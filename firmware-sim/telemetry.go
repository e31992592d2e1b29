package firmwaresim

import (
	"math"
	"time"

	"github.com/loa-broadcast/loa/protocol"
)

// telemetryLoop publishes telemetry every TeleInterval until Close or Kill.
func (r *Receiver) telemetryLoop() {
	defer r.wg.Done()
	t := time.NewTicker(r.cfg.TeleInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if c := r.mqttClient(); c != nil && c.IsConnectionOpen() {
				r.send(protocol.KindTele, r.Telemetry())
			}
		case d := <-r.teleEvery:
			t.Reset(d)
		case <-r.quit:
			return
		}
	}
}

// Telemetry returns what the receiver would report now: a simulated 4G
// signal and board temperature, its volume, uptime, firmware, and the
// stream stats of the session playing.
func (r *Receiver) Telemetry() protocol.Telemetry {
	ip := r.localIP()
	fw := r.Firmware()
	r.mu.Lock()
	amp := r.amp
	t := protocol.Telemetry{
		TS:     time.Now().UnixMilli(),
		RSSI:   -70 - r.rng.Intn(21),
		Net:    "4g",
		Volume: r.volume,
		IP:     ip,
		Temp:   r.temperature(math.Round((38+4*r.rng.Float64())*10) / 10),
		Uptime: int64(time.Since(r.started) / time.Second),
		FW:     fw,
		Muted:  r.muted,
		Amp:    &amp,
	}
	cur := r.current
	r.mu.Unlock()
	if cur != nil {
		st := cur.snapshot()
		t.Session = st.Session
		ss := st.StreamStats()
		t.Stream = &ss
	}
	if !r.cfg.V1 {
		t.Sync = r.SyncReport()
	}
	if p, ok := r.Power(); ok {
		t.Power = &p
	}
	if r.hasCap(protocol.CapCache) {
		h := r.CacheHolding()
		t.Cache = &h
	}
	return t
}

// SyncReport is the receiver's tele.sync: its sync filter's estimate, the
// corrections of the playing session's output in the last minute, and the
// re-syncs since boot (clock steps and hard re-syncs of the output).
func (r *Receiver) SyncReport() *protocol.SyncReport {
	rep := r.sync.Report()
	rep.Resyncs += int(r.resyncs.Load())
	r.mu.Lock()
	cur := r.current
	r.mu.Unlock()
	if cur != nil {
		cur.mu.Lock()
		corr, resyncs := cur.playoutSync()
		cur.mu.Unlock()
		rep.CorrMin, rep.Resyncs = corr, rep.Resyncs+resyncs
	}
	return &rep
}
