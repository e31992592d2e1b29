package api

import (
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

// coarsen folds hours into steps: sums, extremes, the sample-weighted
// mean, the last volume; hours without samples add online time only.
func TestHealthCoarsen(t *testing.T) {
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	hours := []loa.HealthHour{
		{Hour: day.Add(4 * time.Hour), Samples: 10, OnlineSeconds: 3600, RSSIMin: -90, RSSIAvg: -80, RSSIMax: -70, TempMaxC: 40, VolumeLast: 60, Received: 100, Lost: 1, JitterMaxMs: 3},
		{Hour: day.Add(5 * time.Hour), Samples: 30, OnlineSeconds: 1800, RSSIMin: -85, RSSIAvg: -60, RSSIMax: -50, TempMaxC: 45, VolumeLast: 70, Received: 50, Lost: 4, JitterMaxMs: 2},
		{Hour: day.Add(6 * time.Hour), OnlineSeconds: 600},
		{Hour: day.Add(30 * time.Hour), Samples: 1, OnlineSeconds: 60, RSSIMin: -99, RSSIAvg: -99, RSSIMax: -99, VolumeLast: 10},
	}
	six := coarsen(hours, 6*time.Hour)
	if len(six) != 3 || !six[0].Hour.Equal(day) || !six[1].Hour.Equal(day.Add(6*time.Hour)) || !six[2].Hour.Equal(day.Add(30*time.Hour)) {
		t.Fatalf("6h steps %+v", six)
	}
	a := six[0]
	if a.Samples != 40 || a.OnlineSeconds != 5400 || a.RSSIMin != -90 || a.RSSIMax != -50 || a.RSSIAvg != -65 ||
		a.TempMaxC != 45 || a.VolumeLast != 70 || a.Received != 150 || a.Lost != 5 || a.JitterMaxMs != 3 {
		t.Errorf("first 6h step %+v", a)
	}
	days := coarsen(hours, 24*time.Hour)
	if len(days) != 2 || days[0].OnlineSeconds != 6000 || days[0].Samples != 40 || days[1].RSSIAvg != -99 {
		t.Errorf("1d steps %+v", days)
	}
	if got := coarsen(hours, time.Hour); len(got) != 4 {
		t.Errorf("1h steps %+v", got)
	}
}
