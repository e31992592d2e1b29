package media

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/loa-broadcast/loa"
)

const (
	// maxAudioPacket bounds one Opus packet: 120 ms of 48 code-3 frames of
	// at most 1275 bytes each is 61,200 bytes plus a small header.
	maxAudioPacket = 1 << 16
	// maxHeaderPacket bounds OpusTags, which may carry cover art.
	maxHeaderPacket = 16 << 20
)

// PacketReader reads the Opus packets of an Ogg Opus file (RFC 7845) in
// order, without decoding them: the playout path sends them as they are.
// It checks every page's CRC and sequence number and reassembles packets
// that span pages. Pages of other logical streams are skipped, and so is
// anything after the end-of-stream page (a chained stream).
type PacketReader struct {
	r   *bufio.Reader
	off int64 // bytes consumed so far, for error messages

	serial   uint32
	nextSeq  uint32
	pages    int
	channels int
	preSkip  int
	gainQ8   int16 // OpusHead output gain, Q7.8 dB

	// the current page
	hdr     [oggHeaderLen + 255]byte
	flags   byte
	granule int64
	segs    []byte
	body    []byte
	seg     int // next lacing value to read
	bodyOff int
	pageAt  int64 // byte offset of the current page
	eos     bool  // the current page ends the stream
}

// NewPacketReader reads and checks the OpusHead and OpusTags headers.
// A stream that is not Ogg Opus, or is damaged, gives EINVALID; Opus with
// more than two channels (which needs a multistream decoder) gives
// EUNSUPPORTED.
func NewPacketReader(r io.Reader) (*PacketReader, error) {
	p := &PacketReader{r: bufio.NewReaderSize(r, 64<<10)}
	if err := p.readPage(true); err != nil {
		return nil, err
	}
	if p.flags&flagBOS == 0 {
		return nil, loa.Errorf(loa.EINVALID, "Ogg file does not start with a beginning-of-stream page")
	}
	head, err := p.packet(maxHeaderPacket)
	if err != nil {
		return nil, err
	}
	if err := p.parseHead(head); err != nil {
		return nil, err
	}
	if p.seg != len(p.segs) {
		return nil, loa.Errorf(loa.EINVALID, "Ogg Opus file is corrupt: OpusHead does not end its page")
	}
	tags, err := p.packet(maxHeaderPacket)
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(tags, []byte("OpusTags")) {
		return nil, loa.Errorf(loa.EINVALID, "Ogg Opus file is corrupt: the second packet is not OpusTags")
	}
	return p, nil
}

func (p *PacketReader) parseHead(h []byte) error {
	if len(h) < 19 || !bytes.HasPrefix(h, []byte("OpusHead")) {
		return loa.Errorf(loa.EINVALID, "Ogg stream is not Opus: its first packet is not an OpusHead")
	}
	if h[8]&0xf0 != 0 {
		return loa.Errorf(loa.EUNSUPPORTED, "Ogg Opus version %d is not supported (only version 1 is)", h[8])
	}
	ch, family := int(h[9]), h[18]
	if ch < 1 || ch > 2 {
		return loa.Errorf(loa.EUNSUPPORTED, "Ogg Opus with %d channels is not supported (only mono and stereo are)", ch)
	}
	if family != 0 {
		return loa.Errorf(loa.EUNSUPPORTED, "Ogg Opus channel mapping family %d is not supported (only family 0, mono or stereo)", family)
	}
	p.channels = ch
	p.preSkip = int(binary.LittleEndian.Uint16(h[10:]))
	p.gainQ8 = int16(binary.LittleEndian.Uint16(h[16:]))
	return nil
}

// PreSkip is the number of 48 kHz samples a decoder must discard at the
// start of the stream (the encoder's lookahead).
func (p *PacketReader) PreSkip() int { return p.preSkip }

// Channels is the channel count from OpusHead: 1 or 2.
func (p *PacketReader) Channels() int { return p.channels }

// Next returns the next audio packet, in a new slice the caller may keep,
// or io.EOF after the packet that ends the end-of-stream page. A file that
// ends without that page gives EINVALID: it was cut short.
func (p *PacketReader) Next() ([]byte, error) {
	return p.packet(maxAudioPacket)
}

// endGranule reports whether the packet last returned ended on the last
// page, and that page's granule position: where the stream ends, pre-skip
// included.
func (p *PacketReader) endGranule() (int64, bool) {
	return p.granule, p.eos
}

// Skip passes over the next n audio packets without returning them, as
// Next would, CRC and sequence checks included: a restarted controller
// resumes a programme at elapsed / 20 ms. It returns how many packets it
// skipped, and io.EOF if the stream ended before n; a negative n gives
// EINVALID.
func (p *PacketReader) Skip(n int) (int, error) {
	if n < 0 {
		return 0, loa.Errorf(loa.EINVALID, "skip: %d packets is negative", n)
	}
	for i := range n {
		if _, err := p.read(maxAudioPacket, false); err != nil {
			return i, err
		}
	}
	return n, nil
}

