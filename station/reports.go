package station

import (
	"cmp"
	"context"
	"math"
	"slices"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
	"github.com/loa-broadcast/loa/store"
)

// Reports computes broadcast reports (báo cáo) from what the store keeps:
// sessions and their receivers' delivery lines, the play log's missed
// occurrences, alerts' reports, alarms and the hourly health records.
// Every number is defined in docs/reports.md. Each store read is its own
// short read transaction; nothing is held while the report is built.
type Reports struct {
	db  *store.DB
	Now func() time.Time // nil: time.Now
}

// NewReports returns the report service of db.
func NewReports(db *store.DB) *Reports { return &Reports{db: db} }

// frame is one 20 ms audio packet: receivers count what they played in them.
const frame = 20 * time.Millisecond

// history is everything a report reads, loaded once for the report's area
// and shared by its communes' lines.
type history struct {
	start, end time.Time // the period
	since      time.Time // health hours before it are pruned: not known
	now        time.Time
	tree       loa.AreaTree
	devices    []*loa.Device
	deviceArea map[string]string // every device's area, decommissioned ones too
	srtp       map[string]bool
	sessions   []*loa.Session
	lines      map[string][]loa.ReceiverDelivery // session → its delivery lines
	missed     []loa.PlayLogEntry
	alerts     []*loa.Alert
	alarms     []loa.Alarm
	health     map[string][]loa.HealthHour
	content    map[string]string // media and playlist ids → names
}

// BroadcastReport reports area over [start, end).
func (r *Reports) BroadcastReport(ctx context.Context, areaID string, start, end time.Time) (*loa.BroadcastReport, error) {
	if !end.After(start) {
		return nil, loa.Errorf(loa.EINVALID, "to: must be after from")
	}
	if end.Sub(start) > loa.MaxReportDays*24*time.Hour+time.Hour { // an hour for a zone's DST
		return nil, loa.Errorf(loa.EINVALID, "to: a report covers at most %d days", loa.MaxReportDays)
	}
	areas, err := r.db.Areas(ctx)
	if err != nil {
		return nil, err
	}
	tree := loa.NewAreaTree(areas)
	area := tree[areaID]
	if area == nil {
		return nil, loa.Errorf(loa.ENOTFOUND, "area %s not found", areaID)
	}
	h, err := r.load(ctx, tree, area, start, end)
	if err != nil {
		return nil, err
	}
	rep := h.report(area)
	rep.GeneratedAt = h.now.UTC()
	if area.Kind == loa.AreaProvince {
		for _, a := range areas { // sorted by id
			if a.ParentID != area.ID || a.Kind != loa.AreaCommune {
				continue
			}
			c := h.report(a)
			rep.Communes = append(rep.Communes, loa.ReportAreaSummary{
				Area: a.ID, Name: a.Name, Programmes: c.Aired.Programmes, Hours: c.Aired.Hours,
				Missed: c.Missed.Total, Cut: c.Cut, AlertRatePct: c.Alerts.RatePct,
				AvailabilityPct: c.Availability.Pct, MTTRMinutes: c.Alarms.MTTRMinutes,
			})
		}
	}
	return rep, nil
}

