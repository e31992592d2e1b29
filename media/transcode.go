// Package media ingests uploaded audio and stores it as Ogg Opus, so that
// playing a recording later costs no encoder CPU: Transcode decodes WAV, MP3
// or Ogg Opus, converts it to 48 kHz mono, normalises its loudness and
// encodes it once; PacketReader hands the stored packets to the playout
// path as they are, and Playlist joins several stored files and their gaps
// of silence into one session's stream.
package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"syscall"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// Options tune Transcode; zero fields take the defaults.
type Options struct {
	MaxBytes    int64         // input limit; default 200 MiB; over it -> loa.ETOOLARGE
	MaxDuration time.Duration // default 2h; over it -> loa.ETOOLARGE, decoding no further
	TargetLUFS  float64       // default -16 (integrated loudness, ITU-R BS.1770 K-weighted, gated); peaks limited to -1 dBFS
	Bitrate     int           // default 32000
	FFmpeg      string        // the ffmpeg that decodes formats other than WAV, MP3 and Ogg Opus; default "ffmpeg" on PATH
}

// Defaults and fixed levels.
const (
	DefaultMaxBytes    = 200 << 20
	DefaultMaxDuration = 2 * time.Hour
	DefaultTargetLUFS  = -16.0
	DefaultBitrate     = 32000

	// CeilingDBFS is the sample peak the limiter allows.
	CeilingDBFS = -1.0
	// MaxGainDB caps the normalising gain: past it a faint recording is
	// mostly noise, and raising it further only makes the noise loud.
	MaxGainDB = 30.0
)

// Info describes what Transcode did.
type Info struct {
	Format       string        // "wav", "mp3", "opus", or one ffmpeg decodes: "mp4", "flac", "ogg", "wma", …
	Decoder      string        // what decoded it: "builtin:wav", "builtin:mp3", "builtin:opus", "ffmpeg:aac", "ffmpeg:flac", …
	Frames       int           // 20 ms Opus packets written
	Duration     time.Duration // of the audio, without the encoder's pre-skip and padding
	LoudnessLUFS float64       // measured on the input (as 48 kHz mono) before gain
	GainDB       float64       // gain applied (the limiter may lower peaks further)
}

func (o Options) withDefaults() Options {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxDuration <= 0 {
		o.MaxDuration = DefaultMaxDuration
	}
	if o.TargetLUFS == 0 {
		o.TargetLUFS = DefaultTargetLUFS
	}
	if o.Bitrate <= 0 {
		o.Bitrate = DefaultBitrate
	}
	return o
}

