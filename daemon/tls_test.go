package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	firmwaresim "github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/pki"
	"github.com/loa-broadcast/loa/protocol"
)

// stationPool is a pool of m's station CA, what a receiver is given.
func stationPool(t *testing.T, m *Main) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(m.CACertPEM()) {
		t.Fatal("CACertPEM holds no certificate")
	}
	return pool
}

// httpsGet GETs an API path over HTTPS with the admin token, trusting roots
// and asking for serverName (the URL's host when empty).
func httpsGet(t *testing.T, base, path, token string, roots *x509.CertPool, serverName string) (int, []byte, error) {
	t.Helper()
	c := &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: serverName}}}
	defer c.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// A plain listener beyond loopback is refused at startup with a message
// that says what to do, and nothing is created; -allow-plain permits it.
func TestTLSPlainBeyondLoopbackRefused(t *testing.T) {
	def := DefaultConfig()
	def.DataDir = t.TempDir()
	if err := def.Validate(); err != nil {
		t.Fatalf("the defaults do not validate: %v", err)
	}
	for _, c := range []struct {
		name string
		set  func(*Config)
		want string
	}{
		{"http on every interface", func(c *Config) { c.HTTPAddr = ":8080" }, `http ":8080": a plain (unencrypted) listener beyond loopback`},
		{"http on a LAN address", func(c *Config) { c.HTTPAddr = "192.168.1.10:8080" }, "-allow-plain"},
		{"mqtt on every interface", func(c *Config) { c.MQTTListen = "0.0.0.0:1883" }, `mqtt-listen "0.0.0.0:1883"`},
		{"plain external broker on another host", func(c *Config) { c.MQTTURL = "tcp://mosquitto:1883" }, "use tls://mosquitto:1883"},
		{"no API listener", func(c *Config) { c.HTTPAddr, c.TLS.HTTPSAddr = "", "" }, "the API needs a listener"},
		{"half a certificate", func(c *Config) { c.TLS.Cert = "api.crt" }, "tls-cert and tls-key"},
		{"two certificate sources", func(c *Config) { c.TLS.Cert, c.TLS.Key, c.TLS.ACMEDomain = "a", "b", "loa.example.vn" }, "one source"},
		{"ACME for an IP", func(c *Config) { c.TLS.ACMEDomain = "10.0.0.1" }, "public DNS name"},
		{"bad certificate name", func(c *Config) { c.TLS.Names = []string{"loa ctl"} }, "tls-names"},
	} {
		cfg := DefaultConfig()
		cfg.DataDir = filepath.Join(t.TempDir(), "data")
		c.set(&cfg)
		err := NewMain(cfg, testLogger(t)).Open(context.Background())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Open: %v, want an error saying %q", c.name, err, c.want)
		}
		if _, err := os.Stat(cfg.DataDir); !os.IsNotExist(err) {
			t.Errorf("%s: the refused start created its data dir", c.name)
		}
	}
	// Allowed explicitly, with loopback ports so this test can bind them.
	cfg := testConfig(t)
	cfg.HTTPAddr, cfg.MQTTListen, cfg.TLS.AllowPlain = "0.0.0.0:0", "0.0.0.0:0", true
	m := openMain(t, cfg)
	defer m.Close()
	if resp, err := http.Get(m.URL() + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("plain HTTP allowed beyond loopback: %v %v", resp, err)
	}
}

