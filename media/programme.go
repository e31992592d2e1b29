package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/loa-broadcast/loa"
)

// demoText is what the demo programme says, in Vietnamese.
const demoText = "Đài truyền thanh xã An Bình kính chào bà con. " +
	"Đây là buổi phát thử nghiệm hệ thống loa truyền thanh thông minh."

// DemoProgramme builds the demo programme as a WAV file of length d: a
// chime, spoken Vietnamese from espeak-ng when it is installed, and a
// tone sequence to fill the rest.
func DemoProgramme(ctx context.Context, d time.Duration) ([]byte, string, error) {
	rate := 48000
	var speech []int16
	desc := "chime and tone sequence (espeak-ng not installed)"
	speech, srate, err := EspeakNG{}.Synthesize(ctx, demoText)
	switch {
	case err == nil:
		rate = srate
		desc = "chime, spoken Vietnamese (espeak-ng vi) and tones"
	case loa.ErrorCode(err) != loa.EUNAVAILABLE:
		return nil, "", err
	}
	total := int(d.Seconds() * float64(rate))
	pcm := make([]int16, 0, total)
	for _, f := range []float64{660, 880, 1100} {
		pcm = append(pcm, Tone(f, rate, 250*time.Millisecond, 0.5)...)
	}
	pcm = append(pcm, make([]int16, rate/5)...)
	pcm = append(pcm, speech...)
	for i := 0; len(pcm) < total; i++ {
		pcm = append(pcm, Tone(440*math.Pow(2, float64(i%8)/8), rate, 400*time.Millisecond, 0.4)...)
		pcm = append(pcm, make([]int16, rate/10)...)
	}
	if len(pcm) > total && speech == nil {
		pcm = pcm[:total]
	}
	var buf bytes.Buffer
	if err := EncodeWAV(&buf, pcm, rate, 1); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), desc, nil
}

// Tone is a sine at f Hz with 10 ms fades, so joins do not click.
func Tone(f float64, rate int, d time.Duration, amp float64) []int16 {
	n := int(d.Seconds() * float64(rate))
	fade := rate / 100
	out := make([]int16, n)
	for i := range out {
		g := amp
		if i < fade {
			g *= float64(i) / float64(fade)
		} else if n-i < fade {
			g *= float64(n-i) / float64(fade)
		}
		out[i] = int16(g * 32767 * math.Sin(2*math.Pi*f*float64(i)/float64(rate)))
	}
	return out
}

// ReadWAV16Mono reads the 16-bit mono PCM WAV espeak-ng writes.
func ReadWAV16Mono(b []byte) ([]int16, int, error) {
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, 0, errors.New("not a RIFF/WAVE file")
	}
	var rate, channels, bits int
	for p := 12; p+8 <= len(b); {
		id, size := string(b[p:p+4]), int(binary.LittleEndian.Uint32(b[p+4:p+8]))
		p += 8
		end := min(p+size, len(b)) // espeak-ng may write a placeholder size
		switch id {
		case "fmt ":
			if end-p < 16 {
				return nil, 0, errors.New("short fmt chunk")
			}
			channels = int(binary.LittleEndian.Uint16(b[p+2:]))
			rate = int(binary.LittleEndian.Uint32(b[p+4:]))
			bits = int(binary.LittleEndian.Uint16(b[p+14:]))
		case "data":
			if channels != 1 || bits != 16 || rate == 0 {
				return nil, 0, fmt.Errorf("want 16-bit mono, got %d-bit %d channels at %d Hz", bits, channels, rate)
			}
			pcm := make([]int16, (end-p)/2)
			for i := range pcm {
				pcm[i] = int16(binary.LittleEndian.Uint16(b[p+2*i:]))
			}
			return pcm, rate, nil
		}
		p = end + size&1
	}
	return nil, 0, errors.New("no data chunk")
}