// Transcode detects the format of r from its magic bytes (RIFF/WAVE, ID3 or
// an MPEG frame sync, OggS with OpusHead), decodes it to 48 kHz mono
// (stereo is downmixed, other rates resampled with a windowed-sinc
// polyphase filter), normalises its integrated loudness to TargetLUFS with
// peaks limited to -1 dBFS (gain is capped at MaxGainDB), encodes it with libopus (20 ms frames, in-band
// FEC, DTX off) and writes an Ogg Opus file to w.
//
// The input is read twice, once to measure loudness and once to encode:
// an r that is an io.ReaderAt and io.Seeker (an *os.File) is read in place,
// anything else is first copied to memory or, past a few MiB, a temporary
// file.
//
// The length is bounded before the work: what the container declares (a
// WAV header, an MP3 file's frames, an Ogg Opus file's last granule
// position) is checked before decoding, and decoding stops at
// MaxDuration whatever was declared.
//
// Errors are *loa.Error with EINVALID (empty, damaged, truncated, silent or
// shorter than one frame, NaN or infinite samples), EUNSUPPORTED (not WAV, MP3 or Ogg Opus, or an
// encoding of those Loa does not decode) or ETOOLARGE; others are I/O
// failures or ctx's error. Part of the output may have been written to w
// when an error is returned.
func Transcode(ctx context.Context, r io.Reader, w io.Writer, opt Options) (Info, error) {
	opt = opt.withDefaults()
	if opt.TargetLUFS < -70 || opt.TargetLUFS > 0 {
		return Info{}, loa.Errorf(loa.EINVALID, "target loudness %v LUFS is out of range (-70 to 0)", opt.TargetLUFS)
	}
	if opt.Bitrate < 6000 || opt.Bitrate > 510000 {
		return Info{}, loa.Errorf(loa.EINVALID, "Opus bitrate %d bit/s is out of range (6000 to 510000)", opt.Bitrate)
	}
	in, size, cleanup, err := spool(ctx, r, opt.MaxBytes)
	if err != nil {
		return Info{}, err
	}
	defer cleanup()
	if size == 0 {
		return Info{}, loa.Errorf(loa.EINVALID, "file is empty")
	}
	head := make([]byte, 256)
	n, err := in.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return Info{}, fmt.Errorf("media: read upload: %w", err)
	}
	format, err := detect(head[:n])
	if err != nil {
		return Info{}, err
	}
	if format.name == "mp3" && string(head[:3]) == "ID3" {
		// An ID3 tag may head an AAC or FLAC file too.
		if format, err = pastID3(in, size); err != nil {
			return Info{}, err
		}
	}
	info := Info{Format: format.name, Decoder: "builtin:" + format.name}
	if err := checkLength(format.name, in, size, opt.MaxDuration); err != nil {
		return info, err
	}
	open := func() (source, error) { return openSource(format.name, in, size, opt.MaxDuration) }
	var ff *ffmpegSource // the last ffmpeg run
	if format.ffmpeg() {
		// Decoded twice, like the others, rather than kept: ffmpeg's
		// decoders cost little next to the Opus encoder, and the
		// decoded audio of a long file would not fit in memory.
		file, err := newFFmpegInput(ctx, in, size)
		if err != nil {
			return info, err
		}
		defer file.cleanup()
		open = func() (source, error) {
			s, err := startFFmpeg(ctx, opt.FFmpeg, format, file.f, opt.MaxDuration)
			if err != nil {
				return nil, err
			}
			ff = s
			return s, nil
		}
	}

	meter, err := measure(ctx, open, opt.MaxDuration)
	if err != nil {
		return info, err
	}
	if ff != nil {
		info.Decoder = ff.decoder()
	}
	samples := meter.n
	if samples < protocol.FrameSamples {
		return info, loa.Errorf(loa.EINVALID, "the audio is too short: %v, less than one %v frame", dur(samples), protocol.FrameDuration)
	}
	info.LoudnessLUFS = meter.integrated()
	if math.IsInf(info.LoudnessLUFS, -1) {
		return info, loa.Errorf(loa.EINVALID, "the audio is silent")
	}
	info.GainDB = min(opt.TargetLUFS-info.LoudnessLUFS, MaxGainDB)
	info.Duration = dur(samples)
	info.Frames, err = encode(ctx, open, w, samples, info.GainDB, opt.Bitrate)
	return info, err
}

// measure is the first pass: loudness and length of the 48 kHz mono signal.
func measure(ctx context.Context, open func() (source, error), maxDur time.Duration) (*loudnessMeter, error) {
	src, err := open()
	if err != nil {
		return nil, err
	}
	defer closeSource(src)
	meter := newLoudnessMeter()
	limit := int64(maxDur.Seconds() * protocol.ClockRate)
	err = pump(ctx, src, func(pcm []float32) error {
		meter.add(pcm)
		if meter.n > limit {
			return loa.Errorf(loa.ETOOLARGE, "the audio is longer than the %v limit; decoding stopped there", maxDur)
		}
		return nil
	})
	return meter, err
}

var errNondeterministic = errors.New("media: the input decoded differently the second time")

