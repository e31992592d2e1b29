package station

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"strings"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
	"github.com/loa-broadcast/loa/store"
)

// EnrolEndpoints is what an enrolling receiver is told besides its
// credentials: the broker URL receivers use and the station's CA. The
// daemon implements it over its configuration (and the station CA once
// there is one).
type EnrolEndpoints interface {
	DeviceMQTTURL() string
	// CACertPEM is the station CA certificate receivers verify the
	// broker with; nil when there is none (plain MQTT on a trusted link).
	CACertPEM() ([]byte, error)
}

// Enrolment claims receivers' claim codes into areas and hands a claimed
// box its credentials once, when it polls with its code; a claim may also
// swap a dead unit, whose credentials it revokes at once.
type Enrolment struct {
	db          *store.DB
	endpoints   EnrolEndpoints
	firmwareURL string
	stationKey  string             // protocol.EncodeStationPublicKey, or ""
	broker      ClientDisconnector // nil with an external broker
	logger      *slog.Logger
}

// EnrolmentConfig configures an Enrolment.
type EnrolmentConfig struct {
	DB          *store.DB
	Endpoints   EnrolEndpoints
	FirmwareURL string             // told to receivers when set
	StationKey  ed25519.PublicKey  // told to receivers when set
	Broker      ClientDisconnector // nil with an external broker
	Logger      *slog.Logger
}

// NewEnrolment returns the service.
func NewEnrolment(cfg EnrolmentConfig) *Enrolment {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Enrolment{db: cfg.DB, endpoints: cfg.Endpoints, firmwareURL: strings.TrimSuffix(cfg.FirmwareURL, "/"),
		broker: cfg.Broker, logger: cfg.Logger}
	if len(cfg.StationKey) == ed25519.PublicKeySize {
		e.stationKey = protocol.EncodeStationPublicKey(cfg.StationKey)
	}
	return e
}

// ClaimCode binds a box's claim code to a new device d (registered now,
// without a password until the box enrols). by is the token id. An empty
// d.ID gets a generated one.
func (e *Enrolment) ClaimCode(ctx context.Context, code string, d *loa.Device, by string) (*loa.Claim, error) {
	canonical, err := protocol.NormalizeClaimCode(code)
	if err != nil {
		return nil, loa.Errorf(loa.EINVALID, "claim_code: %s", strings.TrimPrefix(err.Error(), "claim code: "))
	}
	if d.ID == "" {
		d.ID = "rx-" + newID()[:10]
	}
	c := &loa.Claim{Hash: protocol.ClaimCodeHash(canonical), CreatedBy: by}
	if err := e.db.CreateClaim(ctx, c, d); err != nil {
		return nil, err
	}
	e.logger.Info("receiver claimed", "claim", c.ID, "device", d.ID, "area", d.AreaID, "by", by)
	return c, nil
}

// ReplaceDevice claims a new box's code for existing device id: the box
// takes over its identity, area and settings when it enrols. The old
// unit's credentials are revoked now and its connection dropped; enforced
// says whether the broker could be made to drop it.
func (e *Enrolment) ReplaceDevice(ctx context.Context, id, code, by string) (c *loa.Claim, enforced bool, err error) {
	canonical, err := protocol.NormalizeClaimCode(code)
	if err != nil {
		return nil, false, loa.Errorf(loa.EINVALID, "claim_code: %s", strings.TrimPrefix(err.Error(), "claim code: "))
	}
	c = &loa.Claim{DeviceID: id, Replace: true, Hash: protocol.ClaimCodeHash(canonical), CreatedBy: by}
	if err := e.db.CreateClaim(ctx, c, nil); err != nil {
		return nil, false, err
	}
	e.logger.Info("unit swap claimed; the old unit's credentials are revoked", "claim", c.ID, "device", id,
		"by", by, "enforced", e.broker != nil)
	if e.broker == nil {
		return c, false, nil
	}
	e.broker.Disconnect(id) // after the store: the old unit's reconnect is refused
	return c, true, nil
}

// Claims returns every claim, the newest first.
func (e *Enrolment) Claims(ctx context.Context) ([]*loa.Claim, error) { return e.db.Claims(ctx) }

// ClaimByID returns one claim.
func (e *Enrolment) ClaimByID(ctx context.Context, id string) (*loa.Claim, error) {
	return e.db.Claim(ctx, id)
}

// CancelClaim deletes a claim: a pending one is cancelled (its box gets
// nothing; a new device it registered is removed), an enrolled one
// forgotten so the code may be claimed again.
func (e *Enrolment) CancelClaim(ctx context.Context, id string) (*loa.Claim, error) {
	c, err := e.db.DeleteClaim(ctx, id)
	if err != nil {
		return nil, err
	}
	e.logger.Info("claim deleted", "claim", id, "device", c.DeviceID, "enrolled", c.Enrolled())
	return c, nil
}

// Enrol answers a box polling with its claim code: ENOTFOUND until the
// code is claimed (and for any code never claimed: the two look the
// same), the device's fresh credentials, broker URL and CA once, signed
// with the code, then EGONE.
func (e *Enrolment) Enrol(ctx context.Context, code string) (*protocol.EnrolResponse, error) {
	canonical, err := protocol.NormalizeClaimCode(code)
	if err != nil {
		return nil, loa.Errorf(loa.EINVALID, "claim_code: %s", strings.TrimPrefix(err.Error(), "claim code: "))
	}
	// What the answer needs, before the claim is consumed: a failure
	// here leaves the box able to try again.
	var ca []byte
	if e.endpoints != nil {
		if ca, err = e.endpoints.CACertPEM(); err != nil {
			return nil, fmt.Errorf("enrol: station CA: %w", err)
		}
	}
	mqttURL := ""
	if e.endpoints != nil {
		mqttURL = e.endpoints.DeviceMQTTURL()
	}
	if mqttURL == "" {
		return nil, loa.Errorf(loa.EUNAVAILABLE, "enrolment: no broker URL for receivers is configured")
	}
	password := store.NewDevicePassword()
	c, d, err := e.db.EnrolClaim(ctx, protocol.ClaimCodeHash(canonical), password)
	if err != nil {
		return nil, err
	}
	r := &protocol.EnrolResponse{DeviceID: d.ID, Password: password, MQTTURL: mqttURL, CAPEM: string(ca), FirmwareURL: e.firmwareURL,
		StationKey: e.stationKey}
	// A cluster's receivers are given every controller's broker: they
	// rotate through them and stay on the leader's.
	if l, ok := e.endpoints.(interface{ DeviceMQTTURLs() []string }); ok {
		r.MQTTURLs = l.DeviceMQTTURLs()
	}
	protocol.SignEnrolResponse(canonical, r)
	e.logger.Info("receiver enrolled", "claim", c.ID, "device", d.ID, "area", d.AreaID, "replace", c.Replace)
	detail := "enrolled with claim " + c.ID
	if c.Replace {
		detail += ": a new unit took over the device"
	}
	if err := e.db.Audit(ctx, loa.AuditRecord{Actor: "system", Action: "device.enrol", Object: d.ID, Detail: detail}); err != nil {
		e.logger.Error("audit record lost", "action", "device.enrol", "device", d.ID, "err", err)
	}
	return r, nil
}
