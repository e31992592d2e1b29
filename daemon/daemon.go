package daemon

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/crypto/acme/autocert"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/broadcast"
	"github.com/loa-broadcast/loa/broker"
	"github.com/loa-broadcast/loa/devices"
	"github.com/loa-broadcast/loa/live"
	"github.com/loa-broadcast/loa/media"
	"github.com/loa-broadcast/loa/pki"
	"github.com/loa-broadcast/loa/protocol"
	"github.com/loa-broadcast/loa/scheduler"
	"github.com/loa-broadcast/loa/station"
	"github.com/loa-broadcast/loa/store"
)

// Main is the controller daemon: it owns every component and wires the
// concrete types together. Open starts everything; Close stops it in
// reverse order.
type Main struct {
	Config Config
	Logger *slog.Logger

	DB        *store.DB
	Broker    *broker.Broker // nil with an external broker
	Fleet     *devices.Fleet
	Engine    *broadcast.Engine
	NTP       *broadcast.SNTP // nil without -ntp-addr
	Sessions  *station.Sessions
	Media     *station.Media
	Schedules *station.Schedules
	Scheduler *scheduler.Scheduler
	Clock     *scheduler.SystemClock // the scheduler's wall clock, shifted by Config.ClockOffset
	Firmware  *station.FirmwareService
	Fallbacks *station.Fallbacks
	Relays    *station.Relays // relays of external streams (ffmpeg children)
	Alerts    *station.Alerts
	Stored    *station.Stored       // stored alert messages and the receivers' caches
	Health    *devices.Health       // hourly health aggregates
	Alarms    *devices.Alarms       // the alarm evaluator
	webhook   *station.AlarmWebhook // nil without -alarm-webhook
	detach    []func()              // fleet subscriptions of Health and Alarms
	Groups    *station.GroupService
	rollouts  *devices.RolloutEngine // runs the Firmware service's rollouts

	// Programmes lists receivers' programme cache items; nil unless
	// Config.ProgrammeCache.
	Programmes *station.Programmes

	// Bulletins are the province's bulletins to communes (bulletins.go).
	Bulletins *station.Bulletins
	// Live runs live microphones (WHIP); nil without Config.LiveBind.
	Live           *station.Live
	liveServer     *live.Server
	liveCollectors []prometheus.Collector // its metrics, registered with the others

	// bg lives from Open to Close: the scheduler and session resumption
	// run under it, and Close waits for them (schedWG).
	bg          context.Context
	schedCancel context.CancelFunc
	schedWG     sync.WaitGroup

	httpLn     net.Listener // nil without a plain listener
	httpServer *http.Server
	httpCancel context.CancelFunc // cancels every request's context (the server's base), at Close
	httpDone   chan error

	PKI       *pki.Station      // the station CA
	httpsLn   net.Listener      // nil without HTTPS
	httpsDone chan error        // ServeTLS's end
	acme      *autocert.Manager // with -acme-domain

	// AdminToken is the secret of the admin token created on the first
	// start (empty on later starts); AdminTokenFile is where it is kept.
	AdminToken     string
	AdminTokenFile string
	// AdminPassword is the password of the user "admin" created when the
	// station has no users (empty otherwise); AdminPasswordFile is where
	// it is kept.
	AdminPassword     string
	AdminPasswordFile string
	// StationKey signs stored alert messages and SMS triggers
	// (<data>/station.key; receivers hold its public half).
	StationKey ed25519.PrivateKey
	// SMSSender sends alerts' SMS triggers: set before Open (a test's
	// simulated network), else the HTTP gateway of Config.SMSGateway;
	// nil: no SMS. SMS is the trigger service (nil without a sender).
	SMSSender station.SMSSender
	SMS       *station.SMS
	// Notifier tells people about alarms along its rules' chains.
	Notifier *station.Notifier

	// A cluster node's station (cluster.go): the replicated store is the
	// node's (Close leaves it open), fenceTerm the Raft term it leads in.
	sharedDB  bool
	fenceTerm uint64
	fence     protocol.Fence // what this start's plays and streams carry
	Cluster   api.ClusterAdmin
	wrapHTTP  func(http.Handler) http.Handler // the node's routes for its peers (blobs)
	sendGate  func() bool                     // a cluster leader's: packets only while its lead is confirmed
	// clusterCollectors are Raft's metrics (leader, term, commit lag).
	clusterCollectors []prometheus.Collector

	statfs      func(dir string) (free, total uint64, err error) // for tests; nil = syscall.Statfs
	watchStop   func()                                           // ends the alarm watches and waits for them
	storeFaults *store.WriteFaults                               // for tests: injected write failures
}

