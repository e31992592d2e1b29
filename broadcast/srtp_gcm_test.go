package broadcast

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/loa-broadcast/loa/protocol"
)

// TestGCMSealerMatchesPion: the engine's own AEAD_AES_128_GCM sealing gives
// pion's bytes for the same keys and packet indices, across rollovers and
// a stream that starts late in its sequence space, and a receiver's pion
// context opens it.
func TestGCMSealerMatchesPion(t *testing.T) {
	key, salt := make([]byte, 16), make([]byte, 12)
	rand.Read(key)
	rand.Read(salt)
	const ssrc = 0x1234abcd
	fast, err := newSRTPTx(srtp.ProtectionProfileAeadAes128Gcm, key, salt, ssrc)
	if err != nil {
		t.Fatal(err)
	}
	if fast.gcm == nil {
		t.Fatal("no GCM sealer for AEAD_AES_128_GCM")
	}
	ref, err := newSRTPTx(srtp.ProtectionProfileAeadAes128Gcm, key, salt, ssrc)
	if err != nil {
		t.Fatal(err)
	}
	ref.gcm = nil // pion's path
	open, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm,
		srtp.SRTPReplayProtection(protocol.SRTPReplayWindow))
	if err != nil {
		t.Fatal(err)
	}
	payload := opusPackets(t, 1)[0]
	var h, rh rtp.Header
	a, b := make([]byte, 0, sealedSize), make([]byte, 0, sealedSize)
	seq0 := uint64(0xfff0) + 3<<16 // a late start: the rollover count still begins at 0
	for n := uint64(0); n < 70000; n += 1 + n/7 {
		index := seq0 + n
		hdr := rtp.Header{Version: 2, PayloadType: protocol.PayloadType, SequenceNumber: uint16(index),
			Timestamp: uint32(n * 960), SSRC: ssrc}
		pkt, err := hdr.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		pkt = append(pkt, payload...)
		got, err := fast.rtp(a[:0], pkt, &h, index)
		if err != nil {
			t.Fatal(err)
		}
		want, err := ref.rtp(b[:0], pkt, &h, index)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("index %d: sealed %x, pion %x", index, got, want)
		}
		plain, err := open.DecryptRTP(nil, got, &rh)
		if err != nil || !bytes.Equal(plain, pkt) {
			t.Fatalf("index %d: a receiver opens it as %x, %v", index, plain, err)
		}
	}
	// A packet with a CSRC goes through pion, still correct.
	hdr := rtp.Header{Version: 2, PayloadType: protocol.PayloadType, SequenceNumber: 7, SSRC: ssrc, CSRC: []uint32{9}}
	pkt, _ := hdr.Marshal()
	pkt = append(pkt, payload...)
	got, err := fast.rtp(a[:0], pkt, &h, seq0+70001)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ref.rtp(b[:0], pkt, &h, seq0+70001)
	if !bytes.Equal(got, want) {
		t.Errorf("with a CSRC: sealed %x, pion %x", got, want)
	}
}
