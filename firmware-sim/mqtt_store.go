package firmwaresim

import (
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// cleanStore is a paho Store that keeps nothing. A receiver connects with
// a clean session, whose in-flight messages MQTT 3.1.1 discards on both
// sides at a reconnect, so there is nothing to persist. It also keeps
// paho from resending, on every reconnect, packets its outgoing goroutine
// may be writing at that moment (paho's resume sets their DUP flag while
// they are on the wire: a data race in paho 1.5.1).
type cleanStore struct{}

var _ mqtt.Store = cleanStore{}

func (cleanStore) Open()                             {}
func (cleanStore) Put(string, packets.ControlPacket) {}
func (cleanStore) Get(string) packets.ControlPacket  { return nil }
func (cleanStore) All() []string                     { return nil }
func (cleanStore) Del(string)                        {}
func (cleanStore) Close()                            {}
func (cleanStore) Reset()                            {}
