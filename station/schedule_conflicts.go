package station

import (
	"context"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/scheduler"
)

// minOccurrence is how long an occurrence of unknown length is taken to
// last when looking for overlaps.
const minOccurrence = time.Minute

// proposedID stands in for the id of a proposed schedule that has none
// yet: the rule is validated as a whole schedule's.
const proposedID = "proposed"

// Conflicts lists where sc's occurrences in [from, to) overlap another
// enabled schedule's on shared receivers or areas, in time order.
func (s *Schedules) Conflicts(ctx context.Context, sc *loa.Schedule, from, to time.Time) ([]loa.ScheduleConflict, error) {
	p := *sc
	if p.ID == "" {
		p.ID = proposedID
	}
	if err := s.check(ctx, &p); err != nil {
		return nil, err
	}
	all, cals, err := s.load(ctx)
	if err != nil {
		return nil, err
	}
	areas, err := s.db.Areas(ctx)
	if err != nil {
		return nil, err
	}
	devices, err := s.db.Devices(ctx)
	if err != nil {
		return nil, err
	}
	tree := loa.NewAreaTree(areas)
	mine := scheduler.Occurrences(&p, from, to, 0, cals)
	if len(mine) == 0 {
		return nil, nil
	}
	ov := newOverlap(tree, devices, p.Targets)
	lengths := contentLengths{s: s, ctx: ctx, known: map[loa.Content]time.Duration{}}
	var others []*loa.Schedule
	for _, o := range all {
		if o.ID != sc.ID && o.Enabled && ov.with(o.Targets) {
			others = append(others, o)
		}
	}
	// Occurrences of others that start up to a day before the window may
	// still be playing in it.
	theirs := scheduler.Agenda(others, cals, from.Add(-24*time.Hour), to)
	names := make(map[string]string, len(others))
	for _, o := range others {
		names[o.ID] = o.Name
	}
	var out []loa.ScheduleConflict
	for _, m := range mine {
		mEnd := lengths.end(m)
		for _, o := range theirs {
			if !o.At.Before(mEnd) {
				break // sorted by start
			}
			if oEnd := lengths.end(o); oEnd.After(m.At) {
				out = append(out, loa.ScheduleConflict{At: m.At, End: mEnd, ScheduleID: o.ScheduleID, Name: names[o.ScheduleID],
					OtherAt: o.At, OtherEnd: oEnd, Priority: o.Priority, Targets: o.Targets})
			}
		}
	}
	return out, nil
}

// overlap answers whether other targets share a receiver or an area
// (one within the other) with the proposed ones.
type overlap struct {
	tree    loa.AreaTree
	devices []*loa.Device
	areas   []string
	devSet  map[string]bool
}

func newOverlap(tree loa.AreaTree, devices []*loa.Device, t loa.Targets) *overlap {
	ov := &overlap{tree: tree, devices: devices, areas: t.Areas, devSet: map[string]bool{}}
	ids, _ := t.Resolve(tree, devices) // checked already
	for _, id := range ids {
		ov.devSet[id] = true
	}
	return ov
}

func (ov *overlap) with(t loa.Targets) bool {
	for _, a := range t.Areas {
		for _, b := range ov.areas {
			if ov.tree.Within(a, b) || ov.tree.Within(b, a) {
				return true
			}
		}
	}
	ids, _ := t.Resolve(ov.tree, ov.devices) // a target gone since: its known rest still counts
	for _, id := range ids {
		if ov.devSet[id] {
			return true
		}
	}
	return false
}

// contentLengths remembers how long each content plays.
type contentLengths struct {
	s     *Schedules
	ctx   context.Context
	known map[loa.Content]time.Duration
}

// end is when o stops: its rule's end time, else its content's end.
func (l contentLengths) end(o loa.Occurrence) time.Time {
	if !o.End.IsZero() {
		return o.End
	}
	d, ok := l.known[o.Content]
	if !ok {
		d = l.length(o.Content)
		l.known[o.Content] = d
	}
	return o.At.Add(max(d, minOccurrence))
}

func (l contentLengths) length(c loa.Content) time.Duration {
	if c.MediaID != "" {
		if m, err := l.s.db.Media(l.ctx, c.MediaID); err == nil {
			return m.Duration
		}
		return 0
	}
	if c.RelayID != "" {
		if r, err := l.s.db.Relay(l.ctx, c.RelayID); err == nil && r.DurationS > 0 {
			return time.Duration(r.DurationS) * time.Second
		}
		return loa.DefaultStreamMaxDuration
	}
	p, err := l.s.db.Playlist(l.ctx, c.PlaylistID)
	if err != nil {
		return 0
	}
	var d time.Duration
	for _, it := range p.Items {
		if m, err := l.s.db.Media(l.ctx, it.MediaID); err == nil {
			d += m.Duration
		}
		d += it.Gap
	}
	return d
}
