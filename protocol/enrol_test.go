package protocol

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// goldenEnrol is the enrolment answer CONTRACT.md shows, signed with
// goldenClaimCode: a third-party receiver checks its MAC code against it.
const goldenClaimCode = "MFRGGZDFMZTWQ2LKNNWG"

var goldenEnrol = EnrolResponse{
	DeviceID: "rx-0042", Password: "6b1f0c2a9e8d7f6a5b4c3d2e1f0a9b8c",
	MQTTURL: "mqtts://ctl.example.vn:8883", CAPEM: "-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n",
	FirmwareURL: "https://ctl.example.vn",
}

const goldenEnrolMAC = "3196f3accf467a35753e76a5fa53e77fd84820c0b743d5b55500c47a5ab35b01"

func TestEnrolMACGolden(t *testing.T) {
	r := goldenEnrol
	SignEnrolResponse(goldenClaimCode, &r)
	if r.MAC != goldenEnrolMAC {
		t.Fatalf("mac %s, want %s", r.MAC, goldenEnrolMAC)
	}
	if err := VerifyEnrolResponse(goldenClaimCode, &r); err != nil {
		t.Fatal(err)
	}
	// The golden file (and CONTRACT.md's example) is that answer.
	b, err := os.ReadFile("testdata/enrol.response.json")
	if err != nil {
		t.Fatal(err)
	}
	file, err := DecodeEnrolResponse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(file, r) {
		t.Errorf("testdata/enrol.response.json is\n%+v\nwant\n%+v", file, r)
	}
}

// goldenStationKey is the station key of the second example in
// CONTRACT.md: an answer with station_key, which the MAC then covers.
const (
	goldenStationKey      = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
	goldenEnrolStationMAC = "91ba0eb924d066f4503edfc3ac48d415309e26c238ad3157107d0409846abd90"
)

