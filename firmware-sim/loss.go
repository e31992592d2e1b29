package firmwaresim

import "math"

// SetLoss drops each incoming RTP packet with probability p (0..1) from
// now on, in the playing session too, on top of Config.Impair.Loss: a loss
// burst on the receiver's link (`loa bench chaos`). SetLoss(0) ends it.
func (r *Receiver) SetLoss(p float64) { r.burstLoss.Store(math.Float64bits(min(max(p, 0), 1))) }

// loss is the probability of dropping an incoming RTP packet now.
func (s *session) loss() float64 {
	return max(s.impair.Loss, math.Float64frombits(s.r.burstLoss.Load()))
}
