package broadcast

import (
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/loa-broadcast/loa/protocol"
)

// Caps tells what a receiver announced in its status (devices.Fleet
// implements it); the engine asks it for protocol.CapSRTPGCM.
type Caps interface {
	HasCap(deviceID, capability string) bool
}

// srtpTx seals what the engine sends one SRTP receiver (or one SDES
// listener) under one key. The session's goroutine seals its stream and
// reports; the RTCP reader seals challenges, under the same SRTCP index
// sequence: hence the lock.
type srtpTx struct {
	mu      sync.Mutex
	c       *srtp.Context
	gcm     *gcmSealer // AEAD_AES_128_GCM: RTP sealed without c (srtp_gcm.go); nil for other profiles
	ssrc    uint32
	started bool
	base    uint32 // the stream's rollover count at the first packet sealed
}

func newSRTPTx(profile srtp.ProtectionProfile, key, salt []byte, ssrc uint32) (*srtpTx, error) {
	c, err := srtp.CreateContext(key, salt, profile)
	if err != nil {
		return nil, fmt.Errorf("srtp: %w", err)
	}
	x := &srtpTx{c: c, ssrc: ssrc}
	if profile == srtp.ProtectionProfileAeadAes128Gcm {
		if x.gcm, err = newGCMSealer(key, salt); err != nil {
			return nil, err
		}
	}
	return x, nil
}

// rtp seals the RTP packet pkt (header and payload) into dst. index is
// the packet's place in the stream (initial sequence number + n): the
// rollover count comes from it, never from guessing, so no index is sealed
// twice under one key however long a receiver was not sent anything.
// Receivers count rollovers from the first packet they get with a key
// (RFC 3711 §3.3.1), so the count starts at 0 with each key.
func (x *srtpTx) rtp(dst, pkt []byte, h *rtp.Header, index uint64) ([]byte, error) {
	x.mu.Lock()
	roc := uint32(index >> 16)
	if !x.started {
		x.started, x.base = true, roc
	}
	if x.gcm != nil && fixedHeader(pkt) {
		b := x.gcm.seal(dst, pkt, roc-x.base)
		x.mu.Unlock()
		return b, nil
	}
	defer x.mu.Unlock()
	x.c.SetROC(x.ssrc, roc-x.base)
	return x.c.EncryptRTP(dst, pkt, h)
}

// rtcp seals the RTCP compound pkt into dst.
func (x *srtpTx) rtcp(dst, pkt []byte) ([]byte, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.c.EncryptRTCP(dst, pkt, nil)
}

// srtpRx opens one SRTP receiver's SRTCP, with replay protection on (pion's
// default is off).
type srtpRx struct {
	mu  sync.Mutex
	c   *srtp.Context
	buf []byte
}

func newSRTPRx(key, salt []byte) (*srtpRx, error) {
	c, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm,
		srtp.SRTCPReplayProtection(protocol.SRTPReplayWindow))
	if err != nil {
		return nil, fmt.Errorf("srtp: %w", err)
	}
	return &srtpRx{c: c, buf: make([]byte, 0, maxDatagram)}, nil
}

// open authenticates and decrypts an SRTCP datagram; the result is a copy.
func (x *srtpRx) open(b []byte) ([]byte, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	out, err := x.c.DecryptRTCP(x.buf[:0], b, nil)
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), out...), nil
}

// targetSRTP is an SRTP receiver's crypto in a session (contract v2).
// Guarded by e.mu; tx and rx are replaced, never changed, when the keys are.
type targetSRTP struct {
	keys  protocol.SRTPKeys // what its play command carries
	tx    *srtpTx
	rx    *srtpRx
	holds int // times the receiver was given the session
}

// newTargetSRTP derives a receiver's keys from secret and opens its
// contexts.
func newTargetSRTP(secret []byte, device string, f protocol.Fence, ssrc uint32) (*targetSRTP, error) {
	keys, err := protocol.DeriveSRTPKeys(secret, device, f)
	if err != nil {
		return nil, err
	}
	key, salt, err := keys.Material()
	if err != nil {
		return nil, err
	}
	tx, err := newSRTPTx(srtp.ProtectionProfileAeadAes128Gcm, key, salt, ssrc)
	if err != nil {
		return nil, err
	}
	rx, err := newSRTPRx(key, salt)
	if err != nil {
		return nil, err
	}
	return &targetSRTP{keys: keys, tx: tx, rx: rx}, nil
}

// rekey gives t fresh keys, derived from a secret of its own, when it is
// given the session again (after a preemption): the receiver starts a
// new SRTP context with the new play command, counting rollovers and
// SRTCP indices from zero, which under the old key would reuse packet
// indices. e.mu must be held.
func (e *Engine) rekey(t *target) {
	var secret [protocol.SRTPSecretLen]byte
	rand.Read(secret[:]) // never fails (crypto/rand crashes the program instead)
	sec, err := newTargetSRTP(secret[:], t.device, e.cfg.Fence, t.s.ssrc)
	if err != nil {
		// Only a bad fence or id could fail, and Start checked both.
		e.log.Error("srtp rekey", "session", t.s.id, "device", t.device, "err", err)
		return
	}
	sec.holds = t.sec.holds
	t.sec = sec
}

// challenge is an address challenge in flight (contract v2): sent to to,
// answered only by an authenticated LOA2 response from there with nonce.
type challenge struct {
	to    netip.AddrPort
	nonce [protocol.ChallengeLen]byte
	at    time.Time
}

// challengeReuse is how long a challenge to the same address keeps its
// nonce: a receiver's reports crossing the first challenge would otherwise
// answer a nonce already replaced.
const challengeReuse = 10 * time.Second

// maxChallenges bounds the challenges a receiver has in flight, to
// different addresses: reports forwarded from elsewhere cannot push out
// the one its genuine new address is answering (the oldest goes first).
const maxChallenges = 4

// answers reports whether nonce answers the challenge t has in flight to
// from, and forgets that challenge if so. e.mu must be held.
func (t *target) answers(from netip.AddrPort, nonce []byte) bool {
	for i, c := range t.chals {
		if c.to == from && subtle.ConstantTimeCompare(nonce, c.nonce[:]) == 1 {
			t.chals = append(t.chals[:i], t.chals[i+1:]...)
			return true
		}
	}
	return false
}

// challengeTo returns the challenge to send to addr: the one in flight
// there if recent, else a new one. e.mu must be held.
func (t *target) challengeTo(addr netip.AddrPort, now time.Time) challenge {
	for i, c := range t.chals {
		if c.to == addr {
			if now.Sub(c.at) <= challengeReuse {
				return c
			}
			t.chals = append(t.chals[:i], t.chals[i+1:]...)
			break
		}
	}
	c := challenge{to: addr, at: now}
	rand.Read(c.nonce[:])
	if len(t.chals) == maxChallenges {
		t.chals = append(t.chals[:0], t.chals[1:]...)
	}
	t.chals = append(t.chals, c)
	return c
}

// sealedDest is an SRTP receiver or SDES listener the stream goes to.
type sealedDest struct {
	ua *net.UDPAddr
	tx *srtpTx
}

// destSet is who gets a session's packets now, one part per shard.
type destSet struct {
	parts []destPart
	n     int // receivers in every part
}

func (d *destSet) len() int { return d.n }

// listener is a static third-party receiver added through SDP.
type listener struct {
	shard int
	addr  netip.AddrPort
	ua    *net.UDPAddr
	tx    *srtpTx // SDES key; nil: plain RTP (an admin asked)
}
