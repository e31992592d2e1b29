package media

import (
	"bytes"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/loa-broadcast/loa"
)

const supportedFormats = "WAV, MP3, Ogg Opus, or (decoded by ffmpeg) M4A/AAC, AMR, FLAC, Ogg Vorbis, WMA, AIFF or a video file's sound"

// A format is what detect makes of a file: one of Loa's own decoders
// ("wav", "mp3", "opus") or, with demuxer set, a container ffmpeg decodes.
type format struct {
	name    string // Info.Format: "wav", "mp3", "opus", "mp4", "flac", "ogg", …
	demuxer string // ffmpeg's demuxer (-f); "" for Loa's own decoders
	what    string // for people, in errors: "MP4/M4A", "Ogg (not Opus)"
}

func (f format) ffmpeg() bool { return f.demuxer != "" }

// detect names the format of a file from its first bytes, or returns an
// EUNSUPPORTED error that says what the file looks like. Only containers
// recognised here reach ffmpeg, and with their demuxer forced: ffmpeg
// never probes (or opens playlists in) arbitrary bytes.
func detect(b []byte) (format, error) {
	has := func(off int, s string) bool { return len(b) >= off+len(s) && string(b[off:off+len(s)]) == s }
	switch {
	case has(0, "RIFF") || has(0, "RIFX") || has(0, "RF64"):
		if len(b) < 12 || has(8, "WAVE") {
			return format{name: "wav"}, nil // short ones fail in the parser, saying where
		}
		if has(8, "AVI ") {
			return format{name: "avi", demuxer: "avi", what: "AVI"}, nil
		}
		return format{}, unsupported(fmt.Sprintf("a RIFF %q file", b[8:12]))
	case has(0, "ID3"):
		return format{name: "mp3"}, nil // Transcode looks past the tag
	case len(b) >= 4 && isMP3Frame(b):
		return format{name: "mp3"}, nil
	case has(0, "OggS"):
		if len(b) < 27 {
			return format{name: "opus"}, nil // the demuxer reports the truncation
		}
		body := b[min(len(b), 27+int(b[26])):]
		if bytes.HasPrefix(body, []byte("OpusHead")) {
			return format{name: "opus"}, nil
		}
		// Vorbis, FLAC, Speex, Theora with sound…: ffmpeg tells.
		return format{name: "ogg", demuxer: "ogg", what: "Ogg (not Opus)"}, nil
	}
	for _, c := range ffmpegFormats {
		if c.match(b) {
			return c.format, nil
		}
	}
	return format{}, unsupported(lookalike(b))
}

// ffmpegFormats are the containers handed to ffmpeg, by their first bytes.
var ffmpegFormats = []struct {
	format
	match func(b []byte) bool
}{
	{format{"flac", "flac", "FLAC"}, prefix(0, "fLaC")},
	{format{"mp4", "mov", "MP4/M4A"}, func(b []byte) bool { // M4A, MP4, 3GP, MOV
		return prefix(4, "ftyp")(b) || prefix(4, "moov")(b) || prefix(4, "mdat")(b) || prefix(4, "wide")(b) || prefix(4, "free")(b)
	}},
	{format{"aac", "aac", "AAC"}, func(b []byte) bool { return len(b) >= 2 && b[0] == 0xff && b[1]&0xf6 == 0xf0 }}, // ADTS
	{format{"mp2", "mp3", "MPEG audio layer I/II"}, func(b []byte) bool { // MPEG audio layer I or II
		return len(b) >= 4 && b[0] == 0xff && b[1]&0xe0 == 0xe0 && (b[1]>>3)&3 != 1 && (b[1]>>1)&3 >= 2
	}},
	{format{"amr", "amr", "AMR"}, prefix(0, "#!AMR")},
	{format{"wma", "asf", "WMA/ASF"}, prefix(0, "0&\xb2\x75\x8e\x66\xcf\x11")},       // ASF: WMA, WMV
	{format{"matroska", "matroska", "Matroska/WebM"}, prefix(0, "\x1a\x45\xdf\xa3")}, // MKV, WebM
	{format{"aiff", "aiff", "AIFF"}, func(b []byte) bool { return prefix(0, "FORM")(b) && (prefix(8, "AIFF")(b) || prefix(8, "AIFC")(b)) }},
	{format{"au", "au", "Sun AU"}, prefix(0, ".snd")},
	{format{"caf", "caf", "Core Audio (CAF)"}, prefix(0, "caff")},
	{format{"flv", "flv", "Flash video (FLV)"}, prefix(0, "FLV\x01")},
	{format{"mpegts", "mpegts", "MPEG transport stream"}, func(b []byte) bool { return len(b) > 188 && b[0] == 0x47 && b[188] == 0x47 }},
	{format{"mpeg", "mpeg", "MPEG program stream"}, prefix(0, "\x00\x00\x01\xba")}, // MPEG program stream (VOB)
	{format{"wavpack", "wv", "WavPack"}, prefix(0, "wvpk")},
	{format{"ape", "ape", "Monkey's Audio (APE)"}, prefix(0, "MAC ")},
	{format{"ac3", "ac3", "AC-3"}, prefix(0, "\x0b\x77")},
}

func prefix(off int, s string) func([]byte) bool {
	return func(b []byte) bool { return len(b) >= off+len(s) && string(b[off:off+len(s)]) == s }
}

// isMP3Frame reports whether b starts with a plausible MPEG audio layer III
// frame header.
func isMP3Frame(b []byte) bool {
	return b[0] == 0xff && b[1]&0xe0 == 0xe0 &&
		(b[1]>>3)&3 != 1 && // version not reserved
		(b[1]>>1)&3 == 1 && // layer III
		b[2]>>4 != 0xf && // bitrate not invalid
		(b[2]>>2)&3 != 3 // sample rate not reserved
}

func unsupported(what string) error {
	return loa.Errorf(loa.EUNSUPPORTED, "the file looks like %s, which is not supported; upload %s", what, supportedFormats)
}

// lookalike names what a file Loa refuses looks like.
func lookalike(b []byte) string {
	has := func(off int, s string) bool { return len(b) >= off+len(s) && string(b[off:off+len(s)]) == s }
	switch {
	case has(0, "MThd"):
		return "MIDI (notes, not sound)"
	case has(0, "%PDF"):
		return "a PDF document"
	case has(0, "PK\x03\x04"):
		return "a ZIP archive (or an Office document)"
	case has(0, "\xff\xd8\xff"):
		return "a JPEG image"
	case has(0, "\x89PNG"):
		return "a PNG image"
	case len(b) > 0 && utf8.Valid(b) && !bytes.ContainsFunc(b, func(r rune) bool { return r < 0x20 && r != '\n' && r != '\r' && r != '\t' }):
		return "text"
	}
	return fmt.Sprintf("unknown data (first bytes % x)", b[:min(len(b), 8)])
}

// pastID3 names the format of what follows a file's ID3 tags: MP3 as a
// rule, but AAC and FLAC files carry such tags too.
func pastID3(in io.ReaderAt, size int64) (format, error) {
	start, err := skipID3(in, size)
	if err != nil {
		return format{}, err
	}
	b := make([]byte, 8)
	n, _ := in.ReadAt(b, start)
	b = b[:n]
	if len(b) >= 4 && !isMP3Frame(b) {
		for _, c := range ffmpegFormats {
			if (c.name == "aac" || c.name == "flac") && c.match(b) {
				return c.format, nil
			}
		}
	}
	return format{name: "mp3"}, nil
}
