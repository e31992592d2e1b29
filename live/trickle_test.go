package live

import (
	"strings"
	"testing"

	"github.com/loa-broadcast/loa"
)

func TestParseFragment(t *testing.T) {
	f, err := parseFragment("a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n" +
		"a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1\r\na=end-of-candidates\r\n")
	if err != nil {
		t.Fatal(err)
	}
	if f.ufrag != "EsAw" || len(f.cands) != 1 || !f.end || f.cands[0].SDPMid == nil || *f.cands[0].SDPMid != "0" ||
		f.cands[0].SDPMLineIndex == nil || *f.cands[0].SDPMLineIndex != 0 || !strings.HasPrefix(f.cands[0].Candidate, "candidate:1387637174 ") {
		t.Fatalf("parsed %+v", f)
	}
	for _, bad := range []string{
		"a=candidate:junk\r\n",
		strings.Repeat("a=candidate:1 1 udp 1 192.0.2.1 1 typ host\r\n", maxCandidates+1),
		strings.Repeat("x", maxFragment+1),
	} {
		if _, err := parseFragment(bad); loa.ErrorCode(err) != loa.EINVALID && loa.ErrorCode(err) != loa.ETOOLARGE {
			t.Errorf("parseFragment(%.40q) = %v, want EINVALID or ETOOLARGE", bad, err)
		}
	}
}

// FuzzParseFragment: any PATCH body gives a fragment or a clear error,
// within the bounds.
func FuzzParseFragment(f *testing.F) {
	f.Add("a=ice-ufrag:EsAw\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=candidate:1 1 udp 2122260223 192.0.2.1 61764 typ host\r\n")
	f.Add("a=end-of-candidates\n")
	f.Fuzz(func(t *testing.T, s string) {
		fr, err := parseFragment(s)
		if err != nil {
			if c := loa.ErrorCode(err); c != loa.EINVALID && c != loa.ETOOLARGE {
				t.Fatalf("error code %s: %v", c, err)
			}
			return
		}
		if len(fr.cands) > maxCandidates {
			t.Fatalf("%d candidates", len(fr.cands))
		}
	})
}

// FuzzCheckOffer: any offer is taken or refused with a clear error.
func FuzzCheckOffer(f *testing.F) {
	f.Add("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n")
	f.Add("v=0\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		err := checkOffer(s)
		if err == nil {
			return
		}
		if c := loa.ErrorCode(err); c != loa.EINVALID && c != loa.EUNSUPPORTED && c != loa.ETOOLARGE {
			t.Fatalf("error code %s: %v", c, err)
		}
	})
}

func TestPacketDuration(t *testing.T) {
	for _, tc := range []struct {
		p    []byte
		want int
		fwd  bool
	}{
		{[]byte{31<<3 | 0, 1}, 960, true},      // CELT FB 20 ms, one frame
		{[]byte{31<<3 | 4, 1}, 960, false},     // the same, stereo
		{[]byte{1<<3 | 0, 1}, 960, true},       // SILK NB 20 ms
		{[]byte{3<<3 | 0, 1}, 2880, false},     // SILK 60 ms
		{[]byte{30<<3 | 1, 1}, 960, true},      // CELT 10 ms ×2
		{[]byte{30<<3 | 3, 3, 1}, 1440, false}, // CELT 10 ms ×3
	} {
		d, _ := packetDuration(tc.p)
		if d != tc.want || forwardable(tc.p) != tc.fwd {
			t.Errorf("%x: duration %d forwardable %v, want %d %v", tc.p, d, forwardable(tc.p), tc.want, tc.fwd)
		}
	}
}
