// Package api serves Loa's HTTP JSON API under /api/v1, the Prometheus
// metrics and the operator UI of package web.
//
// Every route but /healthz, the sign-in and the UI needs "Authorization:
// Bearer <secret>" or a sign-in session's cookie (login.go), which acts as
// its user's Principal and, on a change, needs X-CSRF-Token. What a token may do is its role (loa.Token.Can) narrowed to
// its area scope (loa.Token.AreaID): a scoped token sees and touches only
// areas in its subtree, devices in those areas and sessions whose every
// target is in it; anything else is not found (reads) or forbidden
// (writes, naming the target).
//
//	GET  /healthz                          {"ok":true,"storage":{...},"broker":{...}}; 503 when the store cannot write, no token
//	GET  /api/v1/openapi.yaml              the OpenAPI 3.1 description of all of this, no token
//	GET  /metrics                          Prometheus text, any role
//	POST /api/v1/login                     {username,password}, no token → 200 {user,role,area,csrf} + cookie loa_session;
//	                                        429 login_backoff + Retry-After after repeated failures of the account
//	POST /api/v1/logout                    → 204: the session ends, the cookie is cleared
//	GET  /api/v1/me                        {user,name,role,area,area_name,permissions,csrf,station:{name,zone,map:{tiles,attribution}}}
//	GET  /api/v1/users                     [user] in scope (never a password)
//	POST /api/v1/users                     {username,name,password,role,area_id} → 201 user
//	GET|PUT /api/v1/users/{username}       user; PUT {name,role,area_id} (the fields sent) → 200 user
//	POST /api/v1/users/{username}/disable|enable  → 200 user (disable ends its sessions)
//	POST /api/v1/users/{username}/password {password} → 204 (ends its sessions)
//	GET  /api/v1/areas                     [area] in scope
//	POST /api/v1/areas                     {id,parent_id,name,kind,code,tests,needs_approval} → 201 area
//	GET  /api/v1/areas/{id}                area
//	DELETE /api/v1/areas/{id}              → 204; 409 while it has child areas, devices in service, scoped tokens, a fallback or schedules
//	PUT  /api/v1/areas/{id}/tests          {tests: bool} → 200 area: test alerts sound only in marked areas (and below)
//	PUT  /api/v1/areas/{id}/approval       {needs_approval: bool} → 200 area: operators' schedules, playlists and uploads
//	                                        for it (and below) wait as drafts (202 {draft} instead of 201/200)
//	GET  /api/v1/drafts?state=             [draft]: those the caller may approve (scope), and its own
//	GET  /api/v1/drafts/{id}               draft
//	POST /api/v1/drafts/{id}/approve|reject  {note} → 200 draft: approve applies the change as proposed (permission approve)
//	POST /api/v1/drafts/{id}/withdraw      → 200 draft: its proposer takes it back
//	GET  /api/v1/bulletins                 [bulletin + totals] the caller's communes see (their entries only), newest first
//	POST /api/v1/bulletins                 {title,category,level: normal|priority,media_id|text,valid_from,valid_until,
//	                                        must_air_by (priority),areas} → 201 bulletin: admin and province, areas in scope
//	GET  /api/v1/bulletins/inbox?state=    [bulletin] with a commune of the caller's in state (default received)
//	GET  /api/v1/bulletins/{id}            bulletin + totals
//	GET  /api/v1/bulletins/{id}/tracking   {id,title,level,must_air_by,totals,communes:[entry + area_name]}; ?format=csv
//	POST /api/v1/bulletins/{id}/accept     {area_id,how: play_now|schedule|playlist,at,playlist_id,position} → 200 bulletin
//	POST /api/v1/bulletins/{id}/decline    {area_id,reason} → 200 bulletin
//	GET  /api/v1/feed/bulletins            {format,payload,signature}: the bulletins of the caller's communes signed with the
//	                                        station key (role feed; docs/bulletin-feed.md)
//	GET  /api/v1/feed/media/{sha256}       audio/ogg of a bulletin in the caller's feed
//	POST /api/v1/feed/bulletins/{id}/report {area_id,state: scheduled|aired|declined,how,at,aired_at,receivers,reason,by} → 200 bulletin
//	GET  /api/v1/devices?area=&state=online|offline|unknown&problem=<alarm kind>|any  [device + "state" + "problems"] in scope
//	POST /api/v1/devices                   {id,area_id,name,lat,lon} → 201 {device,password}
//	GET  /api/v1/devices/positions?area=   {fields,devices:[[id,area_id,lat,lon,presence]],unplaced} in scope: the map's
//	                                        compact list (gzipped when accepted); changes follow on the events' devices topic
//	GET  /api/v1/devices/{id}              device + "state" + "problems" (credentials: active|revoked, rotated_at, revoked_at)
//	DELETE /api/v1/devices/{id}            → 200 {device,broker}: decommissioned: credentials revoked, out of the device list and
//	                                        of target resolution; its record and history (play log, health, alarms, audit) stay
//	POST /api/v1/devices/{id}/credentials  → 200 {device,password,broker}: a new MQTT password, shown once; the old one stops working
//	DELETE /api/v1/devices/{id}/credentials → 204: revoked, disconnected, refused from now on (200 {device,broker} with what to do on an external broker)
//	POST /api/v1/devices/claims            {claim_code,device_id?,area_id,name,lat,lon} → 201 {claim,device}: the box's code is bound to a new
//	                                        device (credentials pending) until the box enrols
//	GET  /api/v1/devices/claims?state=pending|enrolled  [claim] in scope, newest first
//	POST /api/v1/devices/claims/{id}/cancel → 200 claim: deleted (pending: its box gets nothing, its new device is removed;
//	                                        enrolled: forgotten, so the code may be claimed again)
//	POST /api/v1/devices/{id}/replace      {claim_code} → 201 {claim,device,broker}: a new box takes over the device when it
//	                                        enrols; the old unit's credentials are revoked and its connection dropped now
//	POST /api/v1/sms/inbound               {from,text}, the SMS gateway's secret → 204: a receiver's SMS reply merged
//	POST /api/v1/enrol                     {claim_code}, no token → 200 {device_id,password,mqtt_url,ca_pem,firmware_url,mac} once;
//	                                        404 + Retry-After until claimed (or for any unclaimed code), 410 once used,
//	                                        429 + Retry-After past the per-code limit
//	GET  /api/v1/devices/{id}/health?from=&to=  [hourly health aggregate], default the last 24 h, ≤ 31 days
//	GET  /api/v1/alarms?area=&active=true|false&kind=&limit=  [alarm] in scope, newest first
//	GET  /api/v1/alarms/stream?area=&kind=  server-sent events "raised"/"cleared" (active alarms first); also ?access_token=
//	POST /api/v1/devices/{id}/commands     {op: volume|mute|amp|test|reboot|config, args} → 200 result after the ack
//	GET  /api/v1/commands/{id}             command result
//	POST /api/v1/areas/{id}/commands?wait=5s  {op: volume|mute|amp|test|reboot|config, args, timeout:"15s"} → 202 group command (200 once settled within ?wait)
//	GET  /api/v1/group-commands/{id}?wait=5s  group command {state: running|done, totals, results:[{device,state,code,msg,result,acked_at}]}
//	GET  /api/v1/firmware                  [firmware image]
//	POST /api/v1/firmware                  multipart: "version", "sig" (base64, from "loa firmware sign"), "name" (optional), then "file" → 201 image
//	GET  /api/v1/firmware/{id}             firmware image
//	GET  /api/v1/rollouts                  [rollout + per-wave totals, without devices] in scope
//	POST /api/v1/rollouts                  {image_id,targets,waves:[1,10,50,100],fail_threshold:0.1,wave_timeout:"30m"} → 201 rollout
//	GET  /api/v1/rollouts/{id}             rollout + per-device states + per-wave totals
//	POST /api/v1/rollouts/{id}/pause|resume|abort  optional {reason} → 200 rollout
//	GET  /fw/{id}                          image bytes for receivers: HTTP Basic device id + MQTT password, Range for resume
//	GET  /cache/{sha256}                   stored-message files for receivers' caches, authenticated as /fw/
//	GET  /api/v1/stored-messages           {version, messages:[stored message]} of the caller's scope and above
//	PUT  /api/v1/stored-messages/{code}    {name,media_id,category,area_id} → 200 stored message (area permission)
//	DELETE /api/v1/stored-messages/{code}  → 204
//	GET  /api/v1/media                     [media]
//	POST /api/v1/media                     multipart: "name" (optional, first), "file" → 201 media
//	GET  /api/v1/media/{id}                media
//	PATCH /api/v1/media/{id}               {name} → 200 media
//	DELETE /api/v1/media/{id}              → 204; 409 in_use with used_by [{kind,id,name}] while a playlist, schedule,
//	                                        active alert, fallback or playing session uses it
//	GET  /api/v1/media/{id}/audio          audio/ogg: the stored Ogg Opus file, Range for seeking; also ?access_token=
//	PUT  /api/v1/areas/{id}/fallback       {media_id|playlist_id, priority 0–31} → 200: the area's background programme
//	DELETE /api/v1/areas/{id}/fallback     → 204
//	GET  /api/v1/fallbacks                 [fallback] in scope
//	GET  /api/v1/relays                    [relay + playing: its live state per session]; POST {id,name,urls,fallback_media_id,
//	                                        silence_db,silence_s,duration_s} → 201; GET/PUT/DELETE /api/v1/relays/{id}
//	POST /api/v1/relays/{id}/play          {targets,priority,duration_s} → 201 session: relays it now
//	GET  /api/v1/playlists                 [playlist]
//	POST /api/v1/playlists                 {id,name,items:[{media_id,gap:"2s"}]} → 201 playlist
//	GET  /api/v1/playlists/{id}            playlist
//	GET  /api/v1/schedules                 [schedule] in scope
//	POST /api/v1/schedules                 {id,name,rule,exceptions,content,targets,priority,overrun,max_wait:"10m",enabled} → 201 schedule
//	POST /api/v1/schedules/conflicts       the same body → {from,to,conflicts:[{at,end,schedule_id,name,other_at,other_end,priority,targets}]} in the next 4 weeks; changes nothing
//	GET  /api/v1/schedules/{id}            schedule
//	PUT  /api/v1/schedules/{id}            the same body (id empty or the path's) → 200 schedule
//	DELETE /api/v1/schedules/{id}          → 204
//	POST /api/v1/schedules/{id}/enable     → 200 schedule
//	POST /api/v1/schedules/{id}/disable    → 200 schedule
//	GET  /api/v1/schedules/{id}/next?n=10&after=RFC3339  [occurrence]
//	GET  /api/v1/agenda?from=&to=|day=YYYY-MM-DD|week=YYYY-MM-DD  [occurrence] in scope; ≤ 31 days, default today
//	GET  /api/v1/calendars                 {name: calendar}: the station's, and those of areas in scope or above it
//	PUT  /api/v1/calendars/{name}          {dates:["2027-02-06","09-02"],area_id} → 200 calendar; station-wide ones only by station-wide admins
//	GET  /api/v1/playlog?from=&to=&area=&device=&event=&limit=&offset=  [play log entry]; &format=csv: a spreadsheet
//	GET  /api/v1/reports/broadcast?area=&from=&to=|month=&format=json|csv|xlsx|pdf  the broadcast report (docs/reports.md)
//	GET  /api/v1/sessions                  [session] in scope
//	POST /api/v1/sessions                  {media_id|playlist_id,targets:{areas,devices},priority,max_duration} → 201 session
//	GET  /api/v1/sessions/{id}             session
//	POST /api/v1/sessions/{id}/stop        → 200 session, with the authority of its origin (an alert's: 403, cancel the alert)
//	GET  /api/v1/sessions/{id}/sdp?dest=IP:PORT&for=1h  application/sdp: streams to dest for ?for= (≤ 6h); dest is the
//	                                        caller's own address or in SDPAllow; 8 listeners a session, 64 a station
//	DELETE /api/v1/sessions/{id}/listeners/{dest}  → 204: the stream to dest stops
//	POST /api/v1/live?areas=&devices=&priority=&max_duration=&record=  application/sdp offer (WHIP, RFC 9725) → 201
//	                                        the SDP answer, Location /api/v1/live/{session id}; priority default 128
//	PATCH /api/v1/live/{id}                application/trickle-ice-sdpfrag → 204: the client's candidates
//	DELETE /api/v1/live/{id}               → 200 session: ended by the speaker (the authority of stopping it)
//	GET  /api/v1/alerts?limit=&offset=&report=false  [alert + "totals"] in scope, newest first; &format=csv: the history
//	POST /api/v1/alerts                    {title,level: khan_cap|uu_tien,content:{media_id|text,tone},targets:{areas,devices},
//	                                        repeats 1–10,gap:"5s",volume 1–100,expires_at RFC3339|expires_in:"1h",test} → 201 alert
//	GET  /api/v1/alerts/{id}               alert with its delivery report and "totals": {all, areas: {area: counts}}
//	POST /api/v1/alerts/{id}/cancel        {reason} (optional) → 200 alert: stops it everywhere
//	POST /api/v1/alerts/preview-targets    {targets} → {receivers, online, on_battery, min_runtime_min}: before sending
//	GET  /api/v1/events?topics=sessions,devices,alarms,alerts,playlog,drafts  text/event-stream: one event per topic with
//	                                        {reset,changed,removed,counts,entries}, only changes, in scope; also ?access_token=
//	GET  /api/v1/alerts/{id}/events        text/event-stream: "report" events (alert + totals) on every change, until it ends; also ?access_token=
//	POST /api/v1/alerts/check              the body of POST /alerts → 200 {receivers,online,areas:{area:{receivers,online}}}:
//	                                        a dry run (the same checks, nothing sent)
//	POST /api/v1/alerts/preview            {text,language:"vi",tone} → audio/ogg: the text spoken as the alert would be;
//	                                        6 a minute per caller (429 + Retry-After)
//	GET  /api/v1/alerts/audience?test=     {receivers,online,areas:{area:{receivers,online}}}: receivers per area in scope
//	POST /api/v1/alerts/cap                a CAP 1.2 message (application/cap+xml) → 201 alert (Alert, Update),
//	                                        200 the cancelled alert (Cancel; 404 if no reference is known),
//	                                        202 {sounded:false,reason} (System, Draft, Ack, Error); 409 a repeated identifier
//	GET  /api/v1/alerts/{id}/cap           application/cap+xml: the CAP message it came from, or one generated; also ?format=cap
//	GET  /api/v1/tokens                    [token] in scope (revoked and expired too; never a secret)
//	POST /api/v1/tokens                    {name,role,area_id,cap_senders,expires_at} → 201 {token,secret}
//	DELETE /api/v1/tokens/{id}             → 200 token: revoked, refused from the next request on
//	GET  /api/v1/audit?limit=N             [audit record] in scope, newest first
//	GET  /api/v1/cluster                   the Raft group (station-wide admins); POST …/transfer {to}, POST …/servers {id, raft}, DELETE …/servers/{id}
//	GET  /api/v1/backup                    application/gzip: a backup archive (station-wide admins; store.WriteBackup)
//
// Sessions: stopping one needs the authority of its origin (mayStop): an
// alert's only through the alert's cancel, a schedule's by those who may
// change the schedule, a manual one by its starter or a wider scope.
// CAP messages are taken only from the token's cap_senders.
//
// Alerts: khẩn cấp (emergency, priority 240, overrides volume and mute)
// only from admin and province tokens; ưu tiên (priority, 200) also from
// operators; always with every target in the caller's scope, and
// cancelling needs the same authority as sending. Sends, cancels and
// report reads are audited.
//
// CAP 1.2 (package cap) maps to an alert under the same rules: Immediate
// with Extreme or Severe is khẩn cấp, anything else ưu tiên; geocodes
// name areas by administrative code (an unknown code is 400), polygons
// and circles the receivers located inside (in the caller's scope); the
// content is an embedded audio resource (derefUri; audio by URL is never
// fetched) or the headline, description and instruction spoken; status
// Exercise and Test sound only in areas marked for tests.
//
// Schedules follow the session rules: their targets decide who sees and
// changes them, and only admin and province tokens may create or change
// one in the emergency band. Dates of ?day= and ?week= are in
// Asia/Ho_Chi_Minh. A scoped caller's play log is limited to its scope.
//
// Durations are sent as Go durations ("2s") and answered the same way,
// beside the older integer field (gap_ns, max_duration_ns, max_wait_ns,
// wave_timeout_ns, timeout_ms), which requests may send instead, so what
// a client reads it can send back. from and to take a date (a whole day
// in Asia/Ho_Chi_Minh, to included) or an RFC 3339 time.
//
// api/openapi.yaml describes every route above; the tests check every
// request and answer against it (validateWithSpec) and its operations
// against the routes (TestSpecDescribesEveryRoute).
//
// Errors are {"error": message, "code": code} with the status from one
// table (statusOf); a 503 that may succeed later (a full transcode queue)
// carries Retry-After. Bodies and deadlines are bounded per route
// (limits.go). Every change is written to the audit log.
package api