// load reads what the report of area needs, each read its own transaction.
func (r *Reports) load(ctx context.Context, tree loa.AreaTree, area *loa.Area, start, end time.Time) (*history, error) {
	now := time.Now()
	if r.Now != nil {
		now = r.Now()
	}
	h := &history{start: start, end: end, now: now, tree: tree, srtp: map[string]bool{},
		lines: map[string][]loa.ReceiverDelivery{}, health: map[string][]loa.HealthHour{}, content: map[string]string{}}
	// Hours pruned from the health records are not known, not offline.
	h.since = start
	kept := now.Add(-loa.HealthRetention)
	if k := kept.Truncate(time.Hour); k.Before(kept) {
		kept = k.Add(time.Hour) // the hour partly pruned is not known either
	}
	if kept.After(start) {
		h.since = kept
	}
	all, err := r.db.AllDevices(ctx)
	if err != nil {
		return nil, err
	}
	deviceArea := make(map[string]string, len(all))
	h.deviceArea = deviceArea
	in := map[string]bool{}
	for _, d := range all {
		deviceArea[d.ID] = d.AreaID
		if h.inService(d) && tree.Within(d.AreaID, area.ID) {
			h.devices = append(h.devices, d)
			in[d.ID] = true
		}
	}
	states, err := r.db.DeviceStates(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range states {
		if in[s.ID] && s.HasCap(protocol.CapSRTPGCM) {
			h.srtp[s.ID] = true
		}
	}
	sessions, err := r.db.Sessions(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range sessions {
		if s.StartedAt.Before(start) || !s.StartedAt.Before(end) || !slices.ContainsFunc(s.Devices, func(d string) bool { return in[d] }) {
			continue
		}
		h.sessions = append(h.sessions, s)
		if h.lines[s.ID], err = r.db.Deliveries(ctx, s.ID); err != nil {
			return nil, err
		}
	}
	if h.missed, err = r.db.PlayLog(ctx, loa.PlayLogFilter{From: start, To: end, Area: area.ID, Event: loa.PlayMissed,
		Limit: store.MaxPlayLogLimit}, tree, deviceArea); err != nil {
		return nil, err
	}
	alerts, err := r.db.Alerts(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range alerts {
		if !a.CreatedAt.Before(start) && a.CreatedAt.Before(end) {
			h.alerts = append(h.alerts, a)
		}
	}
	alarms, err := r.db.Alarms(ctx, loa.AlarmFilter{})
	if err != nil {
		return nil, err
	}
	for _, a := range alarms {
		if a.Device != "" && !a.RaisedAt.Before(start) && a.RaisedAt.Before(end) {
			h.alarms = append(h.alarms, a)
		}
	}
	for _, d := range h.devices {
		if h.health[d.ID], err = r.db.HealthHours(ctx, d.ID, h.since, end); err != nil {
			return nil, err
		}
	}
	media, err := r.db.MediaList(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range media {
		h.content[m.ID] = m.Name
	}
	playlists, err := r.db.Playlists(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range playlists {
		h.content[p.ID] = p.Name
	}
	return h, nil
}

// inService reports whether d was in service at some time of the period.
func (h *history) inService(d *loa.Device) bool {
	return d.CreatedAt.Before(h.end) && (!d.Decommissioned() || d.DecommissionedAt.After(h.start))
}

// until is where the hours a report counts end: the period's end, or the
// start of the hour in progress, whose health record is not stored yet.
func (h *history) until() time.Time {
	if cur := h.now.Truncate(time.Hour); cur.Before(h.end) {
		return cur
	}
	return h.end
}

// serviceHours is the part of [since, until) d was in service.
func (h *history) serviceHours(d *loa.Device) float64 {
	from, to := h.since, h.until()
	if d.CreatedAt.After(from) {
		from = d.CreatedAt
	}
	if d.Decommissioned() && d.DecommissionedAt.Before(to) {
		to = d.DecommissionedAt
	}
	if !to.After(from) {
		return 0
	}
	return to.Sub(from).Hours()
}

// category is the report category of a session: its origin's kind.
func category(s *loa.Session) string { return cmp.Or(s.Origin.Kind, loa.CategoryManual) }

// aired is how long one receiver played a session, by its own evidence:
// frames it played, else packets its RTCP reports counted, else (a play
// still going, whose counts come at its end) since its first frame.
func (h *history) aired(s *loa.Session, d *loa.ReceiverDelivery) (time.Duration, bool) {
	switch {
	case d.Played > 0:
		return time.Duration(d.Played) * frame, true
	case d.RTPReceived > 0:
		return time.Duration(d.RTPReceived) * frame, true
	case !d.StartedAt.IsZero():
		end := cmp.Or(d.EndedAt, s.EndedAt)
		if end.IsZero() {
			end = h.now
		}
		return max(0, end.Sub(d.StartedAt)), true
	}
	return 0, false
}

// report computes area's numbers from h (which holds at least its part).
func (h *history) report(area *loa.Area) *loa.BroadcastReport {
	rep := &loa.BroadcastReport{
		Area: loa.ReportRef{ID: area.ID, Name: area.Name}, Kind: area.Kind, Start: h.start.UTC(), End: h.end.UTC(),
		Missed:  loa.ReportMissed{List: []loa.ReportProgramme{}},
		CutList: []loa.ReportProgramme{}, Communes: []loa.ReportAreaSummary{},
	}
	in := map[string]*loa.Device{}
	var devices []*loa.Device
	for _, d := range h.devices {
		if h.tree.Within(d.AreaID, area.ID) {
			in[d.ID] = d
			devices = append(devices, d)
		}
	}
	h.programmes(rep, in)
	h.missedOccurrences(rep, area)
	h.alertDelivery(rep, area)
	h.availability(rep, devices)
	h.alarmRepairs(rep, area)
	h.data(rep, devices)
	return rep
}

// programmes counts what aired, was cut or never aired in the area.
func (h *history) programmes(rep *loa.BroadcastReport, in map[string]*loa.Device) {
	byCat, byBand := map[string]*loa.ReportBucket{}, map[string]*loa.ReportBucket{}
	var hours, receiverHours time.Duration
	for _, s := range h.sessions {
		if !slices.ContainsFunc(s.Devices, func(d string) bool { return in[d] != nil }) {
			continue
		}
		var longest, sum time.Duration
		heard, why := false, ""
		for i := range h.lines[s.ID] {
			l := &h.lines[s.ID][i]
			if in[l.Device] == nil {
				continue
			}
			if d, ok := h.aired(s, l); ok {
				heard = true
				longest, sum = max(longest, d), sum+d
			}
			switch {
			case l.Reason == loa.ReasonPreempted || l.Reason == loa.ReasonPartial:
				why = cmp.Or(why, l.Reason)
			case l.State == loa.DeliveryStopped:
				why = cmp.Or(why, loa.PlayStopped)
			}
		}
		cat := category(s)
		p := loa.ReportProgramme{At: s.StartedAt.UTC(), Session: s.ID, Category: cat, Content: h.contentName(s.MediaID, s.PlaylistID)}
		if s.Origin.Kind == loa.OriginSchedule {
			p.Schedule = s.Origin.ID
		}
		settled := s.State != loa.SessionPlaying
		background := cat == loa.CategoryFallback // preempted and stopped by design
		if !heard {
			if settled && !background {
				p.Why = "not_aired"
				rep.Missed.NotAired++
				rep.Missed.List = append(rep.Missed.List, p)
			}
			continue
		}
		rep.Aired.Programmes++
		hours += longest
		receiverHours += sum
		for key, m := range map[string]map[string]*loa.ReportBucket{cat: byCat, s.Priority.Band(): byBand} {
			b := m[key]
			if b == nil {
				b = &loa.ReportBucket{Key: key}
				m[key] = b
			}
			b.Programmes++
			b.Hours += longest.Hours()
		}
		if s.State == loa.SessionStopped || s.State == loa.SessionFailed {
			why = s.State
		}
		if settled && !background && why != "" {
			p.Why = why
			rep.Cut++
			rep.CutList = append(rep.CutList, p)
		}
	}
	slices.SortStableFunc(rep.CutList, func(a, b loa.ReportProgramme) int { return a.At.Compare(b.At) })
	rep.Aired.Hours, rep.Aired.ReceiverHours = round2(hours.Hours()), round2(receiverHours.Hours())
	rep.Aired.ByCategory = buckets(byCat, []string{loa.CategoryProgramme, loa.CategoryManual, loa.CategoryAlert, loa.CategoryLive,
		loa.CategoryRelay, loa.CategoryFallback})
	rep.Aired.ByBand = buckets(byBand, []string{loa.BandEmergency, loa.BandPriority, loa.BandNormal, loa.BandBackground})
}

// buckets lists m's buckets in order, then any other key by name.
func buckets(m map[string]*loa.ReportBucket, order []string) []loa.ReportBucket {
	out := []loa.ReportBucket{}
	for _, k := range order {
		if b := m[k]; b != nil {
			b.Hours = round2(b.Hours)
			out = append(out, *b)
			delete(m, k)
		}
	}
	rest := make([]string, 0, len(m))
	for k := range m {
		rest = append(rest, k)
	}
	slices.Sort(rest)
	for _, k := range rest {
		m[k].Hours = round2(m[k].Hours)
		out = append(out, *m[k])
	}
	return out
}

func (h *history) contentName(ids ...string) string {
	for _, id := range ids {
		if id != "" {
			return cmp.Or(h.content[id], id)
		}
	}
	return ""
}

// missedOccurrences adds the schedule occurrences the play log says never started.
func (h *history) missedOccurrences(rep *loa.BroadcastReport, area *loa.Area) {
	for _, e := range h.missed { // newest first
		if !slices.ContainsFunc(e.Areas, func(a string) bool { return h.tree.Within(a, area.ID) }) &&
			!slices.ContainsFunc(e.Devices, func(d string) bool { return h.deviceWithin(d, area.ID) }) {
			continue
		}
		rep.Missed.Occurrences++
		rep.Missed.List = append(rep.Missed.List, loa.ReportProgramme{At: cmp.Or(e.Occurrence, e.At).UTC(), Schedule: e.ScheduleID,
			Category: loa.CategoryProgramme, Content: h.contentName(e.Content.MediaID, e.Content.PlaylistID), Why: loa.PlayMissed})
	}
	rep.Missed.Total = rep.Missed.Occurrences + rep.Missed.NotAired
	slices.SortStableFunc(rep.Missed.List, func(a, b loa.ReportProgramme) int { return a.At.Compare(b.At) })
}

func (h *history) deviceWithin(id, area string) bool {
	a, ok := h.deviceArea[id]
	return ok && h.tree.Within(a, area)
}

// alertDelivery counts the alerts' delivery lines of the area's receivers
// (by the area each line was sent to).
func (h *history) alertDelivery(rep *loa.BroadcastReport, area *loa.Area) {
	rep.Alerts.List = []loa.ReportAlert{}
	for _, a := range h.alerts {
		ra := loa.ReportAlert{ID: a.ID, Title: a.Title, Level: a.Level, Test: a.Test, At: a.CreatedAt.UTC()}
		for _, d := range a.Report {
			if !h.tree.Within(d.Area, area.ID) {
				continue
			}
			ra.Receivers++
			if d.State == loa.DeliveryFinished {
				ra.Delivered++
			}
		}
		if ra.Receivers == 0 {
			continue
		}
		ra.RatePct = pct(float64(ra.Delivered), float64(ra.Receivers))
		rep.Alerts.Count++
		rep.Alerts.Receivers += ra.Receivers
		rep.Alerts.Delivered += ra.Delivered
		rep.Alerts.List = append(rep.Alerts.List, ra)
	}
	slices.SortFunc(rep.Alerts.List, func(a, b loa.ReportAlert) int { return a.At.Compare(b.At) })
	rep.Alerts.RatePct = pct(float64(rep.Alerts.Delivered), float64(rep.Alerts.Receivers))
}

// availability sums hours online (health records) over hours in service.
func (h *history) availability(rep *loa.BroadcastReport, devices []*loa.Device) {
	av := &rep.Availability
	av.Since = h.since.UTC()
	av.Receivers, av.Villages = []loa.ReportReceiverAvail{}, []loa.ReportVillageAvail{}
	villages := map[string]*loa.ReportVillageAvail{}
	var online, expected float64
	for _, d := range devices {
		var secs float64
		for _, hh := range h.health[d.ID] {
			if !hh.Hour.Before(h.since) && hh.Hour.Before(h.until()) {
				secs += hh.OnlineSeconds
			}
		}
		on, exp := secs/3600, h.serviceHours(d)
		on = min(on, exp)
		av.Receivers = append(av.Receivers, loa.ReportReceiverAvail{Device: d.ID, Name: d.Name, Area: d.AreaID,
			HoursOnline: round2(on), HoursExpected: round2(exp), Pct: pct(on, exp)})
		v := villages[d.AreaID]
		if v == nil {
			name := d.AreaID
			if a := h.tree[d.AreaID]; a != nil {
				name = a.Name
			}
			v = &loa.ReportVillageAvail{Area: d.AreaID, Name: name}
			villages[d.AreaID] = v
		}
		v.Receivers++
		v.HoursOnline += on
		v.HoursExpected += exp
		online, expected = online+on, expected+exp
	}
	for _, v := range villages {
		v.Pct = pct(v.HoursOnline, v.HoursExpected)
		v.HoursOnline, v.HoursExpected = round2(v.HoursOnline), round2(v.HoursExpected)
		av.Villages = append(av.Villages, *v)
	}
	slices.SortFunc(av.Villages, func(a, b loa.ReportVillageAvail) int { return cmp.Compare(a.Area, b.Area) })
	av.Pct, av.HoursOnline, av.HoursExpected = pct(online, expected), round2(online), round2(expected)
}

// alarmRepairs counts the receivers' alarms raised in the period (by the
// area the device was in when raised) and their mean time to repair.
func (h *history) alarmRepairs(rep *loa.BroadcastReport, area *loa.Area) {
	al := &rep.Alarms
	kinds := map[string]*loa.ReportAlarmKind{}
	kindTime := map[string]time.Duration{}
	var total time.Duration
	for _, a := range h.alarms {
		if !h.tree.Within(a.Area, area.ID) {
			continue
		}
		k := kinds[a.Kind]
		if k == nil {
			k = &loa.ReportAlarmKind{Kind: a.Kind}
			kinds[a.Kind] = k
		}
		al.Raised++
		k.Raised++
		if !a.Active() && a.ClearedAt.Before(h.end) {
			al.Repaired++
			k.Repaired++
			total += a.ClearedAt.Sub(a.RaisedAt)
			kindTime[a.Kind] += a.ClearedAt.Sub(a.RaisedAt)
		}
	}
	al.Open = al.Raised - al.Repaired
	al.MTTRMinutes = mean(total, al.Repaired)
	al.ByKind = []loa.ReportAlarmKind{}
	for kind, k := range kinds {
		k.MTTRMinutes = mean(kindTime[kind], k.Repaired)
		al.ByKind = append(al.ByKind, *k)
	}
	slices.SortFunc(al.ByKind, func(a, b loa.ReportAlarmKind) int { return cmp.Compare(a.Kind, b.Kind) })
}

// data estimates each receiver's audio data from the packets it counted.
func (h *history) data(rep *loa.BroadcastReport, devices []*loa.Device) {
	rep.Data = loa.ReportData{Estimated: true, Receivers: []loa.ReportReceiverData{}}
	for _, d := range devices {
		rd := loa.ReportReceiverData{Device: d.ID, Name: d.Name, SRTP: h.srtp[d.ID]}
		for _, hh := range h.health[d.ID] {
			rd.Packets += hh.Received
		}
		per := uint64(loa.ReportPacketBytes)
		if rd.SRTP {
			per = loa.ReportPacketBytesSRTP
		}
		rd.Bytes = rd.Packets * per
		rep.Data.Bytes += rd.Bytes
		rep.Data.Receivers = append(rep.Data.Receivers, rd)
	}
}

// pct is part of whole in %, to 0.1; -1 when whole is 0.
func pct(part, whole float64) float64 {
	if whole <= 0 {
		return -1
	}
	return math.Round(part/whole*1000) / 10
}

// mean is the mean of n durations summing to total, in minutes to 0.1; -1 for none.
func mean(total time.Duration, n int) float64 {
	if n == 0 {
		return -1
	}
	return math.Round(total.Minutes()/float64(n)*10) / 10
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }
