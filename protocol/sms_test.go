package protocol

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// The contract's golden vectors (CONTRACT.md, "SMS (v2, sms)"): the
// station key of seed 00 01 … 1f, and the reply key of the MQTT password
// "secret". Both texts were also computed by an independent
// implementation (Python's cryptography and hmac).
var (
	smsGoldenKey     = ed25519.NewKeyFromSeed(seq32())
	smsGoldenTrigger = SMSTrigger{Code: 7, Area: "20590", Repeats: 3, Volume: 90, Priority: 240,
		Expires: time.Unix(1795003600, 0).UTC(), Seq: 42, Session: "9f2c00000000a17e"}
	smsGoldenReply = SMSReply{Device: "rx-0001", Seq: 42, Session: "9f2c00000000a17e", Played: 3,
		Started: time.Unix(1795000012, 0).UTC()}
)

const (
	smsGoldenTriggerText = "LOA1 AAcgWQ__A1rwav2U0AAAACqfLAAAAAChftUT9mkhB2eg_S9EIp4KW7mFKHHVB03qP1ghyht0dv3lfztbCd3zjHaP9TQ26wX8wy6COTMdlIamYlrINKGZfw4"
	smsGoldenReplyText   = "LOA1R rx-0001 AAAAKp8sAAAAAKF-A2r9hsz4Qr-yzWq0ct3XQojPEwgB"
)

func seq32() []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func TestSMSGolden(t *testing.T) {
	text, err := EncodeSMSTrigger(smsGoldenKey, smsGoldenTrigger)
	if err != nil {
		t.Fatal(err)
	}
	if text != smsGoldenTriggerText {
		t.Errorf("trigger:\n got %s\nwant %s", text, smsGoldenTriggerText)
	}
	reply, err := EncodeSMSReply(SMSReplyKeyFromPassword("secret"), smsGoldenReply)
	if err != nil {
		t.Fatal(err)
	}
	if reply != smsGoldenReplyText {
		t.Errorf("reply:\n got %s\nwant %s", reply, smsGoldenReplyText)
	}
	doc, err := os.ReadFile("CONTRACT.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{smsGoldenTriggerText, smsGoldenReplyText} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("CONTRACT.md does not give the golden SMS %q", want)
		}
	}
	got, err := VerifySMSTrigger(smsGoldenKey.Public().(ed25519.PublicKey), smsGoldenTriggerText)
	if err != nil || got != smsGoldenTrigger {
		t.Errorf("verify golden trigger: %+v, %v", got, err)
	}
	r, err := VerifySMSReply(SMSReplyKeyFromPassword("secret"), smsGoldenReplyText)
	if err != nil || r != smsGoldenReply {
		t.Errorf("verify golden reply: %+v, %v", r, err)
	}
}

// Every text fits one SMS of the GSM 7-bit default alphabet, whatever the
// fields.
func TestSMSFitsOneGSM7SMS(t *testing.T) {
	trig := smsGoldenTrigger
	trig.Area, trig.Code, trig.Seq = "12345678", MaxStoredCode, 1<<32-1
	text, err := EncodeSMSTrigger(smsGoldenKey, trig)
	if err != nil {
		t.Fatal(err)
	}
	r := smsGoldenReply
	r.Device = strings.Repeat("a", 64)
	reply, err := EncodeSMSReply([]byte("k"), r)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{text, reply} {
		if len(s) > SMSMaxLen {
			t.Errorf("%d characters: %s", len(s), s)
		}
		for _, c := range s {
			ok := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune(" -_.", c)
			if !ok {
				t.Errorf("%q is not a GSM 7-bit default character with no escape: %s", c, s)
			}
		}
	}
}