func TestEnrolMACGoldenWithStationKey(t *testing.T) {
	r := goldenEnrol
	r.StationKey = goldenStationKey
	SignEnrolResponse(goldenClaimCode, &r)
	if r.MAC != goldenEnrolStationMAC {
		t.Fatalf("mac %s, want %s", r.MAC, goldenEnrolStationMAC)
	}
	b, _ := json.Marshal(r)
	got, err := DecodeEnrolResponse(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyEnrolResponse(goldenClaimCode, &got); err != nil {
		t.Fatal(err)
	}
	// Dropped or swapped, the key no longer matches the mac: a man in the
	// middle cannot hand a box his own key.
	for name, key := range map[string]string{"dropped": "", "swapped": EncodeStationPublicKey(make([]byte, 32))} {
		r := got
		r.StationKey = key
		if err := VerifyEnrolResponse(goldenClaimCode, &r); !errors.Is(err, ErrEnrolMAC) {
			t.Errorf("station_key %s: %v, want ErrEnrolMAC", name, err)
		}
	}
	r.StationKey = "AAAA"
	b, _ = json.Marshal(r)
	if _, err := DecodeEnrolResponse(b); err == nil || !strings.Contains(err.Error(), "station_key") {
		t.Errorf("a 3-byte station key decoded: %v", err)
	}
}

// goldenMQTTURLs are the brokers of the third example in CONTRACT.md: a
// cluster's answer, whose MAC covers them (and an empty station_key).
var goldenMQTTURLs = []string{"mqtts://ctl.example.vn:8883", "mqtts://ctl2.example.vn:8883"}

const goldenEnrolClusterMAC = "0d4b8d332bb76fafe0ae1bded7a569b6aebe05d37ae81f03bbd1d7b9e3bbb292"

func TestEnrolMACGoldenWithMQTTURLs(t *testing.T) {
	r := goldenEnrol
	r.MQTTURLs = goldenMQTTURLs
	SignEnrolResponse(goldenClaimCode, &r)
	if r.MAC != goldenEnrolClusterMAC {
		t.Fatalf("mac %s, want %s", r.MAC, goldenEnrolClusterMAC)
	}
	b, _ := json.Marshal(r)
	got, err := DecodeEnrolResponse(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyEnrolResponse(goldenClaimCode, &got); err != nil {
		t.Fatal(err)
	}
	// Dropped, reordered or added to, the brokers no longer match: nobody
	// on the path can send a box to a broker of theirs.
	for name, urls := range map[string][]string{"dropped": nil, "one": goldenMQTTURLs[:1],
		"reordered": {goldenMQTTURLs[1], goldenMQTTURLs[0]}, "added": append(slices.Clone(goldenMQTTURLs), "mqtts://evil:8883")} {
		r := got
		r.MQTTURLs = urls
		if err := VerifyEnrolResponse(goldenClaimCode, &r); !errors.Is(err, ErrEnrolMAC) {
			t.Errorf("mqtt_urls %s: %v, want ErrEnrolMAC", name, err)
		}
	}
	// Without mqtt_urls, an answer with a station key keeps its MAC.
	r.MQTTURLs, r.StationKey = nil, goldenStationKey
	if SignEnrolResponse(goldenClaimCode, &r); r.MAC != goldenEnrolStationMAC {
		t.Errorf("mac with a station key and no mqtt_urls %s, want %s", r.MAC, goldenEnrolStationMAC)
	}
	for _, bad := range [][]string{{"ctl.example.vn:8883"}, slices.Repeat([]string{"tcp://a:1"}, MaxMQTTURLs+1)} {
		r := got
		r.MQTTURLs = bad
		b, _ := json.Marshal(r)
		if _, err := DecodeEnrolResponse(b); err == nil || !strings.Contains(err.Error(), "mqtt_urls") {
			t.Errorf("mqtt_urls %v decoded: %v", bad, err)
		}
	}
}

// Any change to any field, or another code, fails the check.
func TestEnrolMACRefusesTampering(t *testing.T) {
	code := NewClaimCode()
	signed := goldenEnrol
	SignEnrolResponse(code, &signed)
	for name, tamper := range map[string]func(r *EnrolResponse){
		"device_id":    func(r *EnrolResponse) { r.DeviceID = "rx-0043" },
		"password":     func(r *EnrolResponse) { r.Password = strings.Repeat("0", 32) },
		"mqtt_url":     func(r *EnrolResponse) { r.MQTTURL = "mqtts://evil.example:8883" },
		"ca_pem":       func(r *EnrolResponse) { r.CAPEM = "" },
		"firmware_url": func(r *EnrolResponse) { r.FirmwareURL = "" },
		// Moving bytes between fields keeps their concatenation; the
		// length prefixes must still tell them apart.
		"boundary": func(r *EnrolResponse) { r.DeviceID, r.Password = r.DeviceID+r.Password[:1], r.Password[1:] },
		"mac":      func(r *EnrolResponse) { r.MAC = strings.Repeat("0", 64) },
		"mac hex":  func(r *EnrolResponse) { r.MAC = "zz" },
	} {
		r := signed
		tamper(&r)
		if err := VerifyEnrolResponse(code, &r); !errors.Is(err, ErrEnrolMAC) {
			t.Errorf("%s changed: %v, want ErrEnrolMAC", name, err)
		}
	}
	if err := VerifyEnrolResponse(NewClaimCode(), &signed); !errors.Is(err, ErrEnrolMAC) {
		t.Errorf("another code verified the answer: %v", err)
	}
}

func TestNormalizeClaimCode(t *testing.T) {
	for in, want := range map[string]string{
		"MFRGGZDFMZTWQ2LKNNWG":       "MFRGGZDFMZTWQ2LKNNWG",
		"mfrgg-zdfmz-twq2l-knnwg":    "MFRGGZDFMZTWQ2LKNNWG",
		" MFRG GZDF MZTW Q2LK NNWG ": "MFRGGZDFMZTWQ2LKNNWG",
	} {
		if got, err := NormalizeClaimCode(in); err != nil || got != want {
			t.Errorf("NormalizeClaimCode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "MFRGGZDFMZTWQ2LKNNW", "MFRGGZDFMZTWQ2LKNNWGA", "MFRGGZDFMZTWQ2LKNNW1",
		"MFRGGZDFMZTWQ2LKNNW8", "MFRGGZDFMZTWQ2LKNNW=", "MFRGGZDFMZTWQ2LKNNW\x00", strings.Repeat("-", 200)} {
		if got, err := NormalizeClaimCode(bad); err == nil {
			t.Errorf("NormalizeClaimCode(%q) = %q, want an error", bad, got)
		}
	}
	a, b := NewClaimCode(), NewClaimCode()
	if a == b {
		t.Error("two new claim codes are equal")
	}
	if got, err := NormalizeClaimCode(a); err != nil || got != a {
		t.Errorf("a new claim code %q is not canonical: %q, %v", a, got, err)
	}
	if h := ClaimCodeHash(a); len(h) != 64 || h == ClaimCodeHash(b) || strings.Contains(h, a) {
		t.Errorf("ClaimCodeHash(%q) = %q", a, h)
	}
}

func TestDecodeEnrolResponse(t *testing.T) {
	good, _ := json.Marshal(func() EnrolResponse { r := goldenEnrol; SignEnrolResponse(goldenClaimCode, &r); return r }())
	if _, err := DecodeEnrolResponse(good); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		``, `{}`, `[]`, `{"device_id":"a/b","password":"p","mqtt_url":"tcp://h:1","mac":"00"}`,
		`{"device_id":"a","password":"","mqtt_url":"tcp://h:1","mac":"00"}`,
		`{"device_id":"a","password":"p","mqtt_url":"h:1","mac":"00"}`,
		`{"device_id":"a","password":"p","mqtt_url":"tcp://h:1"}`,
		`{"device_id":"a","password":"p","mqtt_url":"tcp://h:1","mac":"00"} {}`,
		`{"device_id":"a","password":"p","mqtt_url":"tcp://h:1","mac":"00","ca_pem":"` + strings.Repeat("A", MaxEnrolResponse) + `"}`,
	} {
		if _, err := DecodeEnrolResponse([]byte(bad)); err == nil {
			t.Errorf("DecodeEnrolResponse(%.60q) accepted", bad)
		}
	}
}

func FuzzEnrol(f *testing.F) {
	f.Add([]byte(`{"device_id":"a","password":"p","mqtt_url":"tcp://h:1","mac":"00"}`), "MFRGGZDFMZTWQ2LKNNWG")
	f.Add([]byte(`{"device_id":"`+strings.Repeat("x", 70)+`"}`), "mfrgg-zdfmz")
	f.Fuzz(func(t *testing.T, b []byte, code string) {
		c, err := NormalizeClaimCode(code)
		if err == nil {
			if again, err := NormalizeClaimCode(c); err != nil || again != c || len(c) != ClaimCodeLen {
				t.Fatalf("canonical %q of %q does not normalize to itself: %q, %v", c, code, again, err)
			}
		}
		r, err := DecodeEnrolResponse(b)
		if err != nil {
			return
		}
		if r.DeviceID == "" || r.Password == "" || r.MAC == "" {
			t.Fatalf("incomplete answer accepted: %+v", r)
		}
		// A mac that verifies was made with the code: sign and compare.
		if VerifyEnrolResponse(c, &r) == nil {
			want := r
			SignEnrolResponse(c, &want)
			if want.MAC != strings.ToLower(r.MAC) {
				t.Fatalf("mac %s verified, the code gives %s", r.MAC, want.MAC)
			}
		}
	})
}
