package devices

import (
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// copyingStore is paho's memory store whose Get hands out a copy of a
// stored PUBLISH. On reconnect paho's resume sets Dup on what Get returns
// while its new writer may still be packing the same packet, queued
// before the link dropped: a data race in paho 1.5.1 that the race
// detector caught in TestGroupRunWaitsOutBrokerOutage. The copy shares
// only the payload, which nobody writes.
type copyingStore struct{ *mqtt.MemoryStore }

func newCopyingStore() copyingStore { return copyingStore{mqtt.NewMemoryStore()} }

func (s copyingStore) Get(key string) packets.ControlPacket {
	p := s.MemoryStore.Get(key)
	if pub, ok := p.(*packets.PublishPacket); ok {
		c := *pub
		return &c
	}
	return p
}