// packet assembles the next packet from the lacing values of one or more
// pages.
func (p *PacketReader) packet(limit int) ([]byte, error) {
	return p.read(limit, true)
}

// read walks the next packet's lacing values; it copies the packet out only
// if keep is set, so Skip costs no allocation beyond the pages themselves.
func (p *PacketReader) read(limit int, keep bool) ([]byte, error) {
	var pkt []byte
	size := 0
	started := false
	for {
		for p.seg < len(p.segs) {
			n := int(p.segs[p.seg])
			p.seg++
			if size+n > limit {
				return nil, loa.Errorf(loa.EINVALID, "Ogg file is corrupt: a packet in page %d (byte %d) is larger than %d bytes", p.pages-1, p.pageAt, limit)
			}
			if keep {
				pkt = append(pkt, p.body[p.bodyOff:p.bodyOff+n]...)
			}
			size += n
			p.bodyOff += n
			started = true
			if n < 255 {
				if pkt == nil && keep {
					pkt = []byte{}
				}
				return pkt, nil
			}
		}
		if p.eos {
			if started {
				return nil, loa.Errorf(loa.EINVALID, "Ogg file is corrupt: its last packet is unfinished at byte %d", p.off)
			}
			return nil, io.EOF
		}
		if err := p.readPage(false); err != nil {
			return nil, err
		}
		cont := p.flags&flagContinued != 0
		if cont != started {
			if started {
				return nil, loa.Errorf(loa.EINVALID, "Ogg file is corrupt: page %d (byte %d) should continue a packet but does not", p.pages-1, p.pageAt)
			}
			return nil, loa.Errorf(loa.EINVALID, "Ogg file is corrupt: page %d (byte %d) continues a packet that never started", p.pages-1, p.pageAt)
		}
	}
}

// readPage reads the next page of our logical stream and checks its CRC
// and sequence number.
func (p *PacketReader) readPage(first bool) error {
	for {
		at := p.off
		h := p.hdr[:oggHeaderLen]
		if n, err := io.ReadFull(p.r, h); err != nil {
			p.off += int64(n)
			return p.readErr(err, n == 0 && err == io.EOF, at)
		}
		p.off += oggHeaderLen
		if string(h[:4]) != "OggS" {
			return loa.Errorf(loa.EINVALID, "Ogg file is corrupt: no page starts at byte %d", at)
		}
		if h[4] != 0 {
			return loa.Errorf(loa.EUNSUPPORTED, "Ogg page version %d at byte %d is not supported", h[4], at)
		}
		nseg := int(h[26])
		lacing := p.hdr[oggHeaderLen : oggHeaderLen+nseg]
		if n, err := io.ReadFull(p.r, lacing); err != nil {
			p.off += int64(n)
			return p.readErr(err, false, at)
		}
		p.off += int64(nseg)
		size := 0
		for _, l := range lacing {
			size += int(l)
		}
		body := make([]byte, size)
		if n, err := io.ReadFull(p.r, body); err != nil {
			p.off += int64(n)
			return p.readErr(err, false, at)
		}
		p.off += int64(size)

		want := binary.LittleEndian.Uint32(h[22:])
		clear(h[22:26])
		crc := oggCRC(oggCRC(0, p.hdr[:oggHeaderLen+nseg]), body)
		binary.LittleEndian.PutUint32(h[22:], want)
		if crc != want {
			return loa.Errorf(loa.EINVALID, "Ogg file is corrupt: the page at byte %d fails its CRC check", at)
		}
		serial := binary.LittleEndian.Uint32(h[14:])
		seq := binary.LittleEndian.Uint32(h[18:])
		if first {
			p.serial = serial
		} else if serial != p.serial {
			continue // another logical stream multiplexed in; not ours
		}
		if !first && seq != p.nextSeq {
			return loa.Errorf(loa.EINVALID, "Ogg file is corrupt: page at byte %d has sequence number %d, expected %d (pages are missing)", at, seq, p.nextSeq)
		}
		p.nextSeq = seq + 1
		p.pages++
		p.pageAt = at
		p.flags = h[5]
		p.granule = int64(binary.LittleEndian.Uint64(h[6:]))
		p.segs = append(p.segs[:0], lacing...)
		p.body = body
		p.seg, p.bodyOff = 0, 0
		if p.flags&flagEOS != 0 {
			p.eos = true
		}
		return nil
	}
}

func (p *PacketReader) readErr(err error, clean bool, at int64) error {
	switch {
	case clean && p.pages == 0:
		return loa.Errorf(loa.EINVALID, "Ogg file is empty")
	case clean:
		return loa.Errorf(loa.EINVALID, "Ogg file is truncated: it ends at byte %d without an end-of-stream page", at)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return loa.Errorf(loa.EINVALID, "Ogg file is truncated: the page at byte %d is cut off at byte %d", at, p.off)
	}
	return fmt.Errorf("media: read Ogg page at byte %d: %w", at, err)
}
