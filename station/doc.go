// Package station holds the controller's application services: the
// behaviour that composes the store, the audio engine and the fleet
// (sessions, schedule starts, fallbacks, media import, alerts, group
// commands, firmware rollouts, the alarm webhook, credential changes).
//
// It imports only the domain root, store, media, scheduler, cap and
// protocol. What it needs from the engine, the fleet or the broker it
// declares as small interfaces beside the service that uses them; the
// daemon package wires the concrete types in.
package station
