package station

import (
	"context"
	"errors"
	"testing"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

type fixedEndpoints struct {
	url string
	ca  []byte
	err error
}

func (f fixedEndpoints) DeviceMQTTURL() string      { return f.url }
func (f fixedEndpoints) CACertPEM() ([]byte, error) { return f.ca, f.err }

// A claimed box gets its credentials once, signed with its code; the
// password works, the answer names the station's broker and CA.
func TestEnrolmentClaimThenEnrolOnce(t *testing.T) {
	ctx := context.Background()
	db := tempStore(t)
	ca := []byte("-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n")
	e := NewEnrolment(EnrolmentConfig{DB: db, Endpoints: fixedEndpoints{url: "mqtts://ctl:8883", ca: ca},
		FirmwareURL: "https://ctl/", Logger: quietLogger(t)})
	code := protocol.NewClaimCode()

	if _, err := e.Enrol(ctx, code); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Fatalf("enrol before the claim: %v, want not found", err)
	}
	if _, err := e.ClaimCode(ctx, "not a code", &loa.Device{AreaID: "c"}, "tok"); loa.ErrorCode(err) != loa.EINVALID {
		t.Errorf("claiming a malformed code: %v, want invalid", err)
	}
	d := &loa.Device{AreaID: "c", Name: "Loa chợ"}
	// The label groups the code; a technician may type it in lower case.
	label := code[:5] + "-" + code[5:10] + " " + code[10:]
	c, err := e.ClaimCode(ctx, label, d, "tok-tech")
	if err != nil {
		t.Fatal(err)
	}
	if d.ID == "" || c.DeviceID != d.ID || c.CreatedBy != "tok-tech" {
		t.Fatalf("claim %+v for device %+v", c, d)
	}
	r, err := e.Enrol(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	if r.DeviceID != d.ID || r.MQTTURL != "mqtts://ctl:8883" || r.CAPEM != string(ca) || r.FirmwareURL != "https://ctl" {
		t.Errorf("answer %+v", r)
	}
	if err := protocol.VerifyEnrolResponse(code, r); err != nil {
		t.Errorf("the answer's mac: %v", err)
	}
	if ok, _ := db.CheckDeviceCredentials(ctx, d.ID, r.Password); !ok {
		t.Error("the enrolled password does not work")
	}
	if _, err := e.Enrol(ctx, code); loa.ErrorCode(err) != loa.EGONE {
		t.Errorf("a second enrolment: %v, want gone", err)
	}
	log, _ := db.AuditLog(ctx, 1)
	if len(log) != 1 || log[0].Action != "device.enrol" || log[0].Object != d.ID {
		t.Errorf("audit %+v, want the enrolment", log)
	}
}

// Without the CA the answer cannot be made: the claim is not consumed.
func TestEnrolmentKeepsTheClaimWhenTheAnswerFails(t *testing.T) {
	ctx := context.Background()
	db := tempStore(t)
	ep := &fixedEndpoints{url: "mqtts://ctl:8883", err: errors.New("ca.crt: permission denied")}
	e := NewEnrolment(EnrolmentConfig{DB: db, Endpoints: ep, Logger: quietLogger(t)})
	code := protocol.NewClaimCode()
	if _, err := e.ClaimCode(ctx, code, &loa.Device{ID: "rx-1", AreaID: "c"}, "tok"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Enrol(ctx, code); err == nil {
		t.Fatal("enrolled without the CA")
	}
	ep.err = nil
	e.endpoints = *ep
	if _, err := e.Enrol(ctx, code); err != nil {
		t.Fatalf("the claim was consumed by the failed answer: %v", err)
	}
}

// A swap revokes the old unit and drops it before the new one enrols.
func TestEnrolmentReplaceRevokesTheOldUnitAtOnce(t *testing.T) {
	ctx := context.Background()
	db := tempStore(t, "rx-1")
	b := &recordingBroker{db: db}
	e := NewEnrolment(EnrolmentConfig{DB: db, Endpoints: fixedEndpoints{url: "tcp://ctl:1883"}, Broker: b, Logger: quietLogger(t)})
	code := protocol.NewClaimCode()
	c, enforced, err := e.ReplaceDevice(ctx, "rx-1", code, "tok")
	if err != nil || !enforced || !c.Replace || c.AreaID != "c" {
		t.Fatalf("replace: %+v, %v, %v", c, enforced, err)
	}
	if len(b.dropped) != 1 || b.dropped[0].Credentials != loa.CredentialsRevoked {
		t.Fatalf("dropped %+v, want rx-1 once, revoked before the drop", b.dropped)
	}
	r, err := e.Enrol(ctx, code)
	if err != nil || r.DeviceID != "rx-1" || r.CAPEM != "" {
		t.Fatalf("the new unit's enrolment: %+v, %v", r, err)
	}
	if err := protocol.VerifyEnrolResponse(code, r); err != nil {
		t.Error(err)
	}
}
