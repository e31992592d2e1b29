package station

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/store"
)

// errGroupStopping is why a group command still running at Close was
// abandoned.
var errGroupStopping = errors.New("the controller stopped before the ack")

// GroupRun is one command on its way to many devices (devices.GroupRun).
type GroupRun interface {
	// Results returns a copy of the results as they are now, sorted by
	// device id.
	Results() []loa.GroupResult
	// Run sends the command and returns the final results once every
	// device has one; when ctx ends, the pending devices become timeout
	// with ctx's cause as the message.
	Run(ctx context.Context) []loa.GroupResult
}

// GroupPreparer validates a group command and settles the devices that
// are not online now as offline (devices.Fleet, through the daemon's
// adapter). timeout bounds the wait for acks and is the command's expiry
// on the devices.
type GroupPreparer interface {
	PrepareGroup(op string, args json.RawMessage, ids []string, timeout time.Duration) (GroupRun, error)
}

// GroupService implements loa.GroupCommandService over the fleet and the
// store. A group command is written when created and once more when
// settled; while it runs its live results come from the fleet.
type GroupService struct {
	db     *store.DB
	fleet  GroupPreparer
	logger *slog.Logger
	now    func() time.Time

	ctx    context.Context // ends the runs; cancelled by Close
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	running map[string]*runningGroup
}

// runningGroup is a group command whose acks are still coming.
type runningGroup struct {
	head loa.GroupCommand // without results
	run  GroupRun
	done chan struct{} // closed once settled and written
}

var _ loa.GroupCommandService = (*GroupService)(nil)

// GroupConfig configures a GroupService.
type GroupConfig struct {
	DB     *store.DB
	Fleet  GroupPreparer
	Now    func() time.Time // default time.Now
	Logger *slog.Logger
}

// OpenGroupService settles the group commands a previous run left running
// and returns the service; Close abandons the ones still running.
func OpenGroupService(ctx context.Context, cfg GroupConfig) (*GroupService, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &GroupService{db: cfg.DB, fleet: cfg.Fleet, logger: cfg.Logger, now: cfg.Now, running: map[string]*runningGroup{}}
	n, err := s.db.SettleInterruptedGroupCommands(ctx, s.now(), errGroupStopping.Error())
	if err != nil {
		return nil, fmt.Errorf("group commands: %w", err)
	}
	if n > 0 {
		s.logger.Warn("settled group commands interrupted by a stop", "count", n)
	}
	s.ctx, s.cancel = context.WithCancelCause(context.Background())
	return s, nil
}

// Close abandons the running group commands (their pending devices become
// timeout), waits until they are written and returns. Close it before the
// fleet.
func (s *GroupService) Close() {
	s.cancel(errGroupStopping)
	s.wg.Wait()
}

// devicesIn returns the ids of the devices in area and its descendants.
func (s *GroupService) devicesIn(ctx context.Context, area string) ([]string, error) {
	if _, err := s.db.Area(ctx, area); err != nil {
		return nil, err
	}
	areas, err := s.db.Areas(ctx)
	if err != nil {
		return nil, err
	}
	all, err := s.db.Devices(ctx)
	if err != nil {
		return nil, err
	}
	return loa.Targets{Areas: []string{area}}.Resolve(loa.NewAreaTree(areas), all)
}

func (s *GroupService) StartGroupCommand(ctx context.Context, g *loa.GroupCommand) error {
	if err := loa.ValidateID("area", g.AreaID); err != nil {
		return err
	}
	timeout := time.Duration(g.TimeoutMs) * time.Millisecond
	if timeout <= 0 {
		timeout = loa.GroupDefaultTimeout
	}
	ids, err := s.devicesIn(ctx, g.AreaID)
	if err != nil {
		return err
	}
	run, err := s.fleet.PrepareGroup(g.Op, g.Args, ids, timeout)
	if err != nil {
		return err
	}
	g.ID = newID()
	g.TimeoutMs = timeout.Milliseconds()
	g.CreatedAt = s.now().UTC()
	g.State = loa.GroupRunning
	g.Results = run.Results()
	g.Count()
	if g.Totals.Pending == 0 {
		g.State, g.SettledAt = loa.GroupDone, g.CreatedAt
	}
	// Written before anything is sent: a crash mid-run leaves a record
	// that the next start settles.
	if err := s.db.PutGroupCommand(ctx, g); err != nil {
		return err
	}
	if g.State == loa.GroupDone {
		return nil
	}
	rg := &runningGroup{head: *g, run: run, done: make(chan struct{})}
	rg.head.Results = nil
	s.mu.Lock()
	s.running[g.ID] = rg
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.finish(rg, run.Run(s.ctx))
	}()
	s.logger.Info("group command sent", "id", g.ID, "area", g.AreaID, "op", g.Op,
		"devices", len(g.Results), "offline", g.Totals.Offline)
	return nil
}

// finish writes the settled group command, then stops serving it live.
func (s *GroupService) finish(rg *runningGroup, results []loa.GroupResult) {
	g := rg.head
	g.Results = results
	g.State, g.SettledAt = loa.GroupDone, s.now().UTC()
	g.Count()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.db.PutGroupCommand(ctx, &g); err != nil {
		// The next start settles the record it left running.
		s.logger.Error("group command result not written", "id", g.ID, "err", err)
	}
	s.logger.Info("group command settled", "id", g.ID, "op", g.Op, "done", g.Totals.Done,
		"failed", g.Totals.Failed, "offline", g.Totals.Offline, "expired", g.Totals.Expired, "timeout", g.Totals.Timeout)
	s.mu.Lock()
	delete(s.running, g.ID)
	s.mu.Unlock()
	close(rg.done)
}

func (s *GroupService) GroupCommand(ctx context.Context, id string) (*loa.GroupCommand, error) {
	s.mu.Lock()
	rg := s.running[id]
	s.mu.Unlock()
	if rg != nil {
		g := rg.head
		g.Results = rg.run.Results()
		g.Count()
		return &g, nil
	}
	return s.db.GroupCommand(ctx, id)
}

func (s *GroupService) WaitGroupCommand(ctx context.Context, id string) (*loa.GroupCommand, error) {
	s.mu.Lock()
	rg := s.running[id]
	s.mu.Unlock()
	if rg != nil {
		select {
		case <-rg.done:
		case <-ctx.Done():
		}
	}
	return s.GroupCommand(context.WithoutCancel(ctx), id)
}
