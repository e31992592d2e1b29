package media

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/loa-broadcast/loa"
)

// oggFile writes packets with our writer, each claiming 960 samples.
func oggFile(t testing.TB, preSkip int, packets [][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewOggWriter(&buf, preSkip)
	for _, p := range packets {
		if err := w.WritePacket(p, 960); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pages splits an Ogg file into its pages.
func pages(t testing.TB, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 27 || string(b[:4]) != "OggS" {
			t.Fatalf("no page at %d bytes from the end", len(b))
		}
		n := 27 + int(b[26])
		for _, l := range b[27:n] {
			n += int(l)
		}
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

func TestOggRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := []int{1, 80, 254, 255, 256, 510, 1000, 4000, 65025, 65026, 70000, 3, 120}
	for range 300 {
		sizes = append(sizes, 1+rng.IntN(200))
	}
	var packets [][]byte
	for _, n := range sizes {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		packets = append(packets, p)
	}
	// Packets over maxAudioPacket are legal Ogg but not Opus; the writer
	// must still frame them, so read those back with a larger limit.
	file := oggFile(t, 312, packets)
	pr, err := NewPacketReader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if pr.PreSkip() != 312 || pr.Channels() != 1 {
		t.Errorf("PreSkip %d Channels %d, want 312 1", pr.PreSkip(), pr.Channels())
	}
	for i, want := range packets {
		got, err := pr.packet(1 << 20)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("packet %d: got %d bytes, want %d", i, len(got), len(want))
		}
	}
	if _, err := pr.Next(); err != io.EOF {
		t.Fatalf("after the last packet: %v, want io.EOF", err)
	}
	g, last := pr.endGranule()
	if !last || g != int64(960*len(packets)) {
		t.Errorf("final granule %d (last page %v), want %d", g, last, 960*len(packets))
	}

	ps := pages(t, file)
	if ps[0][5] != flagBOS || ps[len(ps)-1][5]&flagEOS == 0 {
		t.Errorf("flags: first page %#x, last page %#x", ps[0][5], ps[len(ps)-1][5])
	}
	for i, p := range ps {
		if seq := binary.LittleEndian.Uint32(p[18:]); seq != uint32(i) {
			t.Errorf("page %d has sequence number %d", i, seq)
		}
	}
}

// Pages hold what RFC 7845 says: OpusHead alone on the first, OpusTags on
// the second, granule positions of completed packets after.
func TestOggWriterLayout(t *testing.T) {
	packets := make([][]byte, 120)
	for i := range packets {
		packets[i] = bytes.Repeat([]byte{byte(i)}, 80)
	}
	file := oggFile(t, 312, packets)
	ps := pages(t, file)
	head := ps[0][28:]
	if ps[0][26] != 1 || string(head[:8]) != "OpusHead" || len(head) != 19 {
		t.Fatalf("first page is not a lone OpusHead: %q", ps[0])
	}
	if head[8] != 1 || head[9] != 1 || binary.LittleEndian.Uint16(head[10:]) != 312 || binary.LittleEndian.Uint32(head[12:]) != 48000 || head[18] != 0 {
		t.Errorf("OpusHead fields wrong: % x", head)
	}
	if string(ps[1][27+int(ps[1][26]):][:8]) != "OpusTags" {
		t.Error("second page is not OpusTags")
	}
	var prev int64
	for i, p := range ps[2:] {
		g := int64(binary.LittleEndian.Uint64(p[6:]))
		if g <= prev || g%960 != 0 {
			t.Errorf("audio page %d: granule %d after %d", i, g, prev)
		}
		prev = g
	}
	if prev != 120*960 {
		t.Errorf("last granule %d, want %d", prev, 120*960)
	}
}

func TestOggWriterEndTrim(t *testing.T) {
	var buf bytes.Buffer
	w := NewOggWriter(&buf, 312)
	for range 9 {
		w.WritePacket([]byte{1, 2, 3}, 960)
	}
	w.WritePacket([]byte{1, 2, 3}, 100)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.WritePacket([]byte{1}, 960); err == nil {
		t.Error("WritePacket after Close succeeded")
	}
	_, _, g := readOgg(t, buf.Bytes())
	if g != 9*960+100 {
		t.Errorf("final granule %d, want %d", g, 9*960+100)
	}
}

func TestPacketReaderErrors(t *testing.T) {
	packets := make([][]byte, 200)
	for i := range packets {
		packets[i] = bytes.Repeat([]byte{byte(i)}, 100)
	}
	good := oggFile(t, 312, packets)
	ps := pages(t, good)

	// reCRC fixes a page's checksum after a deliberate edit.
	reCRC := func(p []byte) []byte {
		p = bytes.Clone(p)
		clear(p[22:26])
		binary.LittleEndian.PutUint32(p[22:], oggCRC(0, p))
		return p
	}
	join := func(ps ...[]byte) []byte { return bytes.Join(ps, nil) }
	head := func(mod func(h []byte)) []byte {
		p := bytes.Clone(ps[0])
		mod(p[28:])
		return join(append([][]byte{reCRC(p)}, ps[1:]...)...)
	}
	flipped := bytes.Clone(good)
	flipped[len(ps[0])+len(ps[1])+40] ^= 1
	for _, c := range []struct {
		name string
		in   []byte
		code string
	}{
		{"empty", nil, loa.EINVALID},
		{"not ogg", []byte("RIFF0000WAVEfmt "), loa.EINVALID},
		{"crc", flipped, loa.EINVALID},
		{"truncated mid page", good[:len(good)-7], loa.EINVALID},
		{"truncated at page", join(ps[:len(ps)-1]...), loa.EINVALID},
		{"page missing", join(append(append([][]byte{}, ps[:3]...), ps[4:]...)...), loa.EINVALID},
		{"headers only, no EOS", join(ps[:2]...), loa.EINVALID},
		{"three channels", head(func(h []byte) { h[9] = 3 }), loa.EUNSUPPORTED},
		{"mapping family 1", head(func(h []byte) { h[18] = 1 }), loa.EUNSUPPORTED},
		{"version 16", head(func(h []byte) { h[8] = 16 }), loa.EUNSUPPORTED},
		{"not opus", head(func(h []byte) { copy(h, "OpusHeaX") }), loa.EINVALID},
		{"no BOS", join(append([][]byte{reCRC(append(bytes.Clone(ps[0][:5]), append([]byte{0}, ps[0][6:]...)...))}, ps[1:]...)...), loa.EINVALID},
	} {
		t.Run(c.name, func(t *testing.T) {
			pr, err := NewPacketReader(bytes.NewReader(c.in))
			for err == nil {
				_, err = pr.Next()
			}
			if err == io.EOF {
				t.Fatal("read to the end without an error")
			}
			wantCode(t, err, c.code)
		})
	}
}

// Real Opus through the writer and reader decodes to what the encoder got.
func TestOggOpusRoundTrip(t *testing.T) {
	enc, err := newEncoder(32000)
	if err != nil {
		t.Fatal(err)
	}
	x := tone(48000, 1, 1, 1000, 0.5)
	pcm := make([]float32, len(x))
	for i, v := range x {
		pcm[i] = float32(v)
	}
	var packets [][]byte
	buf := make([]byte, maxPacketBytes)
	for i := 0; i < len(pcm); i += 960 {
		n, err := enc.EncodeFloat32(pcm[i:i+960], buf)
		if err != nil {
			t.Fatal(err)
		}
		packets = append(packets, bytes.Clone(buf[:n]))
	}
	got, _, _ := readOgg(t, oggFile(t, 312, packets))
	if len(got) != len(packets) {
		t.Fatalf("%d packets back, wrote %d", len(got), len(packets))
	}
	for i := range got {
		if !bytes.Equal(got[i], packets[i]) {
			t.Fatalf("packet %d differs", i)
		}
	}
	dec, err := DecodePackets(got)
	if err != nil {
		t.Fatal(err)
	}
	y := make([]float64, len(dec))
	for i, v := range dec {
		y[i] = float64(v) / 32768
	}
	if p := power(y[4800:], 48000, 1000); p < 0.2 { // amplitude 0.5 → power 0.25
		t.Errorf("1 kHz power after round trip %.3f, want about 0.25", p)
	}
	if _, err := DecodePackets([][]byte{{}}); err == nil {
		t.Error("DecodePackets accepted an empty packet")
	}
}

func TestEncoderLookahead(t *testing.T) {
	la, err := encoderLookahead()
	if err != nil {
		t.Fatal(err)
	}
	// libopus: 2.5 ms of CELT overlap plus 4 ms of delay compensation at 48 kHz.
	if la != 312 {
		t.Errorf("lookahead %d, want 312", la)
	}
}

func FuzzPacketReader(f *testing.F) {
	f.Add(oggFile(f, 312, [][]byte{{1, 2, 3}, bytes.Repeat([]byte{9}, 300), {4}}))
	_, ogg := transcode(f, wavFile(f, tone(48000, 1, 0.1, 1000, 0.3), 48000, 1, 16), Options{})
	f.Add(ogg)
	f.Add([]byte("OggS"))
	f.Fuzz(func(t *testing.T, in []byte) {
		pr, err := NewPacketReader(bytes.NewReader(in))
		if err != nil {
			return
		}
		total := 0
		for {
			p, err := pr.Next()
			if err != nil {
				break
			}
			total += len(p)
			if total > len(in) {
				t.Fatalf("read %d bytes of packets from %d bytes of input", total, len(in))
			}
		}
	})
}
