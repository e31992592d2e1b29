package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/loa-broadcast/loa/daemon"
)

// bindConfig binds each setting of c to a flag (and names its LOA_* variable).
func bindConfig(c *daemon.Config, fs *flag.FlagSet) {
	fs.StringVar(&c.DataDir, "data", c.DataDir, "data directory (db, media, admin token) [LOA_DATA]")
	fs.StringVar(&c.HTTPAddr, "http", c.HTTPAddr, "plain HTTP listen address for the API and web UI, loopback unless -allow-plain; empty: none [LOA_HTTP]")
	fs.StringVar(&c.MQTTListen, "mqtt-listen", c.MQTTListen, "embedded MQTT broker's plain listen address, loopback unless -allow-plain; empty: none [LOA_MQTT_LISTEN]")
	fs.StringVar(&c.MQTTURL, "mqtt-url", c.MQTTURL, "external MQTT broker URL, e.g. tcp://host:1883; disables the embedded broker [LOA_MQTT_URL]")
	fs.StringVar(&c.MQTTUser, "mqtt-user", c.MQTTUser, "controller's MQTT username [LOA_MQTT_USER]")
	fs.StringVar(&c.NodeID, "node-id", c.NodeID, "this controller node's id: its MQTT client id is <mqtt-user>-<node-id> (default: the host name) [LOA_NODE_ID]")
	fs.StringVar(&c.MQTTPass, "mqtt-pass", c.MQTTPass, "controller's MQTT password (embedded broker: random when empty) [LOA_MQTT_PASS]")
	fs.IntVar(&c.MQTTMaxPacket, "mqtt-max-packet", c.MQTTMaxPacket, "embedded broker: largest MQTT packet in bytes; a client sending a larger one is disconnected [LOA_MQTT_MAX_PACKET]")
	fs.IntVar(&c.MQTTMaxConns, "mqtt-max-conns", c.MQTTMaxConns, "embedded broker: most open MQTT connections, one per receiver plus margin [LOA_MQTT_MAX_CONNS]")
	fs.IntVar(&c.MQTTMaxPending, "mqtt-max-pending", c.MQTTMaxPending, "embedded broker: most connections not yet authenticated; the oldest is closed for a new one [LOA_MQTT_MAX_PENDING]")
	fs.StringVar(&c.RTPBind, "rtp", c.RTPBind, "UDP listen address for RTP/RTCP [LOA_RTP]")
	fs.StringVar(&c.RTPPublic, "rtp-public", c.RTPPublic, "host:port receivers send RTCP to (default: the bound address) [LOA_RTP_PUBLIC]")
	fs.StringVar(&c.NTPAddr, "ntp-addr", c.NTPAddr, "UDP address to answer SNTP on (e.g. :123), for receivers that follow the controller's clock with chrony; empty: off [LOA_NTP_ADDR]")
	fs.IntVar(&c.NTPStratum, "ntp-stratum", c.NTPStratum, "stratum the SNTP responder answers with, 1–15: one more than the controller's own time source [LOA_NTP_STRATUM]")
	fs.DurationVar(&c.Delay, "delay", c.Delay, "playout delay receivers add, the same on every speaker [LOA_DELAY]")
	fs.DurationVar(&c.Lead, "lead", c.Lead, "longest a session waits for its receivers to tune before its first packet [LOA_LEAD]")
	fs.BoolVar(&c.RequireSRTP, "require-srtp", c.RequireSRTP, "refuse plain receivers (those announcing no srtp-gcm): they are not tuned; see the plain_receivers alarm first [LOA_REQUIRE_SRTP]")
	fs.DurationVar(&c.Grace, "grace", c.Grace, "a scheduled start missed while the controller was down plays late within this window, else is logged as missed [LOA_GRACE]")
	fs.DurationVar(&c.ClockOffset, "clock-offset", c.ClockOffset, "for tests and loa bench chaos: shift the scheduler's wall clock by this (Go ignores libfaketime) [LOA_CLOCK_OFFSET]")
	fs.BoolVar(&c.ProgrammeCache, "programme-cache", c.ProgrammeCache, "announce the coming week's scheduled programmes to receivers' caches, which play them when the stream does not come; late starts join at the wall clock's frame [LOA_PROGRAMME_CACHE]")
	fs.BoolVar(&c.TestHooks, "test-hooks", c.TestHooks, "for loa bench chaos only: SIGUSR1 steps the scheduler clock to the offset written in <data>/"+daemon.ClockHookFile+"; never in production")
	fs.StringVar(&c.LogLevel, "log", c.LogLevel, "log level: debug, info, warn, error [LOA_LOG]")
	fs.StringVar(&c.FirmwareKey, "firmware-key", c.FirmwareKey, "the operator's firmware public key file (name.pub from loa firmware keygen); firmware uploads need it [LOA_FIRMWARE_KEY]")
	fs.StringVar(&c.FirmwareURL, "firmware-url", c.FirmwareURL, "base URL receivers download firmware from, e.g. http://ctl.example:8080 (default: the API address) [LOA_FIRMWARE_URL]")
	fs.StringVar(&c.DeviceMQTTURL, "device-mqtt-url", c.DeviceMQTTURL, "broker URL receivers are told when they enrol with a claim code, e.g. mqtts://ctl.example:8883 (default: the controller's own broker URL) [LOA_DEVICE_MQTT_URL]")
	fs.DurationVar(&c.Alarms.Offline, "alarm-offline", c.Alarms.Offline, "raise an offline alarm for a receiver offline this long [LOA_ALARM_OFFLINE]")
	fs.Float64Var(&c.Alarms.StreamLossPct, "alarm-loss", c.Alarms.StreamLossPct, "raise a stream_loss alarm above this packet loss, % of a telemetry window; clears at half [LOA_ALARM_LOSS]")
	fs.Float64Var(&c.Alarms.TempC, "alarm-temp", c.Alarms.TempC, "raise a temperature alarm at this board temperature, °C [LOA_ALARM_TEMP]")
	fs.Float64Var(&c.Alarms.TempClearC, "alarm-temp-clear", c.Alarms.TempClearC, "clear the temperature alarm below this, °C [LOA_ALARM_TEMP_CLEAR]")
	fs.StringVar(&c.AlarmWebhook, "alarm-webhook", c.AlarmWebhook, "URL to POST every alarm raise and clear to, as JSON (optional) [LOA_ALARM_WEBHOOK]")
	fs.StringVar(&c.BackupDir, "backup-dir", c.BackupDir, "write a backup archive into this directory every -backup-every (empty: no scheduled backups) [LOA_BACKUP_DIR]")
	fs.DurationVar(&c.BackupEvery, "backup-every", c.BackupEvery, "period of scheduled backups, counted from the newest in -backup-dir [LOA_BACKUP_EVERY]")
	fs.IntVar(&c.BackupKeep, "backup-keep", c.BackupKeep, "scheduled backups kept; older ones are removed [LOA_BACKUP_KEEP]")
	bindTLS(&c.TLS, fs)
	fs.StringVar(&c.CAPSender, "cap-sender", c.CAPSender, "sender of exported CAP messages, unique to this controller, e.g. loa.quangngai.gov.vn [LOA_CAP_SENDER]")
	fs.BoolVar(&c.National, "national", c.National, "a national controller: pushes alerts (and CAP messages it takes) to the province controllers it lists, under -cap-sender and its national client certificate [LOA_NATIONAL]")
	fs.StringVar(&c.SMSGateway, "sms-gateway", c.SMSGateway, "URL of the HTTP SMS gateway alerts' SMS triggers are POSTed to as JSON {to, text} (empty: no SMS) [LOA_SMS_GATEWAY]")
	fs.StringVar(&c.SMSGatewayToken, "sms-gateway-token", c.SMSGatewayToken, "bearer token sent to the SMS gateway [LOA_SMS_GATEWAY_TOKEN]")
	fs.StringVar(&c.SMSInboundSecret, "sms-inbound-secret", c.SMSInboundSecret, "bearer token the SMS gateway posts receivers' replies to /api/v1/sms/inbound with (empty: replies refused) [LOA_SMS_INBOUND_SECRET]")
	fs.DurationVar(&c.SMSWait, "sms-wait", c.SMSWait, "how long an online receiver has to ack an alert over MQTT before it is sent the SMS trigger [LOA_SMS_WAIT]")
	fs.Float64Var(&c.SMSRate, "sms-rate", c.SMSRate, "SMS sent per second at most [LOA_SMS_RATE]")
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "the console's address as people reach it, for the links in notifications, e.g. https://loa.binhlieu.gov.vn [LOA_PUBLIC_URL]")
	fs.StringVar(&c.SMTPAddr, "smtp-addr", c.SMTPAddr, "mail server host:port notifications are e-mailed through, with STARTTLS (empty: no e-mail) [LOA_SMTP_ADDR]")
	fs.StringVar(&c.SMTPUser, "smtp-user", c.SMTPUser, "mail server username (PLAIN auth after STARTTLS) [LOA_SMTP_USER]")
	fs.StringVar(&c.SMTPPass, "smtp-pass", c.SMTPPass, "mail server password [LOA_SMTP_PASS]")
	fs.StringVar(&c.SMTPFrom, "smtp-from", c.SMTPFrom, "sender address of notification e-mails [LOA_SMTP_FROM]")
	fs.StringVar(&c.SMSGatewayURL, "sms-gateway-url", c.SMSGatewayURL, "URL of the HTTP SMS gateway notifications are POSTed to (empty: the -sms-gateway) [LOA_SMS_GATEWAY_URL]")
	fs.StringVar(&c.SMSGatewayTemplate, "sms-gateway-template", c.SMSGatewayTemplate, "the gateway's request body, a Go text/template of .To, .Text, .Username (json and urlquery quote), or @file (default: JSON {to, text}) [LOA_SMS_GATEWAY_TEMPLATE]")
	fs.IntVar(&c.HTTPMaxConns, "http-max-conns", c.HTTPMaxConns, "open HTTP connections at most (more are closed at once); lowered to a quarter of the open file limit [LOA_HTTP_MAX_CONNS]")
	fs.DurationVar(&c.MaxMediaDuration, "max-media-duration", c.MaxMediaDuration, "longest audio an upload may hold, decoded; longer is refused before it is transcoded [LOA_MAX_MEDIA_DURATION]")
	fs.IntVar(&c.TranscodeWorkers, "transcode-workers", c.TranscodeWorkers, "uploads transcoded at once, each taking about one CPU core (default: half the CPUs) [LOA_TRANSCODE_WORKERS]")
	fs.IntVar(&c.TranscodeQueue, "transcode-queue", c.TranscodeQueue, "uploads waiting for a transcode worker; more are refused with 503 and Retry-After (0: 4 per worker) [LOA_TRANSCODE_QUEUE]")
	fs.StringVar(&c.MapTiles, "map-tiles", c.MapTiles, "the console map's tile URL, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png (empty: no tiles, the communes' outlines; the console's CSP allows images from this host only) [LOA_MAP_TILES]")
	fs.StringVar(&c.MapAttribution, "map-attribution", c.MapAttribution, "the credit the tile provider asks for, shown on the map (default for OpenStreetMap's tiles: © OpenStreetMap contributors) [LOA_MAP_ATTRIBUTION]")
	fs.StringVar(&c.FeedSubscribe, "feed-subscribe", c.FeedSubscribe, "JSON file of the provincial controllers to take bulletins from: [{url, token, public_key, area_id, every, ca_file}] (docs/bulletin-feed.md) [LOA_FEED_SUBSCRIBE]")
	fs.StringVar(&c.SDPAllow, "sdp-allow", c.SDPAllow, "CIDRs or addresses, comma-separated, the SDP route may stream to besides the caller's own address [LOA_SDP_ALLOW]")
	fs.StringVar(&c.LiveBind, "live-bind", c.LiveBind, "the one UDP address of every WebRTC (WHIP) live microphone, e.g. :5006; empty: no live ingest [LOA_LIVE_BIND]")
	fs.StringVar(&c.LivePublic, "live-public", c.LivePublic, "public IPs, comma-separated, the live ingest's candidates name behind a 1:1 NAT [LOA_LIVE_PUBLIC]")
	fs.StringVar(&c.LiveTURN, "live-turn", c.LiveTURN, "TURN server URLs, comma-separated, for live clients that reach no UDP port (turn:host:3478) [LOA_LIVE_TURN]")
	fs.StringVar(&c.LiveTURNUser, "live-turn-user", c.LiveTURNUser, "the TURN server's user [LOA_LIVE_TURN_USER]")
	fs.StringVar(&c.LiveTURNPass, "live-turn-pass", c.LiveTURNPass, "the TURN server's password [LOA_LIVE_TURN_PASS]")
	fs.StringVar(&c.Cluster.RaftBind, "raft-bind", c.Cluster.RaftBind, "cluster: host:port Raft listens on [LOA_RAFT_BIND]")
	fs.DurationVar(&c.Cluster.NoQuorumAfter, "cluster-no-quorum-after", daemon.DefaultNoQuorumAfter, "cluster: how long a node sees no leader before the period is recorded as the no_quorum alarm (longer than an election)")
	fs.StringVar(&c.Cluster.RaftAdvertise, "raft-advertise", c.Cluster.RaftAdvertise, "cluster: host:port the other nodes reach Raft at (default: this node's raft= in -cluster-peer) [LOA_RAFT_ADVERTISE]")
	fs.Func("cluster-peer", "a node of a controller cluster (docs/cluster.md), this one (-node-id) included, as id=n1,raft=host:port,api=URL,mqtt=URL[,witness]; repeat for each node; none: one controller, no Raft",
		func(s string) error {
			p, err := daemon.ParseClusterPeer(s)
			if err == nil {
				c.Cluster.Peers = append(c.Cluster.Peers, p)
			}
			return err
		})
	fs.DurationVar(&c.LiveUplinkTimeout, "live-uplink-timeout", c.LiveUplinkTimeout, "a live microphone that sends nothing this long ends its session (uplink lost) [LOA_LIVE_UPLINK_TIMEOUT]")
}

