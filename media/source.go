package media

import (
	"context"
	"io"
)

// A source is a decoded input: interleaved float samples in [-1, 1] at the
// file's own rate and channel count.
type source interface {
	rate() int
	channels() int
	// read fills p (a multiple of channels long) and returns the number of
	// samples per channel written; io.EOF when there are no more.
	read(p []float32) (int, error)
}

const chunkFrames = 4096 // samples per channel handled per step

// pump decodes src to 48 kHz mono and hands it to fn in chunks, checking
// ctx between chunks. fn must not keep the slice.
func pump(ctx context.Context, src source, fn func([]float32) error) error {
	ch := src.channels()
	rs, err := newResampler(src.rate())
	if err != nil {
		return err
	}
	in := make([]float32, chunkFrames*ch)
	mono := make([]float32, chunkFrames)
	var out []float32
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := src.read(in)
		if n > 0 {
			downmix(mono[:n], in[:n*ch], ch)
			out = rs.process(out[:0], mono[:n])
			if err := fn(out); err != nil {
				return err
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	out = rs.flush(out[:0])
	if len(out) > 0 {
		return fn(out)
	}
	return nil
}

// downmix averages the channels: equal weight keeps a centred voice at the
// level it had in each channel.
func downmix(dst, in []float32, ch int) {
	if ch == 1 {
		copy(dst, in)
		return
	}
	scale := 1 / float32(ch)
	for i := range dst {
		var s float32
		for _, v := range in[i*ch : i*ch+ch] {
			s += v
		}
		dst[i] = s * scale
	}
}

// closeSource stops a source that runs something (an ffmpeg child).
func closeSource(src source) {
	if c, ok := src.(io.Closer); ok {
		c.Close()
	}
}
