package api

import (
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

var alertNow = time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)

func TestParseAlertRequest(t *testing.T) {
	a, err := parseAlertRequest(strings.NewReader(`{"title":" Bão số 9 ","level":"khan_cap","content":{"media_id":"m1","tone":true},
		"targets":{"areas":["xa-a"],"devices":["dev-b1"]},"repeats":3,"gap":"5s","volume":85,"expires_in":"2h"}`), alertNow)
	if err != nil {
		t.Fatal(err)
	}
	if a.Title != "Bão số 9" || a.Repeats != 3 || a.Gap != 5*time.Second || a.Volume != 85 || !a.Content.Tone ||
		!a.ExpiresAt.Equal(alertNow.Add(2*time.Hour)) || len(a.Targets.Areas) != 1 || len(a.Targets.Devices) != 1 {
		t.Errorf("parsed %+v", a)
	}
	a, err = parseAlertRequest(strings.NewReader(`{"level":"uu_tien","content":{"text":"Thông báo"},"targets":{"areas":["hn"]}}`), alertNow)
	if err != nil || !a.ExpiresAt.Equal(alertNow.Add(DefaultAlertExpiry)) || a.Repeats != 1 || a.Volume != 0 {
		t.Errorf("defaults: %+v, %v", a, err)
	}
	for body, field := range map[string]string{
		`{"level":"khan_cap","content":{"media_id":"m1"},"targets":{"areas":["a"]},"expires_at":"tomorrow"}`:                               "expires_at",
		`{"level":"khan_cap","content":{"media_id":"m1"},"targets":{"areas":["a"]},"expires_at":"2026-11-26T07:00:00Z"}`:                   "expires_at",
		`{"level":"khan_cap","content":{"media_id":"m1"},"targets":{"areas":["a"]},"expires_in":"1h","expires_at":"2027-01-01T00:00:00Z"}`: "expires_at, expires_in",
		`{"level":"khan_cap","content":{"media_id":"m1"},"targets":{"areas":["a"]},"expires_in":"0s"}`:                                     "expires_in",
		`{"level":"khan_cap","content":{"media_id":"m1"},"targets":{"areas":["a"]},"gap":"soon"}`:                                          "gap",
		`{"level":"khan_cap","content":{"media_id":"m1"},"targets":{"areas":["a"]},"gap":"-1s"}`:                                           "gap",
		`{"level":"khan_cap","content":{"media_id":"m1"},"targets":{}}`:                                                                    "targets",
		`{"level":"khan_cap","content":{"media_id":"m1","text":"x"},"targets":{"areas":["a"]}}`:                                            "content",
		`{"level":"khan_cap","content":{"media_id":"m1"},"targets":{"areas":["a"]},"repeats":0.5}`:                                         "repeats",
		`[]`: "body",
		``:   "body",
	} {
		_, err := parseAlertRequest(strings.NewReader(body), alertNow)
		if loa.ErrorCode(err) != loa.EINVALID || !strings.Contains(loa.ErrorMessage(err), field) {
			t.Errorf("%s: got %v, want EINVALID naming %q", body, err, field)
		}
	}
}

// FuzzParseAlertRequest: any body is either refused as EINVALID or
// becomes an alert that passes validation, expires in the future within
// the limit, and names its targets.
func FuzzParseAlertRequest(f *testing.F) {
	for _, s := range []string{
		`{"level":"khan_cap","content":{"media_id":"m1","tone":true},"targets":{"areas":["a"]},"repeats":2,"gap":"3s","volume":90,"expires_in":"1h"}`,
		`{"level":"uu_tien","content":{"text":"Cảnh báo lũ quét"},"targets":{"devices":["rx-1"]},"expires_at":"2026-11-26T18:00:00+07:00","test":true}`,
		`{"level":"khan_cap","content":{},"targets":{}}`,
		`{"gap":"1e9h"}`, `{"expires_in":"-1ns"}`, `null`, `{"repeats":1e99}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		a, err := parseAlertRequest(strings.NewReader(body), alertNow)
		if err != nil {
			if loa.ErrorCode(err) != loa.EINVALID {
				t.Fatalf("error %v is not EINVALID", err)
			}
			return
		}
		if err := a.Validate(alertNow); err != nil {
			t.Fatalf("accepted an invalid alert: %v", err)
		}
		if !a.ExpiresAt.After(alertNow) || a.ExpiresAt.Sub(alertNow) > loa.MaxAlertExpiry || a.Targets.Empty() {
			t.Fatalf("accepted %+v", a)
		}
	})
}

func TestAlertViewTotalsRollUp(t *testing.T) {
	tree := loa.NewAreaTree([]*loa.Area{
		{ID: "p", Kind: loa.AreaProvince}, {ID: "a", ParentID: "p", Kind: loa.AreaCommune}, {ID: "b", ParentID: "p", Kind: loa.AreaCommune},
		{ID: "a1", ParentID: "a", Kind: loa.AreaCluster},
	})
	a := &loa.Alert{Report: []loa.Delivery{
		{Device: "1", Area: "a1", State: loa.DeliveryFinished},
		{Device: "2", Area: "a1", State: loa.DeliveryFailed, Reason: loa.ReasonOffline},
		{Device: "3", Area: "b", State: loa.DeliveryStarted, Late: true},
		{Device: "4", Area: "b", State: loa.DeliveryQueued},
	}}
	v := newAlertView(a, tree)
	want := map[string]loa.AlertTotals{
		"a1": {Receivers: 2, Finished: 1, Failed: 1},
		"a":  {Receivers: 2, Finished: 1, Failed: 1},
		"b":  {Receivers: 2, Started: 1, Queued: 1, Late: 1},
		"p":  {Receivers: 4, Finished: 1, Failed: 1, Started: 1, Queued: 1, Late: 1},
	}
	for id, w := range want {
		if got := v.Totals.Areas[id]; got != w {
			t.Errorf("area %s: %+v, want %+v", id, got, w)
		}
	}
	if v.Totals.All != want["p"] || len(v.Totals.Areas) != len(want) {
		t.Errorf("all %+v, areas %v", v.Totals.All, v.Totals.Areas)
	}
}
