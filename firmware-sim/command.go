package firmwaresim

import (
	"encoding/json"
	"math"
	"time"

	"github.com/loa-broadcast/loa/protocol"
)

// Ack failure codes this receiver sends.
const (
	CodeUnsupported = "unsupported" // op unknown to, or not implemented by, this firmware
	CodeInvalid     = "invalid"     // args do not parse or check
	CodeUnavailable = "unavailable" // the stream socket or its first RTCP failed
	CodeFailed      = "failed"      // the op ran and failed (a speaker test below the pass level)
)

// commandLoop runs commands one at a time, in the order they arrived.
func (r *Receiver) commandLoop() {
	defer r.wg.Done()
	for {
		select {
		case m := <-r.cmds:
			r.handle(m.Payload())
		case id := <-r.fw.reboot:
			r.firmwareReboot(id)
		case <-r.quit:
			return
		}
	}
}

func (r *Receiver) handle(b []byte) {
	cmd, err := protocol.DecodeCommand(b)
	if err != nil {
		// A well-formed command with an op this contract version does not
		// know still deserves an answer, so the controller need not time out.
		var c protocol.Command
		if json.Unmarshal(b, &c) == nil && c.ID != "" && len(c.ID) <= 64 && c.Op != "" && c.Exp > 0 {
			r.ack(c.ID, protocol.AckFailed, CodeUnsupported, "unknown op "+c.Op)
			return
		}
		r.mu.Lock()
		r.malformed++
		r.mu.Unlock()
		r.log.Warn("malformed command ignored", "err", err)
		return
	}
	if cmd.Expired(time.Now()) {
		r.ack(cmd.ID, protocol.AckExpired, "", "")
		return
	}
	if err := r.admitCommandFence(cmd); err != nil {
		r.ack(cmd.ID, protocol.AckFailed, CodeFence, err.Error())
		return
	}
	switch cmd.Op {
	case protocol.OpPlay:
		r.play(cmd)
	case protocol.OpStop:
		r.stopCmd(cmd)
	case protocol.OpVolume:
		v, err := protocol.DecodeVolumeArgs(cmd.Args)
		if err != nil {
			r.ack(cmd.ID, protocol.AckFailed, CodeInvalid, err.Error())
			return
		}
		r.setVolume(v.Level)
		r.ack(cmd.ID, protocol.AckDone, "", "")
	case protocol.OpMute:
		a, err := protocol.DecodeMuteArgs(cmd.Args)
		if err != nil {
			r.ack(cmd.ID, protocol.AckFailed, CodeInvalid, err.Error())
			return
		}
		r.mu.Lock()
		r.muted = a.Muted
		r.mu.Unlock()
		r.ack(cmd.ID, protocol.AckDone, "", "")
	case protocol.OpAmp:
		a, err := protocol.DecodeAmpArgs(cmd.Args)
		if err != nil {
			r.ack(cmd.ID, protocol.AckFailed, CodeInvalid, err.Error())
			return
		}
		r.mu.Lock()
		r.amp = a.On
		r.mu.Unlock()
		r.ack(cmd.ID, protocol.AckDone, "", "")
	case protocol.OpConfig:
		a, err := protocol.DecodeConfigArgs(cmd.Args)
		if err != nil {
			r.ack(cmd.ID, protocol.AckFailed, CodeInvalid, err.Error())
			return
		}
		r.mu.Lock()
		r.delay = time.Duration(a.DelayMs) * time.Millisecond
		if a.BootVolume != nil {
			r.bootVol = *a.BootVolume
		}
		r.mu.Unlock()
		select { // the latest interval wins
		case <-r.teleEvery:
		default:
		}
		r.teleEvery <- time.Duration(a.TeleIntervalS) * time.Second
		r.ack(cmd.ID, protocol.AckDone, "", "")
	case protocol.OpTest:
		r.test(cmd)
	case protocol.OpReboot:
		if _, err := protocol.DecodeRebootArgs(cmd.Args); err != nil {
			r.ack(cmd.ID, protocol.AckFailed, CodeInvalid, err.Error())
			return
		}
		r.reboot(cmd)
	case protocol.OpFirmware:
		r.firmwareCmd(cmd)
	case protocol.OpCache, protocol.OpPlayStored:
		if r.cfg.V1 || r.cfg.NoCache {
			r.ack(cmd.ID, protocol.AckFailed, CodeUnsupported, "op "+cmd.Op+": this receiver announced no "+protocol.CapCache)
			return
		}
		if cmd.Op == protocol.OpCache {
			r.cacheCmd(cmd)
		} else {
			r.playStoredCmd(cmd)
		}
	default:
		r.ack(cmd.ID, protocol.AckFailed, CodeUnsupported, "op "+cmd.Op+" not supported by firmware "+r.Firmware())
	}
}

