package broadcast

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"reflect"
	"unsafe"
)

// gcmSealer seals RTP under AEAD_AES_128_GCM (RFC 7714) as pion/srtp does,
// without its per-packet bookkeeping (header parsing, per-SSRC state
// maps): at 10,000 receivers a packet is sealed 10,000 times, and that
// bookkeeping cost more than the cipher. The session key and salt are
// derived as pion derives them (RFC 3711 §4.3.1, AES-CM PRF, kdr 0);
// TestGCMSealerMatchesPion holds its output to pion's byte for byte, and
// receivers open it with pion.
type gcmSealer struct {
	aead cipher.AEAD
	salt [12]byte
	iv   [12]byte // scratch: one on the stack escapes through the interface call
	// mem and size are the object behind aead (its key schedule and
	// GHASH table), for warm (fanout.go) to prefetch; nil if aead is not a
	// pointer.
	mem  unsafe.Pointer
	size uintptr
}

// SRTP key derivation labels (RFC 3711 §4.3.1).
const (
	labelSRTPKey  = 0x00
	labelSRTPSalt = 0x02
)

func newGCMSealer(masterKey, masterSalt []byte) (*gcmSealer, error) {
	if len(masterSalt) != 12 || len(masterKey) != 16 {
		return nil, fmt.Errorf("srtp: AEAD_AES_128_GCM wants a 16-byte key and a 12-byte salt, not %d and %d", len(masterKey), len(masterSalt))
	}
	key, err := srtpKDF(labelSRTPKey, masterKey, masterSalt, len(masterKey))
	if err != nil {
		return nil, err
	}
	salt, err := srtpKDF(labelSRTPSalt, masterKey, masterSalt, len(masterSalt))
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("srtp: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("srtp: %w", err)
	}
	g := &gcmSealer{aead: aead}
	if v := reflect.ValueOf(aead); v.Kind() == reflect.Pointer {
		g.mem, g.size = v.UnsafePointer(), v.Type().Elem().Size()
	}
	copy(g.salt[:], salt)
	return g, nil
}

// srtpKDF is the AES-CM PRF of RFC 3711 §4.3.1 with a key derivation rate
// of 0: the master salt with the label at octet 7, a block counter in the
// last two octets, encrypted under the master key.
func srtpKDF(label byte, masterKey, masterSalt []byte, n int) ([]byte, error) {
	block, err := aes.NewCipher(masterKey)
	if err != nil {
		return nil, fmt.Errorf("srtp: %w", err)
	}
	var in [aes.BlockSize]byte
	copy(in[:], masterSalt)
	in[7] ^= label
	out := make([]byte, (n+aes.BlockSize-1)/aes.BlockSize*aes.BlockSize)
	for i := 0; i*aes.BlockSize < n; i++ {
		binary.BigEndian.PutUint16(in[aes.BlockSize-2:], uint16(i))
		block.Encrypt(out[i*aes.BlockSize:], in[:])
	}
	return out[:n], nil
}

// fixedHeader reports whether pkt is RTP with the 12-byte header alone (no
// padding, extension or CSRC): what the engine sends, and all seal takes.
func fixedHeader(pkt []byte) bool {
	return len(pkt) >= 12 && pkt[0]&0xc0 == 0x80 && pkt[0]&0x3f == 0
}

// seal writes the SRTP packet of pkt (fixedHeader) under rollover count
// roc into dst (reused; capacity for len(pkt)+16 keeps it from
// allocating): the header in the clear as the additional data, the
// payload encrypted, the 16-byte tag. The IV is RFC 7714 §8.1's: SSRC,
// ROC and sequence number XOR the session salt. One caller at a time (the
// srtpTx lock).
func (g *gcmSealer) seal(dst, pkt []byte, roc uint32) []byte {
	iv := &g.iv
	iv[0], iv[1] = 0, 0
	copy(iv[2:6], pkt[8:12]) // SSRC
	binary.BigEndian.PutUint32(iv[6:10], roc)
	copy(iv[10:12], pkt[2:4]) // sequence number
	for i := range iv {
		iv[i] ^= g.salt[i]
	}
	dst = append(dst[:0], pkt[:12]...)
	ct := g.aead.Seal(dst[12:12], iv[:], pkt[12:], pkt[:12])
	return dst[:12+len(ct)]
}
