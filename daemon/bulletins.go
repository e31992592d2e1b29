package daemon

import (
	"time"

	"github.com/loa-broadcast/loa/media"
	"github.com/loa-broadcast/loa/station"
)

// DefaultBulletinCheckEvery is how often bulletins' tracking is checked
// when Config.BulletinCheckEvery is zero.
const DefaultBulletinCheckEvery = 5 * time.Second

// openBulletins makes the bulletin service and runs its checks: aired
// from delivery lines, expiry, the ưu tiên deadline alarm.
func (m *Main) openBulletins() {
	m.Bulletins = station.NewBulletins(m.DB, m.Media, media.EspeakNG{Voice: "vi"}, m.Sessions, m.Schedules, m.Alarms,
		m.Logger.With("component", "bulletins"))
	every := m.Config.BulletinCheckEvery
	if every <= 0 {
		every = DefaultBulletinCheckEvery
	}
	m.schedWG.Add(1)
	go func() {
		defer m.schedWG.Done()
		m.Bulletins.Run(m.bg, every)
	}()
}
