package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/hraban/opus"
)

// Ogg framing (RFC 3533) as used by Ogg Opus (RFC 7845).
const (
	oggHeaderLen  = 27
	flagContinued = 0x01
	flagBOS       = 0x02
	flagEOS       = 0x04

	// Pages are flushed once they would exceed this body size; about a
	// second of 32 kbit/s audio, so a page costs little overhead.
	oggPageTarget = 4096

	// A fixed serial keeps the output deterministic, so the same upload
	// gives the same file and the same content hash. Each file holds one
	// logical stream, so serials never need to differ.
	oggSerial = 0x4c6f6131 // "Loa1"
)

var oggCRCTable = func() (t [256]uint32) {
	for i := range t {
		r := uint32(i) << 24
		for range 8 {
			if r&0x80000000 != 0 {
				r = r<<1 ^ 0x04c11db7
			} else {
				r <<= 1
			}
		}
		t[i] = r
	}
	return t
}()

// oggCRC is the Ogg checksum: CRC-32, polynomial 0x04c11db7, not reflected,
// initial value 0, no final xor.
func oggCRC(crc uint32, p []byte) uint32 {
	for _, b := range p {
		crc = crc<<8 ^ oggCRCTable[byte(crc>>24)^b]
	}
	return crc
}

// OggWriter writes one mono Opus stream as an Ogg Opus file (RFC 7845):
// the OpusHead and OpusTags header pages, then audio pages with granule
// positions, and an end-of-stream page on Close. The headers are written
// with the first packet (or on Close), so NewOggWriter cannot fail.
type OggWriter struct {
	w       io.Writer
	preSkip int
	started bool
	closed  bool
	err     error

	seq     uint32
	granule int64 // 48 kHz samples after the last packet, pre-skip included

	// The pending page. It is only written once the next packet does not
	// fit, so Close always has a page left to mark end-of-stream.
	segs        []byte
	body        []byte
	continued   bool  // the page starts with the rest of a packet
	pageGranule int64 // granule of the last packet ending on the page, or -1
}

// NewOggWriter returns a writer of a mono 48 kHz Ogg Opus stream whose
// decoder must discard the first preSkip samples (the encoder lookahead).
func NewOggWriter(w io.Writer, preSkip int) *OggWriter {
	return &OggWriter{w: w, preSkip: preSkip, pageGranule: -1}
}

// WritePacket appends one Opus packet that decodes to samples samples at
// 48 kHz. Only the last packet may claim fewer samples than it decodes to:
// that trims the padding at the end (RFC 7845 §4.5). pkt is copied.
func (o *OggWriter) WritePacket(pkt []byte, samples int) error {
	if o.err != nil {
		return o.err
	}
	if o.closed {
		return errors.New("media: write to a closed OggWriter")
	}
	if len(pkt) == 0 {
		return errors.New("media: empty Opus packet")
	}
	if err := o.start(); err != nil {
		return err
	}
	need := len(pkt)/255 + 1
	if len(o.segs) > 0 && (len(o.segs)+need > 255 || len(o.body)+len(pkt) > oggPageTarget) {
		if err := o.flush(0); err != nil {
			return err
		}
	}
	// Lace the packet, spilling onto further pages if it has more than
	// 255 segments' worth of bytes.
	rest := pkt
	for {
		if len(o.segs) == 255 {
			if err := o.flush(0); err != nil {
				return err
			}
			o.continued = true
		}
		if len(rest) < 255 {
			o.segs = append(o.segs, byte(len(rest)))
			o.body = append(o.body, rest...)
			break
		}
		o.segs = append(o.segs, 255)
		o.body = append(o.body, rest[:255]...)
		rest = rest[255:]
	}
	o.granule += int64(samples)
	o.pageGranule = o.granule
	return nil
}

// Close writes the last page with the end-of-stream flag. It does not
// close the underlying writer.
func (o *OggWriter) Close() error {
	if o.err != nil {
		return o.err
	}
	if o.closed {
		return nil
	}
	if err := o.start(); err != nil {
		return err
	}
	o.closed = true
	if o.pageGranule < 0 {
		o.pageGranule = o.granule
	}
	return o.flush(flagEOS)
}

func (o *OggWriter) start() error {
	if o.started {
		return nil
	}
	o.started = true
	// OpusHead (RFC 7845 §5.1): version 1, mono, pre-skip, input rate
	// 48 kHz, output gain 0, channel mapping family 0.
	head := make([]byte, 19)
	copy(head, "OpusHead")
	head[8] = 1
	head[9] = 1
	binary.LittleEndian.PutUint16(head[10:], uint16(o.preSkip))
	binary.LittleEndian.PutUint32(head[12:], 48000)
	if err := o.headerPage(head, flagBOS); err != nil {
		return err
	}
	// OpusTags (§5.2): vendor string, no user comments.
	vendor := "loa (" + opus.Version() + ")"
	tags := make([]byte, 0, 8+4+len(vendor)+4)
	tags = append(tags, "OpusTags"...)
	tags = binary.LittleEndian.AppendUint32(tags, uint32(len(vendor)))
	tags = append(tags, vendor...)
	tags = binary.LittleEndian.AppendUint32(tags, 0)
	return o.headerPage(tags, 0)
}

// headerPage writes a header packet alone on its own page, as §3 requires
// of both headers. Ours are far shorter than one page's 65025 bytes.
func (o *OggWriter) headerPage(pkt []byte, flags byte) error {
	o.segs = o.segs[:0]
	for rest := len(pkt); ; rest -= 255 {
		if rest < 255 {
			o.segs = append(o.segs, byte(rest))
			break
		}
		o.segs = append(o.segs, 255)
	}
	o.body = append(o.body[:0], pkt...)
	o.pageGranule = 0
	return o.flush(flags)
}

func (o *OggWriter) flush(flags byte) error {
	if o.continued {
		flags |= flagContinued
	}
	page := make([]byte, oggHeaderLen+len(o.segs)+len(o.body))
	copy(page, "OggS")
	page[5] = flags
	binary.LittleEndian.PutUint64(page[6:], uint64(o.pageGranule))
	binary.LittleEndian.PutUint32(page[14:], oggSerial)
	binary.LittleEndian.PutUint32(page[18:], o.seq)
	page[26] = byte(len(o.segs))
	copy(page[oggHeaderLen:], o.segs)
	copy(page[oggHeaderLen+len(o.segs):], o.body)
	binary.LittleEndian.PutUint32(page[22:], oggCRC(0, page))
	o.seq++
	o.segs, o.body = o.segs[:0], o.body[:0]
	o.continued = false
	o.pageGranule = -1
	if _, err := o.w.Write(page); err != nil {
		o.err = fmt.Errorf("media: write Ogg page: %w", err)
		return o.err
	}
	return nil
}