func (r *Receiver) play(cmd protocol.Command) {
	args, err := protocol.DecodePlayArgs(cmd.Args)
	if err != nil {
		r.ack(cmd.ID, protocol.AckFailed, CodeInvalid, err.Error())
		return
	}
	if err := r.admitFence(args); err != nil {
		r.ack(cmd.ID, protocol.AckFailed, CodeFence, err.Error())
		return
	}
	r.ack(cmd.ID, protocol.AckAccepted, "", "")

	r.mu.Lock()
	cur := r.current
	r.mu.Unlock()
	if cur != nil && samePlay(cur.args, args) && !cur.isEnded() {
		r.ack(cmd.ID, protocol.AckDone, "", "already playing")
		return
	}
	// The same session with new stream parameters (a controller that
	// restarted and resumed it) starts over on the new stream.
	if cur != nil {
		r.endCurrent(EndPreempted)
	}

	s, err := startSession(r, args)
	if err != nil {
		code := CodeUnavailable
		if isInvalid(err) {
			code = CodeInvalid
		}
		r.log.Warn("play failed", "session", args.Session, "err", err)
		r.ack(cmd.ID, protocol.AckFailed, code, err.Error())
		return
	}
	r.mu.Lock()
	r.current = s
	r.sessions = append(r.sessions, s)
	r.mu.Unlock()
	s.begin()
	r.ack(cmd.ID, protocol.AckDone, "", "")
}

func (r *Receiver) stopCmd(cmd protocol.Command) {
	var args protocol.StopArgs
	if len(cmd.Args) > 0 {
		a, err := protocol.DecodeStopArgs(cmd.Args)
		if err != nil {
			r.ack(cmd.ID, protocol.AckFailed, CodeInvalid, err.Error())
			return
		}
		args = a
	}
	r.mu.Lock()
	cur := r.current
	match := cur != nil && (args.Session == "" || args.Session == cur.args.Session)
	r.mu.Unlock()
	if !match {
		r.ack(cmd.ID, protocol.AckDone, "", "not playing")
		return
	}
	r.endCurrent(EndStop)
	r.ack(cmd.ID, protocol.AckDone, "", "")
}

// ack queues an ack; acks of one command go out in order.
func (r *Receiver) ack(id, state, code, msg string) {
	r.send(protocol.KindAck, protocol.Ack{ID: id, State: state, Code: code, Msg: msg})
}

// testToneAmplitude is the level of the test tone before volume: a sine at half
// of full scale.
const testToneAmplitude = 0.5

// testFloorDBFS is the level reported for silence (JSON has no -Inf).
const testFloorDBFS = -120.0

// test plays a tone internally for the test's duration and measures the
// RMS level, in dBFS, of what reaches the amplifier: the tone after the
// receiver's volume, silence when muted or with the amplifier off.
func (r *Receiver) test(cmd protocol.Command) {
	a, err := protocol.DecodeTestArgs(cmd.Args)
	if err != nil {
		r.ack(cmd.ID, protocol.AckFailed, CodeInvalid, err.Error())
		return
	}
	r.ack(cmd.ID, protocol.AckAccepted, "", "")
	select {
	case <-time.After(time.Duration(a.DurationMs) * time.Millisecond):
	case <-r.quit:
		return
	}
	r.mu.Lock()
	gain := float64(r.volume) / 100
	if r.muted || !r.amp || r.ampFaulty() {
		gain = 0
	}
	r.mu.Unlock()
	level := ToneLevel(a.ToneHz, a.DurationMs, gain)
	res := protocol.TestResult{LevelDB: level, Passed: level > protocol.TestPassLevelDBFS}
	raw, _ := json.Marshal(res)
	ack := protocol.Ack{ID: cmd.ID, State: protocol.AckDone, Result: raw}
	if !res.Passed {
		ack.State, ack.Code, ack.Msg = protocol.AckFailed, CodeFailed, "test tone level below the pass level"
	}
	r.send(protocol.KindAck, ack)
}

