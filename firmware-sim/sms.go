package firmwaresim

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/loa-broadcast/loa/protocol"
)

// The receiver's modem (contract v2, `sms`): SMS triggers from the
// controller's gateway, verified with the station key and the receiver's
// rules (protocol.AcceptSMSTrigger), played by the local player as a
// play_stored would be, and answered by an SMS reply only when the data
// path stays down. Every refusal is logged and counted by reason.

// SMS refusal reasons (SMSStats.Refused).
const (
	SMSMalformed = "malformed"
	SMSForged    = "signature"
	SMSExpired   = "expired"
	SMSArea      = "area"
	SMSReplayed  = "replayed"
	SMSNotCached = protocol.StoredNotCached // the local player's refusals
	SMSBusy      = protocol.StoredBusy
)

// SMSStats is what the receiver's modem did.
type SMSStats struct {
	Received int            // texts that reached the modem
	Accepted int            // triggers that passed every check
	Played   int            // accepted triggers the local player played
	Replies  int            // replies sent
	Refused  map[string]int // by reason: SMSForged, SMSReplayed, ...
	Highest  uint32         // the highest sequence number accepted
}

// modem is the receiver's SMS state; guarded by its mu.
type modem struct {
	mu     sync.Mutex
	stats  SMSStats
	detach func()
	plays  sync.WaitGroup
}

// smsSeqFile keeps the highest sequence number accepted, in
// Config.CacheDir: a trigger replayed after a power cut is still refused.
const smsSeqFile = "sms-seq"

// startModem reads the highest sequence number kept and attaches the
// receiver's modem to its network.
func (r *Receiver) startModem() {
	if r.cfg.CacheDir != "" {
		if b, err := os.ReadFile(filepath.Join(r.cfg.CacheDir, smsSeqFile)); err == nil {
			if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32); err == nil {
				r.modem.mu.Lock()
				r.modem.stats.Highest = max(r.modem.stats.Highest, uint32(n))
				r.modem.mu.Unlock()
			}
		}
	}
	if r.cfg.NoSMS || r.cfg.SMS == nil || r.cfg.MSISDN == "" {
		return
	}
	d := r.cfg.SMS.Attach(r.cfg.MSISDN, r.ReceiveSMS)
	r.modem.mu.Lock()
	r.modem.detach = d
	r.modem.mu.Unlock()
}

// stopModem detaches the modem (a power cut or a close turns it off):
// once it returns no SMS is being handled, and no play starts (the
// receiver has ended).
func (r *Receiver) stopModem() {
	r.modem.mu.Lock()
	d := r.modem.detach
	r.modem.detach = nil
	r.modem.mu.Unlock()
	if d != nil {
		d()
	}
}

// SMS returns what the modem did.
func (r *Receiver) SMS() SMSStats {
	r.modem.mu.Lock()
	defer r.modem.mu.Unlock()
	st := r.modem.stats
	st.Refused = make(map[string]int, len(r.modem.stats.Refused))
	for k, v := range r.modem.stats.Refused {
		st.Refused[k] = v
	}
	return st
}

// smsReason names why err refused a trigger.
func smsReason(err error) string {
	switch {
	case errors.Is(err, protocol.ErrSMSSignature):
		return SMSForged
	case errors.Is(err, protocol.ErrSMSExpired):
		return SMSExpired
	case errors.Is(err, protocol.ErrSMSArea):
		return SMSArea
	case errors.Is(err, protocol.ErrSMSReplayed):
		return SMSReplayed
	}
	return SMSMalformed
}

