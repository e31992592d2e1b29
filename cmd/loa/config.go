package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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

// configVars binds each setting to a flag and a LOA_* variable.
func (c *Config) bind(fs *flag.FlagSet) {
	fs.StringVar(&c.DataDir, "data", c.DataDir, "data directory (db, media, admin token) [LOA_DATA]")
	fs.StringVar(&c.HTTPAddr, "http", c.HTTPAddr, "HTTP listen address for the API and web UI [LOA_HTTP]")
	fs.StringVar(&c.MQTTListen, "mqtt-listen", c.MQTTListen, "embedded MQTT broker listen address [LOA_MQTT_LISTEN]")
	fs.StringVar(&c.MQTTURL, "mqtt-url", c.MQTTURL, "external MQTT broker URL, e.g. tcp://host:1883; disables the embedded broker [LOA_MQTT_URL]")
	fs.StringVar(&c.MQTTUser, "mqtt-user", c.MQTTUser, "controller's MQTT username [LOA_MQTT_USER]")
	fs.StringVar(&c.MQTTPass, "mqtt-pass", c.MQTTPass, "controller's MQTT password (embedded broker: random when empty) [LOA_MQTT_PASS]")
	fs.StringVar(&c.RTPBind, "rtp", c.RTPBind, "UDP listen address for RTP/RTCP [LOA_RTP]")
	fs.StringVar(&c.RTPPublic, "rtp-public", c.RTPPublic, "host:port receivers send RTCP to (default: the bound address) [LOA_RTP_PUBLIC]")
	fs.DurationVar(&c.Delay, "delay", c.Delay, "playout delay receivers add, the same on every speaker [LOA_DELAY]")
	fs.DurationVar(&c.Lead, "lead", c.Lead, "longest a session waits for its receivers to tune before its first packet [LOA_LEAD]")
	fs.DurationVar(&c.Grace, "grace", c.Grace, "a scheduled start missed while the controller was down plays late within this window, else is logged as missed [LOA_GRACE]")
	fs.StringVar(&c.LogLevel, "log", c.LogLevel, "log level: debug, info, warn, error [LOA_LOG]")
	fs.StringVar(&c.FirmwareKey, "firmware-key", c.FirmwareKey, "the operator's firmware public key file (name.pub from loa firmware keygen); firmware uploads need it [LOA_FIRMWARE_KEY]")
	fs.StringVar(&c.FirmwareURL, "firmware-url", c.FirmwareURL, "base URL receivers download firmware from, e.g. http://ctl.example:8080 (default: the API address) [LOA_FIRMWARE_URL]")
	fs.DurationVar(&c.Alarms.Offline, "alarm-offline", c.Alarms.Offline, "raise an offline alarm for a receiver offline this long [LOA_ALARM_OFFLINE]")
	fs.Float64Var(&c.Alarms.StreamLossPct, "alarm-loss", c.Alarms.StreamLossPct, "raise a stream_loss alarm above this packet loss, % of a telemetry window; clears at half [LOA_ALARM_LOSS]")
	fs.Float64Var(&c.Alarms.TempC, "alarm-temp", c.Alarms.TempC, "raise a temperature alarm at this board temperature, °C [LOA_ALARM_TEMP]")
	fs.Float64Var(&c.Alarms.TempClearC, "alarm-temp-clear", c.Alarms.TempClearC, "clear the temperature alarm below this, °C [LOA_ALARM_TEMP_CLEAR]")
	fs.StringVar(&c.AlarmWebhook, "alarm-webhook", c.AlarmWebhook, "URL to POST every alarm raise and clear to, as JSON (optional) [LOA_ALARM_WEBHOOK]")
	fs.StringVar(&c.CAPSender, "cap-sender", c.CAPSender, "sender of exported CAP messages, unique to this controller, e.g. loa.quangngai.gov.vn [LOA_CAP_SENDER]")
}

// fromEnv applies LOA_* variables; flags parsed afterwards win.
func (c *Config) fromEnv(getenv func(string) string) error {
	str := map[string]*string{
		"LOA_DATA": &c.DataDir, "LOA_HTTP": &c.HTTPAddr, "LOA_MQTT_LISTEN": &c.MQTTListen,
		"LOA_MQTT_URL": &c.MQTTURL, "LOA_MQTT_USER": &c.MQTTUser, "LOA_MQTT_PASS": &c.MQTTPass,
		"LOA_RTP": &c.RTPBind, "LOA_RTP_PUBLIC": &c.RTPPublic, "LOA_LOG": &c.LogLevel,
		"LOA_FIRMWARE_KEY": &c.FirmwareKey, "LOA_FIRMWARE_URL": &c.FirmwareURL,
		"LOA_ALARM_WEBHOOK": &c.AlarmWebhook, "LOA_CAP_SENDER": &c.CAPSender,
	}
	for k, p := range str {
		if v := getenv(k); v != "" {
			*p = v
		}
	}
	for k, p := range map[string]*float64{"LOA_ALARM_LOSS": &c.Alarms.StreamLossPct, "LOA_ALARM_TEMP": &c.Alarms.TempC,
		"LOA_ALARM_TEMP_CLEAR": &c.Alarms.TempClearC} {
		if v := getenv(k); v != "" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			*p = f
		}
	}
	for k, p := range map[string]*time.Duration{"LOA_DELAY": &c.Delay, "LOA_LEAD": &c.Lead, "LOA_GRACE": &c.Grace,
		"LOA_ALARM_OFFLINE": &c.Alarms.Offline} {
		if v := getenv(k); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			*p = d
		}
	}
	return nil
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
