// Package scheduler turns schedules into fire times and fires them.
//
// The schedule vocabulary is the root package's: loa.Rule, loa.Exceptions,
// loa.Calendar(s), loa.Schedule and loa.Occurrence. This package gives it
// meaning. The computation is pure: a rule (once, daily, weekly, monthly,
// every N days or weeks, in an IANA zone, default loa.DefaultZone,
// Asia/Ho_Chi_Minh) yields local dates and times (NextRule,
// RuleOccurrences); exceptions skip dates, whole holiday calendars, or
// replace one date's content or time; a schedule adds content, targets and
// priority (Next, Occurrences), and Agenda lists what a station plays in
// a window. ValidateRule, ValidateExceptions, ValidateCalendar(s),
// CheckCalendars and Validate report what is wrong as loa EINVALID errors
// naming the field.
//
// The Scheduler is the firing loop: it sleeps on a timer until the next
// occurrence, hands it to a Starter, and never fires the same (schedule,
// At) twice. Starts missed while the controller was down are played late
// within a grace window or reported as missed, never dropped silently.
// It reads the wall clock through a Clock and compares its advance with
// the monotonic clock's: a divergence above StepThreshold (2 s) is a
// wall-clock step, logged and told to OnStep. Back: the cursor is
// re-anchored at the new wall time, so nothing waits silently for the
// clock to catch up or fires early on a reload, and nothing fires twice
// (per-run memory; the Starter's record across restarts). Forward: the
// skipped occurrences are played late within the grace or reported
// missed. A saved position ahead of the wall clock at Run is a step back
// that happened while the controller was down.
// The package does no network I/O.
package scheduler
