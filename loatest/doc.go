// Package loatest is the shared test kit: a real MQTT broker on loopback,
// a receiver played by a raw MQTT client, the external programs the
// interop tests drive (Chromium, Mosquitto), free ports, and one polling
// helper. Only _test.go files import it (the layout test checks), and it
// imports no package that tests it, so any package's internal tests can
// use it: not daemon, devices, broker or firmware-sim.
package loatest

import "time"

// Wait bounds every wait in the kit so a bug fails a test instead of
// hanging it. Nothing asserts on elapsed time.
const Wait = time.Minute