// Receivers connect over MQTT/TLS verifying the station CA and the server
// name; a receiver trusting another CA (or only the system roots) is
// refused before it sends its password, and stays offline.
func TestTLSDevicesConnect(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 2, tls: true})
	if !strings.HasPrefix(s.m.MQTTTLSURL(), "tls://127.0.0.1:") {
		t.Fatalf("MQTTTLSURL %q", s.m.MQTTTLSURL())
	}
	ctx := context.Background()
	// A command travels over the TLS connection and is acked.
	var res struct {
		State string `json:"state"`
	}
	if err := s.api.JSON(ctx, "POST", "/api/v1/devices/rx-000/commands",
		map[string]any{"op": protocol.OpVolume, "args": protocol.VolumeArgs{Level: 55}}, &res); err != nil || res.State != "done" {
		t.Errorf("volume over TLS: %v %+v", err, res)
	}
	if v := s.byArea["a"][0].Volume(); v != 55 {
		t.Errorf("the receiver's volume is %d after the command over TLS", v)
	}

	pw, err := s.api.CreateDevice(ctx, loa.Device{ID: "rx-wrong-ca", AreaID: "a1", Name: "wrong CA"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.Open(pki.Config{Dir: t.TempDir(), Names: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	failures := s.m.Broker.Stats().AuthFailures
	for name, ca := range map[string]*x509.CertPool{"another station's CA": other.Pool(), "the system roots": nil} {
		r := firmwaresim.NewReceiver(firmwaresim.Config{ID: "rx-wrong-ca", Password: pw, Broker: s.m.MQTTTLSURL(), CA: ca,
			Logger: testLogger(t)})
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := r.Start(sctx)
		cancel()
		if err == nil {
			r.Close()
			t.Errorf("a receiver trusting %s connected", name)
		} else if !strings.Contains(err.Error(), "certificate") {
			t.Errorf("a receiver trusting %s: %v, want a certificate error", name, err)
		}
	}
	if got := s.m.Broker.Stats().AuthFailures; got != failures {
		t.Errorf("a refused handshake reached authentication")
	}
	var d api.DeviceView
	if err := s.api.JSON(ctx, "GET", "/api/v1/devices/rx-wrong-ca", nil, &d); err != nil {
		t.Fatal(err)
	}
	if d.State != nil && d.State.Online {
		t.Error("the receiver with the wrong CA is online")
	}
}

// The API over HTTPS: with the station CA's certificate by default, and
// with the operator's certificate files when given.
func TestTLSAPIOverHTTPS(t *testing.T) {
	cfg := testConfig(t)
	cfg.TLS.HTTPSAddr = "127.0.0.1:0"
	m := openMain(t, cfg)
	defer m.Close()
	if !strings.HasPrefix(m.HTTPSURL(), "https://127.0.0.1:") {
		t.Fatalf("HTTPSURL %q", m.HTTPSURL())
	}
	code, body, err := httpsGet(t, m.HTTPSURL(), "/api/v1/areas", m.AdminToken, stationPool(t, m), "")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /areas over HTTPS with the station CA: %d %v %s", code, err, body)
	}
	if code, _, err := httpsGet(t, m.HTTPSURL(), "/api/v1/areas", m.AdminToken, nil, ""); err == nil {
		t.Errorf("a client without the station CA got %d", code)
	}
	// The CA is in the data dir, as the README says.
	onDisk, err := os.ReadFile(filepath.Join(cfg.DataDir, "tls", "ca.crt"))
	if err != nil || string(onDisk) != string(m.CACertPEM()) {
		t.Errorf("<data>/tls/ca.crt is not the station CA: %v", err)
	}
	if st, err := os.Stat(filepath.Join(cfg.DataDir, "tls", "ca.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("<data>/tls/ca.key: %v %v, want mode 0600", st, err)
	}
	m.Close()

	// The operator's certificate, from a CA of theirs, for another name.
	opCA, err := pki.Open(pki.Config{Dir: t.TempDir(), Names: []string{"api.loa.example.vn"}})
	if err != nil {
		t.Fatal(err)
	}
	cfg2 := testConfig(t)
	cfg2.TLS.HTTPSAddr = "127.0.0.1:0"
	cfg2.TLS.Cert, cfg2.TLS.Key = opCA.ServerFiles()
	m2 := openMain(t, cfg2)
	defer m2.Close()
	code, body, err = httpsGet(t, m2.HTTPSURL(), "/api/v1/areas", m2.AdminToken, opCA.Pool(), "api.loa.example.vn")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /areas over HTTPS with the operator's certificate: %d %v %s", code, err, body)
	}
	if _, _, err := httpsGet(t, m2.HTTPSURL(), "/api/v1/areas", m2.AdminToken, stationPool(t, m2), ""); err == nil {
		t.Error("with -tls-cert the API still presents the station CA's certificate")
	}
}

// The API's certificate from an ACME CA (a local pebble), for the public
// name; other names (an IP) still get the station CA's certificate.
func TestTLSAPIOverACME(t *testing.T) {
	peb := loatest.StartPebble(t)
	const domain = "loa.example.vn"
	cfg := testConfig(t)
	cfg.TLS.HTTPSAddr = "127.0.0.1:0"
	cfg.TLS.ACMEDomain, cfg.TLS.ACMEDirectory, cfg.TLS.ACMERoots = domain, peb.Directory, peb.RootsFile
	m := openMain(t, cfg)
	defer m.Close()
	if !strings.HasPrefix(m.HTTPSURL(), "https://"+domain+":") {
		t.Errorf("HTTPSURL %q: want the ACME name", m.HTTPSURL())
	}
	base := "https://" + m.HTTPSAddr()
	// The first handshake for the name obtains the certificate.
	code, body, err := httpsGet(t, base, "/api/v1/areas", m.AdminToken, peb.IssuerRoot(t), domain)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /areas over HTTPS with the ACME certificate: %d %v %s", code, err, body)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "acme", domain)); err != nil {
		t.Errorf("the ACME certificate is not cached in <data>/acme: %v", err)
	}
	if code, _, err := httpsGet(t, base, "/healthz", "", stationPool(t, m), ""); err != nil || code != http.StatusOK {
		t.Errorf("by IP, with the station CA: %d %v", code, err)
	}
}

// A firmware update over HTTPS end to end: receivers connected over TLS
// get an https download URL, verify the server with the station CA, and
// install the image (a receiver given a CA refuses a plain URL).
func TestTLSFirmwareOverHTTPS(t *testing.T) {
	name := filepath.Join(t.TempDir(), "keys", "operator")
	pub := writeFirmwareKeys(t, name)
	s := startSystem(t, systemOpts{tls: true, configure: func(c *Config) { c.FirmwareKey = name + ".pub" }})
	ctx := context.Background()
	pw, err := s.api.CreateDevice(ctx, loa.Device{ID: "rx-fw", AreaID: "a1", Name: "rx-fw"})
	if err != nil {
		t.Fatal(err)
	}
	fleet, err := firmwaresim.StartFleet(ctx, []firmwaresim.Config{{ID: "rx-fw", Password: pw, Broker: s.m.MQTTTLSURL(),
		CA: stationPool(t, s.m), FirmwareKey: pub, TeleInterval: 200 * time.Millisecond, Logger: testLogger(t)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fleet.Close() })
	if err := s.api.WaitOnline(ctx, 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	fs := &fwSystem{system: s, keyPath: name + ".key"}
	img := fs.upload("1.2.0", firmwaresim.BuildImage("1.2.0", true, 96<<10))
	ro := fs.startRollout(rolloutRequest{ImageID: img.ID, Targets: loa.Targets{Devices: []string{"rx-fw"}}, FailThreshold: 1})
	end := fs.waitRollout(ro.ID, "settled", func(r *loa.Rollout) bool { return loa.RolloutDeviceFinal(deviceOf(r, "rx-fw").State) })
	if d := deviceOf(end, "rx-fw"); d.State != loa.RolloutDeviceDone || d.Version != "1.2.0" {
		t.Fatalf("rx-fw: %s %s %q version %q, want done 1.2.0", d.State, d.Code, d.Msg, d.Version)
	}
	if v := fleet.Receivers()[0].Firmware(); v != "1.2.0" {
		t.Errorf("the receiver runs %s", v)
	}
	args, err := s.m.Firmware.FirmwareArgs(ctx, img.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(args.URL, s.m.HTTPSURL()+"/") {
		t.Errorf("download URL %q, want one under %s", args.URL, s.m.HTTPSURL())
	}
}

// mosquittoTLS returns the TLS listener lines deploy/mosquitto.conf
// documents, so the test runs what users are told to deploy.
func mosquittoTLS(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../deploy/mosquitto.conf")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(b), "# --- TLS for receivers")
	if ok {
		block, _, ok = strings.Cut(block, "# --- end TLS ---")
	}
	if !ok {
		t.Fatal("deploy/mosquitto.conf has no TLS block")
	}
	var lines []string
	for _, l := range strings.Split(block, "\n") {
		if l, ok := strings.CutPrefix(l, "#   "); ok {
			lines = append(lines, l)
		}
	}
	if len(lines) < 4 || !strings.HasPrefix(lines[0], "listener 8883") {
		t.Fatalf("deploy/mosquitto.conf's TLS block: %q", lines)
	}
	return lines
}

// Mosquitto with the TLS listener of deploy/mosquitto.conf and the
// station's files: the controller connects over TLS (verifying the station
// CA), receivers too; a receiver trusting another CA is refused.
func TestTLSMosquitto(t *testing.T) {
	loatest.Tool(t, "mosquitto")
	var url string
	s := startSystem(t, systemOpts{receivers: 2, tls: true, configure: func(c *Config) {
		// The station CA first, as the controller's first start makes it,
		// so Mosquitto can present its certificate when the controller
		// connects.
		station, err := pki.Open(pki.Config{Dir: filepath.Join(c.DataDir, "tls")})
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		os.Chmod(filepath.Dir(dir), 0o755) // Mosquitto as root drops to its own user before reading
		os.Chmod(dir, 0o755)
		certFile, keyFile := station.ServerFiles()
		for name, src := range map[string]string{"server.crt": certFile, "server.key": keyFile, "ca.crt": station.CACertFile()} {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			// Readable by the mosquitto user whoever runs the test.
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		port := loatest.FreePort(t, "tcp")
		conf := strings.Join(mosquittoTLS(t), "\n")
		conf = strings.ReplaceAll(conf, "/mosquitto/config/tls", dir)
		conf = strings.Replace(conf, "listener 8883", fmt.Sprintf("listener %d 127.0.0.1", port), 1)
		conf += "\nallow_anonymous true\npersistence false\n"
		url = "tls://" + strings.TrimPrefix(loatest.StartMosquitto(t, dir, port, conf), "tcp://")
		c.MQTTURL = url
	}})
	if s.m.Broker != nil || s.m.MQTTURL() != url {
		t.Fatalf("the controller did not use Mosquitto over TLS: %s", s.m.MQTTURL())
	}
	ctx := context.Background()
	var res struct {
		State string `json:"state"`
	}
	if err := s.api.JSON(ctx, "POST", "/api/v1/devices/rx-001/commands",
		map[string]any{"op": protocol.OpVolume, "args": protocol.VolumeArgs{Level: 33}}, &res); err != nil || res.State != "done" {
		t.Errorf("volume through Mosquitto over TLS: %v %+v", err, res)
	}
	other, err := pki.Open(pki.Config{Dir: t.TempDir(), Names: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	r := firmwaresim.NewReceiver(firmwaresim.Config{ID: "rx-000", Password: "x", Broker: url, CA: other.Pool(), Logger: testLogger(t)})
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := r.Start(sctx); err == nil {
		r.Close()
		t.Error("a receiver trusting another CA connected to Mosquitto")
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a receiver trusting another CA: %v, want a certificate error", err)
	}
}
