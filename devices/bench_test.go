package devices

import (
	"fmt"
	"testing"

	"github.com/loa-broadcast/loa/protocol"
)

// BenchmarkHandleTelemetry measures the per-message cost of the hot path
// with a province-sized fleet.
func BenchmarkHandleTelemetry(b *testing.B) {
	f := linkedFleet(Config{States: &recordingWriter{}})
	const n = 5000
	topics := make([]string, n)
	for i := range topics {
		topics[i] = protocol.DeviceTopic(fmt.Sprintf("dev-%d", i), protocol.KindTele)
		f.handle(protocol.DeviceTopic(fmt.Sprintf("dev-%d", i), protocol.KindStatus), []byte(`{"online":true,"boot":1,"ts":1}`), true)
	}
	payload := []byte(`{"ts":1,"rssi":-70,"net":"4g","volume":60,"muted":false,"temp":40.5,"uptime":100,"fw":"1.0.0","stream":{"received":1000,"lost":2,"late":0,"concealed":0,"fec_recovered":0,"played":998,"decoded":998,"jitter_ms":3.5}}`)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		f.handle(topics[i%n], payload, false)
		if i%n == n-1 {
			f.mu.Lock()
			for _, d := range f.dirty {
				d.dirty = false
			}
			f.dirty = f.dirty[:0]
			f.mu.Unlock()
		}
	}
}

// BenchmarkHandleStatusEcho is the cheapest valid message: a repeated
// online status.
func BenchmarkHandleStatusEcho(b *testing.B) {
	f := linkedFleet(Config{})
	topic := protocol.DeviceTopic("dev-1", protocol.KindStatus)
	payload := []byte(`{"online":true,"boot":1,"ts":1}`)
	b.ReportAllocs()
	for b.Loop() {
		f.handle(topic, payload, false)
	}
}