import (
	"crypto/ed25519"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
	"github.com/loa-broadcast/loa/web"
)

// DefaultMaxUpload bounds a media upload when Server.MaxUpload is zero.
const DefaultMaxUpload = 200 << 20

// Server is the HTTP API. Set the fields, then call Handler. A nil service
// makes the routes that need it answer 503 unavailable.
type Server struct {
	Areas     loa.AreaService
	Devices   loa.DeviceService
	Presence  loa.PresenceService
	Media     loa.MediaService
	Sessions  loa.SessionService
	Tokens    loa.TokenService
	Users     loa.UserService // people who sign in to the console; nil: sign-in is unavailable
	Audit     loa.AuditService
	Commands  loa.CommandService
	Firmware  loa.FirmwareService
	Receivers DeviceAuthenticator
	Groups    loa.GroupCommandService
	Creds     CredentialService // rotates and revokes device credentials
	Playlists loa.PlaylistService
	Fallbacks loa.FallbackService
	Relays    loa.RelayService // nil: the relay routes are unavailable
	Schedules loa.ScheduleService
	Alerts    loa.AlertService
	CAP       CAPIngester // takes CAP messages; nil: POST /alerts/cap is unavailable
	CAPSender string      // sender of exported CAP messages; "" = DefaultCAPSender
	PlayLog   PlayLogReader
	Alarms    loa.AlarmService
	Health    loa.HealthService
	Backup    Backuper            // GET /api/v1/backup; nil: unavailable
	Cluster   ClusterAdmin        // /api/v1/cluster; nil: a single controller
	Storage   StorageHealth       // nil: /healthz does not report the store
	Broker    BrokerHealth        // nil: /healthz does not report the broker link
	Gatherer  prometheus.Gatherer // for /metrics; nil = prometheus.DefaultGatherer
	MaxUpload int64               // bytes of one upload request; 0 = DefaultMaxUpload
	// RequestTimeout bounds an ordinary request, from reading its body to
	// writing the answer; 0 = DefaultRequestTimeout. Uploads, streams and
	// waits have their own bounds (limits.go).
	RequestTimeout time.Duration
	// EventInterval is how often GET /api/v1/events looks for changes;
	// 0 = DefaultEventInterval.
	EventInterval time.Duration
	eventReads    *eventReads      // what the event streams read, shared between them; set by Handler
	Logger        *slog.Logger     // nil = discard
	Now           func() time.Time // the clock of default times; nil = time.Now
	SDPAllow      []netip.Prefix   // where SDP listeners may be besides the caller's own address
	StationName   string           // the station's name in /me; "" = DefaultStationName
	// MapTiles is the console map's tile URL template ("" none: the
	// communes' outlines instead) and MapAttribution the credit its
	// provider asks for; both in /me's station, and the console's CSP
	// lets images come from the tile host.
	MapTiles, MapAttribution string
	// Delay is the station's playout delay D, which a receiver's delay
	// offset may not bring below loa.MinLeadMs; 0 = 200 ms.
	Delay time.Duration

	// Enrolment of receivers by claim code: nil makes its routes
	// unavailable. EnrolRetryAfter is the Retry-After of "not claimed
	// yet"; 0 = DefaultEnrolRetryAfter.
	Claims          ClaimService
	Enrol           Enroller
	EnrolRetryAfter time.Duration

	// Deliveries reads sessions' delivery reports; nil: unavailable.
	Deliveries loa.DeliveryService
	// Drafts holds operators' changes in areas that need approval (drafts.go);
	// nil: nothing is held and the drafts routes are unavailable.
	Drafts loa.DraftService

	// Stored is the library of stored alert messages; nil: unavailable.
	Stored StoredLibrary

	// SMS takes the receivers' SMS replies the gateway posts with
	// SMSSecret as its bearer token; either unset: unavailable.
	SMS       SMSInbox
	SMSSecret string

	// Notify keeps notification rules and their log (people told);
	// nil: its routes are unavailable.
	Notify loa.NotifyService
	// Reports computes broadcast reports (reports.go); nil: unavailable.
	Reports loa.ReportService
	// Bulletins are the province's bulletins to its communes (bulletins.go);
	// nil: their routes are unavailable.
	Bulletins loa.BulletinService
	// FeedKey signs the bulletin feed (the station key); unset: the feed
	// is unavailable.
	FeedKey ed25519.PrivateKey
	// Live runs live microphone sessions (WHIP); nil: unavailable.
	Live loa.LiveService
	// National makes this a national controller: the /national routes,
	// and CAP messages pushed to the provinces instead of sounding here.
	National NationalService
}

