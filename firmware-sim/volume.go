package firmwaresim

// An emergency session with a volume in its play args plays at that volume
// (and through mute, see silenced); the receiver keeps its own volume and
// restores it when that session ends, however it ends. The restore is the
// receiver's job, so it happens even when the controller is gone.

// overrideVolume applies s's emergency volume, if it has one.
func (r *Receiver) overrideVolume(s *session) {
	if s.args.Priority < EmergencyPriority || s.args.Volume <= 0 || s.args.Volume > 100 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.overrider == nil {
		r.ownVolume = r.volume
	}
	r.overrider = s
	r.volume = s.args.Volume
}

// restoreVolume gives the receiver its own volume back when s, the
// session overriding it, ends.
func (r *Receiver) restoreVolume(s *session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.overrider != s {
		return
	}
	r.overrider = nil
	r.volume = r.ownVolume
}

// setVolume is a volume command: during an override it changes the volume
// restored afterwards, so the alert keeps playing at its level.
func (r *Receiver) setVolume(level int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.overrider != nil {
		r.ownVolume = level
		return
	}
	r.volume = level
}
