package devices

import (
	"encoding/json"
	"testing"

	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

// With a fence set, commands and group commands to a device that announces
// fence carry it in their envelope; a device that does not gets none, nor
// does anyone before it is set.
func TestCommandsCarryTheFence(t *testing.T) {
	b := loatest.StartBroker(t, "")
	f := openFleet(t, b, Config{})
	v2 := onlineDevice(t, b, f, "dev-2", answerDone)
	v1 := onlineDevice(t, b, f, "dev-1", answerDone)
	v2.Publish(protocol.KindStatus, protocol.Status{Online: true, Boot: 1, Caps: []string{protocol.CapSRTPGCM, protocol.CapFence}}, true)
	loatest.Eventually(t, waitLimit, func() bool { return f.HasCap("dev-2", protocol.CapFence) }, "dev-2 announces fence")

	volume := json.RawMessage(`{"level":50}`)
	send := func(d *loatest.Device) protocol.Command {
		t.Helper()
		if _, err := f.Command(testCtx(t), d.ID(), protocol.OpVolume, volume); err != nil {
			t.Fatal(err)
		}
		return <-d.Commands()
	}
	if c := send(v2); c.Fence != nil {
		t.Errorf("a command before SetFence carries %+v", *c.Fence)
	}
	fc := protocol.Fence{Gen: 2, Term: 7}
	f.SetFence(fc)
	if c := send(v2); c.Fence == nil || *c.Fence != fc {
		t.Errorf("command to a fence device carries %v, want %+v", c.Fence, fc)
	}
	if c := send(v1); c.Fence != nil {
		t.Errorf("command to a v1 device carries a fence %+v", *c.Fence)
	}
	g, err := f.PrepareGroup(protocol.OpVolume, volume, []string{"dev-1", "dev-2"}, waitLimit)
	if err != nil {
		t.Fatal(err)
	}
	g.Run(testCtx(t))
	if c := <-v2.Commands(); c.Fence == nil || *c.Fence != fc {
		t.Errorf("group command to a fence device carries %v, want %+v", c.Fence, fc)
	}
	if c := <-v1.Commands(); c.Fence != nil {
		t.Errorf("group command to a v1 device carries a fence %+v", *c.Fence)
	}
	f.SetFence(protocol.Fence{})
	if c := send(v2); c.Fence != nil {
		t.Errorf("a command after clearing the fence carries %+v", *c.Fence)
	}
}