// NewMain returns a Main with cfg.
func NewMain(cfg Config, logger *slog.Logger) *Main {
	if logger == nil {
		logger = slog.Default()
	}
	return &Main{Config: cfg, Logger: logger}
}

// Open starts the controller. Every address may use port 0; the bound
// addresses are available from HTTPAddr, MQTTAddr and RTPAddr.
func (m *Main) Open(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	cfg := m.Config
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if err := m.openTLS(); err != nil {
		return err
	}
	if err := m.openStationKey(); err != nil {
		return err
	}
	if m.DB == nil { // a cluster node hands its replicated store in (cluster.go)
		m.DB, err = store.Open(filepath.Join(cfg.DataDir, "loa.db"), store.Options{Logger: m.Logger, Faults: m.storeFaults})
		if err != nil {
			return err
		}
	}

	brokerURL := cfg.MQTTURL
	mqttPass := cfg.MQTTPass
	if brokerURL == "" {
		if mqttPass == "" {
			mqttPass = randomHex(16)
		}
		m.Broker, err = broker.New(broker.Config{
			Addr: cfg.MQTTListen, TLSAddr: cfg.TLS.MQTTListen, TLS: m.PKI.ServerConfig(),
			ControllerUser: cfg.MQTTUser, ControllerPassword: mqttPass,
			Auth: m.DB, Logger: m.Logger.With("component", "broker"),
			MaxPacket: cfg.MQTTMaxPacket, MaxConnections: cfg.MQTTMaxConns, MaxPending: cfg.MQTTMaxPending,
		})
		if err != nil {
			return fmt.Errorf("broker: %w", err)
		}
		if err := m.Broker.Start(ctx); err != nil {
			return fmt.Errorf("broker: %w", err)
		}
		brokerURL = m.MQTTURL()
	}

	initial, err := m.DB.DeviceStates(ctx)
	if err != nil {
		return err
	}
	for i := range initial {
		initial[i].Online = false // presence is relearned from the broker
	}
	dcfg := devices.Config{
		Broker: brokerURL, Username: cfg.MQTTUser, Password: mqttPass,
		// One client id per node: nodes sharing a broker do not take
		// each other's connection over; a restarted node takes its own.
		ClientID: cfg.MQTTUser + "-" + cmp.Or(cfg.NodeID, DefaultNodeID()), TLS: m.brokerTLS(),
		States: m.DB, Initial: initial,
		Logger: m.Logger.With("component", "devices"),
	}
	if cfg.Cluster.Enabled() {
		// A new leader's receivers come back from the old one's broker by
		// their keep-alive (a frozen leader resets nothing): until then
		// they are of unknown presence, so their tunes wait for them.
		dcfg.PresenceSettle = clusterPresenceSettle
	}
	if m.Broker != nil {
		// In-process: no loopback TCP hop per device message.
		dcfg.NewClient = m.Broker.NewInlineClient
	} else {
		// An external broker down at start is an outage like any other:
		// the station serves, presence is unknown and tunes wait until
		// it is up (the broker_link alarm and /healthz say so).
		dcfg.StartDown = true
	}
	m.Fleet, err = devices.Open(ctx, dcfg)
	if err != nil {
		return fmt.Errorf("devices: %w", err)
	}

	m.Groups, err = station.OpenGroupService(ctx, station.GroupConfig{
		DB: m.DB, Fleet: groupFleet{m.Fleet}, Logger: m.Logger.With("component", "groups"),
	})
	if err != nil {
		return err
	}

	if err := m.openHealthAndAlarms(ctx); err != nil {
		return err
	}

	delay := cfg.Delay
	if delay == 0 {
		delay = protocol.DefaultDelay
	}
	// Every start is a new generation: SRTP keys are derived with it, so
	// no two starts encrypt under the same key. In a cluster the
	// generation is replicated: a new leader's is above every earlier
	// one's, and the Raft term goes with it (the fence receivers order
	// controllers by).
	gen, err := m.DB.NextGeneration(ctx)
	if err != nil {
		return err
	}
	m.fence = protocol.Fence{Gen: gen, Term: m.fenceTerm}
	// Commands carry it too: a deposed leader's stop or mute is refused.
	m.Fleet.SetFence(m.fence)
	// Alerts follow every play command's outcome: the tuner tells them.
	tuner := &station.AlertTuner{Tuner: m.Fleet}
	refclk, err := m.openNTP(ctx)
	if err != nil {
		return err
	}
	m.Engine, err = broadcast.Open(ctx, broadcast.Config{
		Bind: cfg.RTPBind, Public: cfg.RTPPublic, Delay: cfg.Delay, Lead: cfg.Lead, Tuner: tuner,
		Caps: m.Fleet, Offsets: deviceOffsets{m.DB}, RefClock: refclk,
		Fence: m.fence, Gate: m.sendGate, RequireSRTP: cfg.RequireSRTP, Refused: tuner.Refused,
		// Receivers' RTCP progress: delivery evidence of those that send no events.
		Reception: tuner.Reception,
		Logger:    m.Logger.With("component", "broadcast"),
	})
	if err != nil {
		return fmt.Errorf("broadcast: %w", err)
	}
	m.Sessions = station.NewSessions(m.DB, m.Engine, m.Engine, m.Logger.With("component", "sessions"))
	online := func(id string) bool {
		st, ok := m.Fleet.DeviceState(id)
		return ok && st.Online
	}
	// Late starts wait for their receivers (up to the lead + 5 s), and the
	// play log lists no receiver offline at a start as playing.
	m.Sessions.Online, m.Sessions.Lead = online, cfg.Lead
	// A receiver of unknown presence (the broker link down or settling)
	// is reachable later: its tune waits, it is not logged missed.
	m.Sessions.Presence = func(id string) string {
		if st, ok := m.Fleet.DeviceState(id); ok {
			return st.Presence
		}
		return loa.PresenceOffline
	}
	// A session heard by none of its receivers raises no_audience (their
	// events reach it through the alerts' subscription, Alerts.Run).
	m.Sessions.Alarms = m.Alarms
	m.Alerts = station.NewAlerts(m.DB, m.Sessions, m.Fleet, media.EspeakNG{Voice: "vi"}, delay, m.Logger.With("component", "alerts"))
	tuner.Alerts = m.Alerts
	if err := m.openNotify(); err != nil {
		return err
	}
	m.openStored()
	if err := m.openSMS(); err != nil {
		return err
	}
	// The sessions' record first, then the alerts that read it.
	m.Engine.Subscribe(m.Sessions.HandleOutcome)
	m.Engine.Subscribe(m.Alerts.HandleOutcome)
	// Before sessions resume: an alert's sessions are not resumed.
	if err := m.Alerts.Recover(ctx); err != nil {
		return fmt.Errorf("alerts: %w", err)
	}
	if err := m.openLive(cfg); err != nil {
		return err
	}
	m.Media = station.NewMedia(m.DB, media.Options{MaxDuration: cfg.MaxMediaDuration},
		station.TranscodeLimits{Workers: cfg.TranscodeWorkers, Queue: cfg.TranscodeQueue}, m.Logger.With("component", "media"))
	m.Relays = station.NewRelays(m.DB, m.Sessions, m.Logger.With("component", "relay"))
	m.Relays.Alarms = m.Alarms
	m.Sessions.Restarted = func(ctx context.Context, stopped *loa.Session) {
		// Beside the resumes, which it must not hold up.
		m.schedWG.Add(1) // inside ResumeInterrupted's own count: never at zero
		go func() {
			defer m.schedWG.Done()
			m.Relays.Restart(ctx, stopped)
		}()
	}
	if err := m.startScheduler(ctx); err != nil {
		return err
	}
	m.Fallbacks = station.NewFallbacks(m.DB, m.Sessions, m.Logger.With("component", "fallback"))
	m.schedWG.Add(1)
	go func() {
		defer m.schedWG.Done()
		m.Fallbacks.Supervise(m.bg)
	}()
	m.schedWG.Add(1)
	go func() {
		defer m.schedWG.Done()
		m.Alerts.Run(m.bg)
	}()
	if err := m.openBulletins(); err != nil {
		return err
	}
	m.schedWG.Add(1)
	go func() {
		defer m.schedWG.Done()
		m.Sessions.ResumeInterrupted(m.bg, online, 15*time.Second)
	}()
	if m.SMS != nil {
		m.schedWG.Add(1)
		go func() {
			defer m.schedWG.Done()
			m.SMS.Run(m.bg)
		}()
	}

	m.startWatches()
	m.schedWG.Add(1)
	go func() {
		defer m.schedWG.Done()
		m.Notifier.Run(m.bg)
	}()

	if err := m.ensureAdminToken(ctx); err != nil {
		return err
	}
	if err := m.ensureAdminUser(ctx); err != nil {
		return err
	}
	if cfg.BackupDir != "" {
		m.schedWG.Add(1)
		go func() {
			defer m.schedWG.Done()
			m.runBackups(m.bg)
		}()
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, c := range m.Fleet.Collectors() {
		reg.MustRegister(c)
	}
	for _, c := range m.Engine.Collectors() {
		reg.MustRegister(c)
	}
	for _, c := range m.healthCollectors() {
		reg.MustRegister(c)
	}
	reg.MustRegister(m.liveCollectors...)
	reg.MustRegister(m.clusterCollectors...)
	if m.SMS != nil {
		reg.MustRegister(m.SMS.Collectors()...)
	}
	if m.Broker != nil {
		for _, c := range m.Broker.Collectors() {
			reg.MustRegister(c)
		}
	}
	sdpAllow, err := parsePrefixes(cfg.SDPAllow)
	if err != nil {
		return fmt.Errorf("sdp-allow: %w", err)
	}
	srv := &api.Server{
		SDPAllow: sdpAllow,
		Areas:    m.DB, Devices: m.DB, Presence: m.Fleet, Media: m.Media,
		Sessions: m.Sessions, Deliveries: m.Sessions, Tokens: m.DB, Users: m.DB, Audit: m.DB, Commands: m.Fleet, Groups: m.Groups,
		Playlists: m.DB, Fallbacks: m.Fallbacks, Relays: m.Relays, Schedules: m.Schedules, Alerts: m.Alerts, PlayLog: station.NewPlayLog(m.DB), Gatherer: reg,
		Alarms: m.Alarms, Health: m.Health, Backup: m, Storage: m.DB, Broker: m.Fleet,
		CAP:       station.NewCAP(m.DB, m.Alerts, m.Media.Urgent(), nil, m.Logger.With("component", "cap")),
		CAPSender: cfg.CAPSender,
		Drafts:    station.NewApprovals(m.DB, m.Media, m.Schedules, m.DB, m.Logger.With("component", "approvals")),
		Delay:     delay,
		Logger:    m.Logger.With("component", "api"),
	}
	if err := m.openFirmware(); err != nil {
		return err
	}
	srv.Firmware, srv.Receivers = m.Firmware, m.DB
	srv.Stored = m.Stored
	srv.Reports = station.NewReports(m.DB)
	if m.Live != nil {
		srv.Live = m.Live
	}
	srv.MapTiles, srv.MapAttribution = cfg.MapTiles, cfg.mapAttribution()
	srv.Creds = m.credentials()
	if m.SMS != nil {
		srv.SMS, srv.SMSSecret = m.SMS, cfg.SMSInboundSecret
	}
	srv.Notify = m.Notifier
	if m.Cluster != nil {
		srv.Cluster = m.Cluster
	}
	enrolment := m.enrolment()
	srv.Claims, srv.Enrol = enrolment, enrolment
	srv.Bulletins, srv.FeedKey = m.Bulletins, m.StationKey
	if err := m.startNational(srv); err != nil {
		return err
	}
	h := srv.Handler()
	if m.wrapHTTP != nil {
		h = m.wrapHTTP(h)
	}
	if err := m.serveHTTP(ctx, h, reg); err != nil {
		return err
	}
	// Continued rollouts send download URLs: only once the server is up.
	if err := m.startFirmware(ctx); err != nil {
		return err
	}
	m.startStored()

	m.Logger.Info("controller started", "http", m.HTTPAddr(), "https", m.HTTPSAddr(), "mqtt", brokerURL, "mqtt_tls", m.MQTTTLSURL(),
		"rtp", m.Engine.LocalAddr().String(), "rtp_public", m.Engine.PublicAddr(), "data", cfg.DataDir)
	return nil
}

// Close stops every component, the newest first.
func (m *Main) Close() error {
	var errs []error
	m.stopWatches() // before the alarms they raise
	m.closeAlarms() // first: ends the alarm event streams the HTTP shutdown would wait for
	if m.httpServer != nil {
		m.httpCancel() // ends streams and long polls: Shutdown waits for no request that would not end
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := m.httpServer.Shutdown(ctx); errors.Is(err, context.DeadlineExceeded) {
			// A slow download (firmware to a receiver on a weak link) must
			// not hold a shutdown: it resumes with Range from the next start.
			m.Logger.Warn("HTTP requests still running after 5s; closing their connections")
			errs = append(errs, m.httpServer.Close())
		} else {
			errs = append(errs, err)
		}
		cancel()
		for _, done := range []chan error{m.httpDone, m.httpsDone} {
			if done == nil {
				continue
			}
			if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs = append(errs, err)
			}
		}
		m.httpServer = nil
	}
	if m.schedCancel != nil {
		m.schedCancel()
		m.schedWG.Wait()
		m.schedCancel = nil
	}
	if m.Engine != nil {
		errs = append(errs, m.Engine.Close())
		m.Engine = nil
	}
	errs = append(errs, m.closeLive()) // after the engine: its sessions ended first, as interrupted
	if m.NTP != nil {
		errs = append(errs, m.NTP.Close())
		m.NTP = nil
	}
	if m.Groups != nil {
		m.Groups.Close() // before the fleet: writes the abandoned runs
		m.Groups = nil
	}
	errs = append(errs, m.closeFirmware())
	if m.Fleet != nil {
		errs = append(errs, m.Fleet.Close())
		m.Fleet = nil
	}
	errs = append(errs, m.closeHealth())
	if m.Broker != nil {
		errs = append(errs, m.Broker.Close())
		m.Broker = nil
	}
	if m.DB != nil {
		if !m.sharedDB {
			errs = append(errs, m.DB.Close())
		}
		m.DB = nil
	}
	return errors.Join(errs...)
}