// encode is the second pass: gain, limiter, Opus, Ogg. It returns the
// number of packets written.
func encode(ctx context.Context, open func() (source, error), w io.Writer, samples int64, gainDB float64, bitrate int) (int, error) {
	preSkip, err := encoderLookahead()
	if err != nil {
		return 0, err
	}
	enc, err := newEncoder(bitrate)
	if err != nil {
		return 0, err
	}
	ogg := NewOggWriter(w, preSkip)
	gain := float32(math.Pow(10, gainDB/20))
	lim := newLimiter(float32(math.Pow(10, CeilingDBFS/20)))
	// The encoder delays its output by preSkip samples, so it must be fed
	// that much past the end to emit all of the audio; the last packet's
	// granule then trims what lies beyond (RFC 7845 §4.5).
	total := samples + int64(preSkip)
	frames := int((total + protocol.FrameSamples - 1) / protocol.FrameSamples)
	written := 0
	frame := make([]float32, 0, protocol.FrameSamples)
	pkt := make([]byte, maxPacketBytes)
	emit := func(pcm []float32) error {
		for len(pcm) > 0 {
			n := min(len(pcm), protocol.FrameSamples-len(frame))
			frame = append(frame, pcm[:n]...)
			pcm = pcm[n:]
			if len(frame) < protocol.FrameSamples {
				break
			}
			if written == frames {
				return errNondeterministic
			}
			n, err := enc.EncodeFloat32(frame, pkt)
			if err != nil {
				return fmt.Errorf("media: opus encode: %w", err)
			}
			written++
			claim := protocol.FrameSamples
			if written == frames {
				claim = int(total - int64(frames-1)*protocol.FrameSamples)
			}
			if err := ogg.WritePacket(pkt[:n], claim); err != nil {
				return err
			}
			frame = frame[:0]
		}
		return nil
	}

	src, err := open()
	if err != nil {
		return 0, err
	}
	defer closeSource(src)
	var fed int64
	var scaled, limited []float32
	err = pump(ctx, src, func(pcm []float32) error {
		if fed += int64(len(pcm)); fed > samples {
			return errNondeterministic
		}
		scaled = scaled[:0]
		for _, v := range pcm {
			scaled = append(scaled, v*gain)
		}
		limited = lim.process(limited[:0], scaled)
		return emit(limited)
	})
	if err != nil {
		return written, err
	}
	if fed != samples {
		return written, errNondeterministic
	}
	limited = lim.flush(limited[:0])
	pad := make([]float32, frames*protocol.FrameSamples-int(samples)) // silence
	if err := emit(append(limited, pad...)); err != nil {
		return written, err
	}
	if written != frames {
		return written, fmt.Errorf("media: wrote %d frames, expected %d", written, frames)
	}
	return written, ogg.Close()
}

// checkLength refuses, before any decoding, a file whose container says
// it lasts longer than maxDur, and a cut-short MP3 (whose decoder would
// stop at the cut without a word). A declared length can lie; the decoded
// one is bounded again while measuring.
func checkLength(format string, in io.ReaderAt, size int64, maxDur time.Duration) error {
	var d time.Duration
	switch format {
	case "mp3":
		start, err := skipID3(in, size)
		if err != nil {
			return err
		}
		l, err := scanMP3(in, start, size)
		if err != nil {
			return err
		}
		d = l.duration()
	case "opus":
		d = oggDeclaredLength(in, size)
	}
	// A frame of slack: encoder delay and padding are trimmed after decoding.
	if d > maxDur+time.Second {
		return tooLong(d, maxDur)
	}
	return nil
}

func tooLong(d, maxDur time.Duration) error {
	return loa.Errorf(loa.ETOOLARGE, "the audio is %v long, over the %v limit", d.Round(time.Second), maxDur)
}

func dur(samples int64) time.Duration {
	return time.Duration(samples) * time.Second / protocol.ClockRate
}

