package firmwaresim

import (
	"errors"
	"fmt"
)

// opusFrameSamples is the duration in 48 kHz samples of one frame of each
// Opus TOC configuration (RFC 6716 §3.1).
func opusFrameSamples(config byte) int {
	switch {
	case config < 12: // SILK-only: 10, 20, 40, 60 ms
		return [4]int{480, 960, 1920, 2880}[config%4]
	case config < 16: // hybrid: 10, 20 ms
		return [2]int{480, 960}[config%2]
	default: // CELT-only: 2.5, 5, 10, 20 ms
		return [4]int{120, 240, 480, 960}[config%4]
	}
}

// opusPacketSamples checks an Opus packet's framing (RFC 6716 §3.2) and
// returns its duration in 48 kHz samples. It lets a receiver that does not
// decode still tell Opus from garbage.
func opusPacketSamples(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, errors.New("opus: empty packet")
	}
	toc := p[0]
	per := opusFrameSamples(toc >> 3)
	var frames int
	switch toc & 3 {
	case 0: // one frame
		if len(p)-1 > 1275 {
			return 0, errors.New("opus: frame longer than 1275 bytes")
		}
		frames = 1
	case 1: // two frames of equal size
		if (len(p)-1)%2 != 0 || (len(p)-1)/2 > 1275 {
			return 0, errors.New("opus: code 1 packet with odd payload")
		}
		frames = 2
	case 2: // two frames, the first's length coded
		if len(p) < 2 {
			return 0, errors.New("opus: code 2 packet too short")
		}
		n, hdr := int(p[1]), 1
		if n >= 252 {
			if len(p) < 3 {
				return 0, errors.New("opus: code 2 packet too short")
			}
			n, hdr = n+4*int(p[2]), 2
		}
		if 1+hdr+n > len(p) {
			return 0, errors.New("opus: code 2 frame length beyond packet")
		}
		frames = 2
	case 3: // signalled number of frames
		if len(p) < 2 {
			return 0, errors.New("opus: code 3 packet too short")
		}
		frames = int(p[1] & 0x3f)
		if frames == 0 {
			return 0, errors.New("opus: code 3 packet with no frames")
		}
	}
	if total := frames * per; total > 5760 {
		return 0, fmt.Errorf("opus: packet of %d samples exceeds 120 ms", total)
	}
	return frames * per, nil
}
