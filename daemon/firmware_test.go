package daemon

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/devices"
	firmwaresim "github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

// fwSystem is a controller configured with an operator firmware key, and
// simulated receivers built with that key (or, per receiver, another).
type fwSystem struct {
	*system
	keyPath string // the operator's secret key file
	rx      map[string]*firmwaresim.Receiver
}

// startFWSystem starts a controller whose -firmware-key is a key pair made
// by "loa firmware keygen", and n receivers rx-000… running 1.0.0 in areas
// a1 and b1, alternately; adjust may change a receiver's config.
func startFWSystem(t *testing.T, n int, adjust func(i int, c *firmwaresim.Config)) *fwSystem {
	t.Helper()
	name := filepath.Join(t.TempDir(), "keys", "operator")
	pub := writeFirmwareKeys(t, name)
	s := startSystem(t, systemOpts{configure: func(c *Config) { c.FirmwareKey = name + ".pub" }})
	ctx := context.Background()
	cfgs := make([]firmwaresim.Config, n)
	for i := range cfgs {
		id, area := fmt.Sprintf("rx-%03d", i), []string{"a1", "b1"}[i%2]
		pw, err := s.api.CreateDevice(ctx, loa.Device{ID: id, AreaID: area, Name: id})
		if err != nil {
			t.Fatalf("provision %s: %v", id, err)
		}
		cfgs[i] = firmwaresim.Config{ID: id, Password: pw, Broker: s.m.MQTTURL(), FirmwareKey: pub,
			TeleInterval: 200 * time.Millisecond, Logger: testLogger(t).With("receiver", id)}
		if adjust != nil {
			adjust(i, &cfgs[i])
		}
	}
	fleet, err := firmwaresim.StartFleet(ctx, cfgs)
	if err != nil {
		t.Fatalf("start receivers: %v", err)
	}
	t.Cleanup(func() { fleet.Close() })
	if err := s.api.WaitOnline(ctx, n, time.Minute); err != nil {
		t.Fatal(err)
	}
	fs := &fwSystem{system: s, keyPath: name + ".key", rx: map[string]*firmwaresim.Receiver{}}
	for _, r := range fleet.Receivers() {
		fs.rx[r.ID()] = r
	}
	return fs
}

// writeFirmwareKeys writes an operator key pair as "loa firmware keygen"
// does (name.key, name.pub) and returns the public key.
func writeFirmwareKeys(t *testing.T, name string) ed25519.PublicKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name+".key", protocol.EncodeFirmwarePrivateKey(priv), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name+".pub", protocol.EncodeFirmwarePublicKey(pub), 0o644); err != nil {
		t.Fatal(err)
	}
	return pub
}

