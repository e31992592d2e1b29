package media

/*
#cgo pkg-config: opus
#include <opus.h>

// loa_lookahead asks libopus for the encoder's lookahead (its algorithmic
// delay) at 48 kHz mono; hraban/opus does not expose OPUS_GET_LOOKAHEAD.
static int loa_lookahead(int application) {
	int err = 0;
	OpusEncoder *enc = opus_encoder_create(48000, 1, application, &err);
	if (err != OPUS_OK || enc == NULL) {
		return -1;
	}
	opus_int32 la = -1;
	if (opus_encoder_ctl(enc, OPUS_GET_LOOKAHEAD(&la)) != OPUS_OK) {
		la = -1;
	}
	opus_encoder_destroy(enc);
	return la;
}
*/
import "C"

import (
	"fmt"
	"sync"

	"github.com/hraban/opus"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

const (
	opusApplication = opus.AppAudio // bulletins are speech, but music is common too
	opusLossPerc    = 10            // FEC sized for typical 4G loss; broadcast re-tunes live streams
	maxPacketBytes  = 4000          // far above 20 ms at any bitrate we use
	maxFrameSamples = 5760          // 120 ms at 48 kHz, the longest Opus packet
)

// encoderLookahead is the number of samples the encoder delays its output
// by; it is the pre-skip a decoder must drop (RFC 7845 §4.2).
var encoderLookahead = sync.OnceValues(func() (int, error) {
	la := int(C.loa_lookahead(C.int(opusApplication)))
	if la < 0 {
		return 0, fmt.Errorf("media: libopus did not report its lookahead")
	}
	return la, nil
})

// newEncoder returns a 48 kHz mono encoder set up for recorded media sent
// over lossy 4G: 20 ms frames, in-band FEC, DTX off (continuous packets keep
// NAT mappings open), maximum complexity since media is encoded only once.
func newEncoder(bitrate int) (*opus.Encoder, error) {
	enc, err := opus.NewEncoder(protocol.ClockRate, 1, opusApplication)
	if err != nil {
		return nil, fmt.Errorf("media: new opus encoder: %w", err)
	}
	for _, set := range []struct {
		name string
		err  error
	}{
		{"bitrate", enc.SetBitrate(bitrate)},
		{"complexity", enc.SetComplexity(10)},
		{"in-band FEC", enc.SetInBandFEC(true)},
		{"packet loss", enc.SetPacketLossPerc(opusLossPerc)},
		{"DTX", enc.SetDTX(false)},
	} {
		if set.err != nil {
			return nil, fmt.Errorf("media: set opus %s: %w", set.name, set.err)
		}
	}
	return enc, nil
}

// DecodePackets decodes Opus packets to 48 kHz mono PCM, for tests and
// analysis. It keeps everything the decoder outputs: the caller drops the
// first PreSkip samples. Stereo packets are downmixed by the decoder.
func DecodePackets(packets [][]byte) ([]int16, error) {
	dec, err := opus.NewDecoder(protocol.ClockRate, 1)
	if err != nil {
		return nil, fmt.Errorf("media: new opus decoder: %w", err)
	}
	pcm := make([]int16, 0, len(packets)*protocol.FrameSamples)
	buf := make([]int16, maxFrameSamples)
	for i, pkt := range packets {
		if len(pkt) == 0 {
			return nil, loa.Errorf(loa.EINVALID, "Opus packet %d is empty", i)
		}
		n, err := dec.Decode(pkt, buf)
		if err != nil {
			return nil, loa.Errorf(loa.EINVALID, "Opus packet %d cannot be decoded: %v", i, err)
		}
		pcm = append(pcm, buf[:n]...)
	}
	return pcm, nil
}