func TestSMSAreaCodes(t *testing.T) {
	pub := smsGoldenKey.Public().(ed25519.PublicKey)
	for _, a := range []string{"*", "0", "01", "001", "20590", "12345678"} {
		trig := smsGoldenTrigger
		trig.Area = a
		text, err := EncodeSMSTrigger(smsGoldenKey, trig)
		if err != nil {
			t.Fatalf("%q: %v", a, err)
		}
		got, err := VerifySMSTrigger(pub, text)
		if err != nil || got.Area != a {
			t.Errorf("%q: got %q, %v", a, got.Area, err)
		}
	}
	for _, a := range []string{"", "123456789", "2059a", " 1", "**"} {
		trig := smsGoldenTrigger
		trig.Area = a
		if _, err := EncodeSMSTrigger(smsGoldenKey, trig); err == nil {
			t.Errorf("area %q accepted", a)
		}
	}
}

func TestSMSTriggerRefusedFields(t *testing.T) {
	for name, f := range map[string]func(*SMSTrigger){
		"code 0":       func(t *SMSTrigger) { t.Code = 0 },
		"code 1000":    func(t *SMSTrigger) { t.Code = 1000 },
		"repeats 0":    func(t *SMSTrigger) { t.Repeats = 0 },
		"repeats 21":   func(t *SMSTrigger) { t.Repeats = MaxStoredRepeats + 1 },
		"volume 101":   func(t *SMSTrigger) { t.Volume = 101 },
		"seq 0":        func(t *SMSTrigger) { t.Seq = 0 },
		"no expiry":    func(t *SMSTrigger) { t.Expires = time.Time{} },
		"session":      func(t *SMSTrigger) { t.Session = "9F2C00000000A17E" },
		"session 15":   func(t *SMSTrigger) { t.Session = "9f2c00000000a17" },
		"session text": func(t *SMSTrigger) { t.Session = "al-1" },
	} {
		trig := smsGoldenTrigger
		f(&trig)
		if _, err := EncodeSMSTrigger(smsGoldenKey, trig); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// A forged trigger is refused: any changed character, another key, or a
// trigger signed as another kind of message.
func TestSMSTriggerForged(t *testing.T) {
	pub := smsGoldenKey.Public().(ed25519.PublicKey)
	text := smsGoldenTriggerText
	for i := len(SMSPrefix); i < len(text); i++ {
		b := []byte(text)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		if _, err := VerifySMSTrigger(pub, string(b)); err == nil {
			t.Fatalf("character %d changed: accepted", i)
		}
	}
	other := ed25519.NewKeyFromSeed(make([]byte, 32))
	forged, err := EncodeSMSTrigger(other, smsGoldenTrigger)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifySMSTrigger(pub, forged); !errors.Is(err, ErrSMSSignature) {
		t.Errorf("signed by another key: %v, want ErrSMSSignature", err)
	}
	if _, err := VerifySMSTrigger(nil, smsGoldenTriggerText); !errors.Is(err, ErrSMSSignature) {
		t.Errorf("no station key: %v, want ErrSMSSignature", err)
	}
	// The same fields signed without the label (as another kind of signed
	// object would be) do not verify.
	_, raw, err := ParseSMSTrigger(smsGoldenTriggerText)
	if err != nil {
		t.Fatal(err)
	}
	sig := ed25519.Sign(smsGoldenKey, raw[:smsFieldsLen])
	unlabelled := SMSPrefix + encodeB64(append(raw[:smsFieldsLen:smsFieldsLen], sig...))
	if _, err := VerifySMSTrigger(pub, unlabelled); !errors.Is(err, ErrSMSSignature) {
		t.Errorf("signed without the label: %v, want ErrSMSSignature", err)
	}
	for _, s := range []string{"", "LOA1", "LOA1 ", "LOA2 " + text[5:], text + "A", text[:len(text)-1], "LOA1 " + strings.Repeat("A", 200)} {
		if _, err := VerifySMSTrigger(pub, s); !errors.Is(err, ErrSMSMalformed) {
			t.Errorf("%q: %v, want ErrSMSMalformed", s, err)
		}
	}
}

// The receiver's rules: expired, another area, replayed (not above the
// highest accepted) are refused, each with its error.
func TestAcceptSMSTrigger(t *testing.T) {
	trig := smsGoldenTrigger
	before := trig.Expires.Add(-time.Minute)
	areas := []string{"01", "20590", "2059001"}
	cases := []struct {
		name    string
		now     time.Time
		highest uint32
		area    string
		want    error
	}{
		{"fresh", before, 41, "20590", nil},
		{"every area", before, 0, "*", nil},
		{"the province", before, 0, "01", nil},
		{"expired", trig.Expires, 0, "20590", ErrSMSExpired},
		{"long expired", trig.Expires.Add(time.Hour), 0, "20590", ErrSMSExpired},
		{"another area", before, 0, "20591", ErrSMSArea},
		{"a code's prefix", before, 0, "2059", ErrSMSArea},
		{"replayed", before, 42, "20590", ErrSMSReplayed},
		{"older", before, 100, "20590", ErrSMSReplayed},
	}
	for _, c := range cases {
		tr := trig
		tr.Area = c.area
		err := AcceptSMSTrigger(tr, c.now, c.highest, areas)
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func TestSMSReplyForged(t *testing.T) {
	key := SMSReplyKeyFromPassword("secret")
	if _, err := VerifySMSReply(SMSReplyKeyFromPassword("other"), smsGoldenReplyText); !errors.Is(err, ErrSMSSignature) {
		t.Errorf("another device's key: %v", err)
	}
	// Another device's id on the same body and tag.
	if _, err := VerifySMSReply(key, strings.Replace(smsGoldenReplyText, "rx-0001", "rx-0002", 1)); !errors.Is(err, ErrSMSSignature) {
		t.Errorf("another device id: %v", err)
	}
	text := smsGoldenReplyText
	for i := len(SMSReplyPrefix) + len("rx-0001 "); i < len(text); i++ {
		b := []byte(text)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		if _, err := VerifySMSReply(key, string(b)); err == nil {
			t.Fatalf("character %d changed: accepted", i)
		}
	}
	for _, s := range []string{"", "LOA1R", "LOA1R rx-0001", "LOA1R RX-1 " + text[14:], smsGoldenTriggerText} {
		if _, err := VerifySMSReply(key, s); !errors.Is(err, ErrSMSMalformed) {
			t.Errorf("%q: %v, want ErrSMSMalformed", s, err)
		}
	}
}

func encodeB64(b []byte) string { return b64.EncodeToString(b) }

var b64 = base64.RawURLEncoding

// Outside input: the modem hands the receiver any text; the gateway
// hands the controller any text. Neither parser panics, and what parses
// encodes back to the same text.
func FuzzParseSMSTrigger(f *testing.F) {
	f.Add(smsGoldenTriggerText)
	f.Add("LOA1 ")
	f.Add(smsGoldenReplyText)
	f.Fuzz(func(t *testing.T, s string) {
		trig, raw, err := ParseSMSTrigger(s)
		if err != nil {
			return
		}
		if len(raw) != smsLen {
			t.Fatalf("%d bytes", len(raw))
		}
		again := SMSPrefix + b64.EncodeToString(append(trig.fields(), raw[smsFieldsLen:]...))
		if again != strings.TrimSpace(s) {
			t.Fatalf("%q parsed as %+v, encodes back as %q", s, trig, again)
		}
	})
}

func FuzzParseSMSReply(f *testing.F) {
	f.Add(smsGoldenReplyText)
	f.Add("LOA1R a ")
	f.Fuzz(func(t *testing.T, s string) {
		r, raw, err := ParseSMSReply(s)
		if err != nil {
			return
		}
		again := SMSReplyPrefix + r.Device + " " + b64.EncodeToString(append(r.fields(), raw[len(raw)-SMSReplyTagLen:]...))
		if again != strings.TrimSpace(s) {
			t.Fatalf("%q parsed as %+v, encodes back as %q", s, r, again)
		}
	})
}
