package media

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/loa-broadcast/loa/protocol"
)

// silenceWarmup is how many frames of silence the encoder sees before the
// one kept: by then it has left its start-up state, so the packet is what
// it emits for silence in the middle of a stream.
const silenceWarmup = 3

var silencePacket = sync.OnceValues(func() ([]byte, error) {
	enc, err := newEncoder(DefaultBitrate)
	if err != nil {
		return nil, err
	}
	frame := make([]float32, protocol.FrameSamples)
	pkt := make([]byte, maxPacketBytes)
	var n int
	for range silenceWarmup + 1 {
		if n, err = enc.EncodeFloat32(frame, pkt); err != nil {
			return nil, fmt.Errorf("media: opus encode silence: %w", err)
		}
	}
	return bytes.Clone(pkt[:n]), nil
})

// SilencePacket returns one 20 ms Opus packet of digital silence, encoded
// as Transcode encodes (48 kHz mono, DefaultBitrate, in-band FEC, DTX off)
// so that it can sit between recorded packets in one stream. It is encoded
// once; each call returns a new copy the caller may keep or change.
func SilencePacket() ([]byte, error) {
	pkt, err := silencePacket()
	if err != nil {
		return nil, err
	}
	return bytes.Clone(pkt), nil
}