// HTTPAddr is the bound plain API address, "" without one.
func (m *Main) HTTPAddr() string {
	if m.httpLn == nil {
		return ""
	}
	return m.httpLn.Addr().String()
}

// URL is the API base URL on loopback: plain HTTP, or HTTPSURL without it.
func (m *Main) URL() string {
	if m.httpLn == nil {
		return m.HTTPSURL()
	}
	return "http://" + loopbackFor(m.HTTPAddr())
}

// MQTTURL is the broker URL local receivers connect to: the embedded
// broker's plain listener (its TLS one without it), or the external broker.
func (m *Main) MQTTURL() string {
	if m.Broker != nil {
		if m.Broker.Addr() == "" {
			return m.MQTTTLSURL()
		}
		return "tcp://" + loopbackFor(m.Broker.Addr())
	}
	return m.Config.MQTTURL
}

// ensureAdminToken creates the admin token on the first start and keeps its
// secret in the data dir (mode 0600), so the user can find it again.
func (m *Main) ensureAdminToken(ctx context.Context) error {
	m.AdminTokenFile = filepath.Join(m.Config.DataDir, "admin-token")
	has, err := m.DB.HasTokens(ctx)
	if err != nil || has {
		return err
	}
	secret, err := m.DB.CreateToken(ctx, &loa.Token{Name: "admin (first start)", Role: loa.RoleAdmin})
	if err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	if err := os.WriteFile(m.AdminTokenFile, []byte(secret+"\n"), 0o600); err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	m.AdminToken = secret
	m.Logger.Info("created the admin API token", "file", m.AdminTokenFile)
	return nil
}

