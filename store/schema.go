package store

import (
	"encoding/binary"
	"fmt"
	"log/slog"

	bolt "go.etcd.io/bbolt"

	"github.com/loa-broadcast/loa"
)

// Bucket names. Every bucket is created by a migration, so code outside
// schema.go may assume they exist.
var (
	bucketMeta         = []byte("meta")           // schema version
	bucketAreas        = []byte("areas")          // id → Area
	bucketDevices      = []byte("devices")        // id → Device
	bucketDeviceCreds  = []byte("device_creds")   // id → SHA-256 of the MQTT password
	bucketDeviceStates = []byte("device_states")  // id → DeviceState
	bucketMedia        = []byte("media")          // id → Media
	bucketMediaByHash  = []byte("media_by_hash")  // content hash → media id
	bucketSessions     = []byte("sessions")       // id → Session
	bucketTokens       = []byte("tokens")         // id → tokenRecord
	bucketTokensByHash = []byte("tokens_by_hash") // SHA-256 of secret (hex) → token id
	bucketAudit        = []byte("audit")          // big-endian sequence → AuditRecord
	bucketPlaylists    = []byte("playlists")      // id → Playlist
	bucketFallbacks    = []byte("fallbacks")      // area id → Fallback

	bucketSchedules      = []byte("schedules")       // id → Schedule
	bucketCalendars      = []byte("calendars")       // name (bytes) → Calendar
	bucketSchedulerState = []byte("scheduler_state") // keySchedulerHandled → RFC 3339 time
	bucketStarted        = []byte("started")         // occurrence key → big-endian unix nanos recorded
	bucketStartedByTime  = []byte("started_by_time") // big-endian unix nanos ‖ occurrence key → empty
	bucketPlayLog        = []byte("play_log")        // big-endian sequence → PlayLogEntry

	// Fleet (health, alarms, firmware) and alerts, schema v5.
	bucketHealthHourly  = []byte("health_hourly")  // device id ‖ big-endian unix hour → hourly aggregate
	bucketAlarms        = []byte("alarms")         // alarm id → Alarm
	bucketFirmware      = []byte("firmware")       // image id → FirmwareImage (image bytes live beside the db)
	bucketRollouts      = []byte("rollouts")       // rollout id → Rollout
	bucketGroupCommands = []byte("group_commands") // group command id → GroupCommand
	bucketAlerts        = []byte("alerts")         // alert id → Alert (with its delivery report)
	bucketAlertsByCAP   = []byte("alerts_by_cap")  // CAP sender ‖ 0 ‖ identifier → alert id

	// The area tree's index, schema v7: a scoped request reads its subtree only.
	bucketAreaChildren = []byte("area_children") // parent id ‖ 0 ‖ child id → empty ("" for provinces)
	// Enrolment, schema v8.
	bucketClaims          = []byte("claims")            // claim id → claimRecord
	bucketClaimsByHash    = []byte("claims_by_hash")    // claim code hash (hex) → claim id
	bucketClaimsPendingBy = []byte("claims_pending_by") // device id → id of its claim not yet enrolled
	// People who sign in, schema v9.
	bucketUsers        = []byte("users")         // username → userRecord (with the password hash)
	bucketUserSessions = []byte("user_sessions") // SHA-256 of the session id (hex) → sessionRecord
)

var keySchemaVersion = []byte("schema_version")

// A migration moves the schema up by one version. migrations[i] takes a
// database from version i to i+1, so the current version is len(migrations).
// Append only; never edit a released step.
type migration struct {
	name string
	up   func(tx *bolt.Tx) error
}

var migrations = []migration{
	{"create buckets", func(tx *bolt.Tx) error {
		for _, b := range [][]byte{
			bucketAreas, bucketDevices, bucketDeviceCreds, bucketDeviceStates,
			bucketMedia, bucketMediaByHash, bucketSessions, bucketTokens,
			bucketTokensByHash, bucketAudit,
		} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("create bucket %s: %w", b, err)
			}
		}
		return nil
	}},
	{"playlists", func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketPlaylists)
		return err
	}},
	{"schedules, calendars, scheduler state, play log", func(tx *bolt.Tx) error {
		for _, b := range [][]byte{
			bucketSchedules, bucketCalendars, bucketSchedulerState,
			bucketStarted, bucketStartedByTime, bucketPlayLog,
		} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("create bucket %s: %w", b, err)
			}
		}
		return nil
	}},
	{"fallbacks", func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketFallbacks)
		return err
	}},
	{"fleet health, alarms, firmware, group commands, alerts", func(tx *bolt.Tx) error {
		for _, b := range [][]byte{
			bucketHealthHourly, bucketAlarms, bucketFirmware, bucketRollouts,
			bucketGroupCommands, bucketAlerts, bucketAlertsByCAP,
		} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("create bucket %s: %w", b, err)
			}
		}
		return nil
	}},
	{"session origins", originsFromCreators},
	{"area children index", indexAreaChildren},
	{"claims", func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketClaims, bucketClaimsByHash, bucketClaimsPendingBy} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("create bucket %s: %w", b, err)
			}
		}
		return nil
	}},
	{"users and sign-in sessions", func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketUsers, bucketUserSessions} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("create bucket %s: %w", b, err)
			}
		}
		return nil
	}},
}

// SchemaVersion is the schema version this build writes.
func SchemaVersion() int { return len(migrations) }

// migrate runs the steps a database at an older version lacks, all in tx,
// so a failed step leaves the database as it was. A database from a newer
// build is refused rather than misread.
func migrate(tx *bolt.Tx, path string, steps []migration, log *slog.Logger) error {
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return fmt.Errorf("create meta bucket: %w", err)
	}
	var from uint64
	if v := meta.Get(keySchemaVersion); v != nil {
		if len(v) != 8 {
			return fmt.Errorf("database %s: schema version is %d bytes, want 8", path, len(v))
		}
		from = binary.BigEndian.Uint64(v)
	}
	to := uint64(len(steps))
	if from > to {
		return loa.Errorf(loa.EUNSUPPORTED,
			"database %s has schema version %d, but this build of loa knows only up to %d; "+
				"run a newer loa or restore a backup made by this version", path, from, to)
	}
	for v := from; v < to; v++ {
		log.Info("migrating database", "path", path, "version", v+1, "step", steps[v].name)
		if err := steps[v].up(tx); err != nil {
			return fmt.Errorf("migrate database %s to version %d (%s): %w", path, v+1, steps[v].name, err)
		}
	}
	if from == to {
		return nil
	}
	return meta.Put(keySchemaVersion, binary.BigEndian.AppendUint64(nil, to))
}
