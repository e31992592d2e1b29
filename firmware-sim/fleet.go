package firmwaresim

import (
	"context"
	"errors"
	"math/rand"
	"sync"
	"time"
)

// fleetStartConcurrency bounds simultaneous broker connects, so a fleet of
// thousands does not stampede the broker.
const fleetStartConcurrency = 32

// Fleet is many receivers in one process.
type Fleet struct {
	rs []*Receiver
}

// StartFleet starts a receiver per config, a bounded number at a time. It
// returns when all started, or on the first error after closing the ones
// that did.
func StartFleet(ctx context.Context, cfgs []Config) (*Fleet, error) {
	return startFleet(ctx, cfgs, 0, fleetStartConcurrency)
}

// StartFleetRamped is StartFleet at about perSecond starts a second, each
// at a random moment within its slot, like receivers coming back after an
// outage with jittered backoff, so thousands do not hit the broker at once.
func StartFleetRamped(ctx context.Context, cfgs []Config, perSecond float64) (*Fleet, error) {
	if perSecond <= 0 {
		return StartFleet(ctx, cfgs)
	}
	// Enough in flight that the rate, not a slow connect, sets the pace.
	return startFleet(ctx, cfgs, time.Duration(float64(time.Second)/perSecond), 8*fleetStartConcurrency)
}

// startFleet starts receiver i no earlier than i·slot (plus jitter within
// the slot) after the call, with at most inFlight starting at once.
func startFleet(ctx context.Context, cfgs []Config, slot time.Duration, inFlight int) (*Fleet, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rs := make([]*Receiver, len(cfgs))
	ok := make([]bool, len(cfgs))
	sem := make(chan struct{}, inFlight)
	t0 := time.Now()
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for i, cfg := range cfgs {
		rs[i] = NewReceiver(cfg)
		if slot > 0 {
			at := t0.Add(time.Duration(i)*slot + time.Duration(rand.Int63n(int64(slot))))
			select {
			case <-time.After(time.Until(at)):
			case <-ctx.Done():
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := rs[i].Start(ctx); err != nil {
				errOnce.Do(func() { firstErr = err; cancel() })
				return
			}
			ok[i] = true
		}()
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		for i, r := range rs {
			if ok[i] {
				r.Close()
			}
		}
		return nil, firstErr
	}
	return &Fleet{rs: rs}, nil
}

// Receivers returns the fleet's receivers, in config order.
func (f *Fleet) Receivers() []*Receiver { return f.rs }

// Close closes every receiver gracefully, concurrently.
func (f *Fleet) Close() error {
	errs := make([]error, len(f.rs))
	sem := make(chan struct{}, fleetStartConcurrency*4)
	var wg sync.WaitGroup
	for i, r := range f.rs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = r.Close()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Summary totals one session over a fleet.
type Summary struct {
	Receivers       int    `json:"receivers"` // receivers that started the session
	Played          int    `json:"played"`    // of those, receivers that played ≥1 frame from its own packet (decoded or verified)
	Decoding        int    `json:"decoding"`  // of those, receivers that decode
	FramesExpected  uint64 `json:"frames_expected"`
	FramesPlayed    uint64 `json:"frames_played"`
	FramesDecoded   uint64 `json:"frames_decoded"`
	FramesConcealed uint64 `json:"frames_concealed"`
	FramesSilence   uint64 `json:"frames_silence"` // played silent after a gap outlasted the concealment bound
	FECRecovered    uint64 `json:"fec_recovered"`
	Lost            uint64 `json:"lost"`
	AuthFailures    uint64 `json:"auth_failures"` // datagrams dropped unplayed: wrong source, failed SRTP authentication, replays
}

// Summary totals the latest play of sessionID on every receiver.
func (f *Fleet) Summary(sessionID string) Summary {
	var sum Summary
	for _, r := range f.rs {
		st, ok := r.Session(sessionID)
		if !ok {
			continue
		}
		sum.Receivers++
		if r.cfg.Decode {
			sum.Decoding++
		}
		if st.FromPacket() > 0 {
			sum.Played++
		}
		sum.FramesExpected += uint64(st.Expected)
		sum.FramesPlayed += st.Played
		sum.FramesDecoded += st.Decoded
		sum.FramesConcealed += st.Concealed
		sum.FramesSilence += st.Silence
		sum.FECRecovered += st.FECRecovered
		sum.Lost += st.Lost
		sum.AuthFailures += st.AuthFailures
	}
	return sum
}
