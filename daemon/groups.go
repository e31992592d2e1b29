package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/devices"
	"github.com/loa-broadcast/loa/store"
)

// errStopping is why a group command still running at Close was abandoned.
var errStopping = errors.New("the controller stopped before the ack")

// groupService implements loa.GroupCommandService over the fleet and the
// store. A group command is written when created and once more when
// settled; while it runs its live results come from the fleet.
type groupService struct {
	db     *store.DB
	fleet  *devices.Fleet
	logger *slog.Logger
	now    func() time.Time

	ctx    context.Context // ends the runs; cancelled by close
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	running map[string]*runningGroup
}

// runningGroup is a group command whose acks are still coming.
type runningGroup struct {
	head loa.GroupCommand // without results
	run  *devices.GroupRun
	done chan struct{} // closed once settled and written
}

var _ loa.GroupCommandService = (*groupService)(nil)

// openGroupService settles the group commands a previous run left running
// and returns the service.
func openGroupService(ctx context.Context, db *store.DB, fleet *devices.Fleet, logger *slog.Logger) (*groupService, error) {
	s := &groupService{db: db, fleet: fleet, logger: logger, now: time.Now, running: map[string]*runningGroup{}}
	n, err := db.SettleInterruptedGroupCommands(ctx, s.now(), errStopping.Error())
	if err != nil {
		return nil, fmt.Errorf("group commands: %w", err)
	}
	if n > 0 {
		logger.Warn("settled group commands interrupted by a stop", "count", n)
	}
	s.ctx, s.cancel = context.WithCancelCause(context.Background())
	return s, nil
}

// close abandons the running group commands (their pending devices become
// timeout), waits until they are written and returns.
func (s *groupService) close() {
	s.cancel(errStopping)
	s.wg.Wait()
}

// devicesIn returns the ids of the devices in area and its descendants.
func (s *groupService) devicesIn(ctx context.Context, area string) ([]string, error) {
	if _, err := s.db.Area(ctx, area); err != nil {
		return nil, err
	}
	areas, err := s.db.Areas(ctx)
	if err != nil {
		return nil, err
	}
	tree := loa.NewAreaTree(areas)
	all, err := s.db.Devices(ctx)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, d := range all {
		if tree.Within(d.AreaID, area) {
			ids = append(ids, d.ID)
		}
	}
	return ids, nil
}

func (s *groupService) StartGroupCommand(ctx context.Context, g *loa.GroupCommand) error {
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
	g.ID = randomHex(8)
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
func (s *groupService) finish(rg *runningGroup, results []loa.GroupResult) {
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

func (s *groupService) GroupCommand(ctx context.Context, id string) (*loa.GroupCommand, error) {
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

func (s *groupService) WaitGroupCommand(ctx context.Context, id string) (*loa.GroupCommand, error) {
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

// groupResult returns the result of device in g.
func groupResult(g *loa.GroupCommand, device string) (loa.GroupResult, bool) {
	i, ok := slices.BinarySearchFunc(g.Results, device, func(r loa.GroupResult, id string) int {
		switch {
		case r.Device < id:
			return -1
		case r.Device > id:
			return 1
		}
		return 0
	})
	if !ok {
		return loa.GroupResult{}, false
	}
	return g.Results[i], true
}
