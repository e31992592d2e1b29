package station

import (
	"context"

	"github.com/loa-broadcast/loa"
)

// RolloutStarter plans a rollout's waves over devices, persists it and
// starts sending (devices.RolloutEngine).
type RolloutStarter interface {
	Start(ctx context.Context, r *loa.Rollout, devices []string) error
}

// RolloutController changes the course of a stored rollout
// (devices.RolloutEngine).
type RolloutController interface {
	Pause(ctx context.Context, id, reason string) (*loa.Rollout, error)
	Resume(ctx context.Context, id string) (*loa.Rollout, error)
	Abort(ctx context.Context, id, reason string) (*loa.Rollout, error)
}

// RolloutReader returns rollouts as they are now, with the progress of
// running ones that is not stored yet (devices.RolloutEngine).
type RolloutReader interface {
	Get(ctx context.Context, id string) (*loa.Rollout, error)
	List(ctx context.Context) ([]*loa.Rollout, error)
}

// RolloutEngine runs firmware rollouts in waves; its Open and Close are
// the wiring's.
type RolloutEngine interface {
	RolloutStarter
	RolloutController
	RolloutReader
}

// StartRollout checks the image and resolves the targets, then hands the
// rollout to the engine. r comes validated from the API (Normalize, then
// explicit values).
func (s *FirmwareService) StartRollout(ctx context.Context, r *loa.Rollout) error {
	if err := r.Validate(); err != nil {
		return err
	}
	if _, err := s.FirmwareArgs(ctx, r.ImageID); err != nil {
		return err
	}
	ids, err := s.resolve(ctx, r.Targets)
	if err != nil {
		return err
	}
	return s.engine.Start(ctx, r, ids)
}

func (s *FirmwareService) PauseRollout(ctx context.Context, id, reason string) (*loa.Rollout, error) {
	return s.engine.Pause(ctx, id, reason)
}

func (s *FirmwareService) ResumeRollout(ctx context.Context, id string) (*loa.Rollout, error) {
	return s.engine.Resume(ctx, id)
}

func (s *FirmwareService) AbortRollout(ctx context.Context, id, reason string) (*loa.Rollout, error) {
	return s.engine.Abort(ctx, id, reason)
}

func (s *FirmwareService) Rollout(ctx context.Context, id string) (*loa.Rollout, error) {
	return s.engine.Get(ctx, id)
}

func (s *FirmwareService) Rollouts(ctx context.Context) ([]*loa.Rollout, error) {
	return s.engine.List(ctx)
}
