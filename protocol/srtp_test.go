package protocol

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// The golden vectors of CONTRACT.md ("Keys"): a receiver built from the
// document alone must derive these bytes.
const (
	goldenSecret = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	goldenDevice = "rx-0001"
	goldenKey    = "7ec909dcfe4eec559b142129b55e48dc"
	goldenSalt   = "6fde2c30912b4d8ab1eac7cc"
	// RTP (pt 111, seq 1, ts 960, ssrc 0x12345678, payload "loa")
	// encrypted under key 00112233445566778899aabbccddeeff, salt
	// 0102030405060708090a0b0c (ROC 0).
	goldenPacket = "806f0001000003c0123456788cdc628b05a8e2a6fbae90d7982817ffda913d"
)

func TestDeriveSRTPKeysGolden(t *testing.T) {
	secret, _ := hex.DecodeString(goldenSecret)
	k, err := DeriveSRTPKeys(secret, goldenDevice, Fence{Gen: 1, Term: 0})
	if err != nil {
		t.Fatal(err)
	}
	if k.Profile != SRTPProfile || k.Key != goldenKey || k.Salt != goldenSalt {
		t.Fatalf("derived %+v, want key %s salt %s", k, goldenKey, goldenSalt)
	}
	// Every input changes the output.
	for name, f := range map[string]func() (SRTPKeys, error){
		"device": func() (SRTPKeys, error) { return DeriveSRTPKeys(secret, "rx-0002", Fence{Gen: 1}) },
		"gen":    func() (SRTPKeys, error) { return DeriveSRTPKeys(secret, goldenDevice, Fence{Gen: 2}) },
		"term":   func() (SRTPKeys, error) { return DeriveSRTPKeys(secret, goldenDevice, Fence{Gen: 1, Term: 1}) },
		"secret": func() (SRTPKeys, error) {
			s := bytes.Clone(secret)
			s[0] ^= 1
			return DeriveSRTPKeys(s, goldenDevice, Fence{Gen: 1})
		},
	} {
		o, err := f()
		if err != nil {
			t.Fatal(err)
		}
		if o.Key == k.Key || o.Salt == k.Salt {
			t.Errorf("changing the %s left the key or salt unchanged", name)
		}
	}
	if _, err := DeriveSRTPKeys(secret[:16], goldenDevice, Fence{}); err == nil {
		t.Error("a 16-byte secret was accepted")
	}
	if _, err := DeriveSRTPKeys(secret, "", Fence{}); err == nil {
		t.Error("an empty device id was accepted")
	}
}

func TestSRTPPacketGolden(t *testing.T) {
	k := SRTPKeys{Profile: SRTPProfile, Key: "00112233445566778899aabbccddeeff", Salt: "0102030405060708090a0b0c"}
	key, salt, err := k.Material()
	if err != nil {
		t.Fatal(err)
	}
	enc, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm)
	if err != nil {
		t.Fatal(err)
	}
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: PayloadType, SequenceNumber: 1, Timestamp: FrameSamples, SSRC: 0x12345678}, Payload: []byte("loa")}
	plain, _ := p.Marshal()
	got, err := enc.EncryptRTP(nil, plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(got) != goldenPacket {
		t.Fatalf("encrypted %x, want %s", got, goldenPacket)
	}
	dec, _ := srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm, srtp.SRTPReplayProtection(SRTPReplayWindow))
	if out, err := dec.DecryptRTP(nil, got, nil); err != nil || !bytes.Equal(out, plain) {
		t.Fatalf("decrypt: %x, %v", out, err)
	}
	if _, err := dec.DecryptRTP(nil, got, nil); err == nil {
		t.Error("a replayed packet decrypted")
	}
	forged := bytes.Clone(got)
	forged[len(forged)-1] ^= 1
	if _, err := dec.DecryptRTP(nil, forged, nil); err == nil {
		t.Error("a packet with a changed tag decrypted")
	}
}

func TestSRTPKeysMaterialRefusesBadKeys(t *testing.T) {
	for _, k := range []SRTPKeys{
		{Profile: "AES_CM_128_HMAC_SHA1_80", Key: "00112233445566778899aabbccddeeff", Salt: "0102030405060708090a0b0c"},
		{Profile: SRTPProfile, Key: "0011", Salt: "0102030405060708090a0b0c"},
		{Profile: SRTPProfile, Key: "00112233445566778899aabbccddeeff", Salt: "zz02030405060708090a0b0c"},
	} {
		if _, _, err := k.Material(); err == nil {
			t.Errorf("%+v accepted", k)
		}
	}
}

// A listener's SDP offers SRTP with its SDES key (RFC 4568), or plain RTP
// without one.
func TestSDPWithSDES(t *testing.T) {
	key := make([]byte, SDESKeyLen+SDESSaltLen)
	for i := range key {
		key[i] = byte(i)
	}
	src, dest := netip.MustParseAddr("203.0.113.5"), netip.MustParseAddrPort("198.51.100.7:6000")
	sdp := SDP("9f2c", 7, src, dest, key)
	for _, want := range []string{"m=audio 6000 RTP/SAVP 111\r\n",
		"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.StdEncoding.EncodeToString(key) + "\r\n"} {
		if !strings.Contains(sdp, want) {
			t.Errorf("SDP lacks %q:\n%s", want, sdp)
		}
	}
	plain := SDP("9f2c", 7, src, dest, nil)
	if !strings.Contains(plain, "m=audio 6000 RTP/AVP 111\r\n") || strings.Contains(plain, "a=crypto") {
		t.Errorf("plain SDP:\n%s", plain)
	}
}
