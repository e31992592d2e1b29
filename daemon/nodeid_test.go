package daemon

import (
	"testing"

	"github.com/loa-broadcast/loa/loatest"
)

// On a broker the nodes share, the controller connects as
// <mqtt-user>-<node-id>: one client id per node.
func TestControllerClientIDNamesTheNode(t *testing.T) {
	b := loatest.StartBroker(t, "")
	cfg := testConfig(t)
	cfg.MQTTURL, cfg.MQTTUser, cfg.MQTTPass, cfg.NodeID = b.URL(), "loa-controller", "pw", "node-2"
	m := openMain(t, cfg)
	defer m.Close()
	if _, ok := b.Server().Clients.Get("loa-controller-node-2"); !ok {
		var ids []string
		for _, cl := range b.Server().Clients.GetAll() {
			ids = append(ids, cl.ID)
		}
		t.Errorf("broker clients %v, want loa-controller-node-2", ids)
	}
}
