package devices

import "github.com/loa-broadcast/loa/protocol"

// SetFence makes every command sent from now on carry fc in its envelope,
// to the devices that announce protocol.CapFence (others get none, as
// contract v1 has no such field): a receiver refuses a command of a lower
// fence than it has seen, so a controller deposed by a newer leader cannot
// stop, mute or reconfigure it (CONTRACT.md, play, Fence). A cluster's
// leader sets its fence (generation, Raft term) when it takes office; the
// zero fence sends none.
func (f *Fleet) SetFence(fc protocol.Fence) {
	if fc == (protocol.Fence{}) {
		f.fence.Store(nil)
		return
	}
	f.fence.Store(&fc)
}

// fenceFor is the fence a command to device id carries: nil without one
// set, or when the device does not announce fence.
func (f *Fleet) fenceFor(id string) *protocol.Fence {
	fc := f.fence.Load()
	if fc == nil || !f.HasCap(id, protocol.CapFence) {
		return nil
	}
	return fc
}