// firmwareManifest is what "loa firmware sign" prints.
type firmwareManifest struct {
	Version string `json:"version"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
	Sig     string `json:"sig"`
}

// sign signs an image as "loa firmware sign" does and returns its manifest.
func (s *fwSystem) sign(version string, image []byte) firmwareManifest {
	s.t.Helper()
	key, err := protocol.ReadFirmwarePrivateKey(s.keyPath)
	if err != nil {
		s.t.Fatal(err)
	}
	sum := sha256.Sum256(image)
	m := firmwareManifest{Version: version, Size: int64(len(image)), SHA256: hex.EncodeToString(sum[:])}
	m.Sig = protocol.SignFirmware(key, m.Version, m.SHA256)
	return m
}

// upload signs and uploads an image.
func (s *fwSystem) upload(version string, image []byte) *loa.FirmwareImage {
	s.t.Helper()
	m := s.sign(version, image)
	img, err := s.api.UploadFirmware(context.Background(), version, m.Sig, image)
	if err != nil {
		s.t.Fatalf("upload %s: %v", version, err)
	}
	if img.SHA256 != m.SHA256 || img.Size != m.Size || img.Version != version {
		s.t.Fatalf("uploaded %+v, signed %+v", img, m)
	}
	return img
}

type rolloutRequest struct {
	ImageID       string      `json:"image_id"`
	Targets       loa.Targets `json:"targets"`
	Waves         []int       `json:"waves,omitempty"`
	FailThreshold float64     `json:"fail_threshold"`
	WaveTimeout   string      `json:"wave_timeout,omitempty"`
}

func (s *fwSystem) startRollout(req rolloutRequest) *loa.Rollout {
	s.t.Helper()
	var ro loa.Rollout
	if err := s.api.JSON(context.Background(), "POST", "/api/v1/rollouts", req, &ro); err != nil {
		s.t.Fatalf("start rollout: %v", err)
	}
	return &ro
}

func (s *fwSystem) rollout(id string) *loa.Rollout {
	s.t.Helper()
	var ro loa.Rollout
	if err := s.api.JSON(context.Background(), "GET", "/api/v1/rollouts/"+id, nil, &ro); err != nil {
		s.t.Fatal(err)
	}
	return &ro
}

// waitRollout polls the API until cond holds.
func (s *fwSystem) waitRollout(id, what string, cond func(*loa.Rollout) bool) *loa.Rollout {
	s.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ro := s.rollout(id)
		if cond(ro) {
			return ro
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("rollout never %s: %s wave %d %q %+v", what, ro.State, ro.Wave, ro.Reason, ro.Devices)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func deviceOf(ro *loa.Rollout, id string) loa.RolloutDevice {
	for _, d := range ro.Devices {
		if d.Device == id {
			return d
		}
	}
	return loa.RolloutDevice{}
}

// A rollout over 20 receivers in waves 10/50/100 where two receivers of
// the second wave were built with another key: they refuse the image, the
// rollout pauses itself before the third wave, resuming finishes it, and
// every other receiver runs the new version and reports it.
func TestSystemFirmwareRolloutPausesOnFailures(t *testing.T) {
	ids := make([]string, 20)
	for i := range ids {
		ids[i] = fmt.Sprintf("rx-%03d", i)
	}
	waves := []int{10, 50, 100}
	bad := map[string]bool{}
	for _, d := range devices.PlanWaves(ids, waves) {
		if d.Wave == 1 && len(bad) < 2 {
			bad[d.Device] = true
		}
	}
	_, otherKey, _ := ed25519.GenerateKey(nil)
	s := startFWSystem(t, len(ids), func(i int, c *firmwaresim.Config) {
		if bad[c.ID] {
			c.FirmwareKey = otherKey.Public().(ed25519.PublicKey)
		}
	})
	img := s.upload("1.1.0", firmwaresim.BuildImage("1.1.0", true, 128<<10))

	ro := s.startRollout(rolloutRequest{ImageID: img.ID, Targets: loa.Targets{Areas: []string{"p"}}, Waves: waves,
		FailThreshold: 0.2, WaveTimeout: "1m"})
	if len(ro.Devices) != 20 || ro.State != loa.RolloutRunning || ro.Version != "1.1.0" {
		t.Fatalf("started %s with %d devices, version %q", ro.State, len(ro.Devices), ro.Version)
	}
	paused := s.waitRollout(ro.ID, "paused", func(r *loa.Rollout) bool { return r.State == loa.RolloutPaused })
	if paused.Wave != 1 || !strings.Contains(paused.Reason, "wave 2 (50%): 2 of 8 devices failed") {
		t.Errorf("paused in wave index %d: %q; want wave 2 with 2 of 8 failed", paused.Wave, paused.Reason)
	}
	// Pausing stops the sending: a wave-2 device the engine had not yet
	// sent to when the failures paused it stays pending (never sent);
	// every one it had sent to settles.
	unsent := func(d loa.RolloutDevice) bool {
		return d.State == loa.RolloutDevicePending && d.UpdatedAt.IsZero()
	}
	paused = s.waitRollout(ro.ID, "settled in wave 2", func(r *loa.Rollout) bool {
		for _, d := range r.Devices {
			if d.Wave == 1 && !loa.RolloutDeviceFinal(d.State) && !unsent(d) {
				return false
			}
		}
		return true
	})
	for _, d := range paused.Devices {
		switch {
		case d.Wave == 1 && !bad[d.Device] && unsent(d):
			if v := s.rx[d.Device].Firmware(); v != "1.0.0" {
				t.Errorf("%s was never sent the image but runs %s", d.Device, v)
			}
		case bad[d.Device]:
			if d.State != loa.RolloutDeviceFailed || d.Code != protocol.FWBadSignature {
				t.Errorf("%s (other key): %s %s %q, want failed bad_signature", d.Device, d.State, d.Code, d.Msg)
			}
			if v := s.rx[d.Device].Firmware(); v != "1.0.0" {
				t.Errorf("%s refused the image but runs %s", d.Device, v)
			}
		case d.Wave == 2:
			if d.State != loa.RolloutDevicePending || s.rx[d.Device].Firmware() != "1.0.0" {
				t.Errorf("%s of wave 3 is %s on %s while the rollout is paused", d.Device, d.State, s.rx[d.Device].Firmware())
			}
		default:
			if d.State != loa.RolloutDeviceDone || d.Version != "1.1.0" {
				t.Errorf("%s: %s %s %q version %q, want done 1.1.0", d.Device, d.State, d.Code, d.Msg, d.Version)
			}
		}
	}

	if err := s.api.JSON(context.Background(), "POST", "/api/v1/rollouts/"+ro.ID+"/resume", nil, nil); err != nil {
		t.Fatalf("resume: %v", err)
	}
	end := s.waitRollout(ro.ID, "completed", func(r *loa.Rollout) bool { return r.State == loa.RolloutCompleted })
	var totals struct {
		Totals []loa.WaveTotals `json:"totals"`
	}
	if err := s.api.JSON(context.Background(), "GET", "/api/v1/rollouts/"+ro.ID, nil, &totals); err != nil {
		t.Fatal(err)
	}
	if got := totals.Totals; len(got) != 3 || got[0].States[loa.RolloutDeviceDone] != 2 || got[1].States[loa.RolloutDeviceFailed] != 2 ||
		got[1].States[loa.RolloutDeviceDone] != 6 || got[2].States[loa.RolloutDeviceDone] != 10 {
		t.Errorf("wave totals %+v", got)
	}
	for _, d := range end.Devices {
		if bad[d.Device] {
			continue
		}
		if d.State != loa.RolloutDeviceDone || s.rx[d.Device].Firmware() != "1.1.0" {
			t.Errorf("%s: %s, receiver runs %s; want done on 1.1.0", d.Device, d.State, s.rx[d.Device].Firmware())
		}
	}
	// The new version shows in the devices' telemetry.
	deadline := time.Now().Add(30 * time.Second)
	for {
		devs, err := s.api.Devices(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		wrong := []string{}
		for _, d := range devs {
			want := "1.1.0"
			if bad[d.ID] {
				want = "1.0.0"
			}
			if d.State == nil || d.State.Telemetry == nil || d.State.Telemetry.Firmware != want {
				wrong = append(wrong, d.ID)
			}
		}
		if len(wrong) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("telemetry of %v does not report the expected version", wrong)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A tampered image: the file changed on the controller's disk after the
// upload. Receivers refuse it with bad_checksum and keep their version.
// Wrongly signed uploads are refused and store nothing.
func TestSystemFirmwareTamperedImageRefused(t *testing.T) {
	s := startFWSystem(t, 2, nil)
	ctx := context.Background()
	image := firmwaresim.BuildImage("1.2.0", true, 64<<10)
	m := s.sign("1.2.0", image)

	// A signature of another version, a flipped byte, a foreign key.
	other := s.sign("1.3.0", image)
	flipped := bytes.Clone(image)
	flipped[len(flipped)-1] ^= 1
	_, foreign, _ := ed25519.GenerateKey(nil)
	for name, up := range map[string]struct {
		version, sig string
		image        []byte
	}{
		"signature of another version": {"1.2.0", other.Sig, image},
		"tampered after signing":       {"1.2.0", m.Sig, flipped},
		"signed with another key":      {"1.2.0", protocol.SignFirmware(foreign, "1.2.0", m.SHA256), image},
		"not a signature":              {"1.2.0", "c2lnbmF0dXJl", image},
	} {
		_, err := s.api.UploadFirmware(ctx, up.version, up.sig, up.image)
		var ae *api.ClientError
		if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != loa.EINVALID || !strings.Contains(ae.Message, "sig") {
			t.Errorf("%s: upload answered %v, want 400 invalid naming sig", name, err)
		}
	}
	var list []loa.FirmwareImage
	if err := s.api.JSON(ctx, "GET", "/api/v1/firmware", nil, &list); err != nil || len(list) != 0 {
		t.Fatalf("refused uploads left images %v (%v)", list, err)
	}
	if entries, _ := os.ReadDir(filepath.Join(s.m.Config.DataDir, "firmware")); len(entries) != 0 {
		t.Errorf("refused uploads left files: %v", entries)
	}

	img, err := s.api.UploadFirmware(ctx, "1.2.0", m.Sig, image)
	if err != nil {
		t.Fatal(err)
	}
	// Someone changes the stored file behind the controller's back.
	path := s.m.DB.FirmwarePath(img.SHA256)
	if err := os.WriteFile(path, flipped, 0o644); err != nil {
		t.Fatal(err)
	}
	ro := s.startRollout(rolloutRequest{ImageID: img.ID, Targets: loa.Targets{Areas: []string{"p"}}, Waves: []int{100}, FailThreshold: 1})
	end := s.waitRollout(ro.ID, "completed", func(r *loa.Rollout) bool { return r.State == loa.RolloutCompleted })
	for _, d := range end.Devices {
		if d.State != loa.RolloutDeviceFailed || d.Code != protocol.FWBadChecksum {
			t.Errorf("%s: %s %s %q, want failed bad_checksum", d.Device, d.State, d.Code, d.Msg)
		}
		if v := s.rx[d.Device].Firmware(); v != "1.0.0" {
			t.Errorf("%s installed a tampered image: runs %s", d.Device, v)
		}
		if sl := s.rx[d.Device].FirmwareSlots(); sl.B != "" {
			t.Errorf("%s wrote its spare slot: %+v", d.Device, sl)
		}
	}
}

// An image that does not come up healthy: the receiver falls back to its
// old slot by itself and reports rolled_back, still on the old version. A
// downgrade is refused by the receiver and skipped by the controller.
func TestSystemFirmwareRollbackAndDowngrade(t *testing.T) {
	s := startFWSystem(t, 3, func(i int, c *firmwaresim.Config) {
		if i == 2 {
			c.Firmware = "2.0.0"
		}
	})
	ctx := context.Background()
	img := s.upload("1.5.0", firmwaresim.BuildImage("1.5.0", false, 96<<10))
	ro := s.startRollout(rolloutRequest{ImageID: img.ID, Targets: loa.Targets{Devices: []string{"rx-000", "rx-001", "rx-002"}},
		Waves: []int{100}, FailThreshold: 1})
	end := s.waitRollout(ro.ID, "completed", func(r *loa.Rollout) bool { return r.State == loa.RolloutCompleted })
	for _, id := range []string{"rx-000", "rx-001"} {
		d := deviceOf(end, id)
		if d.State != loa.RolloutDeviceFailed || d.Code != protocol.FWRolledBack {
			t.Errorf("%s: %s %s %q, want failed rolled_back", id, d.State, d.Code, d.Msg)
		}
		sl := s.rx[id].FirmwareSlots()
		if v := s.rx[id].Firmware(); v != "1.0.0" || sl.Active != "a" {
			t.Errorf("%s runs %s from slot %s after the rollback, want 1.0.0 from a (%+v)", id, v, sl.Active, sl)
		}
	}
	if d := deviceOf(end, "rx-002"); d.State != loa.RolloutDeviceSkipped {
		t.Errorf("rx-002 on 2.0.0: %s %s %q, want skipped_current", d.State, d.Code, d.Msg)
	}

	// The receiver itself refuses the downgrade, whatever the controller
	// believes.
	ack, err := s.m.Fleet.SendFirmware(ctx, "rx-002", protocol.FirmwareArgs{Version: img.Version,
		URL: s.m.URL() + "/fw/" + img.ID, Size: img.Size, SHA256: img.SHA256, Sig: img.Sig}, nil)
	if err == nil || ack.State != protocol.AckFailed || ack.Code != protocol.FWDowngrade {
		t.Errorf("downgrade 2.0.0 → 1.5.0: ack %+v, %v; want failed downgrade", ack, err)
	}
	if v := s.rx["rx-002"].Firmware(); v != "2.0.0" {
		t.Errorf("rx-002 runs %s after refusing a downgrade", v)
	}
	// A finished rollout cannot be resumed or aborted.
	err = s.api.JSON(ctx, "POST", "/api/v1/rollouts/"+ro.ID+"/abort", nil, nil)
	if ae := (*api.ClientError)(nil); !errors.As(err, &ae) || ae.Status != 409 {
		t.Errorf("abort a completed rollout: %v, want 409", err)
	}
}

// Without -firmware-key the controller refuses uploads and says why.
func TestSystemFirmwareUploadNeedsKey(t *testing.T) {
	s := startSystem(t, systemOpts{})
	_, err := s.api.UploadFirmware(context.Background(), "1.0.1", strings.Repeat("A", 86)+"==", []byte("image"))
	var ae *api.ClientError
	if !errors.As(err, &ae) || ae.Status != 503 || !strings.Contains(ae.Message, "-firmware-key") {
		t.Errorf("upload without a key: %v, want 503 naming -firmware-key", err)
	}
}

// A controller restart in the middle of a rollout: the new process
// continues the stored rollout. One receiver of the first wave is offline
// until after the restart; once it comes online the continued rollout
// updates it and goes on to the second wave.
func TestSystemFirmwareRolloutSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	name := filepath.Join(t.TempDir(), "op")
	pub := writeFirmwareKeys(t, name)
	cfg := testConfig(t)
	cfg.MQTTListen = fmt.Sprintf("127.0.0.1:%d", loatest.FreePort(t, "tcp"))
	cfg.HTTPAddr = fmt.Sprintf("127.0.0.1:%d", loatest.FreePort(t, "tcp"))
	cfg.FirmwareKey = name + ".pub"
	m1 := openMain(t, cfg)
	c := api.NewClient(m1.URL(), m1.AdminToken)
	c.CreateArea(ctx, loa.Area{ID: "p", Name: "P", Kind: loa.AreaProvince})
	c.CreateArea(ctx, loa.Area{ID: "a", ParentID: "p", Name: "A", Kind: loa.AreaCommune})
	ids := []string{"rx-0", "rx-1", "rx-2", "rx-3"}
	waves := []int{50, 100}
	plan := devices.PlanWaves(ids, waves)
	late, early := plan[0].Device, plan[1].Device // both in the first wave
	var now []firmwaresim.Config
	var lateCfg firmwaresim.Config
	for _, id := range ids {
		pw, err := c.CreateDevice(ctx, loa.Device{ID: id, AreaID: "a"})
		if err != nil {
			t.Fatal(err)
		}
		rc := firmwaresim.Config{ID: id, Password: pw, Broker: m1.MQTTURL(), FirmwareKey: pub, Logger: testLogger(t).With("receiver", id)}
		if id == late {
			lateCfg = rc
		} else {
			now = append(now, rc)
		}
	}
	fleet, err := firmwaresim.StartFleet(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fleet.Close() })
	if err := c.WaitOnline(ctx, len(now), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	s1 := &fwSystem{system: &system{t: t, m: m1, api: c}, keyPath: name + ".key"}
	img := s1.upload("1.1.0", firmwaresim.BuildImage("1.1.0", true, 64<<10))
	ro := s1.startRollout(rolloutRequest{ImageID: img.ID, Targets: loa.Targets{Areas: []string{"a"}}, Waves: waves, FailThreshold: 0.5, WaveTimeout: "2m"})
	s1.waitRollout(ro.ID, "done on "+early, func(r *loa.Rollout) bool { return deviceOf(r, early).State == loa.RolloutDeviceDone })
	if err := m1.Close(); err != nil {
		t.Fatal(err)
	}

	m2 := openMain(t, cfg)
	defer m2.Close()
	s2 := &fwSystem{system: &system{t: t, m: m2, api: api.NewClient(m2.URL(), c.Token)}}
	mid := s2.rollout(ro.ID)
	if mid.State != loa.RolloutRunning || mid.Wave != 0 || deviceOf(mid, late).State != loa.RolloutDevicePending ||
		deviceOf(mid, early).State != loa.RolloutDeviceDone {
		t.Fatalf("after the restart the rollout is %s in wave %d: %+v", mid.State, mid.Wave, mid.Devices)
	}
	lateFleet, err := firmwaresim.StartFleet(ctx, []firmwaresim.Config{lateCfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lateFleet.Close() })
	end := s2.waitRollout(ro.ID, "completed", func(r *loa.Rollout) bool { return r.State == loa.RolloutCompleted })
	for _, d := range end.Devices {
		if d.State != loa.RolloutDeviceDone || d.Version != "1.1.0" {
			t.Errorf("%s: %s %s %q, want done on 1.1.0", d.Device, d.State, d.Code, d.Msg)
		}
	}
	for _, r := range append(fleet.Receivers(), lateFleet.Receivers()...) {
		if v := r.Firmware(); v != "1.1.0" {
			t.Errorf("%s runs %s", r.ID(), v)
		}
	}
	// Receivers first: closing them after the broker waits for a broker
	// that is gone.
	lateFleet.Close()
	fleet.Close()
}