func openSource(format string, in io.ReaderAt, size int64, maxDur time.Duration) (source, error) {
	r := io.NewSectionReader(in, 0, size)
	switch format {
	case "wav":
		s, err := parseWAV(r, size)
		if err != nil {
			return nil, err
		}
		if s.frames > 0 && s.frames > int64(maxDur.Seconds()*float64(s.sr)) {
			return nil, tooLong(time.Duration(s.frames)*time.Second/time.Duration(s.sr), maxDur)
		}
		return s, nil
	case "mp3":
		return newMP3Source(in, size)
	case "opus":
		return newOpusSource(r)
	}
	return nil, fmt.Errorf("media: no decoder for %q", format)
}

// spoolMemory is how much of an upload is kept in memory before it spills
// to a temporary file.
const spoolMemory = 4 << 20

// Spooled is an upload received in full, in memory or in a temporary
// file, that Transcode reads in place: receiving it costs no CPU worth
// queueing for, transcoding does.
type Spooled struct {
	*io.SectionReader
	cleanup func()
}

// Close releases the memory or removes the temporary file.
func (s *Spooled) Close() error {
	s.cleanup()
	return nil
}

// Spool receives r in full, up to maxBytes (0: DefaultMaxBytes; over it
// is ETOOLARGE). The caller closes the result.
func Spool(ctx context.Context, r io.Reader, maxBytes int64) (*Spooled, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	in, size, cleanup, err := spool(ctx, r, maxBytes)
	if err != nil {
		return nil, err
	}
	return &Spooled{SectionReader: io.NewSectionReader(in, 0, size), cleanup: cleanup}, nil
}

// spool makes r readable twice, enforcing the size limit.
func spool(ctx context.Context, r io.Reader, limit int64) (io.ReaderAt, int64, func(), error) {
	tooLarge := loa.Errorf(loa.ETOOLARGE, "the file is larger than the %s limit", byteSize(limit))
	if f, ok := r.(interface {
		io.ReaderAt
		io.Seeker
	}); ok {
		cur, err1 := f.Seek(0, io.SeekCurrent)
		end, err2 := f.Seek(0, io.SeekEnd)
		if err1 == nil && err2 == nil {
			if end-cur > limit {
				return nil, 0, nil, tooLarge
			}
			return io.NewSectionReader(f, cur, end-cur), end - cur, func() {}, nil
		}
	}
	var buf bytes.Buffer
	if err := copyCtx(ctx, &buf, io.LimitReader(r, min(limit+1, spoolMemory))); err != nil {
		return nil, 0, nil, err
	}
	if int64(buf.Len()) > limit {
		return nil, 0, nil, tooLarge
	}
	if buf.Len() < spoolMemory {
		return bytes.NewReader(buf.Bytes()), int64(buf.Len()), func() {}, nil
	}
	f, err := os.CreateTemp("", "loa-upload-*")
	if err != nil {
		return nil, 0, nil, spoolError(err)
	}
	// Unlinked at once: the open file keeps its bytes until it is closed,
	// and a controller killed mid-upload leaves no copy in the temp dir.
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, 0, nil, spoolError(err)
	}
	cleanup := func() { f.Close() }
	if _, err := f.Write(buf.Bytes()); err != nil {
		cleanup()
		return nil, 0, nil, spoolError(err)
	}
	if err := copyCtx(ctx, f, io.LimitReader(r, limit+1-int64(buf.Len()))); err != nil {
		cleanup()
		return nil, 0, nil, err
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		cleanup()
		return nil, 0, nil, fmt.Errorf("media: spool upload: %w", err)
	}
	if size > limit {
		cleanup()
		return nil, 0, nil, tooLarge
	}
	return f, size, cleanup, nil
}

func copyCtx(ctx context.Context, w io.Writer, r io.Reader) error {
	buf := make([]byte, 256<<10)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := r.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return spoolError(err)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("media: read upload: %w", err)
		}
	}
}

// spoolError names a failure to write an upload to the temp dir; a full
// disk is ENOSPACE, which the client can act on, not an internal error.
func spoolError(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w (%w)", loa.Errorf(loa.ENOSPACE,
			"the station's temp dir is full: the upload was not saved"), err)
	}
	return fmt.Errorf("media: spool upload: %w", err)
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d-byte", n)
}
