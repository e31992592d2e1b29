package loa

import (
	"context"
	"time"
)

// Report limits.
const (
	MaxReportDays = 366 // one report covers at most a year
	// Bytes on the air of one 20 ms audio packet at the station's 32 kbit/s
	// Opus: 80 payload + 12 RTP + 8 UDP + 20 IPv4; SRTP (AES-GCM) adds its
	// 16-byte tag (+13 %). Receivers report no byte counters, so a
	// receiver's data is estimated from the packets it counted (docs/reports.md).
	ReportPacketBytes     = 120
	ReportPacketBytesSRTP = 136
)

// Report categories: what started the programmes counted (the session's
// Origin kind; a session without one was started by hand).
const (
	CategoryProgramme = "schedule" // a schedule fired
	CategoryManual    = "manual"
	CategoryAlert     = "alert"
	CategoryFallback  = "fallback" // an area's background programme
	CategoryLive      = "live"
	CategoryRelay     = "relay"
)

// BroadcastReport is what a commune or a province sends up for a period
// (báo cáo hoạt động truyền thanh): every number is defined in
// docs/reports.md. Hours are decimal hours; percentages 0–100, -1 when
// there is nothing to divide by.
type BroadcastReport struct {
	Station     string    `json:"station"`
	Area        ReportRef `json:"area"`
	Kind        string    `json:"kind"` // the area's: province, commune or cluster
	From        string    `json:"from"` // YYYY-MM-DD, first day, in Zone
	To          string    `json:"to"`   // YYYY-MM-DD, last day included
	Zone        string    `json:"zone"`
	Start       time.Time `json:"start"` // [Start, End): the period as instants
	End         time.Time `json:"end"`
	GeneratedAt time.Time `json:"generated_at"`

	Aired        ReportAired         `json:"aired"`
	Missed       ReportMissed        `json:"missed"`
	Cut          int                 `json:"cut"`
	CutList      []ReportProgramme   `json:"cut_list"`
	Alerts       ReportAlerts        `json:"alerts"`
	Availability ReportAvailability  `json:"availability"`
	Alarms       ReportAlarms        `json:"alarms"`
	Data         ReportData          `json:"data"`
	Communes     []ReportAreaSummary `json:"communes"` // a province's: one line per commune
}

// ReportRef names an area or a device.
type ReportRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// ReportAired is what the receivers of the area played.
type ReportAired struct {
	Programmes    int            `json:"programmes"`
	Hours         float64        `json:"hours"`
	ReceiverHours float64        `json:"receiver_hours"`
	ByCategory    []ReportBucket `json:"by_category"`
	ByBand        []ReportBucket `json:"by_band"`
}

// ReportBucket is one category's or priority band's share of what aired.
type ReportBucket struct {
	Key        string  `json:"key"`
	Programmes int     `json:"programmes"`
	Hours      float64 `json:"hours"`
}

// ReportMissed counts programmes that did not air in the area.
type ReportMissed struct {
	Total       int               `json:"total"`
	Occurrences int               `json:"occurrences"` // schedule occurrences that never started (play log "missed")
	NotAired    int               `json:"not_aired"`   // sessions that ran with no receiver of the area playing them
	List        []ReportProgramme `json:"list"`
}

// ReportProgramme is one programme missed or cut.
type ReportProgramme struct {
	At       time.Time `json:"at"`
	Session  string    `json:"session,omitempty"`
	Schedule string    `json:"schedule,omitempty"`
	Category string    `json:"category"`
	Content  string    `json:"content,omitempty"` // the media's or playlist's name
	Why      string    `json:"why"`               // missed, not_aired, stopped, failed, preempted, partial
}

// ReportAlerts are the alerts that reached the area and how they were delivered.
type ReportAlerts struct {
	Count     int           `json:"count"`
	Receivers int           `json:"receivers"` // delivery lines of the area's receivers
	Delivered int           `json:"delivered"` // of them, finished (played every repeat)
	RatePct   float64       `json:"rate_pct"`
	List      []ReportAlert `json:"list"`
}

// ReportAlert is one alert's delivery in the area.
type ReportAlert struct {
	ID        string    `json:"id"`
	Title     string    `json:"title"`
	Level     string    `json:"level"`
	Test      bool      `json:"test,omitempty"`
	At        time.Time `json:"at"`
	Receivers int       `json:"receivers"`
	Delivered int       `json:"delivered"`
	RatePct   float64   `json:"rate_pct"`
}

// ReportAvailability is the share of hours the area's receivers were online.
type ReportAvailability struct {
	Since         time.Time             `json:"since"` // hours before it are not known (health kept HealthRetention)
	Pct           float64               `json:"pct"`
	HoursOnline   float64               `json:"hours_online"`
	HoursExpected float64               `json:"hours_expected"`
	Receivers     []ReportReceiverAvail `json:"receivers"`
	Villages      []ReportVillageAvail  `json:"villages"`
}

// ReportReceiverAvail is one receiver's availability.
type ReportReceiverAvail struct {
	Device        string  `json:"device"`
	Name          string  `json:"name"`
	Area          string  `json:"area"`
	HoursOnline   float64 `json:"hours_online"`
	HoursExpected float64 `json:"hours_expected"`
	Pct           float64 `json:"pct"`
}

// ReportVillageAvail is one village's (area's) availability over its receivers.
type ReportVillageAvail struct {
	Area          string  `json:"area"`
	Name          string  `json:"name"`
	Receivers     int     `json:"receivers"`
	HoursOnline   float64 `json:"hours_online"`
	HoursExpected float64 `json:"hours_expected"`
	Pct           float64 `json:"pct"`
}

// ReportAlarms are the receivers' alarms raised in the period and how
// fast they were repaired (cleared).
type ReportAlarms struct {
	Raised      int               `json:"raised"`
	Repaired    int               `json:"repaired"` // cleared before the period's end
	Open        int               `json:"open"`
	MTTRMinutes float64           `json:"mttr_minutes"` // mean raised → cleared of those repaired; -1 if none
	ByKind      []ReportAlarmKind `json:"by_kind"`
}

// ReportAlarmKind is one alarm kind's share.
type ReportAlarmKind struct {
	Kind        string  `json:"kind"`
	Raised      int     `json:"raised"`
	Repaired    int     `json:"repaired"`
	MTTRMinutes float64 `json:"mttr_minutes"`
}

// ReportData is the audio data the area's receivers received, estimated.
type ReportData struct {
	Estimated bool                 `json:"estimated"` // always true: from packet counts (ReportPacketBytes)
	Bytes     uint64               `json:"bytes"`
	Receivers []ReportReceiverData `json:"receivers"`
}

// ReportReceiverData is one receiver's data.
type ReportReceiverData struct {
	Device  string `json:"device"`
	Name    string `json:"name"`
	SRTP    bool   `json:"srtp"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// ReportAreaSummary is one commune's line in a province's report.
type ReportAreaSummary struct {
	Area            string  `json:"area"`
	Name            string  `json:"name"`
	Programmes      int     `json:"programmes"`
	Hours           float64 `json:"hours"`
	Missed          int     `json:"missed"`
	Cut             int     `json:"cut"`
	AlertRatePct    float64 `json:"alert_rate_pct"`
	AvailabilityPct float64 `json:"availability_pct"`
	MTTRMinutes     float64 `json:"mttr_minutes"`
}

// ReportService computes broadcast reports.
type ReportService interface {
	// BroadcastReport reports area over [start, end); ENOTFOUND for an
	// unknown area.
	BroadcastReport(ctx context.Context, area string, start, end time.Time) (*BroadcastReport, error)
}
