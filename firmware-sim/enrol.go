package firmwaresim

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/loa-broadcast/loa/protocol"
)

// EnrolConfig configures Enrol: a box's first boot with the claim code on
// its label (CONTRACT.md, "Enrolment").
type EnrolConfig struct {
	URL       string // the controller's base URL; protocol.EnrolPath is appended
	ClaimCode string // as printed; spaces, hyphens and case do not matter
	StateDir  string // where the credentials and CA are kept (created, mode 0700)
	// TrustOnFirstUse skips verifying the controller's HTTPS certificate
	// on the enrolment request only, for a box with no root that knows it;
	// the answer's mac is still checked (see the contract for what that
	// does and does not protect).
	TrustOnFirstUse bool
	// MinWait and MaxWait bound the back-off between polls when the
	// controller gives no Retry-After (default 5s and 5m); MaxWait also
	// caps a Retry-After, so a test can poll quickly.
	MinWait, MaxWait time.Duration
	Client           *http.Client // default: one for URL, per TrustOnFirstUse
	Logger           *slog.Logger
}

// Enrolment is what a box keeps once enrolled: its identity, MQTT
// credentials, the broker and the station CA. Config fills a receiver's
// Config with it.
type Enrolment struct {
	DeviceID    string `json:"device_id"`
	Password    string `json:"password"`
	MQTTURL     string `json:"mqtt_url"`
	CAPEM       string `json:"ca_pem,omitempty"`
	FirmwareURL string `json:"firmware_url,omitempty"`
	StationKey  string `json:"station_key,omitempty"` // base64 ed25519 public key
	// MQTTURLs is every controller's broker of a cluster (absent: MQTTURL
	// alone); the receiver rotates through them.
	MQTTURLs []string `json:"mqtt_urls,omitempty"`
}

// Files in EnrolConfig.StateDir.
const (
	EnrolStateFile = "enrolment.json" // the Enrolment, mode 0600
	EnrolCAFile    = "ca.pem"         // the station CA, when there is one
)

// ErrClaimUsed is Enrol's answer when the controller says the code was
// used (410): a technician must claim the box again.
var ErrClaimUsed = errors.New("enrol: the claim code was already used; claim the box again")

