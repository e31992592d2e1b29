package devices

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// device is the hot state of one device. Telemetry is kept by value so a
// telemetry message overwrites it in place; readers get copies.
type device struct {
	st        loa.DeviceState // Telemetry always nil here
	tele      loa.Telemetry   // Stream always nil here
	stream    loa.StreamStats
	hasTele   bool
	hasStream bool
	dirty     bool
	conn      uint64 // Status.Conn of the accepted status; st.Boot holds its boot
	// unknown: no status of the device has been applied since the fleet's
	// broker link last went down (or since it was loaded from the store),
	// so st.Online is only the last thing known, not the truth now.
	unknown bool
}

// online reports whether the device's presence is known and online.
func (d *device) online() bool { return d.st.Online && !d.unknown }

// presence is how the fleet's link lets it present presence.
type presence int

const (
	linkDown    presence = iota // every device unknown
	linkSettled                 // up long enough that a device without a status is offline
	linkNew                     // up, but statuses may still be on their way: those not heard yet are unknown
)

// snapshot is the device's state as presented under p.
func (d *device) snapshot(p presence) loa.DeviceState {
	st := d.state()
	switch {
	case p == linkDown || d.unknown && p == linkNew:
		st.Online, st.OnlineSince, st.Presence = false, time.Time{}, loa.PresenceUnknown
	case d.unknown: // connected devices keep a retained online status: this one has none
		st.Online, st.OnlineSince, st.Presence = false, time.Time{}, loa.PresenceOffline
	case st.Online:
		st.Presence = loa.PresenceOnline
	default:
		st.Presence = loa.PresenceOffline
	}
	return st
}

// state is the device's state as last known, for the store.
func (d *device) state() loa.DeviceState {
	st := d.st
	if d.hasTele {
		t := d.tele
		if d.hasStream {
			s := d.stream
			t.Stream = &s
		}
		st.Telemetry = &t
	}
	return st
}

// load installs state read from the store. Invalid or repeated ids are
// skipped.
func (f *Fleet) load(initial []loa.DeviceState) {
	for _, st := range initial {
		if err := loa.ValidateID("id", st.ID); err != nil {
			f.log.Warn("fleet: skipping stored device state", "device", st.ID, "err", err)
			continue
		}
		if _, dup := f.devices[st.ID]; dup {
			continue
		}
		// What the store says was true before this controller started;
		// the broker's statuses confirm it or not.
		d := &device{st: st, unknown: true}
		d.st.Telemetry, d.st.Presence = nil, ""
		if st.Telemetry != nil {
			d.tele, d.hasTele = *st.Telemetry, true
			d.tele.Stream = nil
			if st.Telemetry.Stream != nil {
				d.stream, d.hasStream = *st.Telemetry.Stream, true
			}
		}
		f.devices[st.ID] = d
	}
}

// presence tells how presence can be presented now.
func (f *Fleet) presence() presence {
	if !f.linkUp.Load() {
		return linkDown
	}
	if f.now().Sub(time.Unix(0, f.upAt.Load())) < f.cfg.PresenceSettle {
		return linkNew
	}
	return linkSettled
}

// linkLost marks every device's presence unknown: while the controller's
// own link is down, and until each device's status arrives again, a
// receiver may have come or gone unseen. It runs on the inbox goroutine,
// after every message received before the link went down.
func (f *Fleet) linkLost() {
	f.mu.Lock()
	var notices []notice
	for _, d := range f.devices {
		if d.unknown {
			continue
		}
		if d.st.Online {
			f.online.Add(-1)
		}
		d.unknown = true
		if f.subs.hasPresence() {
			notices = append(notices, notice{presence: true, id: d.st.ID, st: d.snapshot(linkDown)})
		}
	}
	f.mu.Unlock()
	for _, n := range notices {
		f.pushNotice(n)
	}
}

// DeviceState returns what is known of the device now (loa.PresenceService).
func (f *Fleet) DeviceState(id string) (loa.DeviceState, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.devices[id]
	if !ok {
		return loa.DeviceState{}, false
	}
	return d.snapshot(f.presence()), true
}

// HasCap reports whether the device announced capability c in its last
// online status (broadcast.Caps).
func (f *Fleet) HasCap(id, c string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.devices[id]
	return ok && d.st.HasCap(c)
}