// Handler returns the HTTP handler serving the API, /healthz, /metrics and
// the web UI.
func (s *Server) Handler() http.Handler {
	s.eventReads = &eventReads{}
	mux := http.NewServeMux()
	for _, r := range s.routes() {
		mux.Handle(r.pattern, s.limit(r.pattern, r.h))
	}

	// Anything else under /api/ is a JSON 404 or 405, never the UI.
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, p := mux.Handler(probe); p != "/api/" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			for _, m := range allow {
				w.Header().Add("Allow", m)
			}
			writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: r.Method + " is not allowed here", Code: loa.EUNSUPPORTED})
			return
		}
		s.writeError(w, r, loa.Errorf(loa.ENOTFOUND, "no API route %s", r.URL.Path))
	})

	ui := web.Options{MapTiles: s.MapTiles}.Handler()
	mux.Handle("/", ui)
	mux.Handle("/ui/", http.StripPrefix("/ui", ui))

	return s.logRequests(mux)
}

// apiRoute is one route of the API: a ServeMux pattern ("METHOD /path")
// and its handler. api/openapi.yaml describes exactly these (a test
// checks both ways).
type apiRoute struct {
	pattern string
	action  string // the permission it needs (loa.Action*); "" for no token
	h       http.Handler
}

// routes lists every route of the API, /healthz, /metrics and /fw/; not
// the UI.
func (s *Server) routes() []apiRoute {
	var routes []apiRoute
	add := func(pattern, action string, h http.Handler) { routes = append(routes, apiRoute{pattern, action, h}) }

	add("GET /healthz", "", http.HandlerFunc(s.healthz))
	add("GET /api/v1/openapi.yaml", "", http.HandlerFunc(serveOpenAPI)) // no token: it is public
	gatherer := s.Gatherer
	if gatherer == nil {
		gatherer = prometheus.DefaultGatherer
	}
	metrics := promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{})
	add("GET /metrics", loa.ActionRead, s.auth(loa.ActionRead, func(w http.ResponseWriter, r *http.Request, c *call) error {
		metrics.ServeHTTP(w, r)
		return nil
	}))

	route := func(pattern, action string, h handler) { add(pattern, action, s.auth(action, h)) }
	route("GET /api/v1/areas", loa.ActionRead, s.listAreas)
	route("POST /api/v1/areas", loa.ActionArea, s.createArea)
	route("GET /api/v1/areas/{id}", loa.ActionRead, s.getArea)
	route("DELETE /api/v1/areas/{id}", loa.ActionArea, s.deleteArea)
	route("PUT /api/v1/areas/{id}/fallback", loa.ActionSession, s.putFallback)
	route("DELETE /api/v1/areas/{id}/fallback", loa.ActionSession, s.deleteFallback)
	route("GET /api/v1/fallbacks", loa.ActionRead, s.listFallbacks)
	route("GET /api/v1/relays", loa.ActionRead, s.listRelays)
	route("POST /api/v1/relays", loa.ActionMedia, s.createRelay)
	route("GET /api/v1/relays/{id}", loa.ActionRead, s.getRelay)
	route("PUT /api/v1/relays/{id}", loa.ActionMedia, s.updateRelay)
	route("DELETE /api/v1/relays/{id}", loa.ActionMedia, s.deleteRelay)
	route("POST /api/v1/relays/{id}/play", loa.ActionSession, s.playRelay)

	route("GET /api/v1/devices", loa.ActionRead, s.listDevices)
	route("POST /api/v1/devices", loa.ActionDevice, s.createDevice)
	route("GET /api/v1/devices/{id}", loa.ActionRead, s.getDevice)
	route("GET /api/v1/devices/positions", loa.ActionRead, s.devicePositions)
	route("DELETE /api/v1/devices/{id}", loa.ActionDevice, s.decommissionDevice)
	route("PATCH /api/v1/devices/{id}", loa.ActionDevice, s.patchDevice)
	route("POST /api/v1/devices/{id}/commands", loa.ActionDevice, s.sendCommand)
	route("POST /api/v1/devices/{id}/credentials", loa.ActionDevice, s.rotateCredentials)
	route("DELETE /api/v1/devices/{id}/credentials", loa.ActionDevice, s.revokeCredentials)
	route("GET /api/v1/commands/{id}", loa.ActionRead, s.getCommand)
	route("POST /api/v1/devices/claims", loa.ActionDevice, s.claimDevice)
	route("GET /api/v1/devices/claims", loa.ActionDevice, s.listClaims)
	route("POST /api/v1/devices/claims/{id}/cancel", loa.ActionDevice, s.cancelClaim)
	route("POST /api/v1/devices/{id}/replace", loa.ActionDevice, s.replaceDevice)
	add("POST "+protocol.EnrolPath, "", s.enrol(newEnrolLimiter(s.Now))) // the claim code, not a token
	add("POST /api/v1/sms/inbound", "", http.HandlerFunc(s.smsInbound))  // the gateway's secret, not a token
	route("GET /api/v1/devices/{id}/health", loa.ActionRead, s.deviceHealth)
	route("GET /api/v1/alarms", loa.ActionRead, s.listAlarms)
	route("POST /api/v1/alarms/{id}/ack", loa.ActionDevice, s.ackAlarm)
	// EventSource cannot send headers: this stream also takes ?access_token=.
	add("GET /api/v1/alarms/stream", loa.ActionRead, queryToken(s.auth(loa.ActionRead, s.alarmStream)))
	route("POST /api/v1/areas/{id}/commands", loa.ActionDevice, s.startGroupCommand)
	route("GET /api/v1/group-commands/{id}", loa.ActionRead, s.getGroupCommand)

	route("GET /api/v1/firmware", loa.ActionRead, s.listFirmware)
	route("POST /api/v1/firmware", loa.ActionFirmware, s.uploadFirmware)
	route("GET /api/v1/firmware/{id}", loa.ActionRead, s.getFirmware)
	route("GET /api/v1/rollouts", loa.ActionRead, s.listRollouts)
	route("POST /api/v1/rollouts", loa.ActionFirmware, s.startRollout)
	route("GET /api/v1/rollouts/{id}", loa.ActionRead, s.getRollout)
	route("POST /api/v1/rollouts/{id}/pause", loa.ActionFirmware, s.changeRollout("pause"))
	route("POST /api/v1/rollouts/{id}/resume", loa.ActionFirmware, s.changeRollout("resume"))
	route("POST /api/v1/rollouts/{id}/abort", loa.ActionFirmware, s.changeRollout("abort"))
	add("GET /fw/{id}", "", http.HandlerFunc(s.downloadFirmware))         // device credentials, not a token
	add("GET /cache/{sha256}", "", http.HandlerFunc(s.downloadCacheItem)) // device credentials, not a token
	route("GET /api/v1/stored-messages", loa.ActionRead, s.listStored)
	route("PUT /api/v1/stored-messages/{code}", loa.ActionArea, s.putStored)
	route("DELETE /api/v1/stored-messages/{code}", loa.ActionArea, s.deleteStored)

	route("GET /api/v1/media", loa.ActionRead, s.listMedia)
	route("POST /api/v1/media", loa.ActionMedia, s.uploadMedia)
	route("GET /api/v1/media/{id}", loa.ActionRead, s.getMedia)
	route("PATCH /api/v1/media/{id}", loa.ActionMedia, s.renameMedia)
	route("DELETE /api/v1/media/{id}", loa.ActionMedia, s.deleteMedia)
	// <audio> cannot send headers either: also ?access_token=.
	add("GET /api/v1/media/{id}/audio", loa.ActionRead, queryToken(s.auth(loa.ActionRead, s.mediaAudio)))

	route("GET /api/v1/playlists", loa.ActionRead, s.listPlaylists)
	route("POST /api/v1/playlists", loa.ActionMedia, s.createPlaylist)
	route("GET /api/v1/playlists/{id}", loa.ActionRead, s.getPlaylist)

	route("GET /api/v1/schedules", loa.ActionRead, s.listSchedules)
	route("POST /api/v1/schedules", loa.ActionSession, s.createSchedule)
	route("POST /api/v1/schedules/conflicts", loa.ActionSession, s.scheduleConflicts)
	route("GET /api/v1/schedules/{id}", loa.ActionRead, s.getSchedule)
	route("PUT /api/v1/schedules/{id}", loa.ActionSession, s.replaceSchedule)
	route("DELETE /api/v1/schedules/{id}", loa.ActionSession, s.deleteSchedule)
	route("POST /api/v1/schedules/{id}/enable", loa.ActionSession, s.setScheduleEnabled(true))
	route("POST /api/v1/schedules/{id}/disable", loa.ActionSession, s.setScheduleEnabled(false))
	route("GET /api/v1/schedules/{id}/next", loa.ActionRead, s.nextOccurrences)
	route("GET /api/v1/agenda", loa.ActionRead, s.agenda)
	route("GET /api/v1/calendars", loa.ActionRead, s.listCalendars)
	route("PUT /api/v1/calendars/{name}", loa.ActionArea, s.putCalendar)
	route("GET /api/v1/playlog", loa.ActionRead, s.playLog)
	route("GET /api/v1/reports/broadcast", loa.ActionRead, s.broadcastReport)

	route("GET /api/v1/sessions", loa.ActionRead, s.listSessions)
	route("POST /api/v1/sessions", loa.ActionSession, s.startSession)
	route("GET /api/v1/sessions/{id}", loa.ActionRead, s.getSession)
	route("GET /api/v1/sessions/{id}/delivery", loa.ActionRead, s.sessionDelivery)
	route("POST /api/v1/sessions/{id}/stop", loa.ActionSession, s.stopSession)
	route("GET /api/v1/sessions/{id}/sdp", loa.ActionSession, s.sessionSDP)
	route("DELETE /api/v1/sessions/{id}/listeners/{dest}", loa.ActionSession, s.removeListener)
	route("POST /api/v1/live", loa.ActionSession, s.startLive)
	route("PATCH /api/v1/live/{id}", loa.ActionSession, s.trickleLive)
	route("DELETE /api/v1/live/{id}", loa.ActionSession, s.endLive)

	route("GET /api/v1/alerts", loa.ActionRead, s.listAlerts)
	route("POST /api/v1/alerts", loa.ActionSession, s.sendAlert)
	route("GET /api/v1/alerts/{id}", loa.ActionRead, s.capFormat(s.getAlert))
	route("POST /api/v1/alerts/cap", loa.ActionSession, s.postCAP)
	route("POST /api/v1/alerts/check", loa.ActionSession, s.checkAlert)
	route("POST /api/v1/alerts/preview", loa.ActionSession, s.previewAlert(newPreviewLimiter()))
	route("GET /api/v1/alerts/audience", loa.ActionRead, s.alertAudienceAll)
	route("GET /api/v1/alerts/{id}/cap", loa.ActionRead, s.getAlertCAP)
	route("POST /api/v1/alerts/{id}/cancel", loa.ActionSession, s.cancelAlert)
	route("POST /api/v1/alerts/preview-targets", loa.ActionSession, s.previewTargets)
	route("GET /api/v1/national/identity", loa.ActionRead, s.nationalIdentity)
	route("GET /api/v1/national/provinces", loa.ActionRead, s.listProvinces)
	route("POST /api/v1/national/provinces", loa.ActionArea, s.putProvince(true))
	route("PUT /api/v1/national/provinces/{id}", loa.ActionArea, s.putProvince(false))
	route("DELETE /api/v1/national/provinces/{id}", loa.ActionArea, s.deleteProvince)
	route("GET /api/v1/national/alerts", loa.ActionRead, s.listNational)
	route("POST /api/v1/national/alerts", loa.ActionSession, s.sendNational)
	route("GET /api/v1/national/alerts/{id}", loa.ActionRead, s.getNational)
	route("POST /api/v1/national/alerts/{id}/cancel", loa.ActionSession, s.cancelNational)
	add("GET /api/v1/alerts/{id}/events", loa.ActionRead, queryToken(s.auth(loa.ActionRead, s.alertEvents))) // EventSource: also ?access_token=
	route("PUT /api/v1/areas/{id}/tests", loa.ActionArea, s.setAreaTests)
	route("PUT /api/v1/areas/{id}/approval", loa.ActionArea, s.setAreaApproval)
	route("GET /api/v1/drafts", loa.ActionRead, s.listDrafts)
	route("GET /api/v1/drafts/{id}", loa.ActionRead, s.getDraft)
	route("POST /api/v1/drafts/{id}/approve", loa.ActionApprove, s.decideDraft(true))
	route("POST /api/v1/drafts/{id}/reject", loa.ActionApprove, s.decideDraft(false))
	route("POST /api/v1/drafts/{id}/withdraw", loa.ActionRead, s.withdrawDraft)
	route("GET /api/v1/bulletins", loa.ActionRead, s.listBulletins)
	route("POST /api/v1/bulletins", loa.ActionSession, s.publishBulletin)
	route("GET /api/v1/bulletins/inbox", loa.ActionRead, s.bulletinInbox)
	route("GET /api/v1/bulletins/{id}", loa.ActionRead, s.getBulletin)
	route("GET /api/v1/bulletins/{id}/tracking", loa.ActionRead, s.bulletinTracking)
	route("POST /api/v1/bulletins/{id}/accept", loa.ActionSession, s.acceptBulletin)
	route("POST /api/v1/bulletins/{id}/decline", loa.ActionSession, s.declineBulletin)
	route("GET /api/v1/feed/bulletins", loa.ActionFeed, s.feedBulletins)
	route("GET /api/v1/feed/media/{sha256}", loa.ActionFeed, s.feedMedia)
	route("POST /api/v1/feed/bulletins/{id}/report", loa.ActionFeed, s.feedReport)

	add("POST /api/v1/login", "", s.login(newLoginBackoff(s.Now))) // a username and password, not a token
	route("POST /api/v1/logout", loa.ActionRead, s.logout)
	// The console's one event stream per tab; EventSource: also ?access_token=.
	add("GET /api/v1/events", loa.ActionRead, queryToken(s.auth(loa.ActionRead, s.events)))
	route("GET /api/v1/me", loa.ActionRead, s.me)
	route("GET /api/v1/users", loa.ActionManageUsers, s.listUsers)
	route("POST /api/v1/users", loa.ActionManageUsers, s.createUser)
	route("GET /api/v1/users/{username}", loa.ActionManageUsers, s.getUser)
	route("PUT /api/v1/users/{username}", loa.ActionManageUsers, s.updateUser)
	route("POST /api/v1/users/{username}/disable", loa.ActionManageUsers, s.setUserDisabled(true))
	route("POST /api/v1/users/{username}/enable", loa.ActionManageUsers, s.setUserDisabled(false))
	route("POST /api/v1/users/{username}/password", loa.ActionManageUsers, s.resetPassword)
	route("GET /api/v1/tokens", loa.ActionManageTokens, s.listTokens)
	route("POST /api/v1/tokens", loa.ActionManageTokens, s.createToken)
	route("DELETE /api/v1/tokens/{id}", loa.ActionManageTokens, s.revokeToken)
	route("GET /api/v1/audit", loa.ActionManageTokens, s.auditLog)
	route("GET /api/v1/notify/rules", loa.ActionArea, s.listNotifyRules)
	route("POST /api/v1/notify/rules", loa.ActionArea, s.createNotifyRule)
	route("GET /api/v1/notify/rules/{id}", loa.ActionArea, s.getNotifyRule)
	route("PUT /api/v1/notify/rules/{id}", loa.ActionArea, s.replaceNotifyRule)
	route("DELETE /api/v1/notify/rules/{id}", loa.ActionArea, s.deleteNotifyRule)
	route("GET /api/v1/notify/log", loa.ActionArea, s.notifyLog)
	route("POST /api/v1/notify/ack", loa.ActionRead, s.notifyAck) // the link of an e-mail or SMS, once signed in
	route("PUT /api/v1/me/contact", loa.ActionRead, s.putMyContact)
	route("GET /api/v1/backup", loa.ActionManageTokens, s.backup)
	route("GET /api/v1/cluster", loa.ActionManageTokens, s.clusterStatus)
	route("POST /api/v1/cluster/transfer", loa.ActionManageTokens, s.clusterTransfer)
	route("POST /api/v1/cluster/servers", loa.ActionManageTokens, s.clusterAdd)
	route("DELETE /api/v1/cluster/servers/{id}", loa.ActionManageTokens, s.clusterRemove)
	return routes
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (s *Server) maxUpload() int64 {
	if s.MaxUpload <= 0 {
		return DefaultMaxUpload
	}
	return s.MaxUpload
}

// statusWriter remembers the status a handler wrote, and the token id
// that made the call, for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
	actor  string
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logRequests logs each request at debug level, and client or server
// failures at info level. It never logs the Authorization header.
func (s *Server) logRequests(next http.Handler) http.Handler {
	log := s.logger()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		level := slog.LevelDebug
		if sw.status >= 400 {
			level = slog.LevelInfo
		}
		log.LogAttrs(r.Context(), level, "http request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", sw.status), slog.String("actor", sw.actor),
			slog.Duration("elapsed", time.Since(start)))
	})
}
