package broadcast

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtcp"

	"github.com/loa-broadcast/loa/protocol"
)

// contractGolden returns the hex of the CONTRACT.md block marked
// <!-- golden: name -->.
func contractGolden(t *testing.T, name string) []byte {
	t.Helper()
	doc, err := os.ReadFile("../protocol/CONTRACT.md")
	if err != nil {
		t.Fatal(err)
	}
	mark := regexp.MustCompile(`^<!-- golden: (\S+) -->$`)
	sc := bufio.NewScanner(bytes.NewReader(doc))
	var found, in bool
	var hexText strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case in && line == "```":
			b, err := hex.DecodeString(hexText.String())
			if err != nil {
				t.Fatalf("golden %s: %v", name, err)
			}
			return b
		case in:
			hexText.WriteString(strings.Join(strings.Fields(line), ""))
		case found && strings.HasPrefix(line, "```"):
			in = true
		case mark.MatchString(line):
			found = mark.FindStringSubmatch(line)[1] == name
		}
	}
	t.Fatalf("CONTRACT.md has no golden %s block", name)
	return nil
}

// spaced is b in hex, 16 bytes a line, as CONTRACT.md shows it.
func spaced(b []byte) string {
	var s strings.Builder
	for i := 0; i < len(b); i += 16 {
		s.WriteString(hex.EncodeToString(b[i:min(i+16, len(b))]) + "\n")
	}
	return s.String()
}

// TestContractTimeExchangeGolden: the example exchange of CONTRACT.md is
// what a receiver's request is and what the engine answers, byte for byte,
// and a receiver's arithmetic on it gives the contract's θ.
func TestContractTimeExchangeGolden(t *testing.T) {
	const recv, ssrc = 0xabcdef01, 0x12345678
	t0 := time.UnixMilli(1795000000000)
	t1 := ntpTime(time.Date(2026, 11, 19, 0, 26, 40, 0, time.UTC))
	tok, _ := hex.DecodeString("00112233445566778899aabbccddeeff")
	req, err := rtcp.Marshal([]rtcp.Packet{
		&rtcp.ReceiverReport{SSRC: recv},
		rtcp.NewCNAMESourceDescription(recv, "rx-0001"),
		&rtcp.ApplicationDefined{SSRC: recv, Name: protocol.RTCPAppName, Data: tok},
		xrFrom(recv, t1),
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := contractGolden(t, "rrtr"); !bytes.Equal(req, want) {
		t.Errorf("request differs from CONTRACT.md:\n%s", spaced(req))
	}
	pkts, err := rtcp.Unmarshal(contractGolden(t, "rrtr"))
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := rrtrOf(pkts, recv); !ok || got != t1 {
		t.Errorf("the golden request's T1 %#x, want %#x", got, t1)
	}

	s := &session{id: "9f2c", ssrc: ssrc, tl: timeline{t0Ms: t0.UnixMilli(), ts0: 0x10000000}}
	s.wall0.Store(t0.UnixNano())
	s.octets.Store(40000)
	t2 := t0.Add(10*time.Second + 300*time.Microsecond)
	ans, err := rtcp.Marshal(s.exchangeReply(recv, t1, t2, t0.Add(10*time.Second+500*time.Microsecond)))
	if err != nil {
		t.Fatal(err)
	}
	if want := contractGolden(t, "dlrr"); !bytes.Equal(ans, want) {
		t.Errorf("answer differs from CONTRACT.md:\n%s", spaced(ans))
	}
	pkts, err = rtcp.Unmarshal(contractGolden(t, "dlrr"))
	if err != nil {
		t.Fatal(err)
	}
	x, ok := replyIn(pkts, recv)
	if !ok {
		t.Fatal("the golden answer has no SR and DLRR for the receiver")
	}
	t.Logf("T3 %v (NTP %#x, RTP %#x, count %d), LRR %#x, DLRR %d", ntpToTime(x.sr.NTPTime).UTC(), x.sr.NTPTime,
		x.sr.RTPTime, x.sr.PacketCount, x.dlrr.LastRR, x.dlrr.DLRR)
	if x.sr.SSRC != ssrc || x.sr.PacketCount != 500 || x.dlrr.LastRR != uint32(t1>>16) {
		t.Errorf("golden answer %+v %+v", x.sr, x.dlrr)
	}
}
