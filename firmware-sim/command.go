package firmwaresim

import (
	"encoding/json"
	"time"

	"github.com/loa-broadcast/loa/protocol"
)

// Ack failure codes this receiver sends.
const (
	CodeUnsupported = "unsupported" // op unknown to, or not implemented by, this firmware
	CodeInvalid     = "invalid"     // args do not parse or check
	CodeUnavailable = "unavailable" // the stream socket or its first RTCP failed
)

// commandLoop runs commands one at a time, in the order they arrived.
func (r *Receiver) commandLoop() {
	defer r.wg.Done()
	for {
		select {
		case m := <-r.cmds:
			r.handle(m.Payload())
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
		r.mu.Lock()
		r.volume = v.Level
		r.mu.Unlock()
		r.ack(cmd.ID, protocol.AckDone, "", "")
	default:
		r.ack(cmd.ID, protocol.AckFailed, CodeUnsupported, "op "+cmd.Op+" not supported by "+r.cfg.Firmware)
	}
}

func (r *Receiver) play(cmd protocol.Command) {
	args, err := protocol.DecodePlayArgs(cmd.Args)
	if err != nil {
		r.ack(cmd.ID, protocol.AckFailed, CodeInvalid, err.Error())
		return
	}
	r.ack(cmd.ID, protocol.AckAccepted, "", "")

	r.mu.Lock()
	cur := r.current
	r.mu.Unlock()
	if cur != nil && cur.args == args && !cur.isEnded() {
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
