// Package scheduler turns schedules into fire times and fires them.
//
// The computation is pure: a Rule (once, daily, weekly, monthly, every N
// days or weeks, in an IANA zone, default Asia/Ho_Chi_Minh) yields local
// dates and times; Exceptions skip dates, whole holiday Calendars, or
// replace one date's content or time; a Schedule adds content, targets and
// priority, and Agenda lists what a station plays in a window.
//
// The Scheduler is the firing loop: it sleeps on a timer until the next
// occurrence, hands it to a Starter, and never fires the same (schedule,
// At) twice. Starts missed while the controller was down are played late
// within a grace window or reported as missed, never dropped silently.
// The package does no network I/O.
package scheduler
