package main

import (
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/loa-broadcast/loa/daemon"
)

// bindConfig binds each setting of c to a flag (and names its LOA_* variable).
func bindConfig(c *daemon.Config, fs *flag.FlagSet) {
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
	fs.BoolVar(&c.RequireSRTP, "require-srtp", c.RequireSRTP, "refuse plain receivers (those announcing no srtp-gcm): they are not tuned; see the plain_receivers alarm first [LOA_REQUIRE_SRTP]")
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

// configFromEnv applies LOA_* variables to c; flags parsed afterwards win.
func configFromEnv(c *daemon.Config, getenv func(string) string) error {
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
	if v := getenv("LOA_REQUIRE_SRTP"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("LOA_REQUIRE_SRTP: %w", err)
		}
		c.RequireSRTP = b
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