// ensureAdminUser creates the user "admin" when the station has no users
// (its first start, or the first after an upgrade), with a random
// password kept in the data dir (mode 0600) for the first sign-in. The
// file is written first: a user nobody can sign in as is never made.
func (m *Main) ensureAdminUser(ctx context.Context) error {
	m.AdminPasswordFile = filepath.Join(m.Config.DataDir, "admin-password")
	has, err := m.DB.HasUsers(ctx)
	if err != nil || has {
		return err
	}
	password := randomHex(12) // 96 bits
	if err := os.WriteFile(m.AdminPasswordFile, []byte(password+"\n"), 0o600); err != nil {
		return fmt.Errorf("admin password: %w", err)
	}
	u := &loa.User{Username: "admin", Name: "admin", Role: loa.RoleAdmin, CreatedBy: "system"}
	if err := m.DB.CreateUser(ctx, u, password); err != nil {
		return fmt.Errorf("admin user: %w", err)
	}
	m.AdminPassword = password
	m.Logger.Info("created the user admin; its password is in the file", "file", m.AdminPasswordFile)
	return nil
}

// startScheduler starts firing schedules from where the last run stopped:
// a start missed while the controller was down plays late within the
// grace window, or is logged as missed.
func (m *Main) startScheduler(ctx context.Context) error {
	since, err := m.DB.SchedulerHandled(ctx)
	if err != nil {
		return err
	}
	if m.Clock == nil {
		m.Clock = scheduler.NewSystemClock(m.Config.ClockOffset)
	}
	if since.IsZero() {
		since = m.Clock.Now()
	}
	logger := m.Logger.With("component", "scheduler")
	m.Schedules = station.NewSchedules(m.DB, logger)
	st := station.NewStarter(m.DB, m.Sessions, 200*time.Millisecond, logger)
	st.Now = m.Clock.Now
	st.Relays = m.Relays
	if m.Config.ProgrammeCache {
		m.Programmes = &station.Programmes{Key: m.StationKey, Schedule: m.Schedules, DB: m.DB}
		st.Programmes = m.Programmes
		m.Stored.AddSource(m.Programmes) // in the receivers' manifests
		m.Schedules.OnChange = m.Programmes.Changed
	}
	m.Scheduler = scheduler.New(scheduler.Config{
		Starter: st, Source: m.Schedules.Source(), Grace: m.Config.Grace,
		Lead:   m.Config.Lead, // fire early: receivers tune, then packet 0 leaves on time
		Logger: logger, OnMissed: st.Missed, Clock: m.Clock, OnStep: m.clockStepAlarm(),
	})
	m.Schedules.Attach(m.Scheduler)
	m.bg, m.schedCancel = context.WithCancel(context.Background())
	if m.Programmes != nil {
		if err := m.Programmes.Prime(ctx); err != nil {
			return err
		}
		m.schedWG.Add(1)
		go func() {
			defer m.schedWG.Done()
			m.Programmes.Run(m.bg, func() {
				if err := m.Stored.Changed(m.bg); err != nil && m.bg.Err() == nil {
					m.Logger.Warn("programmes changed, but the receivers' sets were not bumped", "err", err)
				}
			})
		}()
	}
	m.schedWG.Add(1)
	go func() {
		defer m.schedWG.Done()
		m.Schedules.Run(m.bg, since)
	}()
	if m.Config.TestHooks {
		m.watchClockHook()
	}
	return nil
}

// loopbackFor turns a wildcard listen address into one a local client can dial.
func loopbackFor(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