// bindTLS binds the TLS settings (README: "TLS and the station CA").
func bindTLS(t *daemon.TLSConfig, fs *flag.FlagSet) {
	fs.StringVar(&t.HTTPSAddr, "https", t.HTTPSAddr, "HTTPS listen address for the API, web UI and firmware downloads; empty: none [LOA_HTTPS]")
	fs.StringVar(&t.MQTTListen, "mqtt-tls-listen", t.MQTTListen, "embedded MQTT broker's TLS listen address for receivers; empty: none [LOA_MQTT_TLS_LISTEN]")
	fs.BoolVar(&t.AllowPlain, "allow-plain", t.AllowPlain, "let plain HTTP and MQTT listen beyond loopback (and -mqtt-url be plain to another host): passwords cross the network in clear [LOA_ALLOW_PLAIN]")
	fs.Func("tls-names", "comma-separated host names and IPs of the station CA's server certificate (default: hostname, localhost, 127.0.0.1, ::1) [LOA_TLS_NAMES]",
		func(s string) error { t.Names = splitList(s); return nil })
	fs.StringVar(&t.CACert, "tls-ca-cert", t.CACert, "the operator's station CA certificate (PEM); default <data>/tls/ca.crt, created at the first start [LOA_TLS_CA_CERT]")
	fs.StringVar(&t.CAKey, "tls-ca-key", t.CAKey, "the operator's station CA key (PEM) [LOA_TLS_CA_KEY]")
	fs.StringVar(&t.Cert, "tls-cert", t.Cert, "the API's HTTPS certificate (PEM chain); default one from the station CA [LOA_TLS_CERT]")
	fs.StringVar(&t.Key, "tls-key", t.Key, "the API's HTTPS key (PEM) [LOA_TLS_KEY]")
	fs.StringVar(&t.ACMEDomain, "acme-domain", t.ACMEDomain, "get the API's HTTPS certificate by ACME (Let's Encrypt) for this public name; -https must be reachable on port 443 [LOA_ACME_DOMAIN]")
	fs.StringVar(&t.ACMEDirectory, "acme-directory", t.ACMEDirectory, "ACME directory URL (default Let's Encrypt) [LOA_ACME_DIRECTORY]")
	fs.StringVar(&t.ACMERoots, "acme-ca", t.ACMERoots, "PEM roots to trust for the ACME directory, for a private or test ACME server [LOA_ACME_CA]")
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// configFromEnv applies LOA_* variables to c; flags parsed afterwards win.
func configFromEnv(c *daemon.Config, getenv func(string) string) error {
	str := map[string]*string{
		"LOA_DATA": &c.DataDir, "LOA_HTTP": &c.HTTPAddr, "LOA_MQTT_LISTEN": &c.MQTTListen,
		"LOA_MQTT_URL": &c.MQTTURL, "LOA_MQTT_USER": &c.MQTTUser, "LOA_MQTT_PASS": &c.MQTTPass, "LOA_NODE_ID": &c.NodeID,
		"LOA_RTP": &c.RTPBind, "LOA_RTP_PUBLIC": &c.RTPPublic, "LOA_NTP_ADDR": &c.NTPAddr, "LOA_LOG": &c.LogLevel,
		"LOA_FIRMWARE_KEY": &c.FirmwareKey, "LOA_FIRMWARE_URL": &c.FirmwareURL,
		"LOA_ALARM_WEBHOOK": &c.AlarmWebhook, "LOA_CAP_SENDER": &c.CAPSender, "LOA_SDP_ALLOW": &c.SDPAllow,
		"LOA_MAP_TILES": &c.MapTiles, "LOA_MAP_ATTRIBUTION": &c.MapAttribution,
		"LOA_RAFT_BIND": &c.Cluster.RaftBind, "LOA_RAFT_ADVERTISE": &c.Cluster.RaftAdvertise,
		"LOA_HTTPS": &c.TLS.HTTPSAddr, "LOA_MQTT_TLS_LISTEN": &c.TLS.MQTTListen,
		"LOA_TLS_CA_CERT": &c.TLS.CACert, "LOA_TLS_CA_KEY": &c.TLS.CAKey, "LOA_TLS_CERT": &c.TLS.Cert, "LOA_TLS_KEY": &c.TLS.Key,
		"LOA_ACME_DOMAIN": &c.TLS.ACMEDomain, "LOA_ACME_DIRECTORY": &c.TLS.ACMEDirectory, "LOA_ACME_CA": &c.TLS.ACMERoots,
		"LOA_DEVICE_MQTT_URL": &c.DeviceMQTTURL, "LOA_BACKUP_DIR": &c.BackupDir, "LOA_FEED_SUBSCRIBE": &c.FeedSubscribe,
		"LOA_PUBLIC_URL": &c.PublicURL, "LOA_SMTP_ADDR": &c.SMTPAddr, "LOA_SMTP_USER": &c.SMTPUser, "LOA_SMTP_PASS": &c.SMTPPass,
		"LOA_SMTP_FROM": &c.SMTPFrom, "LOA_SMS_GATEWAY_URL": &c.SMSGatewayURL, "LOA_SMS_GATEWAY_TEMPLATE": &c.SMSGatewayTemplate,
		"LOA_SMS_GATEWAY": &c.SMSGateway, "LOA_SMS_GATEWAY_TOKEN": &c.SMSGatewayToken, "LOA_SMS_INBOUND_SECRET": &c.SMSInboundSecret,
		"LOA_LIVE_BIND": &c.LiveBind, "LOA_LIVE_PUBLIC": &c.LivePublic, "LOA_LIVE_TURN": &c.LiveTURN,
		"LOA_LIVE_TURN_USER": &c.LiveTURNUser, "LOA_LIVE_TURN_PASS": &c.LiveTURNPass,
	}
	for k, p := range str {
		if v := getenv(k); v != "" {
			*p = v
		}
	}
	if v := getenv("LOA_TLS_NAMES"); v != "" {
		c.TLS.Names = splitList(v)
	}
	if v := getenv("LOA_ALLOW_PLAIN"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("LOA_ALLOW_PLAIN: %w", err)
		}
		c.TLS.AllowPlain = b
	}
	for k, p := range map[string]*float64{"LOA_ALARM_LOSS": &c.Alarms.StreamLossPct, "LOA_ALARM_TEMP": &c.Alarms.TempC,
		"LOA_ALARM_TEMP_CLEAR": &c.Alarms.TempClearC, "LOA_SMS_RATE": &c.SMSRate} {
		if v := getenv(k); v != "" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			*p = f
		}
	}
	for k, p := range map[string]*int{"LOA_HTTP_MAX_CONNS": &c.HTTPMaxConns, "LOA_TRANSCODE_WORKERS": &c.TranscodeWorkers,
		"LOA_TRANSCODE_QUEUE": &c.TranscodeQueue, "LOA_MQTT_MAX_PACKET": &c.MQTTMaxPacket, "LOA_MQTT_MAX_CONNS": &c.MQTTMaxConns,
		"LOA_MQTT_MAX_PENDING": &c.MQTTMaxPending, "LOA_BACKUP_KEEP": &c.BackupKeep, "LOA_NTP_STRATUM": &c.NTPStratum} {
		if v := getenv(k); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			*p = n
		}
	}
	if v := getenv("LOA_PROGRAMME_CACHE"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("LOA_PROGRAMME_CACHE: %w", err)
		}
		c.ProgrammeCache = b
	}
	if v := getenv("LOA_REQUIRE_SRTP"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("LOA_REQUIRE_SRTP: %w", err)
		}
		c.RequireSRTP = b
	}
	for k, p := range map[string]*time.Duration{"LOA_DELAY": &c.Delay, "LOA_LEAD": &c.Lead, "LOA_GRACE": &c.Grace, "LOA_CLOCK_OFFSET": &c.ClockOffset,
		"LOA_ALARM_OFFLINE": &c.Alarms.Offline, "LOA_MAX_MEDIA_DURATION": &c.MaxMediaDuration,
		"LOA_BACKUP_EVERY": &c.BackupEvery, "LOA_SMS_WAIT": &c.SMSWait, "LOA_LIVE_UPLINK_TIMEOUT": &c.LiveUplinkTimeout} {
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
