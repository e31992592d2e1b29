package daemon

import (
	"crypto/tls"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/broker"
	"github.com/loa-broadcast/loa/cap"
	"github.com/loa-broadcast/loa/media"
	"github.com/loa-broadcast/loa/station"
	"github.com/loa-broadcast/loa/web"
)

// Config is the controller's whole configuration. Defaults come first,
// then LOA_* environment variables, then flags.
type Config struct {
	DataDir    string // bbolt db, media files, admin token, tls/ (the station CA)
	HTTPAddr   string // plain HTTP API and web UI: loopback unless AllowPlain; empty: none
	MQTTListen string // embedded broker's plain listener: loopback unless AllowPlain; empty: none
	MQTTURL    string // external MQTT 3.1.1 broker, e.g. tcp://mosquitto:1883
	MQTTUser   string // controller's account on the broker
	MQTTPass   string // empty with the embedded broker: a random one per start
	// NodeID names this controller node: its MQTT client id is
	// <MQTTUser>-<NodeID>, one per node on a broker the nodes share.
	// Default: the host name (sanitised), else "loa".
	NodeID    string
	RTPBind   string        // UDP address for RTP and RTCP
	RTPPublic string        // host:port receivers are told; differs behind NAT or a load balancer
	Delay     time.Duration // playout delay told to receivers
	Lead      time.Duration // longest wait for receivers to tune before packet 0
	Grace     time.Duration // a scheduled start missed by less (controller down) plays late
	// NTPAddr, if set, is where the controller answers SNTP (RFC 4330) on
	// the clock its sessions' timelines are on, for receivers that
	// discipline their clock with chrony; NTPStratum is the stratum it
	// answers with (1–15; 0: 2).
	NTPAddr    string
	NTPStratum int
	// ClockOffset shifts the wall clock the scheduler uses, for tests
	// and `loa bench chaos` (Go ignores libfaketime); Main.SetClockOffset
	// changes it at run time, which the scheduler sees as a step.
	ClockOffset time.Duration
	LogLevel    string
	// The embedded broker's limits: bytes of one MQTT packet, open
	// connections, and of those not yet authenticated; 0 takes the default.
	MQTTMaxPacket, MQTTMaxConns, MQTTMaxPending int
	// RequireSRTP refuses plain receivers (those announcing no srtp-gcm):
	// they are not tuned, and alert reports say why. Off until the fleet
	// has moved (the plain_receivers alarm lists who has not).
	RequireSRTP bool

	FirmwareKey string // the operator's ed25519 public key file (name.pub); without it uploads are refused
	FirmwareURL string // base URL receivers download images from; default: the API's URL

	// DeviceMQTTURL is the broker URL enrolling receivers are told;
	// default: the controller's own (MQTTURL, or the embedded broker).
	DeviceMQTTURL string

	Alarms       loa.AlarmThresholds // offline, stream loss, temperature raise/clear
	AlarmWebhook string              // optional URL every alarm raise and clear is POSTed to
	// DiskCheckEvery is how often the data directory's free space is
	// checked for the disk_space alarm; 0 = DefaultDiskCheckEvery.
	DiskCheckEvery time.Duration

	CAPSender string // sender of the CAP messages alerts are exported as

	// Cluster makes this controller a node of a Raft group (cluster.go);
	// the zero value is one controller.
	Cluster ClusterConfig

	// National makes this a national controller (station.National): the
	// provinces it pushes alerts to, as CAPSender with its client certificate.
	National bool

	// The SMS trigger (station/sms.go): SMSGateway is the HTTP gateway's
	// URL (POST {to, text} with SMSGatewayToken as a bearer token), empty:
	// no SMS; SMSInboundSecret the bearer token the gateway posts
	// receivers' replies with (POST /api/v1/sms/inbound), empty: replies
	// are refused; SMSWait how long an online receiver has to ack before
	// it is sent the trigger; SMSRate the SMS sent per second at most.
	SMSGateway, SMSGatewayToken, SMSInboundSecret string
	SMSWait                                       time.Duration
	SMSRate                                       float64
	// People told (station/notify.go): PublicURL is the console's address
	// in messages' links; SMTP* the mail server (STARTTLS required; no
	// SMTPAddr: no e-mail); SMSGatewayURL the gateway people's SMS are
	// POSTed to (empty: SMSGateway's), SMSGatewayTemplate its request body
	// (a text/template, or @file; empty: JSON {to, text}). The alarm
	// webhook is the third channel.
	PublicURL                              string
	SMTPAddr, SMTPUser, SMTPPass, SMTPFrom string
	SMSGatewayURL, SMSGatewayTemplate      string
	// SMTPTLS verifies the mail server (tests: their own CA); nil: the
	// system roots. NotifyMinute is a rule's minute and NotifyTick how
	// often rules are evaluated (tests shorten both); 0: a minute, 5 s.
	SMTPTLS                  *tls.Config
	NotifyMinute, NotifyTick time.Duration
	// MapTiles is the console map's tile URL template, e.g.
	// https://tile.openstreetmap.org/{z}/{x}/{y}.png; empty: no tiles (the
	// communes' outlines), as an offline station needs. MapAttribution is
	// the credit its provider asks for (OpenStreetMap's by default for its
	// own tiles).
	MapTiles, MapAttribution string

	// HTTP limits (httpserver.go). HTTPMaxConns is lowered to a quarter of
	// the process's file limit, so HTTP sockets cannot starve the broker.
	HTTPMaxConns      int           // open HTTP connections; more are closed at once
	HTTPHeaderTimeout time.Duration // to send a request's headers: a silent new connection is closed after it
	HTTPIdleTimeout   time.Duration // a keep-alive connection idle this long is closed

	// Uploads (station.TranscodeLimits, media.Options).
	MaxMediaDuration time.Duration // longest decoded upload
	TranscodeWorkers int           // uploads transcoded at once (each about one core)
	TranscodeQueue   int           // uploads waiting for a worker; more are refused (503); 0: 4 per worker
	SDPAllow         string        // CIDRs (or addresses), comma-separated, SDP listeners may be at besides the caller's own address

	// Live microphones (WHIP, package live): the one UDP address of every
	// WebRTC client (empty: no live ingest), the public IPs its candidates
	// name behind a 1:1 NAT (comma-separated), an optional TURN server
	// (comma-separated URLs, with its user and password), and how long an
	// uplink may send nothing before its session ends (0: 5 s).
	LiveBind, LivePublic                 string
	LiveTURN, LiveTURNUser, LiveTURNPass string
	LiveUplinkTimeout                    time.Duration

	// Scheduled backups (backup.go): one archive into BackupDir every
	// BackupEvery, the newest BackupKeep kept; no BackupDir: none.
	BackupDir   string
	BackupEvery time.Duration
	BackupKeep  int

	// TestHooks turns on the clock hook of testhooks.go (a signal and a
	// file in the data dir step the clock offset at run time), for `loa
	// bench chaos`; never in production.
	TestHooks bool

	TLS TLSConfig

	// ProgrammeCache announces the coming week of scheduled programmes to
	// the caches of receivers that announce `cache`, and streams each one
	// on the timeline it announced: a late start joins it at the wall
	// clock's frame instead of playing from the beginning
	// (station/offline.go).
	ProgrammeCache bool

	// BulletinCheckEvery is how often bulletins' tracking follows the
	// receivers' evidence, validity and ưu tiên deadlines (bulletins.go);
	// 0 = DefaultBulletinCheckEvery.
	BulletinCheckEvery time.Duration
	// FeedSubscribe is a JSON file of the publishers this station takes
	// bulletins from: [{url, token, public_key, area_id, every, ca_file}]
	// (docs/bulletin-feed.md); FeedSubscriptions adds more, as they are.
	FeedSubscribe     string
	FeedSubscriptions []station.FeedSubscription
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
		NodeID:     DefaultNodeID(),
		RTPBind:    ":5004",
		Delay:      200 * time.Millisecond,
		Lead:       2 * time.Second,
		Grace:      5 * time.Minute,
		NTPStratum: 2,
		LogLevel:   "info",
		Alarms:     loa.DefaultAlarmThresholds(),
		CAPSender:  defaultCAPSender(),

		MQTTMaxPacket:     broker.DefaultMaxPacket,
		MQTTMaxConns:      broker.DefaultMaxConnections,
		MQTTMaxPending:    broker.DefaultMaxPending,
		HTTPMaxConns:      DefaultHTTPMaxConns,
		HTTPHeaderTimeout: 10 * time.Second,
		HTTPIdleTimeout:   time.Minute,
		MaxMediaDuration:  media.DefaultMaxDuration,
		TranscodeWorkers:  station.DefaultTranscodeWorkers(),
		BackupEvery:       24 * time.Hour,
		BackupKeep:        DefaultBackupKeep,
		TLS:               TLSConfig{MQTTListen: ":8883", HTTPSAddr: ":8443"},
	}
}

