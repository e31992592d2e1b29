package firmwaresim

import (
	"bytes"
	"strings"
	"testing"
)

func TestBuildImage(t *testing.T) {
	img := BuildImage("1.2.0", true, 4096)
	if len(img) != 4096 {
		t.Fatalf("%d bytes, want 4096", len(img))
	}
	want := ImageMagic + `{"version":"1.2.0","healthy":true}` + "\n"
	if !bytes.HasPrefix(img, []byte(want)) {
		t.Errorf("image starts %q, want %q", img[:len(want)], want)
	}
	if !bytes.Equal(img, BuildImage("1.2.0", true, 4096)) {
		t.Error("the same arguments gave different images")
	}
	if bytes.Equal(img[len(want):], BuildImage("1.2.1", true, 4096)[len(want):]) {
		t.Error("two versions share their padding")
	}
	if bytes.Count(img[len(want):], []byte{0}) > 4096/16 {
		t.Error("padding is not pseudo-random")
	}
	h, err := ParseImageHeader(img)
	if err != nil || h != (ImageHeader{Version: "1.2.0", Healthy: true}) {
		t.Errorf("header %+v, %v", h, err)
	}
	if short := BuildImage("2.0", false, 3); string(short) != ImageMagic+`{"version":"2.0","healthy":false}`+"\n" {
		t.Errorf("image smaller than its header: %q", short)
	}
}

func TestParseImageHeader(t *testing.T) {
	for _, b := range []string{
		"",
		"LOAFW1",
		"LOAFW2\n{\"version\":\"1.0\",\"healthy\":true}\n",
		"LOAFW1\n{\"version\":\"1.0\",\"healthy\":true}",                             // no end of line
		"LOAFW1\n{\"version\":\"1.x\",\"healthy\":true}\n",                           // bad version
		"LOAFW1\n{\"version\":\"1.0\",\"healthy\":true,\"x\":1}\n",                   // unknown field
		"LOAFW1\n{\"version\":\"1.0\",\"healthy\":true} {}\n",                        // trailing data
		"LOAFW1\n{\"version\":\"1.0\",\"healthy\":\"yes\"}\n",                        // wrong type
		"LOAFW1\n" + strings.Repeat(" ", maxImageHeader) + "{\"version\":\"1.0\"}\n", // header too long
	} {
		if h, err := ParseImageHeader([]byte(b)); err == nil {
			t.Errorf("%q parsed as %+v", b, h)
		}
	}
}

func FuzzParseImageHeader(f *testing.F) {
	f.Add(BuildImage("1.2.0", true, 200))
	f.Add(BuildImage("3", false, 0))
	f.Add([]byte("LOAFW1\n{}\n"))
	f.Add([]byte("LOAFW1\n{\"version\":\"1.0\",\"healthy\":true,\"healthy\":false}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseImageHeader(b)
		if err != nil {
			return
		}
		// Whatever parses round-trips through BuildImage.
		h2, err := ParseImageHeader(BuildImage(h.Version, h.Healthy, len(b)))
		if err != nil || h2 != h {
			t.Fatalf("%+v rebuilt parses as %+v, %v", h, h2, err)
		}
	})
}