// ReceiveSMS is the modem's handler of an incoming SMS from number from.
// A trigger is checked (signature, expiry, area, sequence, in that order);
// an accepted one raises the highest sequence before anything plays, so
// the same text later is a replay.
func (r *Receiver) ReceiveSMS(from, text string) {
	if r.cfg.NoSMS || r.ended.Load() {
		return
	}
	t, err := protocol.VerifySMSTrigger(r.cfg.StationKey, text)
	r.modem.mu.Lock()
	r.modem.stats.Received++
	if err == nil {
		err = protocol.AcceptSMSTrigger(t, time.Now(), r.modem.stats.Highest, r.cfg.AreaCodes)
	}
	if err != nil {
		reason := smsReason(err)
		if r.modem.stats.Refused == nil {
			r.modem.stats.Refused = map[string]int{}
		}
		r.modem.stats.Refused[reason]++
		r.modem.mu.Unlock()
		r.log.Warn("sms trigger refused", "from", from, "reason", reason, "err", err)
		return
	}
	r.modem.stats.Highest = t.Seq
	r.modem.stats.Accepted++
	if r.cfg.CacheDir != "" {
		// Kept before it plays (under the lock: in order).
		if err := writeAtomic(filepath.Join(r.cfg.CacheDir, smsSeqFile), []byte(strconv.FormatUint(uint64(t.Seq), 10))); err != nil {
			r.log.Warn("sms sequence number not kept", "err", err)
		}
	}
	r.modem.plays.Add(1)
	r.modem.mu.Unlock()
	r.log.Info("sms trigger accepted", "from", from, "seq", t.Seq, "code", t.Code, "session", t.Session, "area", t.Area)
	go func() {
		defer r.modem.plays.Done()
		r.playSMS(from, t)
	}()
}

// playSMS plays an accepted trigger through the local player and, once it
// ended, replies by SMS if MQTT is still down.
func (r *Receiver) playSMS(from string, t protocol.SMSTrigger) {
	if r.find(t.Session) != nil {
		// The play_stored command (or the stream) of that session came
		// too: it is not played twice.
		r.log.Info("sms trigger for a session already played", "session", t.Session)
		return
	}
	played, started, err := r.smsPlay(t)
	if err != nil {
		r.modem.mu.Lock()
		if r.modem.stats.Refused == nil {
			r.modem.stats.Refused = map[string]int{}
		}
		reason := CodeUnavailable
		var le *LocalPlayError
		if errors.As(err, &le) {
			reason = le.Code // not_cached, busy, expired
		}
		r.modem.stats.Refused[reason]++
		r.modem.mu.Unlock()
		r.log.Warn("sms trigger not played", "session", t.Session, "code", t.Code, "err", err)
		return
	}
	r.modem.mu.Lock()
	r.modem.stats.Played++
	r.modem.mu.Unlock()
	if c := r.mqttClient(); c != nil && c.IsConnectionOpen() {
		return // its events report the play
	}
	r.replySMS(from, t, played, started)
}

// replySMS sends the "played N" reply to from.
func (r *Receiver) replySMS(from string, t protocol.SMSTrigger, played int, started time.Time) {
	text, err := protocol.EncodeSMSReply(protocol.SMSReplyKeyFromPassword(r.cfg.Password), protocol.SMSReply{
		Device: r.cfg.ID, Seq: t.Seq, Session: t.Session, Played: played, Started: started})
	if err != nil {
		r.log.Error("sms reply", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.cfg.SMS.Send(ctx, r.cfg.MSISDN, from, text); err != nil {
		r.log.Warn("sms reply not sent", "to", from, "err", err)
		return
	}
	r.modem.mu.Lock()
	r.modem.stats.Replies++
	r.modem.mu.Unlock()
	r.log.Info("sms reply sent", "to", from, "session", t.Session, "played", played)
}

// smsPlay plays stored message t.Code through the local player (as a
// play_stored, but arbitrated by the receiver: a session of a higher
// priority keeps it) and returns, once the play ended, the repeats that
// played in full and when its first frame played.
func (r *Receiver) smsPlay(t protocol.SMSTrigger) (played int, started time.Time, err error) {
	if r.ended.Load() {
		return 0, time.Time{}, errors.New("receiver ended")
	}
	err = r.PlayLocal(LocalPlay{Session: t.Session, Kind: protocol.CacheKindStored, Key: protocol.StoredKey(t.Code),
		Priority: t.Priority, Repeats: t.Repeats, Volume: t.Volume, Until: t.Expires})
	if err != nil {
		return 0, time.Time{}, err
	}
	s := r.find(t.Session)
	if s == nil {
		return 0, time.Time{}, errors.New("local play not found")
	}
	<-s.done
	st := s.snapshot()
	perRepeat := uint64(max(s.args.Frames/max(t.Repeats, 1), 1))
	heard := st.Played - min(st.Played, st.Muted+st.Silence)
	return int(min(heard/perRepeat, uint64(t.Repeats))), st.FirstPlayed, nil
}
