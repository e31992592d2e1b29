package devices

import (
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// TestCopyingStoreHandsOutCopies: marking what Get returned as a
// duplicate (paho's resume does) leaves the stored packet, which paho's
// writer may be sending, untouched.
func TestCopyingStoreHandsOutCopies(t *testing.T) {
	s := newCopyingStore()
	s.Open()
	defer s.Close()
	pub := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	pub.Qos, pub.MessageID, pub.TopicName, pub.Payload = 1, 7, "loa/v1/dev/rx-1/cmd", []byte("{}")
	s.Put("o.7", pub)
	got, ok := s.Get("o.7").(*packets.PublishPacket)
	if !ok {
		t.Fatal("Get did not return the PUBLISH")
	}
	got.Dup = true
	if pub.Dup {
		t.Error("setting Dup on what Get returned changed the stored packet")
	}
	if got.MessageID != 7 || got.TopicName != pub.TopicName || string(got.Payload) != "{}" {
		t.Errorf("the copy differs: %+v", got)
	}
}