// ToneLevel generates durationMs of a sine of hz at 48 kHz, half of full
// scale times gain, quantised to 16 bits, and returns its RMS level in
// dBFS (a full-scale sine is -3.01 dBFS), rounded to 0.01 dB and floored
// at -120.
func ToneLevel(hz, durationMs int, gain float64) float64 {
	n := protocol.ClockRate * durationMs / 1000
	var sum float64
	for i := 0; i < n; i++ {
		x := math.Round(32767 * testToneAmplitude * gain * math.Sin(2*math.Pi*float64(hz)*float64(i)/protocol.ClockRate))
		sum += x * x
	}
	if n == 0 || sum == 0 {
		return testFloorDBFS
	}
	db := 20 * math.Log10(math.Sqrt(sum/float64(n))/32768)
	return math.Max(testFloorDBFS, math.Round(db*100)/100)
}

// Back-off between the connect attempts of a boot the broker refuses or
// cannot be reached for: ConnectRetryMin, doubling up to ConnectRetryMax.
const (
	ConnectRetryMin = time.Second
	ConnectRetryMax = 30 * time.Second
)

// connectBoot connects the new boot, retrying with back-off until it is in
// or the receiver ends (false). paho's auto-reconnect retries only a
// connection that was once up: a booting receiver whose CONNACK was
// refused (its credentials revoked for a while, its client id held) would
// otherwise stay off the broker for good. Each attempt is a new
// connection: a new conn and a Will that carries it.
func (r *Receiver) connectBoot(boot uint64) bool {
	pause := ConnectRetryMin
	for conn := uint64(1); ; conn++ {
		client, err := r.newClient(boot, conn)
		if err != nil {
			r.log.Error("reboot", "err", err)
			return false
		}
		err = waitToken(client.Connect())
		if err == nil {
			return true
		}
		client.Disconnect(0)
		r.log.Warn("connect after reboot failed; retrying", "err", err, "in", pause)
		select {
		case <-time.After(pause):
		case <-r.quit:
			return false
		}
		pause = min(2*pause, ConnectRetryMax)
	}
}

// RebootDowntime is how long a rebooting receiver stays off the broker.
const RebootDowntime = time.Second

// reboot stops playing, acks done, then drops the broker connection
// without DISCONNECT, so the broker publishes the Last Will of this boot,
// and after RebootDowntime connects again with the boot counter one higher
// (a new Will, a new online status). Volume, mute and amp return to their
// boot state; configured telemetry interval and delay survive. A firmware
// download in progress is interrupted; an installed update boots.
func (r *Receiver) reboot(cmd protocol.Command) {
	r.interruptFirmware()
	r.endCurrent(EndStop)
	r.ack(cmd.ID, protocol.AckDone, "", "")
	r.restart()
}

// restart is the reboot after its ack: everything queued goes out, the
// connection drops, and the bootloader (bootFirmware) brings the receiver
// back; once online it reports its firmware (firmwareBooted).
func (r *Receiver) restart() {
	flushed := make(chan struct{})
	r.outbox <- outMsg{"", flushed}
	select {
	case <-flushed:
	case <-r.quit:
		return
	}

	r.connMu.Lock()
	r.rebooting.Store(true)
	if r.conn != nil {
		r.conn.Close()
	}
	r.connMu.Unlock()
	old := r.mqttClient()
	old.Disconnect(0) // stops paho's reconnects with the old Will

	select {
	case <-time.After(RebootDowntime):
	case <-r.quit:
		r.rebooting.Store(false)
		return
	}
	boot, ok := r.bootFirmware()
	if !ok {
		r.rebooting.Store(false)
		return
	}
	r.mu.Lock()
	r.started = time.Now()
	r.volume, r.muted, r.amp = r.bootVol, false, true
	r.mu.Unlock()
	r.rebooting.Store(false)
	online := r.expectOnline()
	if !r.connectBoot(boot) {
		return
	}
	r.log.Debug("rebooted", "boot", boot)
	select { // what the new boot reports goes after its online status
	case <-online:
		r.firmwareBooted()
	case <-r.quit:
	}
}
