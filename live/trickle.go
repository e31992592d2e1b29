package live

import (
	"strings"

	"github.com/pion/webrtc/v4"

	"github.com/loa-broadcast/loa"
)

// Bounds of a trickle fragment (RFC 8840 application/trickle-ice-sdpfrag).
const (
	maxFragment   = 16 << 10
	maxCandidates = 64
)

// fragment is what a client's PATCH tells: its ICE credentials, if it
// names them, and its new candidates by media section.
type fragment struct {
	ufrag, pwd string
	cands      []webrtc.ICECandidateInit
	end        bool // a=end-of-candidates
}

// parseFragment reads a trickle fragment. Lines it does not use are
// skipped; a candidate line must be well formed (it is parsed again by the
// ICE agent).
func parseFragment(frag string) (fragment, error) {
	var f fragment
	if len(frag) > maxFragment {
		return f, loa.Errorf(loa.ETOOLARGE, "fragment: larger than %d bytes", maxFragment)
	}
	mid := ""
	var idx *uint16
	sections := uint16(0)
	for _, line := range strings.Split(frag, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case line == "":
		case strings.HasPrefix(line, "m="):
			i := sections
			idx, mid = &i, ""
			sections++
		case strings.HasPrefix(line, "a=mid:"):
			mid = strings.TrimPrefix(line, "a=mid:")
		case strings.HasPrefix(line, "a=ice-ufrag:"):
			f.ufrag = strings.TrimPrefix(line, "a=ice-ufrag:")
		case strings.HasPrefix(line, "a=ice-pwd:"):
			f.pwd = strings.TrimPrefix(line, "a=ice-pwd:")
		case line == "a=end-of-candidates":
			f.end = true
		case strings.HasPrefix(line, "a=candidate:"):
			c := strings.TrimPrefix(line, "a=")
			if len(strings.Fields(c)) < 8 || !strings.Contains(c, " typ ") {
				return f, loa.Errorf(loa.EINVALID, "fragment: %q is not an ICE candidate", truncate(line, 80))
			}
			if len(f.cands) == maxCandidates {
				return f, loa.Errorf(loa.ETOOLARGE, "fragment: more than %d candidates", maxCandidates)
			}
			ci := webrtc.ICECandidateInit{Candidate: c, SDPMLineIndex: idx}
			if mid != "" {
				m := mid
				ci.SDPMid = &m
			}
			f.cands = append(f.cands, ci)
		}
	}
	return f, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Trickle adds the candidates of a client's PATCH (RFC 9725 §4.3). An ICE
// restart (new credentials) is not supported: ECONFLICT.
func (u *Uplink) Trickle(frag string) error {
	f, err := parseFragment(frag)
	if err != nil {
		return err
	}
	if f.ufrag != "" {
		if rd := u.pc.RemoteDescription(); rd != nil && !strings.Contains(rd.SDP, "a=ice-ufrag:"+f.ufrag+"\r\n") && !strings.Contains(rd.SDP, "a=ice-ufrag:"+f.ufrag+"\n") {
			return loa.Errorf(loa.ECONFLICT, "fragment: ICE restart (new ufrag) is not supported; start a new session")
		}
	}
	select {
	case <-u.done:
		return loa.Errorf(loa.ECONFLICT, "uplink ended: %s", u.Reason())
	default:
	}
	for _, c := range f.cands {
		if err := u.pc.AddICECandidate(c); err != nil {
			return loa.Errorf(loa.EINVALID, "fragment: candidate %q: %v", truncate(c.Candidate, 80), err)
		}
	}
	return nil
}