// DefaultNodeID is the host name with anything but letters, digits, '.',
// '_' and '-' dropped (at most 64 characters), or "loa".
func DefaultNodeID() string {
	h, _ := os.Hostname()
	id := strings.Map(func(r rune) rune {
		if r < 0x80 && (r == '.' || r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return r
		}
		return -1
	}, h)
	if len(id) > 64 {
		id = id[:64]
	}
	if id == "" {
		return "loa"
	}
	return id
}

// checkNodeID reports whether id can be a node id: 1–64 letters, digits,
// '.', '_' or '-' (it ends up in an MQTT client id and in log lines).
func checkNodeID(id string) error {
	if id == "" || len(id) > 64 || strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
		return fmt.Errorf("node-id %q: want 1–64 letters, digits, '.', '_' or '-'", id)
	}
	return nil
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
	if c.NodeID != "" {
		if err := checkNodeID(c.NodeID); err != nil {
			return err
		}
	}
	c.Cluster.NodeID = c.NodeID
	if err := c.Cluster.validate(); err != nil {
		return err
	}
	if c.MQTTURL != "" && !strings.Contains(c.MQTTURL, "://") {
		return fmt.Errorf("mqtt-url %q: want scheme://host:port, e.g. tcp://127.0.0.1:1883", c.MQTTURL)
	}
	if c.MQTTMaxPacket != 0 && (c.MQTTMaxPacket < broker.MinMaxPacket || c.MQTTMaxPacket > 256<<20) {
		return fmt.Errorf("mqtt-max-packet %d: must be within %d..%d bytes", c.MQTTMaxPacket, broker.MinMaxPacket, 256<<20)
	}
	if c.MQTTMaxConns < 0 || c.MQTTMaxPending < 0 {
		return fmt.Errorf("mqtt-max-conns %d, mqtt-max-pending %d: must be positive", c.MQTTMaxConns, c.MQTTMaxPending)
	}
	if c.Delay < 0 || c.Delay > 10*time.Second {
		return fmt.Errorf("delay %v: must be within 0..10s", c.Delay)
	}
	if c.DeviceMQTTURL != "" && !strings.Contains(c.DeviceMQTTURL, "://") {
		return fmt.Errorf("device-mqtt-url %q: want scheme://host:port, e.g. mqtts://ctl.example:8883", c.DeviceMQTTURL)
	}
	if c.FirmwareURL != "" && !strings.HasPrefix(c.FirmwareURL, "http://") && !strings.HasPrefix(c.FirmwareURL, "https://") {
		return fmt.Errorf("firmware-url %q: want http:// or https://, e.g. http://ctl.example:8080", c.FirmwareURL)
	}
	if c.NTPStratum < 0 || c.NTPStratum > 15 {
		return fmt.Errorf("ntp-stratum %d: must be within 1..15 (0: the default, 2)", c.NTPStratum)
	}
	if c.Lead < 0 || c.Lead > 30*time.Second {
		return fmt.Errorf("lead %v: must be within 0..30s", c.Lead)
	}
	if c.HTTPMaxConns < 0 {
		return fmt.Errorf("http-max-conns %d: must be 0 (the default) or more", c.HTTPMaxConns)
	}
	if c.MaxMediaDuration < 0 || c.MaxMediaDuration > 24*time.Hour {
		return fmt.Errorf("max-media-duration %v: must be within 0..24h (0: the default %v)", c.MaxMediaDuration, media.DefaultMaxDuration)
	}
	if c.TranscodeWorkers < 0 || c.TranscodeQueue < 0 {
		return fmt.Errorf("transcode-workers %d, transcode-queue %d: must be 0 (the default) or more", c.TranscodeWorkers, c.TranscodeQueue)
	}
	if c.BackupDir != "" && (c.BackupEvery < time.Second || c.BackupKeep < 1) {
		return fmt.Errorf("backup-every %v, backup-keep %d: want at least 1s and 1", c.BackupEvery, c.BackupKeep)
	}
	if c.BackupDir != "" && filepath.Clean(c.BackupDir) == filepath.Clean(c.DataDir) {
		return fmt.Errorf("backup-dir: must not be the data dir")
	}
	if err := c.Alarms.Validate(); err != nil {
		return err
	}
	if err := cap.CheckSender(c.CAPSender); err != nil {
		return fmt.Errorf("cap-sender: %s", loa.ErrorMessage(err))
	}
	if c.MapTiles != "" {
		if _, err := web.TileSource(c.MapTiles); err != nil {
			return fmt.Errorf("map-tiles: %w", err)
		}
	}
	if _, err := parsePrefixes(c.SDPAllow); err != nil {
		return fmt.Errorf("sdp-allow: %w", err)
	}
	return c.validateTLS()
}

// mapAttribution is the map's credit: the configured one, or
// OpenStreetMap's for its tiles.
func (c *Config) mapAttribution() string {
	if c.MapAttribution == "" && c.MapTiles != "" {
		if src, err := web.TileSource(c.MapTiles); err == nil && (strings.HasSuffix(src, ".openstreetmap.org") || strings.HasSuffix(src, "/openstreetmap.org")) {
			return "© OpenStreetMap contributors"
		}
	}
	return c.MapAttribution
}

// parsePrefixes reads "10.0.0.0/8,192.0.2.7,…": CIDRs, or addresses that
// stand for themselves.
func parsePrefixes(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for f := range strings.SplitSeq(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if a, err := netip.ParseAddr(f); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an address nor a CIDR like 10.20.0.0/16", f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
