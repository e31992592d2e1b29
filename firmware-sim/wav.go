package firmwaresim

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"

	"github.com/loa-broadcast/loa/protocol"
)

const wavHeaderLen = 44

// wavWriter writes 16-bit mono 48 kHz PCM to a WAV file as it is played;
// Close fixes the sizes in the header.
type wavWriter struct {
	f       *os.File
	w       *bufio.Writer
	samples int64
	buf     []byte
}

func createWAV(path string) (*wavWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("wav: %w", err)
	}
	w := &wavWriter{f: f, w: bufio.NewWriterSize(f, 64<<10)}
	if _, err := w.w.Write(wavHeader(0)); err != nil {
		f.Close()
		return nil, fmt.Errorf("wav: %w", err)
	}
	return w, nil
}

func wavHeader(samples int64) []byte {
	const rate, bits = protocol.ClockRate, 16
	data := uint32(samples * 2)
	h := make([]byte, wavHeaderLen)
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], 36+data)
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], 1) // PCM
	binary.LittleEndian.PutUint16(h[22:], protocol.Channels)
	binary.LittleEndian.PutUint32(h[24:], rate)
	binary.LittleEndian.PutUint32(h[28:], rate*protocol.Channels*bits/8)
	binary.LittleEndian.PutUint16(h[32:], protocol.Channels*bits/8)
	binary.LittleEndian.PutUint16(h[34:], bits)
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], data)
	return h
}

func (w *wavWriter) write(pcm []int16) error {
	w.buf = w.buf[:0]
	for _, s := range pcm {
		w.buf = binary.LittleEndian.AppendUint16(w.buf, uint16(s))
	}
	w.samples += int64(len(pcm))
	_, err := w.w.Write(w.buf)
	return err
}

// close keeps the first samples samples (all that were written, unless a
// write failed part-way) and writes the header.
func (w *wavWriter) close(samples int64) error {
	err := w.w.Flush()
	if samples < w.samples {
		w.samples = samples
		if err == nil {
			err = w.f.Truncate(wavHeaderLen + 2*samples)
		}
	}
	if err == nil {
		_, err = w.f.WriteAt(wavHeader(w.samples), 0)
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("wav: %w", err)
	}
	return nil
}
