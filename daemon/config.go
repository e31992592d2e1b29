package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/cap"
)

// Config is the controller's whole configuration. Defaults come first,
// then LOA_* environment variables, then flags.
type Config struct {
	DataDir    string        // bbolt db, media files, admin token, tls/ (the station CA)
	HTTPAddr   string        // plain HTTP API and web UI: loopback unless AllowPlain; empty: none
	MQTTListen string        // embedded broker's plain listener: loopback unless AllowPlain; empty: none
	MQTTURL    string        // external MQTT 3.1.1 broker, e.g. tcp://mosquitto:1883
	MQTTUser   string        // controller's account on the broker
	MQTTPass   string        // empty with the embedded broker: a random one per start
	RTPBind    string        // UDP address for RTP and RTCP
	RTPPublic  string        // host:port receivers are told; differs behind NAT or a load balancer
	Delay      time.Duration // playout delay told to receivers
	Lead       time.Duration // longest wait for receivers to tune before packet 0
	Grace      time.Duration // a scheduled start missed by less (controller down) plays late
	LogLevel   string

	FirmwareKey string // the operator's ed25519 public key file (name.pub); without it uploads are refused
	FirmwareURL string // base URL receivers download images from; default: the API's URL

	Alarms       loa.AlarmThresholds // offline, stream loss, temperature raise/clear
	AlarmWebhook string              // optional URL every alarm raise and clear is POSTed to

	CAPSender string // sender of the CAP messages alerts are exported as

	TLS TLSConfig
}

// TLSConfig is how the controller speaks TLS beyond loopback (see tls.go).
type TLSConfig struct {
	MQTTListen string   // embedded broker's MQTT-over-TLS listener for devices; empty: none
	HTTPSAddr  string   // HTTPS for the API, the console and firmware downloads; empty: none
	AllowPlain bool     // plain MQTT and HTTP may listen beyond loopback, and -mqtt-url be plain to another host
	Names      []string // names of the station-CA server certificate; default: hostname and loopback
	// CACert and CAKey are the operator's own station CA; default
	// <data>/tls/ca.crt and ca.key, created at the first start.
	CACert, CAKey string
	Cert, Key     string // the API's own certificate for HTTPS (files); default one from the station CA
	ACMEDomain    string // get the API's certificate by ACME (autocert) for this public name
	ACMEDirectory string // ACME directory URL; default Let's Encrypt
	ACMERoots     string // PEM file of roots trusted for the ACME directory (a private or test ACME server)
}

// DefaultConfig returns the defaults for a single-machine install.
func DefaultConfig() Config {
	dir := "loa-data"
	if home, err := os.UserHomeDir(); err == nil {
		dir = filepath.Join(home, ".local", "share", "loa")
	}
	return Config{
		DataDir:    dir,
		HTTPAddr:   "127.0.0.1:8080",
		MQTTListen: "127.0.0.1:1883",
		MQTTUser:   "loa-controller",
		RTPBind:    ":5004",
		Delay:      200 * time.Millisecond,
		Lead:       2 * time.Second,
		Grace:      5 * time.Minute,
		LogLevel:   "info",
		Alarms:     loa.DefaultAlarmThresholds(),
		CAPSender:  defaultCAPSender(),
		TLS:        TLSConfig{MQTTListen: ":8883", HTTPSAddr: ":8443"},
	}
}

// defaultCAPSender is loa@host: CAP asks senders to be unique, and the
// host name is what a single-machine install has that is.
func defaultCAPSender() string {
	if h, err := os.Hostname(); err == nil && cap.CheckSender("loa@"+h) == nil {
		return "loa@" + h
	}
	return "loa"
}

// Validate reports the first setting that cannot work.
func (c *Config) Validate() error {
	if strings.TrimSpace(c.DataDir) == "" {
		return fmt.Errorf("data: a directory is required")
	}
	if c.MQTTURL != "" && !strings.Contains(c.MQTTURL, "://") {
		return fmt.Errorf("mqtt-url %q: want scheme://host:port, e.g. tcp://127.0.0.1:1883", c.MQTTURL)
	}
	if c.Delay < 0 || c.Delay > 10*time.Second {
		return fmt.Errorf("delay %v: must be within 0..10s", c.Delay)
	}
	if c.FirmwareURL != "" && !strings.HasPrefix(c.FirmwareURL, "http://") && !strings.HasPrefix(c.FirmwareURL, "https://") {
		return fmt.Errorf("firmware-url %q: want http:// or https://, e.g. http://ctl.example:8080", c.FirmwareURL)
	}
	if c.Lead < 0 || c.Lead > 30*time.Second {
		return fmt.Errorf("lead %v: must be within 0..30s", c.Lead)
	}
	if err := c.Alarms.Validate(); err != nil {
		return err
	}
	if err := cap.CheckSender(c.CAPSender); err != nil {
		return fmt.Errorf("cap-sender: %s", loa.ErrorMessage(err))
	}
	return c.validateTLS()
}