// Enrol returns the box's enrolment: the one kept in cfg.StateDir if the
// box enrolled before (it never enrols twice), else it polls the
// controller until the code is claimed, checks the answer's mac against
// the code, keeps the answer and returns it. A mac that does not match is
// protocol.ErrEnrolMAC and nothing is kept; a used code is ErrClaimUsed.
func Enrol(ctx context.Context, cfg EnrolConfig) (Enrolment, error) {
	if e, err := LoadEnrolment(cfg.StateDir); err == nil {
		return e, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return Enrolment{}, err
	}
	code, err := protocol.NormalizeClaimCode(cfg.ClaimCode)
	if err != nil {
		return Enrolment{}, err
	}
	if cfg.MinWait <= 0 {
		cfg.MinWait = 5 * time.Second
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 5 * time.Minute
	}
	cfg.MaxWait = max(cfg.MaxWait, cfg.MinWait)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	client := cfg.Client
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if cfg.TrustOnFirstUse {
			tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} // the mac is checked instead
		}
		client = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	}
	url := strings.TrimSuffix(cfg.URL, "/") + protocol.EnrolPath
	body, _ := json.Marshal(protocol.EnrolRequest{ClaimCode: code})
	backoff := cfg.MinWait
	for {
		ans, wait, err := poll(ctx, client, url, body)
		switch {
		case err == nil:
			if err := protocol.VerifyEnrolResponse(code, &ans); err != nil {
				cfg.Logger.Error("enrolment answer refused: its mac does not match the claim code", "url", url)
				return Enrolment{}, err
			}
			e := Enrolment{DeviceID: ans.DeviceID, Password: ans.Password, MQTTURL: ans.MQTTURL,
				CAPEM: ans.CAPEM, FirmwareURL: ans.FirmwareURL, StationKey: ans.StationKey, MQTTURLs: ans.MQTTURLs}
			if err := e.save(cfg.StateDir); err != nil {
				return Enrolment{}, err
			}
			cfg.Logger.Info("enrolled", "device", e.DeviceID, "broker", e.MQTTURL, "brokers", len(e.MQTTURLs), "ca", e.CAPEM != "")
			return e, nil
		case errors.Is(err, errPermanent):
			return Enrolment{}, err
		}
		if wait <= 0 { // no Retry-After: exponential back-off with jitter
			wait = backoff + time.Duration(rand.Int63n(int64(backoff)/5+1))
			backoff = min(2*backoff, cfg.MaxWait)
		}
		wait = min(wait, cfg.MaxWait)
		cfg.Logger.Debug("not enrolled yet", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return Enrolment{}, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// errPermanent marks answers a poll must not repeat.
var errPermanent = errors.New("enrol")

// poll sends one enrolment request. wait is the answer's Retry-After.
func poll(ctx context.Context, c *http.Client, url string, body []byte) (ans protocol.EnrolResponse, wait time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return ans, 0, fmt.Errorf("%w: %w", errPermanent, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return ans, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, protocol.MaxEnrolResponse+1))
	if err != nil {
		return ans, 0, err
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		wait = time.Duration(s) * time.Second
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		ans, err = protocol.DecodeEnrolResponse(b)
		if err != nil {
			return ans, 0, fmt.Errorf("%w: %w", errPermanent, err)
		}
		return ans, 0, nil
	case resp.StatusCode == http.StatusGone:
		return ans, 0, fmt.Errorf("%w: %w", errPermanent, ErrClaimUsed)
	case resp.StatusCode == http.StatusBadRequest:
		return ans, 0, fmt.Errorf("%w: %s: %s", errPermanent, resp.Status, bytes.TrimSpace(b))
	}
	// 404 not claimed yet, 429, 5xx, anything else: try again later.
	return ans, wait, fmt.Errorf("enrol: %s", resp.Status)
}

// LoadEnrolment reads the enrolment kept in dir; an error satisfying
// errors.Is(err, os.ErrNotExist) if the box never enrolled.
func LoadEnrolment(dir string) (Enrolment, error) {
	var e Enrolment
	b, err := os.ReadFile(filepath.Join(dir, EnrolStateFile))
	if err != nil {
		return e, err
	}
	if err := json.Unmarshal(b, &e); err != nil || e.DeviceID == "" || e.Password == "" || e.MQTTURL == "" {
		return Enrolment{}, fmt.Errorf("enrolment state %s: unreadable or incomplete (%v)", filepath.Join(dir, EnrolStateFile), err)
	}
	return e, nil
}

// save writes the CA, then the enrolment, each atomically: the claim is
// used, so a box that lost power mid-write could not enrol again and
// must not be left with half a file.
func (e Enrolment) save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("enrolment state: %w", err)
	}
	if e.CAPEM != "" {
		if err := writeAtomic(filepath.Join(dir, EnrolCAFile), []byte(e.CAPEM)); err != nil {
			return err
		}
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, EnrolStateFile), b)
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("enrolment state: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("enrolment state: %w", err)
	}
	return nil
}

// CAPool is the station CA as a pool, the only root the receiver then
// trusts; nil (the system roots) when there is no CA.
func (e Enrolment) CAPool() (*x509.CertPool, error) {
	if e.CAPEM == "" {
		return nil, nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(e.CAPEM)) {
		return nil, errors.New("enrolment: the station CA holds no PEM certificate")
	}
	return pool, nil
}

// Config returns base with the enrolment's identity, credentials and
// brokers (and the station CA for a TLS broker).
func (e Enrolment) Config(base Config) (Config, error) {
	pool, err := e.CAPool()
	if err != nil {
		return base, err
	}
	base.ID, base.Password, base.Broker, base.CA = e.DeviceID, e.Password, e.MQTTURL, pool
	base.Brokers = e.MQTTURLs
	if e.StationKey != "" {
		if base.StationKey, err = protocol.ParseStationPublicKey(e.StationKey); err != nil {
			return base, err
		}
	}
	return base, nil
}
