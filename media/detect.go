package media

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"github.com/loa-broadcast/loa"
)

const supportedFormats = "WAV, MP3 and Ogg Opus"

// detect names the format of a file from its first bytes: "wav", "mp3" or
// "opus", or an EUNSUPPORTED error that says what the file looks like.
func detect(b []byte) (string, error) {
	has := func(off int, s string) bool { return len(b) >= off+len(s) && string(b[off:off+len(s)]) == s }
	switch {
	case has(0, "RIFF") || has(0, "RIFX") || has(0, "RF64"):
		if len(b) < 12 || has(8, "WAVE") {
			return "wav", nil // short ones fail in the parser, saying where
		}
		return "", unsupported(fmt.Sprintf("a RIFF %q file", b[8:12]))
	case has(0, "ID3"):
		return "mp3", nil
	case len(b) >= 4 && isMP3Frame(b):
		return "mp3", nil
	case has(0, "OggS"):
		if len(b) < 27 {
			return "opus", nil // the demuxer reports the truncation
		}
		body := b[min(len(b), 27+int(b[26])):]
		switch {
		case bytes.HasPrefix(body, []byte("OpusHead")):
			return "opus", nil
		case bytes.HasPrefix(body, []byte("\x01vorbis")):
			return "", unsupported("Ogg Vorbis")
		case bytes.HasPrefix(body, []byte("\x7fFLAC")):
			return "", unsupported("Ogg FLAC")
		case bytes.HasPrefix(body, []byte("Speex")):
			return "", unsupported("Ogg Speex")
		case bytes.HasPrefix(body, []byte("\x80theora")):
			return "", unsupported("Ogg Theora video")
		}
		return "", unsupported("an Ogg file with an unknown codec")
	}
	return "", unsupported(lookalike(b))
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

func lookalike(b []byte) string {
	has := func(off int, s string) bool { return len(b) >= off+len(s) && string(b[off:off+len(s)]) == s }
	switch {
	case has(0, "fLaC"):
		return "FLAC"
	case has(4, "ftyp"):
		return "MP4/M4A (AAC)"
	case len(b) >= 2 && b[0] == 0xff && b[1]&0xf6 == 0xf0:
		return "AAC (ADTS)"
	case len(b) >= 2 && b[0] == 0xff && b[1]&0xe0 == 0xe0:
		return "MPEG audio layer I or II"
	case has(0, "\x1a\x45\xdf\xa3"):
		return "Matroska/WebM"
	case has(0, "#!AMR"):
		return "AMR"
	case has(0, "FORM") && (has(8, "AIFF") || has(8, "AIFC")):
		return "AIFF"
	case has(0, ".snd"):
		return "Sun AU"
	case has(0, "caff"):
		return "Core Audio (CAF)"
	case has(0, "MThd"):
		return "MIDI"
	case has(0, "0&\xb2\x75\x8e\x66\xcf\x11"):
		return "Windows Media (WMA/ASF)"
	case has(0, "%PDF"):
		return "a PDF document"
	case has(0, "PK\x03\x04"):
		return "a ZIP archive (or an Office document)"
	case has(0, "\xff\xd8\xff"):
		return "a JPEG image"
	case has(0, "\x89PNG"):
		return "a PNG image"
	case utf8.Valid(b) && !bytes.ContainsFunc(b, func(r rune) bool { return r < 0x20 && r != '\n' && r != '\r' && r != '\t' }):
		return "text"
	}
	return fmt.Sprintf("unknown data (first bytes % x)", b[:min(len(b), 8)])
}
