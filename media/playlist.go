package media

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// MaxPlaylistGap bounds the silence after one playlist item.
const MaxPlaylistGap = time.Hour

// PlaylistItem is one stored recording in a playlist.
type PlaylistItem struct {
	Open func() (io.ReadCloser, error) // opens the item's stored Ogg Opus file
	Gap  time.Duration                 // silence after this item (rounded to 20 ms frames)
}

// Playlist plays its items as one packet stream, so a playlist is one
// session: one RTP stream with continuous timestamps, each item's packets
// followed by its gap as SilencePacket packets. Items are opened one at a
// time, when they are reached, and closed when they end.
//
// Packets are joined as stored, without re-encoding, and one decoder plays
// the whole stream. A file player drops a file's first PreSkip samples
// (312, 6.5 ms, the encoder's lookahead) and the padding of its last packet;
// a receiver of the stream plays both. Both are silence (the encoder starts
// from and is flushed with zeros), so each join adds Frames·20 ms − Duration
// of the item before it (Info from Transcode), 6.5 to 26.5 ms, to the gap
// asked for, and the decoder, which carries the previous item's state into
// the next, makes its short transition in that silence rather than over
// audio. Gaps are not shortened to compensate: PlaylistFrames must be
// computable without reading the files, so that elapsed time maps to a
// packet for Skip.
//
// A Playlist is not safe for concurrent use.
type Playlist struct {
	items   []PlaylistItem
	silence []byte

	cur     int // the item playing, or whose gap is playing
	rc      io.ReadCloser
	pr      *PacketReader // nil while no item is open
	inGap   bool          // item cur has ended
	gapLeft int           // silence packets still to send after item cur
	err     error         // sticky: io.EOF at the end, or why the playlist failed
}

var errPlaylistClosed = errors.New("media: playlist closed")

// NewPlaylist checks the items; it opens none of them. No items, an item
// without Open, or a gap that is negative or over MaxPlaylistGap gives
// EINVALID.
func NewPlaylist(items []PlaylistItem) (*Playlist, error) {
	if len(items) == 0 {
		return nil, loa.Errorf(loa.EINVALID, "items: at least one required")
	}
	for i, it := range items {
		switch {
		case it.Open == nil:
			return nil, loa.Errorf(loa.EINVALID, "items[%d]: no media to open", i)
		case it.Gap < 0:
			return nil, loa.Errorf(loa.EINVALID, "items[%d].gap: %v is negative", i, it.Gap)
		case it.Gap > MaxPlaylistGap:
			return nil, loa.Errorf(loa.EINVALID, "items[%d].gap: %v is over the %v limit", i, it.Gap, MaxPlaylistGap)
		}
	}
	silence, err := SilencePacket()
	if err != nil {
		return nil, err
	}
	return &Playlist{items: append([]PlaylistItem(nil), items...), silence: silence}, nil
}

// PlaylistFrames is the number of packets a playlist sends: the items'
// packets (Info.Frames) and their gaps, where gaps[i] follows item i. It
// is the session length for the max duration and for progress.
func PlaylistFrames(itemFrames []int, gaps []time.Duration) int {
	n := 0
	for _, f := range itemFrames {
		n += f
	}
	for _, g := range gaps {
		n += gapFrames(g)
	}
	return n
}

// gapFrames rounds a gap to whole frames, half a frame up.
func gapFrames(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + protocol.FrameDuration/2) / protocol.FrameDuration)
}

// Next returns the next packet, in a new slice the caller may keep: the
// packets of item 0, its gap, item 1, and so on; io.EOF after the last
// item's gap. An item that cannot be opened or read ends the playlist with
// an error naming it (items[i]); later calls return the same error.
func (p *Playlist) Next() ([]byte, error) {
	for {
		if err := p.ready(); err != nil {
			return nil, err
		}
		if p.pr == nil {
			p.gapLeft--
			return bytes.Clone(p.silence), nil
		}
		pkt, err := p.pr.Next()
		if err == nil {
			return pkt, nil
		}
		if err != io.EOF {
			return nil, p.fail(err)
		}
		p.endItem()
	}
}

// Skip passes over the next n packets, items and gaps alike, as n calls
// of Next would: a restarted controller resumes a playlist at elapsed /
// 20 ms. Items skipped over are opened and read through, so a damaged one
// fails the resume as it would have failed the broadcast. It returns how
// many packets it skipped, and io.EOF if the playlist ended before n.
func (p *Playlist) Skip(n int) (int, error) {
	if n < 0 {
		return 0, loa.Errorf(loa.EINVALID, "skip: %d packets is negative", n)
	}
	done := 0
	for done < n {
		if err := p.ready(); err != nil {
			return done, err
		}
		if p.pr == nil {
			k := min(p.gapLeft, n-done)
			p.gapLeft -= k
			done += k
			continue
		}
		k, err := p.pr.Skip(n - done)
		done += k
		if err == io.EOF {
			p.endItem()
		} else if err != nil {
			return done, p.fail(err)
		}
	}
	return done, nil
}

// Item is the index of the item playing, or whose gap is playing; after
// the end, the last item's.
func (p *Playlist) Item() int { return p.cur }

// Close closes the open item. Next and Skip fail after it.
func (p *Playlist) Close() error {
	if p.err == nil || p.err == io.EOF {
		p.err = errPlaylistClosed
	}
	return p.closeItem()
}

// ready moves on through ended items and gaps until an item is open or a
// gap has silence left to send, or the playlist is over.
func (p *Playlist) ready() error {
	for p.err == nil && p.pr == nil && p.gapLeft == 0 {
		if !p.inGap {
			p.open()
			continue
		}
		if p.cur == len(p.items)-1 {
			p.err = io.EOF
			break
		}
		p.cur++
		p.inGap = false
	}
	return p.err
}

// open opens item cur, or fails the playlist.
func (p *Playlist) open() {
	rc, err := p.items[p.cur].Open()
	if err != nil {
		p.fail(fmt.Errorf("open: %w", err))
		return
	}
	if rc == nil {
		p.fail(errors.New("open returned no file"))
		return
	}
	p.rc = rc
	pr, err := NewPacketReader(rc)
	if err != nil {
		p.fail(err)
		return
	}
	p.pr = pr
}

// endItem closes item cur, which has ended, and starts its gap. A close
// error is not worth failing a broadcast for: the file was only read.
func (p *Playlist) endItem() {
	p.closeItem()
	p.inGap = true
	p.gapLeft = gapFrames(p.items[p.cur].Gap)
}

func (p *Playlist) closeItem() error {
	rc := p.rc
	p.rc, p.pr = nil, nil
	if rc == nil {
		return nil
	}
	if err := rc.Close(); err != nil {
		return fmt.Errorf("media: close playlist items[%d]: %w", p.cur, err)
	}
	return nil
}

// fail ends the playlist with err, naming the item: a *loa.Error keeps its
// code, with the item in its message, so a failed session says which one.
func (p *Playlist) fail(err error) error {
	p.closeItem()
	var le *loa.Error
	if errors.As(err, &le) {
		p.err = loa.Errorf(le.Code, "items[%d]: %s", p.cur, le.Message)
	} else {
		p.err = fmt.Errorf("media: playlist items[%d]: %w", p.cur, err)
	}
	return p.err
}
