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
	DataDir    string        // bbolt db, media files, admin token
	HTTPAddr   string        // API and web UI
	MQTTListen string        // embedded broker listen address (when MQTTURL is empty)
	MQTTURL    string        // external MQTT 3.1.1 broker, e.g. tcp://mosquitto:1883
	MQTTUser   string        // controller's account on the broker
	MQTTPass   string        // empty with the embedded broker: a random one per start
	RTPBind    string        // UDP address for RTP and RTCP
	RTPPublic  string        // host:port receivers are told; differs behind NAT or a load balancer
	Delay      time.Duration // playout delay told to receivers
	Lead       time.Duration // longest wait for receivers to tune before packet 0
	Grace      time.Duration // a scheduled start missed by less (controller down) plays late
	LogLevel   string
	// RequireSRTP refuses plain receivers (those announcing no srtp-gcm):
	// they are not tuned, and alert reports say why. Off until the fleet
	// has moved (the plain_receivers alarm lists who has not).
	RequireSRTP bool

	FirmwareKey string // the operator's ed25519 public key file (name.pub); without it uploads are refused
	FirmwareURL string // base URL receivers download images from; default: the API's URL

	Alarms       loa.AlarmThresholds // offline, stream loss, temperature raise/clear
	AlarmWebhook string              // optional URL every alarm raise and clear is POSTed to

	CAPSender string // sender of the CAP messages alerts are exported as
}

// DefaultConfig returns the defaults for a single-machine install.
func DefaultConfig() Config {
	dir := "loa-data"
	if home, err := os.UserHomeDir(); err == nil {
		dir = filepath.Join(home, ".local", "share", "loa")
	}
	return Config{
		DataDir:    dir,
		HTTPAddr:   ":8080",
		MQTTListen: ":1883",
		MQTTUser:   "loa-controller",
		RTPBind:    ":5004",
		Delay:      200 * time.Millisecond,
		Lead:       2 * time.Second,
		Grace:      5 * time.Minute,
		LogLevel:   "info",
		Alarms:     loa.DefaultAlarmThresholds(),
		CAPSender:  defaultCAPSender(),
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
	return nil
}
