package firmwaresim

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/loa-broadcast/loa/protocol"
)

// ImageMagic starts every simulated firmware image.
const ImageMagic = "LOAFW1\n"

// maxImageHeader bounds the header line a bootloader reads; a real one
// reads a fixed-size header block, not an unbounded line.
const maxImageHeader = 1024

// ImageHeader is the JSON line after ImageMagic in a simulated image. A
// receiver boots an installed image healthy only if the header parses, its
// Version is the version the firmware command installed, and Healthy is
// true; Healthy false stands for an image that crashes or fails its health
// check after boot, so the bootloader rolls back.
type ImageHeader struct {
	Version string `json:"version"`
	Healthy bool   `json:"healthy"`
}

// BuildImage returns a simulated firmware image: ImageMagic, one JSON line
// of ImageHeader, then deterministic pseudo-random padding up to size bytes
// (a size smaller than the header gives just the header). The same
// arguments always give the same bytes. Flipping any byte changes its
// SHA-256, so a receiver refuses it with bad_checksum; flipping a header
// byte of an image signed anew makes it fail to boot.
func BuildImage(version string, healthy bool, size int) []byte {
	line, _ := json.Marshal(ImageHeader{Version: version, Healthy: healthy}) // cannot fail
	img := make([]byte, 0, max(size, len(ImageMagic)+len(line)+1))
	img = append(img, ImageMagic...)
	img = append(img, line...)
	img = append(img, '\n')
	if pad := size - len(img); pad > 0 {
		// ChaCha8's stream is fixed by its specification, so images are
		// reproducible across Go releases.
		rng := rand.NewChaCha8(sha256.Sum256(img))
		p := make([]byte, pad)
		rng.Read(p)
		img = append(img, p...)
	}
	return img
}

// ParseImageHeader parses the header at the start of an image (any bytes
// after the header line are ignored).
func ParseImageHeader(b []byte) (ImageHeader, error) {
	if !bytes.HasPrefix(b, []byte(ImageMagic)) {
		return ImageHeader{}, fmt.Errorf("image: no %q magic", ImageMagic)
	}
	rest := b[len(ImageMagic):]
	end := bytes.IndexByte(rest[:min(len(rest), maxImageHeader)], '\n')
	if end < 0 {
		return ImageHeader{}, fmt.Errorf("image: header line missing or longer than %d bytes", maxImageHeader)
	}
	var h ImageHeader
	dec := json.NewDecoder(bytes.NewReader(rest[:end]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return ImageHeader{}, fmt.Errorf("image: header: %w", err)
	}
	if dec.More() {
		return ImageHeader{}, errors.New("image: header: trailing data after the JSON object")
	}
	if _, err := protocol.ParseFWVersion(h.Version); err != nil {
		return ImageHeader{}, fmt.Errorf("image: header: %w", err)
	}
	return h, nil
}
