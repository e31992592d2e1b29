package daemon

import (
	"context"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/loatest"
)

// Two controllers of the same binary: a province serving HTTPS (which asks
// for client certificates) and a national one (-national). The province
// binds the national certificate to a token; a national alert reaches the
// province's real alert service and its report comes back.
func TestNationalPushesToAProvince(t *testing.T) {
	ctx := context.Background()
	pcfg := testConfig(t)
	pcfg.TLS.HTTPSAddr = "127.0.0.1:0"
	prov := openMain(t, pcfg)
	defer prov.Close()
	pc := api.NewClient(prov.URL(), prov.AdminToken)
	if err := pc.CreateArea(ctx, loa.Area{ID: "qn", Name: "Tỉnh Quảng Ngãi", Kind: loa.AreaProvince, Code: "51"}); err != nil {
		t.Fatal(err)
	}
	if err := pc.CreateArea(ctx, loa.Area{ID: "bc", ParentID: "qn", Name: "Xã Bình Chương", Kind: loa.AreaCommune}); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.CreateDevice(ctx, loa.Device{ID: "bc-1", AreaID: "bc", Name: "bc-1"}); err != nil {
		t.Fatal(err)
	}

	ncfg := testConfig(t)
	ncfg.National, ncfg.CAPSender = true, "canhbao.gov.vn"
	nat := openMain(t, ncfg)
	defer nat.Close()
	nc := api.NewClient(nat.URL(), nat.AdminToken)
	var id loa.NationalIdentity
	if err := nc.JSON(ctx, "GET", "/api/v1/national/identity", nil, &id); err != nil {
		t.Fatal(err)
	}
	if id.Sender != "canhbao.gov.vn" || len(id.CertSHA256) != 64 {
		t.Fatalf("identity %+v", id)
	}
	if err := pc.JSON(ctx, "POST", "/api/v1/tokens", map[string]any{"name": "Trung ương", "role": "province", "area_id": "qn",
		"cap_senders": []string{id.Sender}, "client_cert_sha256": id.CertSHA256}, nil); err != nil {
		t.Fatal(err)
	}
	if err := nc.JSON(ctx, "POST", "/api/v1/national/provinces", map[string]any{"id": "qn", "name": "Quảng Ngãi", "code": "51",
		"url": prov.HTTPSURL(), "ca_pem": string(prov.CACertPEM())}, nil); err != nil {
		t.Fatal(err)
	}
	var a loa.NationalAlert
	if err := nc.JSON(ctx, "POST", "/api/v1/national/alerts", map[string]any{"title": "Bão số 9", "level": loa.AlertPriority,
		"text": "Bão số 9.", "expires_at": time.Now().Add(5 * time.Minute).Format(time.RFC3339)}, &a); err != nil {
		t.Fatal(err)
	}
	loatest.Eventually(t, 15*time.Second, func() bool {
		if err := nc.JSON(ctx, "GET", "/api/v1/national/alerts/"+a.ID, nil, &a); err != nil {
			t.Fatal(err)
		}
		return a.Provinces[0].State == loa.PushDelivered && a.Provinces[0].Totals.Receivers == 1
	}, "the alert delivered to the province with its one receiver")
	var pa loa.Alert
	if err := pc.JSON(ctx, "GET", "/api/v1/alerts/"+a.Provinces[0].AlertID, nil, &pa); err != nil {
		t.Fatal(err)
	}
	if pa.CAP == nil || pa.CAP.Sender != "canhbao.gov.vn" || len(pa.Report) != 1 {
		t.Fatalf("the province's alert %+v", pa)
	}
	if err := pc.JSON(ctx, "POST", "/api/v1/alerts/"+pa.ID+"/cancel", map[string]any{"reason": "test"}, nil); err != nil {
		t.Fatal(err)
	}
}