// States returns the state of every known device, sorted by id.
func (f *Fleet) States() []loa.DeviceState {
	f.mu.Lock()
	p := f.presence()
	out := make([]loa.DeviceState, 0, len(f.devices))
	for _, d := range f.devices {
		out = append(out, d.snapshot(p))
	}
	f.mu.Unlock()
	slices.SortFunc(out, func(a, b loa.DeviceState) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// handle processes one message from the broker. It runs on the inbox
// goroutine only (or a test), so messages are handled in arrival order.
// Invalid input changes nothing but the malformed counters.
func (f *Fleet) handle(topic string, payload []byte, retained bool) {
	id, kind, err := protocol.ParseDeviceTopic(topic)
	if err == nil {
		err = loa.ValidateID("device id", id)
	}
	if err != nil {
		f.reject("", topic, err)
		return
	}
	now := f.now()
	switch kind {
	case protocol.KindStatus:
		s, err := protocol.DecodeStatus(payload)
		if err != nil {
			f.reject(id, topic, err)
			return
		}
		f.applyStatus(id, s, now)
	case protocol.KindTele:
		t, err := protocol.DecodeTelemetry(payload)
		if err != nil {
			f.reject(id, topic, err)
			return
		}
		f.applyTelemetry(id, &t, now)
		f.observeTelemetry(id)
	case protocol.KindAck:
		a, err := protocol.DecodeAck(payload)
		if err != nil {
			f.reject(id, topic, err)
			return
		}
		if f.applyAck(id, a, now) {
			f.touch(id, now)
			f.observeAck(a)
		}
	case protocol.KindEvent:
		e, err := protocol.DecodeEvent(payload)
		if err != nil {
			f.reject(id, topic, err)
			return
		}
		f.touch(id, now)
		f.publishEvent(id, e)
	default:
		// Commands are ours; a broker that echoes one back is ignored.
	}
}

// reject counts a malformed message globally and, when the device is
// already known, on the device. Unknown ids get no entry: garbage must not
// grow the map.
func (f *Fleet) reject(id, topic string, err error) {
	f.malformed.Add(1)
	if id != "" {
		f.mu.Lock()
		if d, ok := f.devices[id]; ok {
			d.st.Malformed++
			f.markDirty(d)
		}
		f.mu.Unlock()
	}
	f.log.Debug("fleet: malformed message ignored", "device", id, "topic", truncate(topic, 200), "err", err)
}

// entry returns the device's entry, creating it. Call with mu held.
func (f *Fleet) entry(id string) *device {
	d, ok := f.devices[id]
	if !ok {
		d = &device{st: loa.DeviceState{ID: strings.Clone(id)}}
		f.devices[d.st.ID] = d
	}
	return d
}

// markDirty queues d for the next flush. Call with mu held.
func (f *Fleet) markDirty(d *device) {
	if f.cfg.States == nil || d.dirty {
		return
	}
	d.dirty = true
	f.dirty = append(f.dirty, d)
}

// applyStatus applies a retained status. A lower (boot, conn) than the
// last accepted is a late Last Will (or status) of an earlier boot or
// connection and is ignored; an equal pair is the same connection, whose
// latest status wins.
func (f *Fleet) applyStatus(id string, s protocol.Status, now time.Time) {
	f.mu.Lock()
	d, known := f.devices[id]
	if known && s.Older(d.st.Boot, d.conn) {
		lastBoot, lastConn := d.st.Boot, d.conn
		f.mu.Unlock()
		f.stale.Add(1)
		f.log.Debug("fleet: stale status ignored", "device", id, "boot", s.Boot, "conn", s.Conn,
			"last_boot", lastBoot, "last_conn", lastConn, "online", s.Online)
		return
	}
	if !known {
		d = f.entry(id)
	}
	wasOnline, prevBoot, wasUnknown, lastOnline := d.online(), d.st.Boot, d.unknown, d.st.Online
	d.st.Boot, d.conn, d.unknown = s.Boot, s.Conn, false
	capsChanged := false
	if s.Online {
		if !lastOnline || s.Boot != prevBoot { // an outage of the link is not the device's
			d.st.OnlineSince = now
		}
		// The online status says what this boot's firmware supports; the
		// Will carries no caps, so an offline device keeps its last ones.
		if !slices.Equal(d.st.Caps, s.Caps) {
			d.st.Caps, capsChanged = slices.Clone(s.Caps), true
		}
		d.st.Online = true
		// The offline form is the broker publishing the Last Will, not
		// the device speaking, so only the online form counts as seen.
		d.st.LastSeen = now
	} else {
		d.st.Online = false
		d.st.OnlineSince = time.Time{}
	}
	switch {
	case s.Online && !wasOnline:
		f.online.Add(1)
	case !s.Online && wasOnline:
		f.online.Add(-1)
	}
	f.markDirty(d)
	changed := !known || wasUnknown || wasOnline != s.Online || prevBoot != s.Boot || capsChanged
	var snap loa.DeviceState
	if changed && f.subs.hasPresence() {
		snap = d.snapshot(linkSettled)
	}
	f.mu.Unlock()
	if changed {
		f.log.Debug("fleet: presence", "device", id, "online", s.Online, "boot", s.Boot)
		if snap.ID != "" {
			f.pushNotice(notice{presence: true, id: snap.ID, st: snap})
		}
	}
}

func (f *Fleet) applyTelemetry(id string, t *protocol.Telemetry, now time.Time) {
	f.mu.Lock()
	d := f.entry(id)
	d.tele = loa.Telemetry{
		At:       now, // receive time: device clocks on 4G boxes drift
		RSSI:     t.RSSI,
		Net:      t.Net,
		IP:       t.IP,
		Volume:   t.Volume,
		Muted:    t.Muted,
		TempC:    t.Temp,
		UptimeS:  t.Uptime,
		Firmware: t.FW,
		Session:  t.Session,
	}
	if s := t.Sync; s != nil {
		d.tele.Sync = &loa.SyncStats{Source: s.Source, OffsetMs: s.OffsetMs, ErrMs: s.ErrMs, RTTMs: s.RTTMs,
			DriftPPM: s.DriftPPM, CorrMin: s.CorrMin, Resyncs: s.Resyncs}
	}
	if c := t.Cache; c != nil {
		d.tele.Cache = &loa.CacheStats{Version: c.Version, Held: append([]string{}, c.Held...), Missing: c.Missing, Bytes: c.Bytes, Budget: c.Budget}
	}
	if p := t.Power; p != nil {
		d.tele.Power = &loa.PowerStats{Mains: p.Mains, BatteryPct: p.BatteryPct, RuntimeMin: p.RuntimeMin}
	}
	d.hasTele = true
	d.hasStream = t.Stream != nil
	if s := t.Stream; s != nil {
		d.stream = loa.StreamStats{
			Received:     s.Received,
			Lost:         s.Lost,
			Late:         s.Late,
			Concealed:    s.Concealed,
			FECRecovered: s.FECRecovered,
			Played:       s.Played,
			JitterMs:     s.JitterMs,
		}
	}
	d.st.LastSeen = now
	f.markDirty(d)
	f.mu.Unlock()
}

// touch records that the device spoke.
func (f *Fleet) touch(id string, now time.Time) {
	f.mu.Lock()
	d := f.entry(id)
	d.st.LastSeen = now
	f.markDirty(d)
	f.mu.Unlock()
}

func (f *Fleet) flushLoop() {
	if f.cfg.States == nil {
		<-f.stopFlush
		return
	}
	t := time.NewTicker(f.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-f.stopFlush:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
			if err := f.flush(ctx); err != nil {
				f.log.Error("fleet: flushing device state; will retry", "err", err)
			}
			cancel()
		}
	}
}

// flush writes the states changed since the last flush in one call. On
// failure they stay dirty for the next one.
func (f *Fleet) flush(ctx context.Context) error {
	if f.cfg.States == nil {
		return nil
	}
	f.mu.Lock()
	if len(f.dirty) == 0 {
		f.mu.Unlock()
		return nil
	}
	batch := f.dirty
	f.dirty = nil
	states := make([]loa.DeviceState, len(batch))
	for i, d := range batch {
		d.dirty = false
		states[i] = d.state() // the last thing known; loaded as unknown
	}
	f.mu.Unlock()

	err := f.cfg.States.PutDeviceStates(ctx, states)
	if err != nil {
		f.mu.Lock()
		for _, d := range batch {
			f.markDirty(d)
		}
		f.mu.Unlock()
		return fmt.Errorf("devices: writing %d device states: %w", len(states), err)
	}
	return nil
}

// truncate shortens untrusted text for logs and messages.
func truncate(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
